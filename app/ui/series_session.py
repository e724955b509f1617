"""An open series: its volume filling in the background, bridged to Qt signals.

The loader (:mod:`app.volume.loader`) runs on its own threads and calls back from them; this object
re-emits each finished slice as a queued Qt signal, so viewports repaint on the GUI thread.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.dicom.header import value_unit
from app.dicom.pixels import is_native_direct
from app.dicom.value_maps import (
    Quantity,
    RealWorldValues,
    SupplementalPalette,
    read_value_maps,
)
from app.errors import RelayError
from app.model import Series, Study
from app.render.window_level import series_window
from app.store.local import Store
from app.tasks import Progress
from app.ui.annotations import Annotation
from app.ui.crossthread import ThreadPost
from app.volume.array import Volume
from app.volume.early_slice import EarlySlice, early_slice, read_slice
from app.volume.loader import VolumeLoader
from app.volume.plans import cached_plan, series_plan
from app.volume.stack import SeriesPlan, SliceRef, Stack
from app.workflow import audit

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1
#: After the slice in view, the loader waits this long at most for the first image to be drawn
#: before decoding the rest (see :meth:`LoadedSeries.drawn`).
FIRST_IMAGE_HOLD = 0.1


class LoadedSeries(QObject):
    """One series being read: ``volume`` fills in; ``slice_ready(k, ok)`` on the GUI thread for
    the slices somebody waits for (:meth:`watch`), ``progressed`` now and then for the rest."""

    #: A watched slice is decoded (or failed). Only watched slices are signalled one by one: a
    #: queued signal per slice woke the GUI thread 400 times in a 0.1 s load and took the
    #: interpreter from the readers each time, making the load in the window 3x slower.
    slice_ready = Signal(int, bool)
    #: Loading moved on (at most every ``PROGRESS_INTERVAL`` s, and once at the end): for
    #: progress texts, so a fast load does not repaint the window once per slice.
    progressed = Signal()
    opened = Signal()  # the volume exists (geometry known), pixels may still be coming
    #: The series' palette and real-world values are known (see :attr:`palette`).
    maps_read = Signal()
    failed = Signal(str)
    #: A stand-in for a series not planned yet (one image, see PreviewSeries): not scrolled.
    stand_in = False
    #: A stand-in was scrolled (it says so when the real series takes over).
    scroll_tried = False

    def __init__(self, store: Store, study: Study, series: Series, *, focus: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.study = study
        self.series = series
        self.volume: Volume | None = None
        self.loader: VolumeLoader | None = None
        self.issues: list[str] = []
        self.error: str = ""
        self.progress = Progress("Loading")
        #: Measurements per slice index, kept while the study is open.
        self.annotations: dict[int, list[Annotation]] = {}
        self._focus = focus
        self._unstarted: VolumeLoader | None = None  # see start()
        self._lock = threading.Lock()
        self._last_progress = 0.0
        #: Slices a viewer waits for (added on the GUI thread, read by the loader's).
        self._watched: set[int] = set()
        #: The window every view of this series opens in (see :meth:`opening_window`).
        self._opening_window: tuple[float, float] | None = None
        #: The window (centre, width, inverted) last chosen in any view of this series: a view
        #: opened on it later (another viewport, MPR) starts there. None: the opening window.
        self.chosen_window: tuple[float, float, bool] | None = None
        #: When the series was opened, and whether its first image has been drawn (audit).
        self.opened_at = audit.now()
        self._first_drawn = False
        #: The loader's and the opening thread's signals go through this, never straight to
        #: ``self``: the viewer that owns us may be deleted while they run (see ThreadPost).
        self._post = ThreadPost(self)
        #: This series' loader, stopped when the object goes without :meth:`close` (a viewer
        #: deleted while it loads, or before its held loader started): shared with that
        #: handler, which must not touch ``self``.
        self._loaders: list[VolumeLoader] = []
        self.destroyed.connect(functools.partial(_stop_loaders, self._loaders))
        #: The Supplemental Palette Color LUT its slices are shown in (None: grey); read from
        #: the first slice's file on a thread once the volume exists (``maps_read``).
        self.palette: SupplementalPalette | None = None
        #: Whether the series' files map stored values to real-world values (see real_world).
        self._has_real_world = False
        #: each slice's Real World Value Mapping, once read (see :meth:`real_world`)
        self._real_world: list[RealWorldValues | None] | None = None

    def start(self) -> None:
        """Plan the stack from the index and start decoding (focus slice first).

        When the plan is cached (the browser's thumbnails plan in the background) and the
        slice in view is an uncompressed frame, the volume is set up and that slice read here,
        on the caller's thread: about a millisecond, and the viewer has its first image as it
        appears. The loader's thread then starts once the image is drawn (:meth:`drawn`), or
        after ``FIRST_IMAGE_HOLD``: it would only wait for that anyway, and starting a thread
        and its first read would compete with the first paint. Otherwise planning and the
        first decode run on a thread, so a huge or compressed series never stalls the window.
        """
        started = time.monotonic()
        plan = cached_plan(self.store, self.series.series_instance_uid)
        early = self._read_in_view(plan) if plan is not None else None
        if plan is not None and early is not None:
            try:
                self._begin(plan, early, started, hold_start=True)
            except Exception as exc:
                self._fail(exc)
            return
        threading.Thread(target=self._open, args=(started, plan), name="open-series",
                         daemon=True).start()

    def _focus_in(self, stack: Stack) -> int:
        return self._focus_of(len(stack.slices))

    def _focus_of(self, n: int) -> int:
        """The slice of ``n`` to decode and show first: the one asked for, else the middle."""
        return max(0, min(self._focus if self._focus is not None else n // 2, n - 1))

    def _read_in_view(self, plan: SeriesPlan) -> EarlySlice | None:
        """The slice in view if it is quick to read here (an uncompressed frame), else None."""
        stack = plan.main
        if stack is None:
            return None
        ref = stack.slices[self._focus_in(stack)]
        return read_slice(ref) if is_native_direct(ref.transfer_syntax_uid, ref.info) else None

    def _open(self, started: float, plan: SeriesPlan | None) -> None:
        """Plan (unless ``plan`` came from the cache) and start, on the opening thread."""
        try:
            early = None
            if plan is None:
                uid = self.series.series_instance_uid
                if self._focus is None:
                    early = early_slice(self.store, uid)  # the middle slice while planning
                plan = series_plan(self.store, uid, self.series.frame_of_reference_uid)
            self._begin(plan, early, started)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        log.warning("cannot open a series: %s", type(exc).__name__, exc_info=True)
        self.error = str(exc) or type(exc).__name__
        self._post.emit("failed", self.error)

    def _begin(self, plan: SeriesPlan, early: EarlySlice | None, started: float,
               hold_start: bool = False) -> None:
        stack = plan.main
        self.issues = list(plan.issues)
        if stack is None:
            raise RelayError("this series has no images to show")
        loader = VolumeLoader.for_stack(stack, focus=self._focus_in(stack),
                                        progress=self.progress, early=early,
                                        started=started, hold=FIRST_IMAGE_HOLD)
        self._loaders[:] = [loader]
        if not self._attach(loader):
            return
        if hold_start:  # on the GUI thread (see start)
            self._unstarted = loader
            QTimer.singleShot(int(FIRST_IMAGE_HOLD * 1000), self, self._on_hold_over)
        else:
            loader.start()

    def _start_loader(self) -> None:
        loader, self._unstarted = self._unstarted, None
        if loader is not None:
            loader.start()

    def _on_hold_over(self) -> None:
        """Nothing drew the first image in time: load the rest anyway."""
        if self._unstarted is not None:
            self._unstarted.release()
            self._start_loader()

    def _attach(self, loader: VolumeLoader) -> bool:
        """Take the loader's volume and tell the viewers; False if they are gone."""
        volume = loader.volume
        volume.subscribe(self._forward)
        with self._lock:
            self.loader, self.volume = loader, volume
        first = volume.slices[0].path if volume.slices else None
        if first is not None:  # the header of an enhanced object can take 0.1 s: not here
            threading.Thread(target=self._read_maps, args=(str(first),), name="value-maps",
                             daemon=True).start()
        # False: the viewer was closed while the series was being planned
        return self._post.emit("opened")

    def _read_maps(self, path: str) -> None:
        maps = read_value_maps(path)
        self.palette = maps.palette
        self._has_real_world = any(maps.real_world)
        if maps.palette is not None or self._has_real_world:
            self._post.emit("maps_read")
        volume = self.volume
        if self._has_real_world and volume is not None:  # every slice's, here, not on a
            # mouse move or a paint on the GUI thread (a classic series: a header per file)
            self._real_world = [self._read_real_world(ref) for ref in volume.slices]

    @staticmethod
    def _read_real_world(ref: SliceRef) -> RealWorldValues | None:
        return read_value_maps(str(ref.path)).of_frame(ref.frame) if ref.path else None

    def real_world(self, k: int) -> RealWorldValues | None:
        """The Real World Value Mapping of slice ``k`` (None when its files have none): read
        for every slice on the thread that read the first's, from its file until then."""
        volume = self.volume
        if not self._has_real_world or volume is None or not 0 <= k < len(volume.slices):
            return None
        known = self._real_world
        if known is not None and len(known) == len(volume.slices):
            return known[k]
        return self._read_real_world(volume.slices[k])

    def quantity(self, k: int) -> Quantity:
        """What slice ``k``'s values are read as (:meth:`slice_values`): its real-world
        quantity when its file maps one ("RCBF", "ml/100ml/s"), else its modality values."""
        real_world = self.real_world(k)
        if real_world is not None:
            return real_world.quantity
        return Quantity(unit=self.value_unit)

    def slice_values(self, k: int) -> np.ndarray | None:
        """The values a reader reads off slice ``k`` (a region's mean, a probe): its
        real-world quantities when its file maps them (NaN outside the values mapped), else
        its modality values; None while it is not decoded."""
        volume = self.volume
        if volume is None or not 0 <= k < volume.shape[0] or not volume.ready[k]:
            return None
        real_world = self.real_world(k)
        if real_world is not None:
            return real_world.values(volume.array[k])
        return self._values(volume.array[k], k)

    def watch(self, k: int) -> None:
        """A viewer shows slice ``k`` before it is decoded: signal it (``slice_ready``) as
        soon as it is. Call before looking at ``volume.ready[k]``, so it cannot be missed."""
        self._watched.add(k)

    def _forward(self, k: int, ok: bool) -> None:
        if self._post.gone:  # the viewer was closed while the loader was still running
            if self.loader is not None:
                self.loader.cancel()
            return
        if k in self._watched:
            self._watched.discard(k)
            self._post.emit("slice_ready", k, ok)
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL or (
                self.volume is not None and self.volume.finished):
            self._last_progress = now
            self._post.emit("progressed")

    @property
    def modality(self) -> str:
        return self.series.modality

    @property
    def value_unit(self) -> str:
        """The unit of the series' values ("HU" for CT, unless its files say otherwise)."""
        volume = self.volume
        first = volume.slices[0].info if volume is not None and volume.slices else None
        return value_unit(self.modality, first.rescale_type if first is not None else "")

    def opening_window(self, k: int) -> tuple[float, float] | None:
        """The window every view of this series opens in, decided once and whatever the load
        order: the files' window, else a preset by modality, body part and descriptions, else
        one judged from the middle slice (where a head CT shows the head, not the shoulders;
        read from its file now when not decoded yet), else from slice ``k`` (None while that
        is needed and not decoded yet). See :func:`app.render.window_level.series_window`."""
        volume = self.volume
        if self._opening_window is None and volume is not None:
            def decide(values: np.ndarray | None) -> tuple[float, float] | None:
                return series_window(
                    file_window=volume.default_window, modality=self.modality,
                    body_part=self.series.body_part_examined,
                    texts=(self.study.study_description, self.series.series_description),
                    values=values, pixel_mm=float(volume.spacing[2]))

            window = decide(None)  # from the header alone when it can
            if window is None and volume.array.ndim == 3:
                values = self._middle_values()
                if values is None and 0 <= k < volume.shape[0] and volume.ready[k]:
                    values = self._values(volume.array[k], k)
                window = decide(values)
            self._opening_window = window
        return self._opening_window

    def _values(self, stored: np.ndarray, k: int) -> np.ndarray:
        volume = self.volume
        assert volume is not None
        values: np.ndarray = stored.astype(np.float32) * float(volume.slope[k])
        return values + float(volume.intercept[k])

    def _middle_values(self) -> np.ndarray | None:
        """The middle slice's values: decoded already, or read from its file once now."""
        volume = self.volume
        assert volume is not None
        middle = volume.shape[0] // 2
        if volume.ready[middle]:
            return self._values(volume.array[middle], middle)
        early = read_slice(volume.slices[middle])
        if early is None or early.pixels.shape != volume.array.shape[1:]:
            return None
        return self._values(early.pixels, middle)

    def set_focus(self, k: int) -> None:
        """The user looks at slice ``k``: decode around it next."""
        if self.loader is not None:
            self.loader.set_focus(k)

    def drawn(self) -> None:
        """A viewport has drawn an image of this series: the loader may go on at full speed.
        The first time, the view is recorded in the audit trail (off the GUI thread: it waits
        for the disk)."""
        if not self._first_drawn:
            self._first_drawn = True
            detail = {"series": self.series.series_instance_uid, "opened": self.opened_at,
                      "first_image": audit.now()}
            threading.Thread(target=audit.record, args=(self.store.home, "view"),
                             kwargs={"study_uid": self.study.study_instance_uid,
                                     "detail": detail}, name="audit-view", daemon=True).start()
        if self._unstarted is not None:  # after this paint: a thread starting would slow it
            QTimer.singleShot(0, self, self._start_loader)
        if self.loader is not None:
            self.loader.release()

    def pending_text(self, k: int) -> str:
        """What a viewport says over slice ``k`` while it is not decoded yet."""
        return f"Slice {k + 1} is still loading…"

    def first_slice(self) -> int:
        """The slice a viewport shows first when not told which (the loader's focus)."""
        return self._focus_of(self.volume.shape[0] if self.volume is not None else 0)

    def slice_label(self, k: int, n: int) -> str:
        """The overlay's name for slice ``k`` of ``n``."""
        return f"Im {k + 1} / {n}"

    def notice(self) -> str:
        """A line a viewport shows over the image while it is true ("" for none)."""
        return ""

    def progress_text(self) -> str:
        """The series' progress for the series strip ("" once everything is in)."""
        if self.volume is None:
            return ""
        n, done = self.volume.shape[0], self.loaded_count()
        return "" if done >= n else f"loading {100 * done // n} %"

    @property
    def loading(self) -> bool:
        """Planning or decoding is still going on (False once it ended, failed or was cancelled)."""
        if self.error:
            return False
        return self.loader is None or not self.loader.done

    def loaded_count(self) -> int:
        return int(self.volume.ready.sum()) if self.volume is not None else 0

    def carry_on(self, old: LoadedSeries) -> None:
        """This session opens ``old``'s series again, grown (more of it arrived): it goes on
        from there. Its view is in the audit trail once, not again; the window chosen on it
        stays; its measurements stay on the images they were drawn on (their slice numbers
        change as images arrive in between), once this volume exists."""
        self.opened_at, self._first_drawn = old.opened_at, old._first_drawn
        self.chosen_window = old.chosen_window
        volume = old.volume
        if volume is None:
            return
        carried = {(volume.slices[k].sop_instance_uid, volume.slices[k].frame): list(notes)
                   for k, notes in old.annotations.items() if notes and k < len(volume.slices)}
        if not carried:
            return

        def place() -> None:
            new = self.volume
            if new is None:
                return
            for k, ref in enumerate(new.slices):
                notes = carried.pop((ref.sop_instance_uid, ref.frame), None)
                if notes:
                    self.annotations.setdefault(k, []).extend(notes)

        if self.volume is not None:
            place()
        else:  # before any viewport hears of it: they draw what is placed
            self.opened.connect(place)

    def close(self) -> None:
        if self.loader is not None:
            self.loader.cancel()
        self._start_loader()  # a cancelled loader ends at once (and says so)


def _stop_loaders(loaders: list[VolumeLoader], *_: object) -> None:
    """A series' object went (its viewer deleted): its loader stops, started or not."""
    for loader in loaders:
        loader.stop()
