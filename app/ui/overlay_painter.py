"""The one painter of what image views write over the image: corner texts, orientation letters,
scale bar, a probe line and the frame of the active view.

The 2D viewport and each MPR plane call these with their own state (what to say comes from
:mod:`app.ui.overlay`), so both look alike and change together. Texts get a one-pixel dark
shadow so they read on bright and dark images alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen

from app.ui.overlay import scale_bar_mm

TEXT = QColor(235, 235, 235)
SHADOW = QColor(0, 0, 0, 200)
MARGIN = 8.0
Align = Qt.AlignmentFlag


@dataclass(frozen=True)
class OverlayFonts:
    text: QFont
    letters: QFont  # orientation letters: larger and bold

    @classmethod
    def for_width(cls, base: QFont, width: float) -> OverlayFonts:
        """Fonts sized for a view ``width`` pixels wide (8 to 11 points)."""
        text = QFont(base)
        text.setPointSizeF(max(8.0, min(11.0, width / 70)))
        letters = QFont(text)
        letters.setPointSizeF(text.pointSizeF() * 1.3)
        letters.setBold(True)
        return cls(text, letters)


def shadow_text(painter: QPainter, rect: QRectF, text: str, align: Qt.AlignmentFlag | int,
                color: QColor | None = None) -> None:
    """``text`` in ``rect`` with a dark shadow (``align``: Qt alignment and text flags)."""
    flags = int(align)
    painter.setPen(SHADOW)
    painter.drawText(rect.translated(1, 1), flags, text)
    painter.setPen(color or TEXT)
    painter.drawText(rect, flags, text)


def paint_frame(painter: QPainter, rect: QRectF, color: QColor, width: float) -> None:
    """The view's frame (the active view's is thicker or coloured)."""
    painter.setPen(QPen(color, width))
    painter.drawRect(rect.adjusted(1, 1, -1, -1))


_CORNER_ALIGN = (("top_left", Align.AlignLeft | Align.AlignTop),
                 ("top_right", Align.AlignRight | Align.AlignTop),
                 ("bottom_left", Align.AlignLeft | Align.AlignBottom),
                 ("bottom_right", Align.AlignRight | Align.AlignBottom))


def corner_rects(font: QFont, inner: QRectF, corners: dict[str, Sequence[str]]) -> list[QRectF]:
    """Where :func:`paint_corners` writes each corner's lines in ``font`` (``corners``: lines
    by "top_left", "top_right", "bottom_left", "bottom_right")."""
    metrics = QFontMetricsF(font)
    return [metrics.boundingRect(inner, int(align), "\n".join(corners[key]))
            for key, align in _CORNER_ALIGN if corners.get(key)]


def paint_corners(painter: QPainter, inner: QRectF, *, top_left: Sequence[str] = (),
                  top_right: Sequence[str] = (), bottom_left: Sequence[str] = (),
                  bottom_right: Sequence[str] = ()) -> None:
    """Lines of text in the four corners of ``inner``."""
    for lines, align in ((top_left, Align.AlignLeft | Align.AlignTop),
                         (top_right, Align.AlignRight | Align.AlignTop),
                         (bottom_left, Align.AlignLeft | Align.AlignBottom),
                         (bottom_right, Align.AlignRight | Align.AlignBottom)):
        if lines:
            shadow_text(painter, inner, "\n".join(lines), align)


def edge_label_rects(inner: QRectF, labels: dict[str, str], fonts: OverlayFonts,
                     side_clearance: float = 22.0,
                     avoid: Sequence[QRectF] = ()) -> dict[str, QRectF]:
    """Where each orientation letter goes: the middle of its edge (the side letters
    ``side_clearance`` pixels clear of the corners); a top or bottom letter that would cover
    corner text (``avoid``: see :func:`corner_rects`; a narrow view) moves inwards past it."""
    metrics = QFontMetricsF(fonts.letters)
    height = metrics.height()
    band = inner.adjusted(0, side_clearance, 0, -side_clearance)
    rects: dict[str, QRectF] = {}
    for edge, text in labels.items():
        if not text:
            continue
        width = metrics.horizontalAdvance(text) + 2
        if edge in ("left", "right"):
            x = inner.left() if edge == "left" else inner.right() - width
            rects[edge] = QRectF(x, band.center().y() - height / 2, width, height)
            continue
        x = inner.center().x() - width / 2
        y = inner.top() if edge == "top" else inner.bottom() - height
        for _ in range(len(avoid)):
            hit = [r for r in avoid if r.intersects(QRectF(x, y, width, height))]
            if not hit:
                break
            y = (max(r.bottom() for r in hit) if edge == "top"
                 else min(r.top() for r in hit) - height)
        rects[edge] = QRectF(x, y, width, height)
    return rects


def paint_edge_labels(painter: QPainter, inner: QRectF, labels: dict[str, str],
                      fonts: OverlayFonts, side_clearance: float = 22.0,
                      avoid: Sequence[QRectF] = ()) -> None:
    """Orientation letters at the middle of each edge (``labels``: left, right, top, bottom),
    clear of the corner texts ``avoid`` (see :func:`edge_label_rects`)."""
    painter.setFont(fonts.letters)
    for edge, rect in edge_label_rects(inner, labels, fonts, side_clearance, avoid).items():
        shadow_text(painter, rect, labels[edge], Align.AlignCenter)
    painter.setFont(fonts.text)


def paint_scale_bar(painter: QPainter, inner: QRectF, view_mm: float, px_per_mm: float,
                    lift: float = 44.0) -> None:
    """A round-length scale bar (1, 2, 5, 10 mm...) at the bottom right, ``lift`` pixels above
    the bottom edge (clear of the corner text)."""
    if view_mm <= 0 or px_per_mm <= 0:
        return
    length_mm = scale_bar_mm(view_mm)
    length_px = length_mm * px_per_mm
    y = inner.bottom() - lift
    x_right = inner.right() - 4
    painter.setPen(QPen(QColor(230, 230, 230), 2))
    painter.drawLine(QPointF(x_right - length_px, y), QPointF(x_right, y))
    for x in (x_right - length_px, x_right):
        painter.drawLine(QPointF(x, y - 5), QPointF(x, y + 5))
    label = f"{length_mm:g} mm" if length_mm < 10 else f"{length_mm / 10:g} cm"
    shadow_text(painter, QRectF(x_right - length_px - 30, y - 22, length_px + 30, 18), label,
                Align.AlignRight | Align.AlignVCenter)


def paint_notice(painter: QPainter, band: QRectF, text: str, color: QColor,
                 align: Qt.AlignmentFlag = Align.AlignHCenter) -> None:
    """A wrapped line of warning or notice text in ``band``."""
    flags = int(align | Align.AlignTop | Qt.TextFlag.TextWordWrap)
    shadow_text(painter, band, text, flags, color)


def colour_bar_rect(inner: QRectF, fonts: OverlayFonts) -> QRectF:
    """Where :func:`paint_colour_bar` draws its bar: at the right, clear of the side letter,
    over the middle half of the view's height."""
    clearance = QFontMetricsF(fonts.letters).horizontalAdvance("W") + 8
    return QRectF(inner.right() - clearance - 12, inner.top() + inner.height() * 0.25, 12,
                  inner.height() * 0.5)


def paint_colour_bar(painter: QPainter, inner: QRectF, fonts: OverlayFonts, rgb: np.ndarray,
                     low: str, high: str, title: str) -> None:
    """A palette's colours ``rgb`` (``(entries, 3)`` uint8, lowest first) as a vertical bar at
    the right of ``inner``, ``high`` at its top, ``low`` at its bottom, ``title`` above it."""
    bar = colour_bar_rect(inner, fonts)
    column = np.ascontiguousarray(rgb[::-1].reshape(-1, 1, 3), dtype=np.uint8)
    image = QImage(column.data, 1, column.shape[0], 3, QImage.Format.Format_RGB888)
    painter.drawImage(bar, image)
    painter.setPen(QPen(QColor(230, 230, 230), 1))
    painter.drawRect(bar)
    metrics = QFontMetricsF(fonts.text)
    h = metrics.height()
    width = max(metrics.horizontalAdvance(t) for t in (low, high, title)) + 4
    right = Align.AlignRight | Align.AlignVCenter
    shadow_text(painter, QRectF(bar.left() - width - 4, bar.top() - h / 2, width, h), high, right)
    shadow_text(painter, QRectF(bar.left() - width - 4, bar.bottom() - h / 2, width, h), low,
                right)
    shadow_text(painter, QRectF(bar.right() - width, bar.top() - h * 1.8, width, h), title,
                right)
