"""Three linked MPR planes (axial, coronal, sagittal) of one series, with slabs and windows.

Built on :class:`~app.render.crosshair.Crosshair` (the linked point and rotation) and
:class:`~app.render.reslice.Reslicer` (reslicing the stored array in LPS, never a float copy).

Staying interactive on two CPU cores: every change (click, drag, rotate, scroll, slab) is
answered at once on the GUI thread with a quick preview of the planes that moved — nearest
samples, half the slab samples, half-resolution grid (``fast=True`` + ``coarsened(2)``, about
10–20 ms for an oblique 20 mm MIP of a 512×512×400 CTA; when one change's previews take more
than 30 ms, as for thick double-oblique slabs, the grid is coarsened further, up to 4×, and
refined again when they are quick). After 150 ms without a change the full
quality picture is requested from a :class:`~app.render.reslice_queue.ResliceQueue` worker
thread, and shown when it arrives unless the plane has moved again meanwhile.

While a regular series is still loading, MPR reslices the loading array itself: slices not
loaded yet show as background, and the planes refresh a few times a second as slices arrive.
A stack that must be resampled first (uneven spacing, mixed rescale) waits for its last slice,
with the progress and the reason shown in the side panel; the resampling then runs on a worker.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import cast

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from app.dicom.value_maps import Quantity
from app.errors import RelayError
from app.render.crosshair import Crosshair
from app.render.display import auto_window
from app.render.grid import SliceGrid, fit_grid
from app.render.mpr import MprSource, mpr_source, wait_reason
from app.render.planes import VIEWS, View
from app.render.reslice import Reslice, Reslicer, SlabMode
from app.render.reslice_queue import ResliceJob, ResliceQueue
from app.render.window_level import WindowLevel
from app.render.window_presets import WindowPreset, presets_for
from app.ui.crossthread import ThreadPost
from app.ui.mpr_panel import MprPanelWidget
from app.ui.mpr_view import MprViewWidget
from app.ui.series_session import LoadedSeries
from app.ui.user_presets import offered_presets
from app.ui.worker import TaskWorker
from app.volume.stack import TILT_ISSUE

log = logging.getLogger(__name__)

#: Idle time after the last change before the full-quality picture is made (ms).
IDLE_MS = 150
#: While a series loads, planes are refreshed at most this often (ms).
LOAD_REFRESH_MS = 400
#: Preview: grid coarsening factor while the user moves things (at least; it grows up to
#: PREVIEW_COARSEN_MAX while previews of one change take longer than PREVIEW_BUDGET_S).
PREVIEW_COARSEN = 2
PREVIEW_COARSEN_MAX = 4
PREVIEW_BUDGET_S = 0.030


class MprWidget(QWidget):
    """Axial, coronal and sagittal views of one :class:`LoadedSeries`, linked by a crosshair."""

    _full_ready = Signal(object, object)  # ResliceJob, Reslice (from the worker thread)
    #: Emitted on the GUI thread after a full-quality picture went on screen (tests, scripts).
    full_rendered = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, with_panel: bool = True) -> None:
        super().__init__(parent)
        #: The side panel (slab, window, notes) is shown; a hanging protocol's slabs beside
        #: other viewports go without it (the full MPR layout has it).
        self.with_panel = with_panel
        self.session: LoadedSeries | None = None
        self.source: MprSource | None = None
        self.crosshair: Crosshair | None = None
        self.slab_mm = 0.0
        self.mode: SlabMode = "mip"
        self.left_mode = "crosshair"
        self.shared_window = True
        #: Each plane's window (the same model as the 2D viewport's; equal while shared).
        self.windows: dict[str, WindowLevel] = {view: WindowLevel() for view in VIEWS}
        self.error = ""
        self._waiting = ""
        self._status = ""
        self._fast: Reslicer | None = None
        #: the volume whose geometry _known() looked at, and what it found
        self._known_for: tuple[object, bool, bool] | None = None
        self._queue: ResliceQueue | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._prepare: TaskWorker | None = None
        #: Current preview coarsening (adapts to how long previews take).
        self.preview_coarsen = PREVIEW_COARSEN
        self.views = {view: MprViewWidget(view, self, self) for view in VIEWS}
        self.panel = MprPanelWidget(self)
        self._grid = grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        #: The planes on show (a hanging protocol may ask for fewer than three).
        self.planes: tuple[View, ...] = tuple(VIEWS)
        self._place()
        for view in self.views.values():
            view.activated.connect(self._on_view_activated)
            view.double_clicked.connect(self.toggle_maximised)
        self.active = self.views["axial"]
        self._maximised: MprViewWidget | None = None
        self.active.active = True
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(IDLE_MS)
        self._idle.timeout.connect(self._on_idle)
        self._load_timer = QTimer(self)
        self._load_timer.setSingleShot(True)
        self._load_timer.setInterval(LOAD_REFRESH_MS)
        self._load_timer.timeout.connect(self._on_load_tick)
        self._full_ready.connect(self._on_full_ready)
        self._post = ThreadPost(self)  # the reslice worker's pictures
        self.panel.slab_changed.connect(self._on_slab_changed)
        self.panel.left_mode_changed.connect(self._on_left_mode_changed)
        self.panel.preset_chosen.connect(self._on_preset_chosen)
        self.panel.shared_window_toggled.connect(self._on_shared_toggled)
        self.panel.reset_requested.connect(self._on_reset_requested)

    # -- series -------------------------------------------------------------------------------
    def set_series(self, session: LoadedSeries) -> None:
        """Show ``session`` (starts as soon as its geometry is known)."""
        if session is self.session:
            self._carry_window()
            return
        self._detach()
        self.session = session
        series = session.series
        number = f"#{series.series_number} " if series.series_number is not None else ""
        self.panel.set_title(f"{number}{series.series_description or series.modality} — MPR")
        self.panel.set_presets(offered_presets(session.store.home, session.modality))
        session.progressed.connect(self._on_slice_ready)
        session.opened.connect(self._on_session_opened)
        session.failed.connect(self._on_session_failed)
        session.maps_read.connect(self._on_maps_read)
        if session.volume is not None:
            self._on_session_opened()
        elif session.error:
            self._on_session_failed(session.error)
        else:
            self._show_status("Opening the series…")

    def _detach(self) -> None:
        if self.session is not None:
            for signal, slot in ((self.session.progressed, self._on_slice_ready),
                                 (self.session.opened, self._on_session_opened),
                                 (self.session.failed, self._on_session_failed),
                                 (self.session.maps_read, self._on_maps_read)):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect(slot)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._queue is not None:
            self._queue.close()
            self._queue = None
        if self._prepare is not None:
            self._prepare.cancel()
            self._prepare = None
        self.session = self.source = self.crosshair = None
        self._fast = None
        self.error = self._waiting = ""
        self.windows = {view: WindowLevel() for view in VIEWS}
        for view in self.views.values():
            view.grid = None
            view.forget_fit()
            view.clear()

    def orientation_known(self) -> bool:
        """Whether every image of the series says how it lies in the patient (Image
        Orientation (Patient)): else no plane's orientation letters are known."""
        return self._known()[0]

    def positions_known(self) -> bool:
        """Whether every image of the series says where it is (Image Position (Patient))."""
        return self._known()[1]

    def _known(self) -> tuple[bool, bool]:
        """(orientation, positions) known for the series' volume: looked at once per volume,
        not at every paint of every plane."""
        volume = self.session.volume if self.session is not None else None
        if volume is None:
            return False, False
        cached = self._known_for
        if cached is None or cached[0] is not volume:
            cached = (volume, all(s.orientation is not None for s in volume.slices),
                      not np.isnan(volume.positions).any())
            self._known_for = cached
        return cached[1], cached[2]

    def _on_session_failed(self, message: str) -> None:
        self.error = message
        self._show_status(f"Cannot open this series: {message}")

    def _on_session_opened(self) -> None:
        session = self.session
        if session is None or session.volume is None or self.source is not None:
            return
        volume = session.volume
        try:
            reason = wait_reason(volume)
        except RelayError as exc:
            self.error = str(exc)
            self._show_status(self.error)
            return
        if reason is None:
            self._set_source(mpr_source(volume, modality=session.modality))
        else:
            self._waiting = reason
            self._update_progress()
            self._maybe_prepare()

    def _maybe_prepare(self) -> None:
        """Resample once every slice is in (on a worker: it reads the whole volume)."""
        session = self.session
        if (session is None or session.volume is None or not session.volume.finished
                or self._prepare is not None):
            return
        volume, modality = session.volume, session.modality
        task = TaskWorker(lambda _progress: mpr_source(volume, modality=modality), "MPR", self)
        task.succeeded.connect(lambda source, s=session: self._on_source_prepared(s, source))
        task.failed.connect(self._on_session_failed)
        self._prepare = task
        self._update_progress()
        task.start()

    def _on_source_prepared(self, session: LoadedSeries, source: MprSource) -> None:
        if session is self.session and self.source is None:  # not for a series since left
            self._waiting = ""
            self._set_source(source)

    def _set_source(self, source: MprSource) -> None:
        session = self.session
        assert session is not None and session.volume is not None
        self.source = source
        self._fast = Reslicer(source.array, source.geometry, background=source.background)
        self._queue = ResliceQueue(
            Reslicer(source.array, source.geometry, background=source.background),
            lambda job, result: self._emit_full(job, result))
        self.crosshair = Crosshair(source.geometry, align="acquisition")
        self._unsubscribe = self.crosshair.subscribe(self._on_crosshair_changed)
        self._start_windows(carried=True)
        issues = list(session.issues or session.volume.issues)
        notes = list(source.notes)
        if source.tilt_note and any(s.startswith(TILT_ISSUE) for s in issues):
            notes.remove(source.tilt_note)  # the tilt once, in the series' warning
        self.panel.set_notes(issues, notes)
        self._update_progress()
        self._update_planes(force=True)

    def _start_windows(self, *, carried: bool) -> None:
        """Every plane at the series' window: the one last chosen in a view of it (the 2D
        viewport's, when ``carried``), else the one it opens in (see
        :meth:`LoadedSeries.opening_window`; from the first picture when it needs values)."""
        session = self.session
        assert session is not None and session.volume is not None
        volume = session.volume
        chosen = session.chosen_window if carried else None
        for view in VIEWS:
            window = WindowLevel(function=volume.voi_lut_function,
                                 invert=volume.photometric_interpretation == "MONOCHROME1")
            if chosen is not None:
                window.set(chosen[0], chosen[1])
                window.invert = chosen[2]
            else:
                opening = session.opening_window(session.first_slice())
                if opening is not None:
                    window.set(*opening)
            self.windows[view] = window

    def _carry_window(self) -> None:
        """Back in MPR after the window was changed in 2D: take it (every plane)."""
        chosen = self.session.chosen_window if self.session is not None else None
        if chosen is None or self.source is None:
            return
        for view in VIEWS:
            window = self.windows[view]
            window.set(chosen[0], chosen[1])
            window.invert = chosen[2]
            self._redisplay(view)

    def _emit_full(self, job: ResliceJob, result: Reslice) -> None:
        # On the reslice worker: close_mpr joins it before the widget goes, but only for 5 s.
        self._post.emit("_full_ready", job, result)

    # -- planes -------------------------------------------------------------------------------
    def _on_crosshair_changed(self, _crosshair: Crosshair) -> None:
        self._update_planes()

    def _update_planes(self, force: bool = False) -> None:
        """Re-place every view on its plane; preview the ones that moved; repaint all."""
        if self.crosshair is None or self.source is None:
            return
        started = time.perf_counter()
        previewed = False
        for name, view in self.views.items():
            plane = self.crosshair.plane(name)
            grid = fit_grid(self.source.geometry, plane)
            moved = force or view.grid is None or not view.same_orientation(grid)
            if not moved:
                assert view.grid is not None
                grid = view.grid.with_plane(plane)
                moved = abs(float((grid.origin - view.grid.origin) @ grid.normal)) > 1e-6
            view.set_grid(grid)
            if moved:
                self._preview(name)
                previewed = True
            view.canvas.viewport().update()
        if previewed:
            self._adapt_preview(time.perf_counter() - started)
        self._idle.start()

    def _adapt_preview(self, seconds: float) -> None:
        """Coarser previews when one change took too long, finer again when it was quick."""
        if seconds > PREVIEW_BUDGET_S and self.preview_coarsen < PREVIEW_COARSEN_MAX:
            self.preview_coarsen += 1
        elif seconds < PREVIEW_BUDGET_S / 3 and self.preview_coarsen > PREVIEW_COARSEN:
            self.preview_coarsen -= 1

    def _preview(self, name: View) -> None:
        """The quick picture of one view, on this thread."""
        view = self.views[name]
        assert self._fast is not None and view.grid is not None
        view.token += 1
        result = self._fast.slice(view.grid.coarsened(self.preview_coarsen),
                                  slab_mm=self.slab_mm, mode=self.mode, fast=True,
                                  fast_step=float(self.preview_coarsen))
        self._show(name, result, full=False)

    def _request_full(self, name: View) -> None:
        view = self.views[name]
        if self._queue is None or view.grid is None:
            return
        view.token += 1
        self._queue.submit(ResliceJob(name, view.grid, self.slab_mm, self.mode, view.token))

    def _on_idle(self) -> None:
        for name, view in self.views.items():
            if not view.full_quality or view.shown is None:
                self._request_full(name)

    def _on_full_ready(self, job: ResliceJob, result: Reslice) -> None:
        name = cast(View, job.key)
        view = self.views.get(name)
        if view is None or job.token != view.token or self.source is None:
            return  # superseded while it was being made
        self._show(name, result, full=True)
        self.full_rendered.emit(job.key)

    def _show(self, name: View, result: Reslice, *, full: bool) -> None:
        if not self.windows[name].known:
            self._window_from(result)
        self.views[name].show_image(result, self._display(result.pixels, name), full=full)

    def _window_from(self, result: Reslice) -> None:
        """No window yet (the series' first slice was not in): the series' opening window now,
        else one from this first picture with something in it, for every plane."""
        source, session = self.source, self.session
        assert source is not None and session is not None
        window = session.opening_window(session.first_slice())
        if window is None:
            values = result.pixels.astype(np.float32) * np.float32(source.slope) + np.float32(
                source.intercept)
            if float(values.max()) <= float(values.min()):
                return  # nothing in it yet: the display falls back to this picture's range
            window = auto_window(values)
        for view in VIEWS:
            if not self.windows[view].known:
                self.windows[view].set(*window)

    def _display(self, pixels: np.ndarray, name: View) -> np.ndarray:
        """``pixels`` windowed to uint8 as the 2D view shows a slice: a palette map's values in
        its colours (RGB), the others grey through the window."""
        source = self.source
        assert source is not None
        shown = self.windows[name].display(pixels, source.slope, source.intercept)
        palette = self.session.palette if self.session is not None and self._in_stored() \
            else None
        if palette is not None and shown.ndim == 2:
            shown = palette.colour(pixels, shown)
        return shown

    def _in_stored(self) -> bool:
        """Whether the planes are made of the series' stored values (what its palette and
        real-world mapping read), not of a copy of the volume in modality units (rescale
        differing per slice)."""
        session = self.session
        return session is not None and session.volume is not None and (
            session.volume.uniform_rescale is not None)

    def _on_maps_read(self) -> None:
        """The series' palette is known: the planes in its colours."""
        for view in VIEWS:
            self._redisplay(view)

    # -- loading ------------------------------------------------------------------------------
    def _on_slice_ready(self, *_args: object) -> None:
        self._update_progress()
        if self.source is not None and self.source.live:
            if not self._load_timer.isActive():
                self._load_timer.start()
        elif self._waiting:
            self._maybe_prepare()

    def _on_load_tick(self) -> None:
        """Slices arrived: refresh the planes (full quality, unless the user is moving)."""
        if self._idle.isActive():
            return  # the idle timer will ask for full quality anyway
        for name in self.views:
            self._request_full(name)

    def _update_progress(self) -> None:
        session = self.session
        if session is None or session.volume is None:
            return
        total, done = session.volume.shape[0], session.loaded_count()
        failed = len(session.volume.failed_slices)
        if self._waiting:
            text = self._waiting + (" Resampling…" if self._prepare is not None else "")
        elif done + failed < total:
            text = "Slices still loading show as background; the planes fill in as they arrive."
        else:
            text = ""
        self.panel.set_progress(done, total, text)
        if self.source is None:
            self._show_status(text or "Preparing…")
        for view in self.views.values():
            view.canvas.viewport().update()

    def _show_status(self, text: str) -> None:
        self._status = text
        for view in self.views.values():
            view.canvas.viewport().update()
        self.panel.set_progress(0, 0, text)

    def status_text(self) -> str:
        return self.error or self._status

    # -- what the views paint -----------------------------------------------------------------
    def step_mm(self, name: View) -> float:
        """One voxel layer along ``name``'s normal (a wheel step)."""
        assert self._fast is not None and self.crosshair is not None
        return self._fast.step_mm(self.crosshair.plane(name).normal)

    def value_text(self, name: View, row: int, col: int) -> str:
        """The value of pixel (``row``, ``col``) of ``name``'s picture as the 2D view reads
        it: in the real-world quantity the series' files map ("RCBF 42 ml/100ml/s"), else in
        modality units ("35 HU")."""
        view, source, session = self.views[name], self.source, self.session
        if view.shown is None or source is None or session is None:
            return ""
        pixels = view.shown.pixels
        if not (0 <= row < pixels.shape[0] and 0 <= col < pixels.shape[1]):
            return ""
        stored = float(pixels[row, col])
        real_world = session.real_world(0) if self._in_stored() else None
        readout = real_world.readout(stored) if real_world is not None else ""
        if readout:
            return readout
        value = stored * source.slope + source.intercept
        return Quantity(unit=session.value_unit).text(value)

    def corner_lines(self, name: View) -> list[str]:
        view = self.views[name]
        lines = []
        if self.slab_mm:
            label = {"mip": "MIP", "minip": "MinIP", "avg": "Average"}[self.mode]
            lines.append(f"{label} slab {self.slab_mm:g} mm")
        else:
            lines.append("Thin slice")
        if self.crosshair is not None and self.source is not None and self.positions_known():
            # where the plane is along its normal in the patient, as the 2D view says it of
            # an acquired slice (the same plane, the same number)
            plane = self.crosshair.plane(name)
            lines.append(f"Position {float(plane.center @ plane.normal):+.1f} mm")
        if view.shown is not None and not view.full_quality and view.grid is not None:
            factor = round(view.shown.grid.pixel_mm / view.grid.pixel_mm)
            lines.append(f"preview (1/{factor} resolution)")
        session = self.session
        if session is not None and session.volume is not None and not session.volume.finished:
            lines.append(f"loading {session.loaded_count()} / {session.volume.shape[0]}")
        return lines

    def window_lines(self, name: View) -> list[str]:
        window = self.windows[name]
        if not window.known:
            return []
        return [f"W {window.width:.0f}  L {window.center:.0f}"
                + ("  inverted" if window.invert else "")]

    # -- interaction --------------------------------------------------------------------------
    def begin_interaction(self) -> None:
        """The user started moving something: previews until things rest."""
        self._idle.stop()

    def end_interaction(self) -> None:
        self._idle.start()

    def drag_window(self, name: View, dx: float, dy: float) -> None:
        window = self.windows[name]
        if not window.known:
            return
        window.drag(dx, dy)
        self.set_window(window.center, window.width, name)

    def set_window(self, center: float, width: float, name: View | None = None) -> None:
        """Window (modality units) for ``name``, or every view when shared or not given."""
        names = list(VIEWS) if self.shared_window or name is None else [name]
        invert = self.windows[names[0]].invert
        for view in names:
            self.windows[view].set(center, width)
            self.windows[view].invert = invert
            self._redisplay(view)
        if self.session is not None:
            w = self.windows[names[0]]
            self.session.chosen_window = (w.center, w.width, w.invert)

    def toggle_invert(self, name: View | None = None) -> None:
        """I: invert the grey scale (every plane when shared)."""
        names = list(VIEWS) if self.shared_window or name is None else [name]
        for view in names:
            self.windows[view].invert = not self.windows[view].invert
        w = self.windows[names[0]]
        self.set_window(w.center, w.width, names[0] if len(names) == 1 else None)

    def _redisplay(self, view: View) -> None:
        shown = self.views[view].shown
        if shown is not None and self.source is not None and self.windows[view].known:
            self.views[view].set_pixels(self._display(shown.pixels, view))

    def apply_preset(self, preset: WindowPreset, name: View | None = None) -> None:
        self.set_window(preset.center, preset.width, name)

    def apply_preset_key(self, key: str, name: View | None = None) -> None:
        if self.session is None:
            return
        if key == "0" and self.session.volume is not None:
            window = self.session.opening_window(self.session.first_slice())
            if window:
                self.set_window(*window, name)
            return
        preset = next((p for p in presets_for(self.session.modality) if p.key == key), None)
        if preset is not None:
            self.apply_preset(preset, name)

    def set_slab(self, mode: str, mm: float) -> None:
        """Thin slice (``mode`` "" or ``mm`` 0) or a MIP/MinIP/average slab of ``mm`` mm."""
        self.slab_mm = float(mm) if mode else 0.0
        self.mode = mode or self.mode  # type: ignore[assignment]
        self.panel.set_slab(mode if self.slab_mm else "", self.slab_mm)
        if self.crosshair is not None:
            started = time.perf_counter()
            for name in self.views:
                self._preview(name)
            self._adapt_preview(time.perf_counter() - started)
            self._idle.start()

    def reset(self, align: str = "acquisition") -> None:
        """Planes back to the acquisition (or patient-axis) planes through the centre."""
        if self.crosshair is None:
            return
        for view in self.views.values():
            view.forget_fit()
        self.crosshair.reset(align=align)  # type: ignore[arg-type]
        for view in self.views.values():
            view.fit()
        if self.session is not None and self.session.volume is not None:
            self._start_windows(carried=False)
            for plane in VIEWS:
                self._redisplay(plane)

    def _place(self) -> None:
        """Three planes: axial, coronal / sagittal, panel. Fewer: side by side, the panel
        under them."""
        grid = self._grid
        for widget in (*self.views.values(), self.panel):
            grid.removeWidget(widget)
        for row in range(3):
            grid.setRowStretch(row, 0)
        if len(self.planes) == len(VIEWS):
            spots: dict[View, tuple[int, int]] = {"axial": (0, 0), "coronal": (0, 1),
                                                  "sagittal": (1, 0)}
            for name, (row, col) in spots.items():
                grid.addWidget(self.views[name], row, col)
            grid.addWidget(self.panel, 1, 1)
            grid.setRowStretch(0, 1)
            grid.setRowStretch(1, 1)
        else:
            for col, name in enumerate(self.planes):
                grid.addWidget(self.views[name], 0, col)
            grid.addWidget(self.panel, 1, 0, 1, len(self.planes))
            grid.setRowStretch(0, 1)
        for name, view in self.views.items():
            view.setVisible(name in self.planes)
        if not self.with_panel:
            grid.removeWidget(self.panel)
        self.panel.setVisible(self.with_panel)

    def show_planes(self, planes: tuple[str, ...] = tuple(VIEWS)) -> None:
        """Show only ``planes`` (in that order), e.g. axial and coronal MIP slabs of a CTA."""
        chosen = tuple(p for p in planes if p in self.views) or tuple(VIEWS)
        if self._maximised is not None:
            self._maximised = None
        self.planes = chosen
        self._place()
        if self.active.view not in chosen:
            self._on_view_activated(self.views[chosen[0]])

    @property
    def maximised(self) -> MprViewWidget | None:
        """The plane shown alone (double-click), or None."""
        return self._maximised

    def toggle_maximised(self, view: MprViewWidget) -> None:
        """Show ``view`` alone over the whole layout, or the three planes and the panel again."""
        alone = None if self._maximised is not None else view
        self._maximised = alone
        for other in (*self.views.values(), self.panel):
            shown = (self.with_panel if other is self.panel
                     else other.view in self.planes)  # type: ignore[attr-defined]
            other.setVisible(shown and (alone is None or other is alone))
        self._on_view_activated(view)
        view.setFocus()

    def _on_view_activated(self, view: MprViewWidget) -> None:
        self.active = view
        for other in self.views.values():
            other.active = other is view
            other.canvas.viewport().update()

    def _on_slab_changed(self, mode: str, mm: float) -> None:
        self.set_slab(mode, mm)

    def _on_left_mode_changed(self, mode: str) -> None:
        self.left_mode = mode

    def set_left_mode(self, mode: str) -> None:
        """What a plain left drag does: "crosshair" or "window" (the panel shows it)."""
        self.left_mode = mode
        button = self.panel.window_mode if mode == "window" else self.panel.crosshair_mode
        blocked = self.panel.blockSignals(True)
        try:
            button.setChecked(True)
        finally:
            self.panel.blockSignals(blocked)

    def _on_preset_chosen(self, preset: WindowPreset) -> None:
        self.apply_preset(preset, self.active.view)

    def _on_shared_toggled(self, shared: bool) -> None:
        self.shared_window = shared
        if shared:
            window = self.windows[self.active.view]
            if window.known:
                self.set_window(window.center, window.width)

    def _on_reset_requested(self, align: str) -> None:
        self.reset(align)

    # -- tests and shutdown -------------------------------------------------------------------
    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the worker has nothing to do (tests; never from a slot)."""
        return self._queue.wait_idle(timeout) if self._queue is not None else True

    def grid_of(self, name: View) -> SliceGrid | None:
        return self.views[name].grid

    def close_mpr(self) -> None:
        """Stop the worker and forget the series."""
        self._idle.stop()
        self._load_timer.stop()
        self._detach()
