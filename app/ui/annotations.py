"""Measurements on an image: length, angle, ellipse and rectangle ROI, pixel probe, arrow, text.

An :class:`Annotation` is data (kind + points in image millimetres: x along the row, y down the
column, origin at the first pixel's corner), kept per slice in the open series while the study
is open. :class:`AnnotationItem` draws one with pyqtgraph ROIs and keeps the data and the label
text in step with the handles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF

from app.dicom.value_maps import Quantity
from app.render.roi import RoiStats, roi_stats
from app.workflow.findings import arrow_head

COLOR = (255, 200, 40)


@dataclass
class Annotation:
    kind: str  # "length" | "arrow" | "angle" | "ellipse" | "rect" | "probe" | "text"
    points: list[tuple[float, float]] = field(default_factory=list)
    text: str = ""
    """What a "text" annotation says (the others' labels are measured, not kept)."""


def length_mm(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def angle_deg(a: tuple[float, float], vertex: tuple[float, float], c: tuple[float, float]) -> float:
    v1 = np.subtract(a, vertex)
    v2 = np.subtract(c, vertex)
    n = float(np.linalg.norm(v1) * np.linalg.norm(v2))
    if n == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(v1 @ v2) / n))))


class AnnotationItem:
    """The graphics of one annotation in a ViewBox; call :meth:`remove` to take it away."""

    def __init__(self, view: pg.ViewBox, note: Annotation, values_fn: Any, spacing: Any,
                 quantity: Quantity) -> None:
        self.view = view
        self.note = note
        self._values_fn = values_fn  # () -> the slice's values (of ``quantity``), or None
        self._spacing = spacing
        self._quantity = quantity
        pen = pg.mkPen(COLOR, width=2)
        handle = pg.mkPen(COLOR)
        pts = [QPointF(*p) for p in note.points]
        self.head: pg.PlotCurveItem | None = None
        if note.kind in ("length", "arrow"):
            self.roi = pg.LineSegmentROI(pts[:2], pen=pen, handlePen=handle)
            if note.kind == "arrow":
                self.head = pg.PlotCurveItem(pen=pen)
                view.addItem(self.head)
        elif note.kind == "angle":
            self.roi = pg.PolyLineROI(pts[:3], closed=False, pen=pen, handlePen=handle)
        elif note.kind in ("ellipse", "rect"):
            (x0, y0), (x1, y1) = note.points[0], note.points[1]
            cls = _Ellipse if note.kind == "ellipse" else pg.RectROI
            self.roi = cls([min(x0, x1), min(y0, y1)], [abs(x1 - x0) or 1e-3, abs(y1 - y0) or 1e-3],
                           pen=pen, handlePen=handle)
        else:
            x, y = note.points[0]
            size = 2.0 * spacing[1]
            self.roi = pg.CircleROI([x - size / 2, y - size / 2], [size, size], pen=pen,
                                    movable=True, resizable=False)
            for h in list(self.roi.getHandles()):
                self.roi.removeHandle(h)
        self.label = pg.TextItem(color=COLOR, anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 150))
        view.addItem(self.roi)
        view.addItem(self.label)
        self.roi.sigRegionChanged.connect(self._on_changed)
        self._on_changed()

    def points(self) -> list[tuple[float, float]]:
        if self.note.kind in ("length", "arrow", "angle"):
            # in the ROI's parent (the view's millimetres), not through the scene: right after
            # the ROI is added the scene transform is not set yet, and a note re-shown on a
            # slice (or added by code) came back with its points scaled wrongly
            handles = (self.roi.mapToParent(h.pos()) for h in self.roi.getHandles())
            return [(p.x(), p.y()) for p in handles]
        pos, size = self.roi.pos(), self.roi.size()
        if self.note.kind in ("probe", "text"):
            return [(pos.x() + size.x() / 2, pos.y() + size.y() / 2)]
        return [(pos.x(), pos.y()), (pos.x() + size.x(), pos.y() + size.y())]

    def text(self) -> str:
        p = self.note.points
        if self.note.kind == "arrow":
            return ""
        if self.note.kind == "text":
            return self.note.text
        if self.note.kind == "length":
            return f"{length_mm(p[0], p[1]):.1f} mm"
        if self.note.kind == "angle":
            return f"{angle_deg(p[0], p[1], p[2]):.1f}°"
        values = self._values_fn()
        if values is None:
            return ""
        if self.note.kind == "probe":
            x, y = p[0]
            j, i = int(y / self._spacing[0]), int(x / self._spacing[1])
            if 0 <= j < values.shape[0] and 0 <= i < values.shape[1]:
                value = float(values[j, i])
                return "" if math.isnan(value) else self._quantity.text(value)
            return ""
        return region_text(values, self.note.kind, p[0], p[1], self._spacing, self._quantity)

    def anchor(self) -> tuple[float, float]:
        """Where the label's lower left corner goes (view mm): right of the shape's top."""
        xs = [q[0] for q in self.note.points]
        ys = [q[1] for q in self.note.points]
        return max(xs) + self._spacing[1] * 2, min(ys)

    def _on_changed(self, *_args: object) -> None:
        self.note.points = self.points()
        if self.head is not None and len(self.note.points) == 2:
            head = arrow_head(self.note.points[0], self.note.points[1])
            self.head.setData([q[0] for q in head], [q[1] for q in head])
        self.label.setText(self.text())
        self.label.setPos(*self.anchor())

    def refresh(self) -> None:
        self._on_changed()

    def remove(self) -> None:
        if self.head is not None:
            self.view.removeItem(self.head)
        self.view.removeItem(self.roi)
        self.view.removeItem(self.label)


def region_text(values: np.ndarray, kind: str, p0: tuple[float, float], p1: tuple[float, float],
                spacing: Any, quantity: Quantity) -> str:
    """A region's label: "RCBF mean 42.3 SD 5.1 ml/100ml/s", min and max, area."""
    stats = roi_stats(values, kind, p0, p1, spacing)
    if stats is None:
        return ""
    places = quantity.decimals
    return (f"{mean_text(stats, quantity)}\n"
            f"min {stats.minimum:.{places}f} max {stats.maximum:.{places}f}\n"
            f"area {stats.area_mm2 / 100.0:.2f} cm²")


def mean_text(stats: RoiStats, quantity: Quantity) -> str:
    """"RCBF mean 42.3 SD 5.1 ml/100ml/s", "mean 35.2 SD 4.0 HU": one decimal past a step."""
    places = quantity.decimals + 1
    return " ".join(part for part in (
        quantity.label, f"mean {stats.mean:.{places}f} SD {stats.sd:.{places}f}", quantity.unit)
        if part)


class _Ellipse(pg.EllipseROI):  # type: ignore[misc]  # pyqtgraph has no stubs
    """An axis-aligned ellipse (no rotate handle: stats assume no rotation)."""

    def __init__(self, pos: Any, size: Any, **kw: Any) -> None:
        pg.ROI.__init__(self, pos, size, **kw)
        self.path = None
        self.addScaleHandle([1, 1], [0, 0])
        self.addScaleHandle([0, 0], [1, 1])


def declutter(items: list[AnnotationItem]) -> None:
    """Move labels down until none covers another (labels keep their size on screen, so at a
    small zoom those of nearby measurements would be drawn over each other). Each starts at
    its anchor; top to bottom, a label that meets one already placed goes just below it."""
    placed: list[QRectF] = []
    for item in sorted(items, key=lambda i: (i.anchor()[1], i.anchor()[0])):
        item.label.setPos(*item.anchor())
        item.label.updateTransform(force=True)  # the view may have just changed: its size now
        rect = item.label.sceneBoundingRect()
        for _ in range(len(placed) + 1):
            hit = next((r for r in placed if r.intersects(rect)), None)
            if hit is None:
                break
            below = item.label.scenePos() + QPointF(0.0, hit.bottom() - rect.top() + 2.0)
            item.label.setPos(item.view.mapSceneToView(below))
            rect = item.label.sceneBoundingRect()
        placed.append(rect)
