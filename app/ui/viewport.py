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
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QTransform
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.render.display import DisplayWindow, auto_window, to_display, window_lut
from app.render.window_presets import WindowPreset, presets_for
from app.ui.annotations import Annotation, AnnotationItem
from app.ui.canvas import OverlayCanvas, WorkstationViewBox
from app.ui.overlay import corner_texts, edge_labels, scale_bar_mm, slice_position
from app.ui.series_session import LoadedSeries

log = logging.getLogger(__name__)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

TOOLS = ("window", "length", "angle", "ellipse", "rect", "probe")


@dataclass
class ViewState:
    k: int = 0
    center: float = 40.0
    width: float = 80.0
    invert: bool = False


class ViewportWidget(QWidget):
    """Shows one :class:`LoadedSeries`. Emits :attr:`slice_changed` and :attr:`activated`."""

    slice_changed = Signal(int)
    activated = Signal(object)  # self, when clicked / focused
    window_changed = Signal(float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session: LoadedSeries | None = None
        self._volume = None
        self.state = ViewState()
        self.tool = "window"
        self.show_overlays = True
        self.active = False
        self.probe_text = ""
        #: What an empty viewport says.
        self.empty_text = "Drop a series here"
        self._lut: np.ndarray | None = None
        self._lut_key: tuple | None = None
        self._items: list[AnnotationItem] = []
        self._pending: Annotation | None = None
        self._drag_item: AnnotationItem | None = None
        self._cine = QTimer(self)
        self._cine.setInterval(66)
        self._cine.timeout.connect(lambda: self.scroll(1, wrap=True))
        self.canvas = OverlayCanvas(self)
        self.view = WorkstationViewBox(self)
        self.canvas.setCentralItem(self.view)
        self.image = pg.ImageItem()
        self.view.addItem(self.image)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
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
            except (RuntimeError, TypeError):
                pass
        self.session = session
        self._volume = None  # set once the GUI thread has seen the volume open
        self._clear_items()
        self.state = ViewState(k=k or 0)
        self._lut_key = None
        session.slice_ready.connect(self._on_slice_ready)
        session.progressed.connect(self._on_progressed)
        session.opened.connect(self._on_session_opened)
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

    def _on_opened(self, k: int | None = None) -> None:
        volume = self._volume = self.session.volume
        n = volume.shape[0]
        self.state.k = min(max(0, k if k is not None else self.session.first_slice()), n - 1)
        self._initial_window()
        self.reset_view()
        self.show_slice(self.state.k)

    def _initial_window(self) -> None:
        volume = self.session.volume
        if volume.default_window:
            self.state.center, self.state.width = volume.default_window
        else:  # decided from the first slice that arrives
            self.state.center, self.state.width = float("nan"), float("nan")
        self.state.invert = volume.photometric_interpretation == "MONOCHROME1"

    @property
    def volume(self):
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
        if self.session.stand_in and k != self.state.k:
            self.session.scroll_tried = True  # it says when scrolling starts
        k = min(max(0, k), self.n_slices - 1)
        changed = k != self.state.k
        self.state.k = k
        self.session.set_focus(k)
        self.session.watch(k)  # before looking: a slice decoded in between is still signalled
        if volume.ready[k]:
            self._draw_pixels(k)
        else:
            self.image.clear()
        self._sync_items()
        self.canvas.viewport().update()
        if changed:
            self.slice_changed.emit(k)

    def _draw_pixels(self, k: int) -> None:
        volume = self.volume
        stored = volume.array[k]
        slope, intercept = float(volume.slope[k]), float(volume.intercept[k])
        if np.isnan(self.state.center):
            self.state.center, self.state.width = auto_window(stored * slope + intercept)
        window = DisplayWindow(self.state.center, self.state.width,
                               volume.voi_lut_function or "LINEAR", self.state.invert)
        key = (stored.dtype.str, slope, intercept, window)
        if key != self._lut_key:
            self._lut = window_lut(stored.dtype, slope, intercept, window)
            self._lut_key = key
        img = to_display(stored, self._lut, slope, intercept, window)
        self.image.setImage(img, autoLevels=False, levels=(0, 255))

    def scroll_steps(self, steps: int) -> None:
        """Mouse wheel: ``steps`` slices on (negative: back)."""
        self.scroll(steps)

    def scroll(self, delta: int, wrap: bool = False) -> None:
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
            self.canvas.viewport().update()

    def _on_progressed(self) -> None:
        volume = self.volume
        if volume is not None and self.image.image is None and volume.ready[self.state.k]:
            self._draw_pixels(self.state.k)  # never left blank, should a signal have been missed
            self._sync_items()
        self.canvas.viewport().update()

    # -- window / view ----------------------------------------------------------------------
    def set_window(self, center: float, width: float) -> None:
        self.state.center, self.state.width = float(center), max(1.0, float(width))
        if self.volume is not None and self.volume.ready[self.state.k]:
            self._draw_pixels(self.state.k)
        self.canvas.viewport().update()
        self.window_changed.emit(self.state.center, self.state.width)

    def apply_preset(self, preset: WindowPreset) -> None:
        self.set_window(preset.center, preset.width)

    def presets(self) -> list[WindowPreset]:
        return presets_for(self.session.modality) if self.session else []

    def toggle_invert(self) -> None:
        self.state.invert = not self.state.invert
        self.set_window(self.state.center, self.state.width)

    def reset(self) -> None:
        """R: the file's window, no inversion change, fit to the viewport."""
        if self.volume is None:
            return
        self._initial_window()
        self.reset_view()
        self.show_slice(self.state.k)

    def reset_view(self) -> None:
        if self.volume is None:
            return
        _, dy, dx = self.volume.spacing
        rows, cols = self.volume.shape[1], self.volume.shape[2]
        self.image.setTransform(QTransform.fromScale(dx, dy))
        self.view.setAspectLocked(True, 1.0)
        self.view.setRange(QRectF(0, 0, cols * dx, rows * dy), padding=0.02)

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel."""
        if self.volume is None:
            return 1.0
        (x0, x1), _ = self.view.viewRange()
        width_px = self.view.width() or 1.0
        dx = self.volume.spacing[2]
        return float(width_px / max((x1 - x0) / dx, 1e-9))

    def toggle_cine(self) -> None:
        if self._cine.isActive():
            self._cine.stop()
        else:
            self._cine.start()

    @property
    def cine_running(self) -> bool:
        return self._cine.isActive()

    # -- mouse ------------------------------------------------------------------------------
    def on_drag(self, ev) -> None:
        self.activated.emit(self)
        button = ev.button()
        if button == Qt.MouseButton.RightButton:
            dy = ev.screenPos().y() - ev.lastScreenPos().y()
            self.view.scaleBy((1.01 ** dy, 1.01 ** dy), center=self.view.mapSceneToView(
                ev.buttonDownScenePos()))
        elif button == Qt.MouseButton.MiddleButton:
            last = self.view.mapSceneToView(ev.lastScenePos())
            now = self.view.mapSceneToView(ev.scenePos())
            self.view.translateBy(x=last.x() - now.x(), y=last.y() - now.y())
        elif button == Qt.MouseButton.LeftButton:
            if self.tool == "window":
                d = ev.screenPos() - ev.lastScreenPos()
                scale = max(self.state.width, 10.0) / 300.0
                self.set_window(self.state.center + d.y() * scale,
                                max(1.0, self.state.width + d.x() * scale))
            elif self.tool in ("length", "ellipse", "rect"):
                self._drag_shape(ev)

    def _drag_shape(self, ev) -> None:
        start = self.view.mapSceneToView(ev.buttonDownScenePos())
        now = self.view.mapSceneToView(ev.scenePos())
        if ev.isStart() or self._drag_item is None:
            note = Annotation(self.tool, [(start.x(), start.y()), (now.x(), now.y())])
            self._drag_item = self._add_note(note)
        else:
            item = self._drag_item
            note = item.note
            note.points = [(start.x(), start.y()), (now.x(), now.y())]
            item.remove()
            self._items.remove(item)
            self._drag_item = self._add_note(note, store=False)
        if ev.isFinish():
            self._drag_item = None

    def on_click(self, ev) -> None:
        self.activated.emit(self)
        self.setFocus()
        if ev.button() != Qt.MouseButton.LeftButton or self.volume is None:
            return
        p = self.view.mapSceneToView(ev.scenePos())
        point = (p.x(), p.y())
        if self.tool == "probe":
            self._add_note(Annotation("probe", [point]))
        elif self.tool == "angle":
            if self._pending is None:
                self._pending = Annotation("angle", [point])
            else:
                self._pending.points.append(point)
                if len(self._pending.points) == 3:
                    self._add_note(self._pending)
                    self._pending = None

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.volume is None or not self.volume.ready[self.state.k]:
            return
        p = self.view.mapSceneToView(scene_pos)
        _, dy, dx = self.volume.spacing
        j, i = int(p.y() // dy), int(p.x() // dx)
        rows, cols = self.volume.shape[1], self.volume.shape[2]
        if 0 <= j < rows and 0 <= i < cols:
            k = self.state.k
            value = float(self.volume.array[k][j, i]) * float(self.volume.slope[k]) + float(
                self.volume.intercept[k])
            unit = "HU" if self.session.modality == "CT" else ""
            self.probe_text = f"({i}, {j})  {value:.0f} {unit}".rstrip()
        else:
            self.probe_text = ""
        self.canvas.viewport().update()

    # -- annotations ------------------------------------------------------------------------
    def _notes(self) -> list[Annotation]:
        return self.session.annotations.setdefault(self.state.k, [])

    def _add_note(self, note: Annotation, store: bool = True) -> AnnotationItem:
        if store:
            self._notes().append(note)
        item = AnnotationItem(self.view, note, self._slice_values, self.volume.spacing[1:],
                              "HU" if self.session.modality == "CT" else "")
        self._items.append(item)
        return item

    def _slice_values(self):
        volume, k = self.volume, self.state.k
        if volume is None or not volume.ready[k]:
            return None
        return volume.array[k] * float(volume.slope[k]) + float(volume.intercept[k])

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
            item = AnnotationItem(self.view, note, self._slice_values, self.volume.spacing[1:],
                                  "HU" if self.session.modality == "CT" else "")
            self._items.append(item)

    def clear_annotations(self) -> None:
        if self.session is not None:
            self._notes().clear()
        self._clear_items()

    # -- keys -------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802
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
        elif text.lower() == "r":
            self.reset()
        elif text.lower() == "i":
            self.toggle_invert()
        elif text.lower() == "s":
            self.canvas.set_smooth(not self.canvas.smooth)
        elif text.isdigit():
            preset = next((p for p in self.presets() if p.key == text), None)
            if text == "0":
                self.reset()
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

    def focusInEvent(self, event) -> None:  # noqa: N802
        self.activated.emit(self)
        super().focusInEvent(event)

    # -- overlay ----------------------------------------------------------------------------
    def paint_overlay(self, painter: QPainter, rect: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.active:
            painter.setPen(QPen(QColor(60, 140, 255), 2))
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
        session = self.session
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, min(11.0, rect.width() / 70)))
        painter.setFont(font)
        if session is None:
            self._text(painter, rect, self.empty_text, Qt.AlignmentFlag.AlignCenter)
            return
        volume = self.volume
        if volume is None:
            msg = session.error or "Opening…"
            self._text(painter, rect, msg, Qt.AlignmentFlag.AlignCenter)
            return
        if self.image.image is not None:
            session.drawn()  # an image is on screen: the loader may go on at full speed
        k, n = self.state.k, self.n_slices
        corners = corner_texts(
            session.study, session.series, k=k, n=n,
            position_mm=slice_position(volume.geometry, k),
            thickness_mm=volume.slices[k].info.slice_thickness,
            center=self.state.center, width=self.state.width, zoom=self.zoom_factor(),
            invert=self.state.invert, loaded=session.loaded_count(), probe=self.probe_text,
            label=session.slice_label(k, n))
        m = 8
        inner = rect.adjusted(m, m, -m, -m)
        self._text(painter, inner, "\n".join(corners.top_left),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._text(painter, inner, "\n".join(corners.top_right),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self._text(painter, inner, "\n".join(corners.bottom_left),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
        self._text(painter, inner, "\n".join(corners.bottom_right),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
        labels = edge_labels(volume.geometry)
        big = QFont(font)
        big.setPointSizeF(font.pointSizeF() * 1.3)
        big.setBold(True)
        painter.setFont(big)
        mid = Qt.AlignmentFlag
        self._text(painter, inner, labels["left"], mid.AlignLeft | mid.AlignVCenter)
        self._text(painter, inner, labels["right"], mid.AlignRight | mid.AlignVCenter)
        self._text(painter, inner, labels["top"], mid.AlignHCenter | mid.AlignTop)
        self._text(painter, inner, labels["bottom"], mid.AlignHCenter | mid.AlignBottom)
        painter.setFont(font)
        notice = session.notice()
        if notice:  # below the top orientation letter, where the eye is
            band = QRectF(inner.left(), inner.top() + inner.height() * 0.06, inner.width(),
                          inner.height() * 0.2)
            flags = int(mid.AlignHCenter | mid.AlignTop | Qt.TextFlag.TextWordWrap)
            painter.setPen(QColor(0, 0, 0, 200))
            painter.drawText(band.translated(1, 1), flags, notice)
            painter.setPen(QColor(255, 200, 80))
            painter.drawText(band, flags, notice)
        issues = list(volume.issues) or session.issues
        if issues:
            painter.setPen(QColor(255, 90, 70))
            warn = QRectF(inner.left(), inner.top() + inner.height() * 0.12, inner.width(),
                          inner.height() * 0.3)
            painter.drawText(warn, int(mid.AlignLeft | mid.AlignTop | Qt.TextFlag.TextWordWrap),
                             "⚠ " + "\n⚠ ".join(issues))
        if not volume.ready[k]:
            failed = next((f for f in volume.failed_slices if f.index == k), None)
            msg = f"Slice {k + 1} could not be decoded:\n{failed.reason}" if failed else (
                session.pending_text(k))
            self._text(painter, inner, msg, mid.AlignCenter)
        self._paint_scale_bar(painter, inner)

    def _paint_scale_bar(self, painter: QPainter, inner: QRectF) -> None:
        (x0, x1), _ = self.view.viewRange()
        view_mm = x1 - x0
        if view_mm <= 0:
            return
        length_mm = scale_bar_mm(view_mm)
        px_per_mm = self.view.width() / view_mm
        length_px = length_mm * px_per_mm
        y = inner.bottom() - 40
        x_right = inner.right() - 4
        painter.setPen(QPen(QColor(230, 230, 230), 2))
        painter.drawLine(QPointF(x_right - length_px, y), QPointF(x_right, y))
        for x in (x_right - length_px, x_right):
            painter.drawLine(QPointF(x, y - 5), QPointF(x, y + 5))
        label = f"{length_mm:g} mm" if length_mm < 10 else f"{length_mm / 10:g} cm"
        painter.drawText(QRectF(x_right - length_px, y - 22, length_px, 18),
                         int(Qt.AlignmentFlag.AlignCenter), label)

    @staticmethod
    def _text(painter: QPainter, rect: QRectF, text: str, align) -> None:
        flags = int(align)
        painter.setPen(QColor(0, 0, 0, 200))
        painter.drawText(rect.translated(1, 1), flags, text)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(rect, flags, text)

    def warm_up(self) -> None:
        """Paint once, off screen, what a first image paints (a slice through a display LUT,
        scaled, and the overlay's fonts and characters), so that the first real paint does not
        pay for first uses (~10 ms in a fresh process). Changes nothing on this viewport."""
        stored = np.zeros((512, 512), np.int16)  # a CT slice
        window = DisplayWindow(self.state.center, self.state.width, "LINEAR", False)
        pixels = to_display(stored, window_lut(stored.dtype, 1.0, 0.0, window), 1.0, 0.0, window)
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
                self._text(painter, rect, text, Qt.AlignmentFlag.AlignLeft)
        finally:
            painter.end()

    # -- export -----------------------------------------------------------------------------
    def export_png(self, path: str, overlays: bool = True) -> bool:
        """Save the current view (as shown, or the image only) to ``path``."""
        before = self.show_overlays
        self.show_overlays = overlays
        items_visible = [i.roi.isVisible() for i in self._items]
        if not overlays:
            for item in self._items:
                item.roi.hide()
                item.label.hide()
        try:
            self.canvas.viewport().repaint()
            return self.canvas.grab().save(path)
        finally:
            self.show_overlays = before
            for item, vis in zip(self._items, items_visible, strict=True):
                item.roi.setVisible(vis)
                item.label.setVisible(vis)
            self.canvas.viewport().update()
