"""One MPR plane on screen: the resliced image, the crosshair lines, letters, scale bar.

The view's scene is in millimetres on its plane: x along the plane's ``right`` axis, y along
``down``, both measured from the corner of the reference grid (the full-quality grid of the
current plane). A quick half-resolution preview and the full-quality image are placed by their
own grids in that same scene, so they line up exactly.

Mouse (left button, crosshair mode): click or drag to move the crosshair point, which moves the
two other planes; grab a crosshair line away from the centre and drag to rotate the two other
planes about this view's normal (oblique MPR). Shift + left drag (or left drag in window mode):
window/level. Wheel: move this plane one voxel layer. Right drag zoom, middle drag pan, as in
the 2D viewport.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFont,
    QImage,
    QKeyEvent,
    QPainter,
    QPen,
    QTransform,
)
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.render.crosshair import Crosshair
from app.render.grid import SliceGrid
from app.render.planes import View
from app.render.reslice import Reslice
from app.ui.canvas import OverlayCanvas, WorkstationViewBox
from app.ui.overlay_painter import (
    MARGIN,
    OverlayFonts,
    corner_rects,
    paint_corners,
    paint_edge_labels,
    paint_frame,
    paint_scale_bar,
    shadow_text,
)

if TYPE_CHECKING:
    from app.ui.mpr_widget import MprWidget

log = logging.getLogger(__name__)

#: One colour per plane: a view's frame and title, and its line in the two other views.
VIEW_COLORS: dict[str, tuple[int, int, int]] = {
    "axial": (90, 160, 255), "coronal": (90, 210, 110), "sagittal": (255, 120, 90)}
TITLES = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}

#: Pixels: a press this close to the crosshair point moves it; this close to a line (and
#: farther than that from the point) grabs the line to rotate.
CENTER_GRAB_PX = 14.0
LINE_GRAB_PX = 8.0
#: Gap around the crosshair point, so the anatomy under it stays visible.
CENTER_GAP_PX = 10.0


class MprViewWidget(QWidget):
    """One of the three linked planes of an :class:`~app.ui.mpr_widget.MprWidget`."""

    activated = Signal(object)
    double_clicked = Signal(object)  # self: maximise / restore

    def __init__(self, view: View, owner: MprWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.owner = owner
        self.active = False
        #: Full-quality grid of the current plane: defines the scene's millimetres.
        self.grid: SliceGrid | None = None
        #: What is on screen: the reslice (stored values) and whether it is full quality.
        self.shown: Reslice | None = None
        self.full_quality = False
        #: Token of the newest full-quality request (older results are dropped).
        self.token = 0
        self._drag: str = ""
        #: Where the mouse last was (scene coordinates) and what the picture has there.
        self._mouse_scene: QPointF | None = None
        self.probe_text = ""
        #: Scene position of the shown picture's first pixel's corner, and its pixel size.
        self._placed = (0.0, 0.0, 1.0)
        #: While exporting: no active frame.
        self.exporting = False
        self._last_angle = 0.0
        self.canvas = OverlayCanvas(self)
        self.box = WorkstationViewBox(self)
        self.canvas.setCentralItem(self.box)
        self.image = pg.ImageItem()
        self.box.addItem(self.image)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(self.canvas)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._fitted = False

    # -- geometry -----------------------------------------------------------------------------
    def set_grid(self, grid: SliceGrid) -> None:
        """The current plane's full-quality grid (call before showing images on it)."""
        self.grid = grid
        if not self._fitted:
            self.fit()

    def same_orientation(self, grid: SliceGrid) -> bool:
        """Whether ``grid`` lies on a plane parallel to the current one, with the same axes."""
        return self.grid is not None and bool(
            np.allclose(grid.right, self.grid.right, atol=1e-9)
            and np.allclose(grid.down, self.grid.down, atol=1e-9))

    def forget_fit(self) -> None:
        """Fit the view to the next grid it is given (a new series, a reset)."""
        self._fitted = False

    def fit(self) -> None:
        """Show the whole plane."""
        if self.grid is None:
            return
        height, width = self.grid.size_mm
        self.box.setRange(QRectF(0, 0, width, height), padding=0.05)
        self._fitted = True

    def scene_of_lps(self, point: np.ndarray) -> tuple[float, float]:
        """Scene millimetres (x, y) of an LPS point projected onto the plane."""
        grid = self.grid
        assert grid is not None
        d = np.asarray(point, dtype=np.float64) - grid.origin
        half = grid.pixel_mm / 2
        return float(d @ grid.right) + half, float(d @ grid.down) + half

    def lps_of_scene(self, x: float, y: float) -> np.ndarray:
        """LPS point on the plane at scene millimetres (x, y)."""
        grid = self.grid
        assert grid is not None
        half = grid.pixel_mm / 2
        point: np.ndarray = grid.origin + (x - half) * grid.right + (y - half) * grid.down
        return point

    def widget_of_scene(self, x: float, y: float) -> QPointF:
        scene = self.box.mapViewToScene(QPointF(x, y))
        return QPointF(self.canvas.mapFromScene(scene))

    def scene_of_widget(self, pos: QPointF) -> tuple[float, float]:
        p = self.box.mapSceneToView(self.canvas.mapToScene(pos.toPoint()))
        return p.x(), p.y()

    # -- image --------------------------------------------------------------------------------
    def show_image(self, reslice: Reslice, pixels: np.ndarray, *, full: bool) -> None:
        """Put ``pixels`` (uint8 display values of ``reslice``) on screen at its grid."""
        ref = self.grid
        g = reslice.grid
        if ref is None or not self.same_orientation(g):
            return  # made for a plane this view no longer shows
        self.shown = reslice
        self.full_quality = full
        self.set_pixels(pixels)
        p = g.pixel_mm
        tx = float((g.origin - ref.origin) @ ref.right) + ref.pixel_mm / 2 - p / 2
        ty = float((g.origin - ref.origin) @ ref.down) + ref.pixel_mm / 2 - p / 2
        self.image.setTransform(QTransform(p, 0.0, 0.0, p, tx, ty))
        self._placed = (tx, ty, p)
        self._update_probe()
        self.canvas.viewport().update()

    def set_pixels(self, pixels: np.ndarray) -> None:
        """New display values for the image already placed (a window change)."""
        self.image.setImage(pixels, autoLevels=False, levels=(0, 255))
        self.canvas.viewport().update()

    def grab_view(self) -> QImage:
        """What is on screen, without the frame, the crosshair lines and the value under the
        mouse."""
        self.exporting = True
        try:
            self.canvas.viewport().repaint()
            return QImage(self.canvas.grab().toImage())
        finally:
            self.exporting = False
            self.canvas.viewport().update()

    def _crosshair(self) -> Crosshair:
        """The layout's crosshair (it exists while a series is shown in MPR)."""
        crosshair = self.owner.crosshair
        assert crosshair is not None
        return crosshair

    def clear(self) -> None:
        self.shown = None
        self.probe_text = ""
        self.image.clear()
        self.canvas.viewport().update()

    # -- value under the mouse ----------------------------------------------------------------
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self._mouse_scene = QPointF(scene_pos)
        self._update_probe()
        self.canvas.viewport().update()

    def _update_probe(self) -> None:
        """The value under the mouse in the picture on screen (after a move, and whenever
        the plane's picture changes: a scroll, a crosshair move, the full-quality picture)."""
        self.probe_text = ""
        if self._mouse_scene is None or self.shown is None:
            return
        p = self.box.mapSceneToView(self._mouse_scene)
        tx, ty, size = self._placed
        col, row = math.floor((p.x() - tx) / size), math.floor((p.y() - ty) / size)
        self.probe_text = self.owner.value_text(self.view, row, col)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._mouse_scene = None
        self.probe_text = ""
        self.canvas.viewport().update()
        super().leaveEvent(event)

    # -- mouse --------------------------------------------------------------------------------
    def on_click(self, ev: Any) -> None:
        self.activated.emit(self)
        self.setFocus()
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            self.double_clicked.emit(self)
            return
        if ev.button() == Qt.MouseButton.LeftButton and self.grid is not None and not (
                self._wants_window(ev)):
            p = self.box.mapSceneToView(ev.scenePos())
            self.owner.begin_interaction()
            self._crosshair().set_center(self.lps_of_scene(p.x(), p.y()))
            self.owner.end_interaction()

    def on_drag(self, ev: Any) -> None:
        if self.grid is None:
            return
        button = ev.button()
        if ev.isStart():
            self.activated.emit(self)
            self.owner.begin_interaction()
        if button == Qt.MouseButton.RightButton:
            dy = ev.screenPos().y() - ev.lastScreenPos().y()
            self.box.scaleBy((1.01 ** dy, 1.01 ** dy),
                             center=self.box.mapSceneToView(ev.buttonDownScenePos()))
        elif button == Qt.MouseButton.MiddleButton:
            last = self.box.mapSceneToView(ev.lastScenePos())
            now = self.box.mapSceneToView(ev.scenePos())
            self.box.translateBy(x=last.x() - now.x(), y=last.y() - now.y())
        elif button == Qt.MouseButton.LeftButton:
            if ev.isStart():
                self._drag = "window" if self._wants_window(ev) else self._grab(
                    QPointF(self.canvas.mapFromScene(ev.buttonDownScenePos())))
                if self._drag == "rotate":
                    self._last_angle = self._angle(ev.buttonDownScenePos())
            self._left_drag(ev)
        if ev.isFinish():
            self._drag = ""
            self.owner.end_interaction()

    def _wants_window(self, ev: Any) -> bool:
        """Shift: always; plain: when left drag is window/level (then Ctrl is the crosshair).
        The same model as 2D (:mod:`app.ui.mouse_model`)."""
        mods = ev.modifiers()
        if mods & Qt.KeyboardModifier.ShiftModifier:
            return True
        return self.owner.left_mode == "window" and not (
            mods & Qt.KeyboardModifier.ControlModifier)

    def _left_drag(self, ev: Any) -> None:
        if self._drag == "window":
            d = ev.screenPos() - ev.lastScreenPos()
            self.owner.drag_window(self.view, d.x(), d.y())
        elif self._drag == "rotate":
            angle = self._angle(ev.scenePos())
            delta = math.degrees(math.remainder(angle - self._last_angle, 2 * math.pi))
            self._last_angle = angle
            if delta:
                self._crosshair().rotate(self.view, delta)
        elif self._drag == "move":
            p = self.box.mapSceneToView(ev.scenePos())
            self._crosshair().set_center(self.lps_of_scene(p.x(), p.y()))

    def _grab(self, pos: QPointF) -> str:
        """What a left press at widget ``pos`` takes hold of: "move" or "rotate"."""
        centre = self.widget_of_scene(*self.scene_of_lps(self._crosshair().center))
        d = np.array([pos.x() - centre.x(), pos.y() - centre.y()])
        if float(np.hypot(*d)) <= CENTER_GRAB_PX:
            return "move"
        for direction in self._crosshair().lines(self.view).values():
            if abs(float(d[0] * direction[1] - d[1] * direction[0])) <= LINE_GRAB_PX:
                return "rotate"
        return "move"

    def _angle(self, scene_pos: QPointF) -> float:
        """Screen angle (counter-clockwise, radians) of a scene position about the point."""
        centre = self.widget_of_scene(*self.scene_of_lps(self._crosshair().center))
        pos = self.canvas.mapFromScene(scene_pos)
        return math.atan2(-(pos.y() - centre.y()), pos.x() - centre.x())

    def scroll_steps(self, steps: int) -> None:
        """Move this plane by whole voxel layers (wheel, arrow keys)."""
        if self.grid is None or not steps:
            return
        self.owner.begin_interaction()
        self._crosshair().scroll(self.view, steps * self.owner.step_mm(self.view))
        self.owner.end_interaction()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        text = event.text()
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Right):
            self.scroll_steps(1)
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Left):
            self.scroll_steps(-1)
        elif key == Qt.Key.Key_PageDown:
            self.scroll_steps(10)
        elif key == Qt.Key.Key_PageUp:
            self.scroll_steps(-10)
        elif text.lower() == "r":
            self.owner.reset()
        elif text.lower() == "s":  # the three planes together
            smooth = not self.canvas.smooth
            for view in self.owner.views.values():
                view.canvas.set_smooth(smooth)
        elif text.isdigit():
            self.owner.apply_preset_key(text, self.view)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        self.activated.emit(self)
        super().focusInEvent(event)

    # -- overlay ------------------------------------------------------------------------------
    def paint_overlay(self, painter: QPainter, rect: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(*VIEW_COLORS[self.view])
        if not self.exporting:
            paint_frame(painter, rect, color, 3 if self.active else 1)
        fonts = OverlayFonts.for_width(self.font(), rect.width() * 70 / 60)
        painter.setFont(fonts.text)
        inner = rect.adjusted(MARGIN, 6, -MARGIN, -6)
        align = Qt.AlignmentFlag
        if self.grid is None:
            shadow_text(painter, inner, self.owner.status_text() or "Opening…", align.AlignCenter)
            return
        if not self.exporting:
            self._paint_crosshair(painter, rect)
        title = QFont(fonts.text)
        title.setBold(True)
        painter.setFont(title)
        shadow_text(painter, inner, TITLES[self.view], align.AlignLeft | align.AlignTop, color)
        painter.setFont(fonts.text)
        bottom_left = self.owner.corner_lines(self.view)
        if self.probe_text and not self.exporting:
            bottom_left = [*bottom_left, self.probe_text]
        bottom_right = self.owner.window_lines(self.view)
        paint_corners(painter, inner, bottom_left=bottom_left, bottom_right=bottom_right)
        paint_edge_labels(painter, inner, self.edge_labels(), fonts, avoid=corner_rects(
            fonts.text, inner, {"bottom_left": bottom_left, "bottom_right": bottom_right}))
        (x0, x1), _ = self.box.viewRange()
        paint_scale_bar(painter, inner, x1 - x0, self._px_per_mm())

    def edge_labels(self) -> dict[str, str]:
        """Orientation letters at the four edges; none when the images have no Image
        Orientation (Patient) (the planes are then cut from an assumed stack)."""
        if self.grid is None or not self.owner.orientation_known():
            return {}
        labels = self.grid.labels
        return {"left": labels.left, "right": labels.right, "top": labels.top,
                "bottom": labels.bottom}

    def _paint_crosshair(self, painter: QPainter, rect: QRectF) -> None:
        crosshair = self._crosshair()
        centre = self.widget_of_scene(*self.scene_of_lps(crosshair.center))
        reach = math.hypot(rect.width(), rect.height())
        slab_px = self.owner.slab_mm * self._px_per_mm() / 2
        for other, direction in crosshair.lines(self.view).items():
            pen = QPen(QColor(*VIEW_COLORS[other], 220), 1.5)
            painter.setPen(pen)
            dx, dy = float(direction[0]), float(direction[1])
            for sign in (-1.0, 1.0):
                a = QPointF(centre.x() + sign * CENTER_GAP_PX * dx,
                            centre.y() + sign * CENTER_GAP_PX * dy)
                b = QPointF(centre.x() + sign * reach * dx, centre.y() + sign * reach * dy)
                painter.drawLine(a, b)
            if slab_px >= 2:  # the other plane's slab edges
                dashed = QPen(QColor(*VIEW_COLORS[other], 140), 1, Qt.PenStyle.DashLine)
                painter.setPen(dashed)
                nx, ny = -dy, dx
                for sign in (-1.0, 1.0):
                    ox, oy = centre.x() + sign * slab_px * nx, centre.y() + sign * slab_px * ny
                    painter.drawLine(QPointF(ox - reach * dx, oy - reach * dy),
                                     QPointF(ox + reach * dx, oy + reach * dy))

    def _px_per_mm(self) -> float:
        (x0, x1), _ = self.box.viewRange()
        return self.box.width() / (x1 - x0) if x1 > x0 else 0.0
