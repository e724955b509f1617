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
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsView


class WorkstationViewBox(pg.ViewBox):  # type: ignore[misc]  # pyqtgraph has no stubs
    """A ViewBox with workstation mouse bindings; the owner decides what they mean."""

    def __init__(self, owner: Any) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.owner = owner
        self.setMouseEnabled(False, False)

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
