"""The pieces every image view shares: workstation mouse bindings and an overlay canvas.

:class:`WorkstationViewBox` turns the wheel into ``owner.scroll_steps(n)`` and hands drags and
clicks to ``owner.on_drag(ev)`` / ``owner.on_click(ev)``; pyqtgraph's own pan/zoom is off.
:class:`OverlayCanvas` paints ``owner.paint_overlay(painter, rect)`` over the scene in widget
coordinates (text, letters, scale bar), repainting the whole view so no stale text remains.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QTransform
from PySide6.QtWidgets import QGraphicsView


class WorkstationViewBox(pg.ViewBox):  # type: ignore[misc]  # pyqtgraph has no stubs
    """A ViewBox with workstation mouse bindings; the owner decides what they mean."""

    def __init__(self, owner: Any) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.owner = owner
        self.setMouseEnabled(False, False)
        #: Quarter turns clockwise on screen (0-3), applied before the flips and the range.
        self.quarter_turns = 0

    def set_quarter_turns(self, turns: int) -> None:
        """Turn what the view shows by ``turns`` × 90° clockwise about the view's centre.

        Children keep their own coordinates (millimetres of the image), so measurements, the
        value under the mouse and reference lines stay on their anatomy; only the range (see
        :meth:`to_frame`) is in screen-aligned, turned coordinates."""
        center = self.to_frame(self.viewRect().center(), inverse=True)
        self.quarter_turns = turns % 4
        half = self.viewRect().width() / 2, self.viewRect().height() / 2  # screen-aligned
        c = self.to_frame(center)
        self.setRange(QRectF(c.x() - half[0], c.y() - half[1], 2 * half[0], 2 * half[1]),
                      padding=0)
        self.refresh_matrix()

    def refresh_matrix(self) -> None:
        """Map the range onto the box now (after a turn, which pyqtgraph does not see)."""
        self._matrixNeedsUpdate = True
        self.updateMatrix()

    def rotation(self) -> QTransform:
        """Image millimetres to the turned, screen-aligned frame the range is kept in."""
        return QTransform().rotate(90.0 * self.quarter_turns)

    def to_frame(self, point: QPointF, inverse: bool = False) -> QPointF:
        """``point`` (image mm) in the turned frame (``inverse``: the other way)."""
        turn = self.rotation()
        return (turn.inverted()[0] if inverse else turn).map(QPointF(point))

    def updateMatrix(self, changed: Any = None) -> None:  # noqa: N802
        """pyqtgraph's mapping of the range onto the box, after the quarter turns."""
        if not self._matrixNeedsUpdate:
            return
        vr = self.viewRect()
        if vr.height() == 0 or vr.width() == 0:
            return
        bounds = self.rect()
        sx, sy = bounds.width() / vr.width(), bounds.height() / vr.height()
        if not self.state["yInverted"]:
            sy = -sy
        if self.state["xInverted"]:
            sx = -sx
        m = QTransform()
        center = bounds.center()
        m.translate(center.x(), center.y())
        m.scale(sx, sy)
        m.translate(-vr.center().x(), -vr.center().y())
        self.childGroup.setTransform(self.rotation() * m)
        self._matrixNeedsUpdate = False
        self.sigTransformChanged.emit(self)

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        steps = ev.delta() / 120 if hasattr(ev, "delta") else ev.angleDelta().y() / 120
        self.owner.scroll_steps(-int(np.sign(steps)) * max(1, int(abs(steps))))
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        ev.accept()
        self.owner.on_drag(ev)

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802
        ev.accept()
        self.owner.on_click(ev)


class OverlayCanvas(pg.GraphicsView):  # type: ignore[misc]  # pyqtgraph has no stubs
    """A black graphics view that lets its owner paint an overlay on top of the scene.

    Images are interpolated (bilinear) when drawn larger or smaller than their pixels, as
    reading workstations show them by default; :meth:`set_smooth` (False) shows the pixels as
    blocks, to judge what the acquisition really resolved.
    """

    def __init__(self, owner: Any) -> None:
        super().__init__(background="k")
        self.owner = owner
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.set_smooth(True)

    def set_smooth(self, on: bool) -> None:
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, on)
        self.viewport().update()

    @property
    def smooth(self) -> bool:
        return bool(self.renderHints() & QPainter.RenderHint.SmoothPixmapTransform)

    def drawForeground(self, painter: QPainter, rect: Any) -> None:  # noqa: N802
        super().drawForeground(painter, rect)
        if getattr(self.owner, "show_overlays", True):
            painter.save()
            painter.resetTransform()
            self.owner.paint_overlay(painter, QRectF(self.viewport().rect()))
            painter.restore()
