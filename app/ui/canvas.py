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
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent, QPainter, QTransform
from PySide6.QtWidgets import QGraphicsView

#: How far (screen pixels) the mouse moves after a press before pyqtgraph turns it into a drag:
#: its default, so that a click with a little jitter stays a click.
CLICK_SLOP_PX = 5
#: The same when the owner draws a shape from the press (see :meth:`OverlayCanvas.mousePressEvent`).
SHAPE_SLOP_PX = 2


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
        self._shape_press: tuple[Qt.MouseButton, QPointF] | None = None
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.set_smooth(True)

    # A workstation starts a shape (length, ellipse, rectangle) at the press. pyqtgraph starts a
    # drag only once the mouse is CLICK_SLOP_PX away and drops move events that follow each
    # other within its rate limit: a quick drag of a few millimetres on a small view (some
    # 10-20 pixels) was taken for a click and drew nothing. When the owner's
    # ``draws_from_press(button, modifiers)`` says so, the drag starts two pixels away, and a
    # release that pyqtgraph has not seen move yet first moves there (the shape then ends
    # where the mouse was let go).
    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        wants = getattr(self.owner, "draws_from_press", None)
        shape = bool(wants is not None and wants(ev.button(), ev.modifiers()))
        self._shape_press = (ev.button(), QPointF(ev.position())) if shape else None
        self.sceneObj.setMoveDistance(SHAPE_SLOP_PX if shape else CLICK_SLOP_PX)
        super().mousePressEvent(ev)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        press, self._shape_press = self._shape_press, None
        if press is not None and press[0] == ev.button():
            moved = ev.position() - press[1]
            started = ev.button() in self.sceneObj.dragButtons
            if not started and max(abs(moved.x()), abs(moved.y())) >= SHAPE_SLOP_PX:
                self._catch_up(ev)
        super().mouseReleaseEvent(ev)

    def _catch_up(self, ev: QMouseEvent) -> None:
        """Deliver a move to the release position with the button still down, past
        pyqtgraph's rate limit (its drag starts there; the release then finishes it)."""
        limit = pg.getConfigOption("mouseRateLimit")
        pg.setConfigOption("mouseRateLimit", 0)
        try:
            self.mouseMoveEvent(QMouseEvent(
                QEvent.Type.MouseMove, ev.position(), ev.globalPosition(),
                Qt.MouseButton.NoButton, ev.buttons() | ev.button(), ev.modifiers()))
        finally:
            pg.setConfigOption("mouseRateLimit", limit)

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
