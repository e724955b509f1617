"""Stroke tools drawn over a 2D viewport: the ASPECTS guide and the midline with mirrored regions.

:class:`AspectsTool` draws the ten regions per hemisphere (:mod:`app.workflow.aspects`) over the
plain CT when the "aspects" tool is chosen: a click in a region marks it affected (again:
unmarks), a drag moves the guide, ``[`` / ``]`` scale it, ``G`` switches the level; the score of
both sides stays in the view. :class:`MidlineTool` takes two clicks for the midline of a series
and then shows, for every ellipse or rectangle on the slice, its mirror image across the
midline and the mean/SD of both sides with their difference (:func:`app.render.roi.mirror_stats`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF

from app.render.roi import MirroredRoi, mirror_stats, mirrored_corners
from app.ui.overlay_painter import shadow_text
from app.ui.viewport import ViewportWidget
from app.workflow.aspects import LEVELS, SIDES, Aspects, Guide, polygon, regions_at

GUIDE = QColor(90, 200, 255, 200)
AFFECTED = QColor(255, 80, 60, 110)
MIDLINE = QColor(120, 255, 160, 220)
MIRROR = QColor(120, 255, 160, 230)

Midline = tuple[tuple[float, float], tuple[float, float]]


def _series_uid(viewport: ViewportWidget) -> str:
    return viewport.session.series.series_instance_uid if viewport.session is not None else ""


def _sop(viewport: ViewportWidget) -> str:
    volume = viewport.volume
    return volume.slices[viewport.state.k].sop_instance_uid if volume is not None else ""


class AspectsTool:
    """The ASPECTS guide and the marks of one study (both hemispheres)."""

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self.aspects = Aspects()
        self.level = "ganglionic"
        self.guides: dict[str, Guide] = {}
        #: SOP Instance UIDs of the slices regions were marked on (the SR's evidence).
        self.images: list[str] = []
        self._changed = changed
        self._last: tuple[float, float] | None = None

    @property
    def scored(self) -> bool:
        return bool(self.images) or any(self.aspects.affected.values())

    def guide(self, viewport: ViewportWidget) -> Guide | None:
        """The series' guide, centred on the image and sized to a brain at first."""
        volume = viewport.volume
        if volume is None:
            return None
        uid = _series_uid(viewport)
        if uid not in self.guides:
            _, dy, dx = volume.spacing
            rows, cols = volume.shape[1], volume.shape[2]
            width = cols * dx
            self.guides[uid] = Guide(width / 2, rows * dy / 2, half_width=min(68.0, width * 0.4))
        return self.guides[uid]

    def set_level(self, level: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        self.level = level
        self._changed()

    def toggle_level(self) -> None:
        self.set_level(LEVELS[1 - LEVELS.index(self.level)])

    def scale(self, viewport: ViewportWidget, factor: float) -> None:
        guide = self.guide(viewport)
        if guide is not None:
            self.guides[_series_uid(viewport)] = guide.scaled(factor)
            self._changed()

    def clear(self) -> None:
        self.aspects = Aspects()
        self.images = []
        self._changed()

    def toggle(self, side: str, code: str, sop: str = "") -> None:
        self.aspects = self.aspects.toggled(side, code)
        if sop and sop not in self.images:
            self.images.append(sop)
        self._changed()

    # -- ToolHook ---------------------------------------------------------------------------
    def click(self, viewport: ViewportWidget, point: tuple[float, float]) -> bool:
        guide = self.guide(viewport)
        if viewport.tool != "aspects" or guide is None:
            return False
        from app.workflow.aspects import region_at

        hit = region_at(point, self.level, guide)
        if hit is None:
            return False
        self.toggle(*hit, sop=_sop(viewport))
        viewport.canvas.viewport().update()
        return True

    def drag(self, viewport: ViewportWidget, ev: Any) -> bool:
        guide = self.guide(viewport)
        if viewport.tool != "aspects" or guide is None:
            return False
        now = viewport.view.mapSceneToView(ev.scenePos())
        if ev.isStart() or self._last is None:
            start = viewport.view.mapSceneToView(ev.buttonDownScenePos())
            self._last = (start.x(), start.y())
        dx, dy = now.x() - self._last[0], now.y() - self._last[1]
        self._last = None if ev.isFinish() else (now.x(), now.y())
        self.guides[_series_uid(viewport)] = guide.moved(dx, dy)
        viewport.canvas.viewport().update()
        return True

    def paint(self, viewport: ViewportWidget, painter: QPainter) -> None:
        guide = self.guide(viewport)
        if guide is None or (viewport.tool != "aspects" and not self.scored):
            return
        if viewport.tool == "aspects" and not viewport.exporting:
            for side in SIDES:
                for code in regions_at(self.level):
                    outline = QPolygonF([viewport.widget_point(float(x), float(y))
                                         for x, y in polygon(code, side, guide)])
                    marked = code in self.aspects.affected[side]
                    painter.setPen(QPen(GUIDE, 1.2))
                    painter.setBrush(AFFECTED if marked else Qt.BrushStyle.NoBrush)
                    painter.drawPolygon(outline)
                    centre = outline.boundingRect().center()
                    painter.drawText(QRectF(centre.x() - 20, centre.y() - 8, 40, 16),
                                     Qt.AlignmentFlag.AlignCenter, code)
            painter.setBrush(Qt.BrushStyle.NoBrush)
        rect = QRectF(viewport.canvas.rect()).adjusted(8, 8, -8, -48)
        level = f"  ·  {self.level} level (G)" if viewport.tool == "aspects" else ""
        text = (f"R ASPECTS {self.aspects.score('right')}   "
                f"L ASPECTS {self.aspects.score('left')}{level}")
        shadow_text(painter, rect, text,
                    Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter)


class MidlineTool:
    """The midline of each series (two clicks) and the mirrored regions it gives."""

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self.midlines: dict[str, Midline] = {}
        self._first: tuple[float, float] | None = None
        self._changed = changed

    def set_midline(self, series_uid: str, a: tuple[float, float], b: tuple[float, float]
                    ) -> None:
        if a == b:
            raise ValueError("the midline needs two different points")
        self.midlines[series_uid] = (a, b)
        self._changed()

    def click(self, viewport: ViewportWidget, point: tuple[float, float]) -> bool:
        if viewport.tool != "midline":
            return False
        if self._first is None or self._first == point:
            self._first = point
        else:
            self.set_midline(_series_uid(viewport), self._first, point)
            self._first = None
        viewport.canvas.viewport().update()
        return True

    def drag(self, viewport: ViewportWidget, ev: Any) -> bool:
        if viewport.tool != "midline":
            return False
        start = viewport.view.mapSceneToView(ev.buttonDownScenePos())
        now = viewport.view.mapSceneToView(ev.scenePos())
        if ev.isFinish() and (start.x(), start.y()) != (now.x(), now.y()):
            self.set_midline(_series_uid(viewport), (start.x(), start.y()), (now.x(), now.y()))
            self._first = None
        viewport.canvas.viewport().update()
        return True

    def mirrored(self, viewport: ViewportWidget) -> list[tuple[Any, MirroredRoi]]:
        """(annotation, statistics) of every ellipse/rectangle on the slice in view."""
        midline = self.midlines.get(_series_uid(viewport))
        volume, session = viewport.volume, viewport.session
        if midline is None or volume is None or session is None:
            return []
        k = viewport.state.k
        values = session.slice_values(k)
        if values is None:
            return []
        spacing = (volume.spacing[1], volume.spacing[2])
        out = []
        for note in session.annotations.get(k, []):
            if note.kind in ("ellipse", "rect") and len(note.points) == 2:
                result = mirror_stats(values, note.kind, note.points[0], note.points[1],
                                      spacing, midline)
                if result is not None:
                    out.append((note, result))
        return out

    def paint(self, viewport: ViewportWidget, painter: QPainter) -> None:
        midline = self.midlines.get(_series_uid(viewport))
        if self._first is not None and viewport.tool == "midline":
            painter.setPen(QPen(MIDLINE, 6))
            painter.drawPoint(viewport.widget_point(*self._first))
        if midline is None:
            return
        (ax, ay), (bx, by) = midline
        direction = np.array([bx - ax, by - ay])
        direction /= max(float(np.hypot(*direction)), 1e-9)
        far = 2000.0  # the line across the whole image
        pen = QPen(MIDLINE, 1.2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawLine(viewport.widget_point(ax - far * direction[0], ay - far * direction[1]),
                         viewport.widget_point(ax + far * direction[0], ay + far * direction[1]))
        unit = viewport.session.quantity(viewport.state.k).unit if viewport.session else ""
        for note, result in self.mirrored(viewport):
            corners = mirrored_corners(note.points[0], note.points[1], midline)
            outline = [viewport.widget_point(float(x), float(y)) for x, y in corners]
            painter.setPen(QPen(MIRROR, 1.5))
            if note.kind == "ellipse":
                centre = QPointF(sum(p.x() for p in outline) / 4, sum(p.y() for p in outline) / 4)
                rx = abs(outline[1].x() - outline[0].x()) / 2
                ry = abs(outline[2].y() - outline[1].y()) / 2
                painter.drawEllipse(centre, rx, ry)
            else:
                painter.drawPolygon(QPolygonF(outline))
            here, there = result.here, result.there
            label = (f"{here.mean:.1f} ± {here.sd:.1f} / mirror {there.mean:.1f} ± "
                     f"{there.sd:.1f} {unit}  Δ {result.difference:+.1f}")
            anchor = min(outline, key=lambda p: p.y())
            shadow_text(painter, QRectF(anchor.x() - 200, anchor.y() - 22, 400, 18), label,
                        Qt.AlignmentFlag.AlignCenter, MIRROR)


class KeyImageMark:
    """"KEY IMAGE" at the top of a view whose slice is one of the study's key images (K)."""

    def __init__(self, keys: Callable[[], list[str]]) -> None:
        self._keys = keys

    def click(self, viewport: ViewportWidget, point: tuple[float, float]) -> bool:
        return False

    def drag(self, viewport: ViewportWidget, ev: Any) -> bool:
        return False

    def paint(self, viewport: ViewportWidget, painter: QPainter) -> None:
        sop = _sop(viewport)
        if sop and sop in self._keys():
            rect = QRectF(viewport.canvas.rect()).adjusted(8, 40, -8, -8)
            shadow_text(painter, rect, "★ KEY IMAGE",
                        Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter,
                        QColor(255, 210, 60))
