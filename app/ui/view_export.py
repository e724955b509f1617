"""Saving what the reading window shows: one view or the whole layout, as PNG / JPEG or as a
DICOM Secondary Capture added to the study (and so sendable to a hub like any instance).

The pictures are what is on screen (2D viewports, MPR planes, the 3D view) without the active
view's frame and the MPR crosshair lines. Default file names carry no patient data: the series
number and description, and the slice or plane.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QWidget

from app.dicom.secondary_capture import CaptureSeries, secondary_capture
from app.model import Series
from app.store.ingest import store_instance
from app.store.local import Store, StoredFile
from app.volume.array import Volume

log = logging.getLogger(__name__)

#: The file dialog's choices; the format follows the chosen file's suffix.
IMAGE_FILTERS = "PNG image (*.png);;JPEG image (*.jpg *.jpeg)"


def default_name(series: Series | None, where: str) -> str:
    """A patient-free file name stem: ``S3_CTA_im12`` (series number, description, ``where``)."""
    parts = []
    if series is not None:
        if series.series_number is not None:
            parts.append(f"S{series.series_number}")
        parts.append(series.series_description or series.modality)
    parts.append(where)
    clean = (re.sub(r"[^A-Za-z0-9.+-]+", "-", p).strip("-") for p in parts)
    return "_".join(p for p in clean if p) or "view"


def compose(views: Sequence[tuple[QWidget, QImage]], host: QWidget) -> QImage:
    """One picture of several views, each at its place in ``host`` (the layout)."""
    boxes = [(w.mapTo(host, QPoint(0, 0)), image) for w, image in views]
    left = min(p.x() for p, _ in boxes)
    top = min(p.y() for p, _ in boxes)
    right = max(p.x() + i.width() for p, i in boxes)
    bottom = max(p.y() + i.height() for p, i in boxes)
    out = QImage(right - left, bottom - top, QImage.Format.Format_RGB32)
    out.fill(0)
    painter = QPainter(out)
    try:
        for p, image in boxes:
            painter.drawImage(p.x() - left, p.y() - top, image)
    finally:
        painter.end()
    return out


def to_rgb(image: QImage) -> np.ndarray:
    """``(rows, cols, 3)`` uint8 of a QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buf = np.frombuffer(rgb.constBits(), np.uint8, count=stride * height)
    return buf.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def from_rgb(rgb: np.ndarray) -> QImage:
    """A QImage (own copy) of ``(rows, cols, 3)`` uint8."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()


def save_to_study(store: Store, image: QImage, volume: Volume, k: int,
                  series: CaptureSeries, instance_number: int, what: str) -> StoredFile:
    """Add ``image`` to the study of ``volume`` as a Secondary Capture in ``series``; the
    source reference is slice ``k``'s instance."""
    source = volume.slices[min(max(k, 0), len(volume.slices) - 1)].path
    if source is None:
        raise ValueError("the shown series has no file in the store to take the study from")
    data = secondary_capture(to_rgb(image), source, series, instance_number=instance_number,
                             derivation=f"Screen capture of {what} in Relay")
    stored = store_instance(store, data, f"{series.series_description} {instance_number}")
    log.info("key view saved to the study as a Secondary Capture (series %s, instance %d)",
             series.series_number, instance_number)
    return stored
