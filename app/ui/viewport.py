"""One image viewport: a series' slices with window/level, zoom, pan, overlays and tools.

Mouse as in Weasis/Horos: wheel scrolls slices, left-drag window/level (or draws with the active
tool), right-drag zooms, middle-drag pans. Keys: arrows / PageUp / PageDown scroll, Home/End,
space toggles cine, R resets, I inverts, number keys pick window presets.

Display pixels come from one lookup table per window (see :mod:`app.render.display`), so a
scroll step is one ``take`` plus a texture upload. The view's units are millimetres: x along the
row, y down the column, so measurements need no conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
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
from PySide6.QtWidgets import QInputDialog, QVBoxLayout, QWidget

from app.render.window_level import WindowLevel
from app.render.window_presets import WindowPreset, presets_for
from app.ui.annotations import Annotation, AnnotationItem, declutter
from app.ui.canvas import OverlayCanvas, WorkstationViewBox
from app.ui.overlay import Corners, corner_texts, edge_labels, slice_position
from app.ui.overlay_painter import (
    MARGIN,
    OverlayFonts,
    corner_rects,
    edge_label_rects,
    paint_colour_bar,
    paint_corners,
    paint_edge_labels,
    paint_frame,
    paint_notice,
    paint_scale_bar,
    shadow_text,
)
from app.ui.series_session import LoadedSeries
from app.volume.array import Volume

log = logging.getLogger(__name__)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

#: A reference line: two (x, y) view-millimetre points, and whether it shows the active view.
ReferenceLine = tuple[tuple[float, float], tuple[float, float], bool]


class ToolHook(Protocol):
    """A tool drawn over the image and fed its mouse (ASPECTS guide, midline; see
    :mod:`app.ui.stroke`): ``click`` and ``drag`` return True when they took the event."""

    def paint(self, viewport: ViewportWidget, painter: QPainter) -> None: ...

    def click(self, viewport: ViewportWidget, point: tuple[float, float]) -> bool: ...

    def drag(self, viewport: ViewportWidget, ev: Any) -> bool: ...

TOOLS = ("window", "length", "arrow", "angle", "ellipse", "rect", "probe", "text")
#: The tools that draw by dragging from the press to the release.
SHAPE_TOOLS = ("length", "arrow", "ellipse", "rect")
#: Cine speed at start (frames per second) and the range offered.
CINE_FPS = 15
CINE_FPS_RANGE = (1, 60)


@dataclass
class ViewState:
    """The slice in view and its window (the one model shared with MPR planes)."""

    k: int = 0
    window: WindowLevel = field(default_factory=WindowLevel)

    @property
    def center(self) -> float:
        return self.window.center

    @property
    def width(self) -> float:
        return self.window.width

    @property
    def invert(self) -> bool:
        return self.window.invert


class ViewportWidget(QWidget):
    """Shows one :class:`LoadedSeries`. Emits :attr:`slice_changed` and :attr:`activated`."""

    slice_changed = Signal(int)
    activated = Signal(object)  # self, when clicked / focused
    window_changed = Signal(float, float)
    double_clicked = Signal(object)  # self: maximise / restore

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: LoadedSeries | None = None
        self._volume: Volume | None = None
        self.state = ViewState()
        self.tool = "window"
        #: What a plain left drag does: "tool", or "window" (then Ctrl + drag is the tool).
        self.left_drag = "tool"
        self.show_overlays = True
        self.active = False
        self.probe_text = ""
        #: What an empty viewport says.
        self.empty_text = "Drop a series here"
        #: Where the mouse last was over the image (scene coordinates), for the probe text.
        self._mouse_scene: QPointF | None = None
        #: While exporting: no active frame, no reference lines.
        self.exporting = False
        #: Reference (scout) lines to draw: ``((x0, y0), (x1, y1), from_active)`` in view
        #: millimetres, asked for at each paint (the viewer knows the other viewports).
        self.reference_lines: Callable[[], list[ReferenceLine]] | None = None
        #: Mirrored left-right / top-bottom on screen (both: turned by 180°).
        self.flipped_h = False
        self.flipped_v = False
        self._items: list[AnnotationItem] = []
        #: Tools that draw over the image and take clicks and drags (see :class:`ToolHook`).
        self.tool_hooks: list[ToolHook] = []
        #: Subtracted from this series' table positions when scrolled with another frame of
        #: reference (set by Alt + drag / wheel; see :mod:`app.render.link`).
        self.table_offset_mm = 0.0
        #: True while Alt + drag scrolls this view without the others.
        self.scrolling_alone = False
        self._pending: Annotation | None = None
        self._drag_item: AnnotationItem | None = None
        self._drag_note: Annotation | None = None
        self._cine = QTimer(self)
        self.set_cine_fps(CINE_FPS)
        self._cine.timeout.connect(lambda: self.scroll(1, wrap=True))
        self.canvas = OverlayCanvas(self)
        self.view = WorkstationViewBox(self)
        self.canvas.setCentralItem(self.view)
        self.image = pg.ImageItem()
        self.view.addItem(self.image)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view.sigTransformChanged.connect(lambda *_: declutter(self._items))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(self.canvas)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)

    # -- content ----------------------------------------------------------------------------
    def set_series(self, session: LoadedSeries, k: int | None = None) -> None:
        """Show ``session``; the first image appears as soon as its slice is decoded."""
        if self.session is not None:
            try:
                self.session.slice_ready.disconnect(self._on_slice_ready)
                self.session.progressed.disconnect(self._on_progressed)
                self.session.opened.disconnect(self._on_session_opened)
                self.session.maps_read.disconnect(self._on_maps_read)
            except (RuntimeError, TypeError):
                pass
        self.session = session
        self._volume = None  # set once the GUI thread has seen the volume open
        self._clear_items()
        self.state = ViewState(k=k or 0)
        self.probe_text = ""
        session.slice_ready.connect(self._on_slice_ready)
        session.progressed.connect(self._on_progressed)
        session.opened.connect(self._on_session_opened)
        session.maps_read.connect(self._on_maps_read)
        self._wanted_k = k
        if session.volume is not None:
            self._on_opened(k)
        else:
            self.image.clear()
            self.canvas.viewport().update()

    def _on_session_opened(self) -> None:
        if self.session is not None and self.session.volume is not None and (
                self._volume is not self.session.volume):
            self._on_opened(self._wanted_k)

    def _on_maps_read(self) -> None:
        """The series' palette and real-world values are known: show the slice with them (and
        its measurements in them)."""
        if self.volume is not None and self.volume.ready[self.state.k]:
            self._draw_pixels(self.state.k)
            self._sync_items()
        self._update_probe()
        self.canvas.viewport().update()

    def _on_opened(self, k: int | None = None) -> None:
        volume = self._series().volume
        assert volume is not None  # opened: the volume exists
        self._volume = volume
        n = volume.shape[0]
        self.state.k = min(max(0, k if k is not None else self._series().first_slice()), n - 1)
        self._initial_window()
        self.reset_view()
        self.show_slice(self.state.k)

    def _initial_window(self, carried: bool = True) -> None:
        """The series' window: the one last chosen in a view of it (``carried``), else the
        window it opens in (decided once per series; from the first slice that arrives when
        the files give none)."""
        session, volume = self._series(), self._vol()
        window = WindowLevel(function=volume.voi_lut_function,
                             invert=volume.photometric_interpretation == "MONOCHROME1")
        chosen = session.chosen_window if carried else None
        if chosen is not None:
            window.set(chosen[0], chosen[1])
            window.invert = chosen[2]
        else:
            opening = session.opening_window(self.state.k)
            if opening is not None:
                window.set(*opening)
        self.state.window = window

    def _series(self) -> LoadedSeries:
        """The series on show (only called once one is set)."""
        assert self.session is not None
        return self.session

    def _vol(self) -> Volume:
        """The volume on show (only called once this viewport has set itself up for it)."""
        assert self._volume is not None
        return self._volume

    @property
    def volume(self) -> Volume | None:
        """The shown series' volume, once this viewport has set itself up for it."""
        return self._volume

    @property
    def n_slices(self) -> int:
        return self.volume.shape[0] if self.volume is not None else 0

    # -- slices -----------------------------------------------------------------------------
    def show_slice(self, k: int) -> None:
        volume = self.volume
        if volume is None:
            return
        if self._series().stand_in and k != self.state.k:
            self._series().scroll_tried = True  # it says when scrolling starts
        k = min(max(0, k), self.n_slices - 1)
        changed = k != self.state.k
        self.state.k = k
        self._series().set_focus(k)
        self._series().watch(k)  # before looking: a slice decoded in between is still signalled
        if volume.ready[k]:
            self._draw_pixels(k)
        else:
            self.image.clear()
        self._sync_items()
        self._update_probe()
        self.canvas.viewport().update()
        if changed:
            self.slice_changed.emit(k)

    def _draw_pixels(self, k: int) -> None:
        volume = self._vol()
        stored = volume.array[k]
        slope, intercept = float(volume.slope[k]), float(volume.intercept[k])
        window = self.state.window
        if not window.known:
            opening = self._series().opening_window(k)
            if opening is not None:
                window.set(*opening)
        img = window.display(stored, slope, intercept)
        palette = self._series().palette
        if palette is not None and img.ndim == 2:
            img = palette.colour(stored, img)
        self.image.setImage(img, autoLevels=False, levels=(0, 255))

    def scroll_steps(self, steps: int) -> None:
        """Mouse wheel: ``steps`` slices on (negative: back)."""
        self.scroll(steps)

    def scroll(self, delta: int, wrap: bool = False) -> None:  # type: ignore[override]  # not QWidget.scroll(dx, dy)
        if self.volume is None:
            return
        k = self.state.k + delta
        if wrap:
            k %= self.n_slices
        self.show_slice(k)

    def _on_slice_ready(self, k: int, ok: bool) -> None:
        if k == self.state.k:  # other slices only change the progress text (see progressed)
            if ok:
                self._draw_pixels(k)
                self._sync_items()
                self._update_probe()
            self.canvas.viewport().update()

    def _on_progressed(self) -> None:
        volume = self.volume
        if volume is not None and self.image.image is None and volume.ready[self.state.k]:
            self._draw_pixels(self.state.k)  # never left blank, should a signal have been missed
            self._sync_items()
        self.canvas.viewport().update()

    # -- window / view ----------------------------------------------------------------------
    def set_window(self, center: float, width: float) -> None:
        self.state.window.set(center, width)
        self._window_changed()

    def _window_changed(self) -> None:
        """Redraw with the new window and remember it as the series' chosen window."""
        window = self.state.window
        if self.session is not None and window.known:
            self.session.chosen_window = (window.center, window.width, window.invert)
        if self.volume is not None and self.volume.ready[self.state.k]:
            self._draw_pixels(self.state.k)
        self.canvas.viewport().update()
        self.window_changed.emit(window.center, window.width)

    def apply_preset(self, preset: WindowPreset) -> None:
        self.set_window(preset.center, preset.width)

    def presets(self) -> list[WindowPreset]:
        return presets_for(self.session.modality) if self.session else []

    def toggle_invert(self) -> None:
        self.state.window.invert = not self.state.window.invert
        self._window_changed()

    def reset(self) -> None:
        """R: the series' opening window and grey scale, fit to the viewport."""
        if self.volume is None:
            return
        self._initial_window(carried=False)
        self.reset_view()
        self._window_changed()
        self.show_slice(self.state.k)

    def file_window(self) -> None:
        """0: the window the series opens in (its files' window, else its preset), as in MPR;
        zoom, pan, turns, flips and inversion stay (R resets those too)."""
        if self.volume is None:
            return
        opening = self._series().opening_window(self.state.k)
        if opening is not None:
            self.set_window(*opening)

    def flip(self, horizontal: bool = True) -> None:
        """Mirror the view left-right (``horizontal``) or top-bottom. Measurements, the value
        under the mouse and reference lines stay on their anatomy; the letters follow."""
        if horizontal:
            self.flipped_h = not self.flipped_h
        else:
            self.flipped_v = not self.flipped_v
        self._apply_flips()

    def rotate_180(self) -> None:
        self.flipped_h, self.flipped_v = not self.flipped_h, not self.flipped_v
        self._apply_flips()

    def rotate_90(self, clockwise: bool = True) -> None:
        """Turn the view by 90° on screen (Ctrl+R clockwise, Ctrl+Shift+R counter-clockwise).
        The turn comes before the flips, so with one flip on, a clockwise turn on screen is a
        counter-clockwise turn of the image under it. Letters, measurements, reference lines
        and the value under the mouse follow (they live in image millimetres)."""
        step = 1 if clockwise else -1
        if self.flipped_h != self.flipped_v:
            step = -step
        self.view.set_quarter_turns(self.view.quarter_turns + step)
        self.canvas.viewport().update()

    @property
    def quarter_turns(self) -> int:
        """Quarter turns clockwise of the image before the flips (0-3)."""
        return self.view.quarter_turns

    def _apply_flips(self) -> None:
        self.view.invertX(self.flipped_h)
        self.view.invertY(not self.flipped_v)  # row 0 at the top unless flipped
        self.canvas.viewport().update()

    def reset_view(self) -> None:
        if self.volume is None:
            return
        self.flipped_h = self.flipped_v = False
        self.view.quarter_turns = 0
        self._apply_flips()
        _, dy, dx = self.volume.spacing
        rows, cols = self.volume.shape[1], self.volume.shape[2]
        self.image.setTransform(QTransform.fromScale(dx, dy))
        self.view.setAspectLocked(True, 1.0)
        self.view.setRange(QRectF(0, 0, cols * dx, rows * dy), padding=0.02)
        self.view.refresh_matrix()

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel."""
        if self.volume is None:
            return 1.0
        (x0, x1), _ = self.view.viewRange()
        width_px = self.view.width() or 1.0
        dx = self.volume.spacing[1 if self.quarter_turns % 2 else 2]  # what runs across
        return float(width_px / max((x1 - x0) / dx, 1e-9))

    def set_cine_fps(self, fps: float) -> None:
        """Cine speed in frames (slices) per second."""
        lo, hi = CINE_FPS_RANGE
        self._cine.setInterval(round(1000.0 / min(max(float(fps), lo), hi)))

    @property
    def cine_fps(self) -> float:
        return 1000.0 / self._cine.interval()

    def toggle_cine(self) -> None:
        if self._cine.isActive():
            self._cine.stop()
        else:
            self._cine.start()

    @property
    def cine_running(self) -> bool:
        return self._cine.isActive()

    # -- mouse ------------------------------------------------------------------------------
    def on_drag(self, ev: Any) -> None:
        self.activated.emit(self)
        button = ev.button()
        if button == Qt.MouseButton.RightButton:
            dy = ev.screenPos().y() - ev.lastScreenPos().y()
            self.view.scaleBy((1.01 ** dy, 1.01 ** dy), center=self.view.to_frame(
                self.view.mapSceneToView(ev.buttonDownScenePos())))
        elif button == Qt.MouseButton.MiddleButton:  # the range is kept in the turned frame
            last = self.view.to_frame(self.view.mapSceneToView(ev.lastScenePos()))
            now = self.view.to_frame(self.view.mapSceneToView(ev.scenePos()))
            self.view.translateBy(x=last.x() - now.x(), y=last.y() - now.y())
        elif button == Qt.MouseButton.LeftButton:
            if ev.modifiers() & Qt.KeyboardModifier.AltModifier:
                self._drag_scroll(ev)  # this view alone: the viewer sets its offset
                return
            if any(hook.drag(self, ev) for hook in self.tool_hooks):
                return
            if self._wants_window(ev):
                d = ev.screenPos() - ev.lastScreenPos()
                self.state.window.drag(d.x(), d.y())
                self._window_changed()
            elif self.tool in SHAPE_TOOLS:
                self._drag_shape(ev)

    def _drag_scroll(self, ev: Any) -> None:
        """Alt + left drag: one slice per few pixels up or down."""
        if ev.isStart():
            self._scroll_rest = 0.0
        self._scroll_rest = getattr(self, "_scroll_rest", 0.0) + (
            ev.screenPos().y() - ev.lastScreenPos().y()) / 4.0
        steps = int(self._scroll_rest)
        if steps:
            self._scroll_rest -= steps
            self.scrolling_alone = True
            try:
                self.scroll(steps)
            finally:
                self.scrolling_alone = False

    def widget_point(self, x: float, y: float) -> QPointF:
        """The widget position of a point in view millimetres (for painting over the image)."""
        return QPointF(self.canvas.mapFromScene(self.view.mapViewToScene(QPointF(x, y))))

    def draws_from_press(self, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> bool:
        """Whether a press of ``button`` starts drawing a shape (a length, arrow, ellipse or
        rectangle): then even a drag of a few pixels draws it (see :class:`OverlayCanvas`)."""
        if button != Qt.MouseButton.LeftButton or self.tool not in SHAPE_TOOLS:
            return False
        if mods & (Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ShiftModifier):
            return False  # Alt scrolls, Shift sets the window
        return self.left_drag != "window" or bool(mods & Qt.KeyboardModifier.ControlModifier)

    def _wants_window(self, ev: Any) -> bool:
        """Whether a left drag sets the window (see :mod:`app.ui.mouse_model`)."""
        mods = ev.modifiers()
        if mods & Qt.KeyboardModifier.ShiftModifier or self.tool == "window":
            return True
        return self.left_drag == "window" and not mods & Qt.KeyboardModifier.ControlModifier

    def _drag_shape(self, ev: Any) -> None:
        """A length, arrow or region drawn by dragging: one annotation from press to release,
        even when the slice is redrawn meanwhile (a slice arriving clears the drawn items)."""
        start = self.view.mapSceneToView(ev.buttonDownScenePos())
        now = self.view.mapSceneToView(ev.scenePos())
        points = [(start.x(), start.y()), (now.x(), now.y())]
        if ev.isStart() or self._drag_note is None:
            self._drag_note = Annotation(self.tool, points)
            self._drag_item = self._add_note(self._drag_note)
        else:
            note = self._drag_note
            note.points = points
            item = self._drag_item or next((i for i in self._items if i.note is note), None)
            if item is not None and item in self._items:
                item.remove()
                self._items.remove(item)
            self._drag_item = self._add_note(note, store=False)
        if ev.isFinish():
            self._drag_item = None
            self._drag_note = None

    def on_click(self, ev: Any) -> None:
        self.activated.emit(self)
        self.setFocus()
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            self._pending = None
            self.double_clicked.emit(self)
            return
        if ev.button() != Qt.MouseButton.LeftButton or self.volume is None:
            return
        p = self.view.mapSceneToView(ev.scenePos())
        point = (p.x(), p.y())
        if any(hook.click(self, point) for hook in self.tool_hooks):
            return
        if self.tool == "probe":
            self._add_note(Annotation("probe", [point]))
        elif self.tool == "text":
            text = self.ask_text().strip()
            if text:
                self._add_note(Annotation("text", [point], text=text[:200]))
        elif self.tool == "angle":
            if self._pending is None:
                self._pending = Annotation("angle", [point])
            else:
                self._pending.points.append(point)
                if len(self._pending.points) == 3:
                    self._add_note(self._pending)
                    self._pending = None

    def ask_text(self) -> str:
        """The text tool's words (a dialog; empty: nothing is added)."""
        text, ok = QInputDialog.getText(self, "Text on the image", "Text:")
        return text if ok else ""

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self._mouse_scene = QPointF(scene_pos)
        self._update_probe()
        self.canvas.viewport().update()

    def _update_probe(self) -> None:
        """The value under the mouse on the slice in view (after a move, a scroll, a cine
        step or the slice's arrival: never a value of another slice)."""
        self.probe_text = ""
        if (self._mouse_scene is None or self.volume is None
                or not self.volume.ready[self.state.k]):
            return
        p = self.view.mapSceneToView(self._mouse_scene)
        _, dy, dx = self.volume.spacing
        j, i = int(p.y() // dy), int(p.x() // dx)
        rows, cols = self.volume.shape[1], self.volume.shape[2]
        if 0 <= j < rows and 0 <= i < cols:
            k = self.state.k
            stored = self.volume.array[k][j, i]
            if np.ndim(stored):  # colour
                self.probe_text = f"({i}, {j})  RGB {' '.join(str(int(v)) for v in stored)}"
                return
            real_world = self._series().real_world(k)
            readout = real_world.readout(float(stored)) if real_world is not None else ""
            if not readout:
                value = (float(stored) * float(self.volume.slope[k])
                         + float(self.volume.intercept[k]))
                readout = f"{value:.0f} {self._series().value_unit}".rstrip()
            self.probe_text = f"({i}, {j})  {readout}"

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._mouse_scene = None
        self.probe_text = ""
        self.canvas.viewport().update()
        super().leaveEvent(event)

    # -- annotations ------------------------------------------------------------------------
    def _notes(self) -> list[Annotation]:
        return self._series().annotations.setdefault(self.state.k, [])

    def _add_note(self, note: Annotation, store: bool = True) -> AnnotationItem:
        if store:
            self._notes().append(note)
        item = AnnotationItem(self.view, note, self._slice_values, self._vol().spacing[1:],
                              self._series().quantity(self.state.k))
        self._items.append(item)
        item.roi.sigRegionChangeFinished.connect(lambda *_: declutter(self._items))
        declutter(self._items)
        return item

    def _slice_values(self) -> np.ndarray | None:
        if self.session is None or self.volume is None:
            return None
        return self.session.slice_values(self.state.k)

    def _clear_items(self) -> None:
        for item in self._items:
            item.remove()
        self._items = []
        self._drag_item = None

    def _sync_items(self) -> None:
        self._clear_items()
        if self.session is None:
            return
        for note in list(self._notes()):
            item = AnnotationItem(self.view, note, self._slice_values, self._vol().spacing[1:],
                                  self.session.quantity(self.state.k))
            self._items.append(item)
        declutter(self._items)

    def clear_annotations(self) -> None:
        if self.session is not None:
            self._notes().clear()
        self._clear_items()

    # -- keys -------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        text = event.text()
        k = self.state.k
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Right):
            self.scroll(1)
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Left):
            self.scroll(-1)
        elif key == Qt.Key.Key_PageDown:
            self.scroll(max(1, self.n_slices // 10))
        elif key == Qt.Key.Key_PageUp:
            self.scroll(-max(1, self.n_slices // 10))
        elif key == Qt.Key.Key_Home:
            self.show_slice(0)
        elif key == Qt.Key.Key_End:
            self.show_slice(self.n_slices - 1)
        elif key == Qt.Key.Key_Space:
            self.toggle_cine()
        elif key == Qt.Key.Key_R and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.rotate_90(clockwise=not event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        elif text.lower() == "r":
            self.reset()
        elif text.lower() == "i":
            self.toggle_invert()
        elif text.lower() == "s":
            self.canvas.set_smooth(not self.canvas.smooth)
        elif text.lower() == "h":
            self.flip(horizontal=True)
        elif text.lower() == "v":
            self.flip(horizontal=False)
        elif text.isdigit():
            preset = next((p for p in self.presets() if p.key == text), None)
            if text == "0":
                self.file_window()
            elif preset is not None:
                self.apply_preset(preset)
        elif key == Qt.Key.Key_Escape:
            self._pending = None
        elif key == Qt.Key.Key_Delete:
            self.clear_annotations()
        else:
            super().keyPressEvent(event)
            return
        del k
        event.accept()

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        self.activated.emit(self)
        super().focusInEvent(event)

    # -- overlay ----------------------------------------------------------------------------
    def paint_overlay(self, painter: QPainter, rect: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.active and not self.exporting:
            paint_frame(painter, rect, QColor(60, 140, 255), 2)
        session = self.session
        fonts = OverlayFonts.for_width(self.font(), rect.width())
        painter.setFont(fonts.text)
        if session is None:
            shadow_text(painter, rect, self.empty_text, Qt.AlignmentFlag.AlignCenter)
            return
        volume = self.volume
        if volume is None:
            shadow_text(painter, rect, session.error or "Opening…", Qt.AlignmentFlag.AlignCenter)
            return
        if self.image.image is not None:
            session.drawn()  # an image is on screen: the loader may go on at full speed
        k = self.state.k
        corners = self.corners()
        if self.reference_lines is not None and not self.exporting:
            self._paint_reference_lines(painter)
        for hook in self.tool_hooks:
            hook.paint(self, painter)
        inner = rect.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        paint_corners(painter, inner, top_left=corners.top_left, top_right=corners.top_right,
                      bottom_left=corners.bottom_left, bottom_right=corners.bottom_right)
        paint_edge_labels(painter, inner, self.edge_labels(), fonts, side_clearance=0.0,
                          avoid=_corner_blocks(fonts, inner, corners))
        mid = Qt.AlignmentFlag
        notice = session.notice()
        if notice:  # below the top orientation letter, where the eye is
            band = QRectF(inner.left(), inner.top() + inner.height() * 0.06, inner.width(),
                          inner.height() * 0.2)
            paint_notice(painter, band, notice, QColor(255, 200, 80))
        issues = list(volume.issues) or session.issues
        if issues:
            warn = QRectF(inner.left(), inner.top() + inner.height() * 0.12, inner.width(),
                          inner.height() * 0.3)
            paint_notice(painter, warn, "⚠ " + "\n⚠ ".join(issues), QColor(255, 90, 70),
                         mid.AlignLeft)
        if not volume.ready[k]:
            failed = next((f for f in volume.failed_slices if f.index == k), None)
            msg = f"Slice {k + 1} could not be decoded:\n{failed.reason}" if failed else (
                session.pending_text(k))
            shadow_text(painter, inner, msg, mid.AlignCenter)
        if session.palette is not None:
            self._paint_colour_bar(painter, inner, fonts)
        (x0, x1), _ = self.view.viewRange()
        view_mm = x1 - x0
        paint_scale_bar(painter, inner, view_mm, self.view.width() / view_mm if view_mm > 0
                        else 0.0, lift=40.0)

    def colour_bar_texts(self) -> tuple[str, str, str]:
        """The palette's colour bar's words: (lowest value, highest value, what and unit),
        in real-world values where the files give them, else in the series' values."""
        session, volume, k = self._series(), self._vol(), self.state.k
        palette = session.palette
        assert palette is not None
        real_world = session.real_world(k)
        if real_world is not None:
            low, high = real_world.number(palette.first), real_world.number(palette.last)
            if low and high:
                return low, high, real_world.title
        slope, intercept = float(volume.slope[k]), float(volume.intercept[k])
        low, high = (f"{v * slope + intercept:.0f}" for v in (palette.first, palette.last))
        return low, high, session.value_unit

    def _paint_colour_bar(self, painter: QPainter, inner: QRectF, fonts: OverlayFonts) -> None:
        palette = self._series().palette
        assert palette is not None
        low, high, title = self.colour_bar_texts()
        paint_colour_bar(painter, inner, fonts, palette.rgb, low, high, title)

    def overlay_boxes(self, rect: QRectF, corners: Corners | None = None
                      ) -> tuple[list[QRectF], dict[str, QRectF]]:
        """Where the overlay writes in ``rect`` (the canvas): the corner texts' boxes and each
        orientation letter's box (clear of them)."""
        fonts = OverlayFonts.for_width(self.font(), rect.width())
        inner = rect.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        blocks = _corner_blocks(fonts, inner, corners or self.corners())
        return blocks, edge_label_rects(inner, self.edge_labels(), fonts, 0.0, blocks)

    def corners(self) -> Corners:
        """What the four corners say about the slice in view (only once a volume is set)."""
        session, volume = self._series(), self._vol()
        k, n = self.state.k, self.n_slices
        return corner_texts(
            session.study, session.series, k=k, n=n,
            position_mm=(None if np.isnan(volume.positions[k]).any()  # not in the files
                         else slice_position(volume.geometry, k)),
            thickness_mm=volume.slices[k].slice_thickness,
            center=self.state.center, width=self.state.width, zoom=self.zoom_factor(),
            invert=self.state.invert, loaded=session.loaded_count(),
            probe="" if self.exporting else self.probe_text,
            label=session.slice_label(k, n))

    def _paint_reference_lines(self, painter: QPainter) -> None:
        assert self.reference_lines is not None
        for (x0, y0), (x1, y1), from_active in self.reference_lines():
            a = self.canvas.mapFromScene(self.view.mapViewToScene(QPointF(x0, y0)))
            b = self.canvas.mapFromScene(self.view.mapViewToScene(QPointF(x1, y1)))
            color = QColor(255, 210, 60) if from_active else QColor(120, 190, 255, 200)
            painter.setPen(QPen(color, 1.5 if from_active else 1.0))
            painter.drawLine(QPointF(a), QPointF(b))

    def edge_labels(self) -> dict[str, str]:
        """Orientation letters at the four edges as shown (turns move them, flips swap them);
        none for an image without Image Orientation (Patient), rather than made-up ones."""
        volume = self._vol()
        if volume.slices[self.state.k].orientation is None:
            return {}
        labels = edge_labels(volume.geometry)
        for _ in range(self.quarter_turns):  # clockwise: the left edge comes to the top
            labels = {"top": labels["left"], "right": labels["top"],
                      "bottom": labels["right"], "left": labels["bottom"]}
        if self.flipped_h:
            labels["left"], labels["right"] = labels["right"], labels["left"]
        if self.flipped_v:
            labels["top"], labels["bottom"] = labels["bottom"], labels["top"]
        return labels

    def warm_up(self) -> None:
        """Paint once, off screen, what a first image paints (a slice through a display LUT,
        scaled, and the overlay's fonts and characters), so that the first real paint does not
        pay for first uses (~10 ms in a fresh process). Changes nothing on this viewport."""
        stored = np.zeros((512, 512), np.int16)  # a CT slice
        pixels = WindowLevel(40.0, 80.0).display(stored, 1.0, 0.0)
        size = self.canvas.viewport().size()
        target = QImage(max(size.width(), 64), max(size.height(), 64),
                        QImage.Format.Format_ARGB32_Premultiplied)
        target.fill(0)
        painter = QPainter(target)
        try:
            painter.setRenderHints(self.canvas.renderHints())
            scale = min(target.width(), target.height()) / 512
            painter.setTransform(QTransform.fromScale(scale * 0.48828125, scale * 0.48828125)
                                 * QTransform.fromTranslate(1.5, 2.5))
            pg.ImageItem(pixels, autoLevels=False, levels=(0, 255)).paint(painter)
            painter.resetTransform()
            font = QFont(self.font())
            font.setPointSizeF(max(8.0, min(11.0, target.width() / 70)))
            big = QFont(font)
            big.setPointSizeF(font.pointSizeF() * 1.3)
            big.setBold(True)
            text = "".join(chr(c) for c in range(32, 127)) + "—×⚠…"
            rect = QRectF(target.rect())
            for f in (font, big):
                painter.setFont(f)
                shadow_text(painter, rect, text, Qt.AlignmentFlag.AlignLeft)
        finally:
            painter.end()

    # -- export -----------------------------------------------------------------------------
    def grab_view(self, overlays: bool = True) -> QImage:
        """What is on screen (with the overlay and measurements, or the image only), without
        the active frame, the reference lines and the value under the mouse."""
        before = self.show_overlays, self.exporting
        self.show_overlays, self.exporting = overlays, True
        items_visible = [i.roi.isVisible() for i in self._items]
        if not overlays:
            for item in self._items:
                item.roi.hide()
                item.label.hide()
        try:
            self.canvas.viewport().repaint()
            return QImage(self.canvas.grab().toImage())
        finally:
            self.show_overlays, self.exporting = before
            for item, vis in zip(self._items, items_visible, strict=True):
                item.roi.setVisible(vis)
                item.label.setVisible(vis)
            self.canvas.viewport().update()

    def export_png(self, path: str, overlays: bool = True) -> bool:
        """Save the current view (as shown, or the image only) to ``path`` (PNG or JPEG by
        its suffix)."""
        return self.grab_view(overlays).save(path)


def _corner_blocks(fonts: OverlayFonts, inner: QRectF, corners: Corners) -> list[QRectF]:
    """Where the corner texts ``corners`` are written in ``inner``."""
    return corner_rects(fonts.text, inner, {
        "top_left": corners.top_left, "top_right": corners.top_right,
        "bottom_left": corners.bottom_left, "bottom_right": corners.bottom_right})
