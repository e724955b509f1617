"""Reading a study that is only on the hub while it downloads.

A :class:`RemoteStudy` ties a :class:`~app.net.fetch.Download` to slice plans made from the
hub's metadata (:mod:`app.net.metadata`): a series is planned and its volume allocated before
any instance has arrived, the instances around the slice in view are fetched first, and each
instance entering the store is decoded into the volume (the loader's own path for one file).
The rest of a series being read comes one instance per request, nearest the slice in view
first (:meth:`~app.net.fetch.Download.read_in_order`), so nothing is fetched twice. Scrolling
moves the priority along: :meth:`RemoteStudy.focus` replaces what was asked before.

Typical use (a viewer; every call but :meth:`open_series` returns at once)::

    remote = RemoteStudy(store, download, peer)
    series = remote.open_series(focus=None)   # network: plan the series in view, start
    series.loader.volume                       # allocated, geometry known; fills as files come
    remote.focus(series.uid, k)                # the user scrolled to k
    remote.state(series.uid, k)                # "coming" | "arrived" | "ready" | "failed"
    remote.wait()                              # the download's TransferResult

Every slice ends ready or failed: when the download is over, slices whose file never came are
marked failed with a reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import RelayError
from app.model import Header, Study
from app.net.fetch import Download
from app.net.metadata import plan_of, series_metadata, study_of
from app.net.peer import SERIES_INSTANCES, SERIES_UID, Peer, value
from app.net.preview import Preview, fetch_preview, guess_middle
from app.net.send import TransferResult
from app.store.local import Store
from app.volume.loader import VolumeLoader
from app.volume.stack import SeriesPlan, Stack

log = logging.getLogger(__name__)

#: Slices fetched one by one on each side of the slice in view.
WINDOW = 6

FinishedListener = Callable[[TransferResult | None], None]
PreviewListener = Callable[[Preview], None]


@dataclass
class RemoteSeries:
    """One series being read from the hub: its plan (from metadata) and its loader."""

    uid: str
    plan: SeriesPlan
    loader: VolumeLoader
    #: The slice shown first (fetched and decoded first).
    first: int = 0
    #: SOP Instance UID of each slice of the main stack, in stack order.
    sops: list[str] = field(default_factory=list)
    #: SOP Instance UID -> slice indices (several for a multi-frame object).
    slices_of: dict[str, list[int]] = field(default_factory=dict)

    @property
    def stack(self) -> Stack:
        assert self.plan.main is not None
        return self.plan.main


class RemoteStudy:
    """One study read from a hub while its :class:`Download` brings it into the store."""

    def __init__(self, store: Store, download: Download, peer: Peer, *,
                 window: int = WINDOW, workers: int | None = None) -> None:
        self.store = store
        self.download = download
        self.peer = peer
        self.window = window
        self.workers = workers
        self.study_uid = download.study_uid
        self.hub = download.hub
        self.study: Study | None = None
        #: Why opening failed before anything was fetched ("" otherwise).
        self.error = ""
        self._listing: list[dict[str, object]] | None = None
        self._headers: dict[str, list[Header]] = {}
        self._guesses: dict[str, str] = {}  # series -> SOP Instance UID of its preview
        self._previews: dict[str, Preview] = {}
        self._series: dict[str, RemoteSeries] = {}
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._started = False
        self._result: TransferResult | None = None
        self._finished = threading.Event()
        self._ending = False  # the listeners were (or are being) told; later ones: at once
        self._listeners: list[FinishedListener] = []
        download.on_stored(self._on_stored)

    # -- opening ---------------------------------------------------------------------------
    def listing(self) -> list[dict[str, object]]:
        """The hub's series of this study (QIDO, asked once; network)."""
        if self._listing is None:
            found = list(self.peer.series(self.study_uid))
            if not found:
                raise RelayError(f"study {self.study_uid} is not on hub '{self.hub}'")
            self._listing = found
            self.study = study_of(self.study_uid, found, self._headers)
        return self._listing

    def default_series(self) -> str:
        """The series to show first: the one with the most instances."""
        rows = self.listing()
        best = max(rows, key=lambda r: int(value(r, "00201209", 0) or 0))
        return str(value(best, SERIES_UID))

    def open_series(self, series_uid: str | None = None, focus: int | None = None, *,
                    preview: PreviewListener | None = None) -> RemoteSeries:
        """Plan a series from the hub's metadata, allocate its volume, fetch around ``focus``
        (default: the middle) first and start the download if it is not running yet.
        Network: call it off the UI thread. Opening an open series returns it.

        ``preview``: while the metadata comes, guess the middle instance, fetch and decode it
        beside the metadata request and call ``preview(Preview)`` with it (on another thread),
        unless the plan was there first (see :mod:`app.net.preview`). The plan then starts at
        that instance when it is near the middle, and its decoded pixels are reused.
        """
        with self._open_lock:
            try:
                uid = series_uid or self.default_series()
                known = self._series.get(uid)
                if known is not None:
                    return known
                self.listing()
            except Exception as exc:
                if not self._started:
                    self._give_up(str(exc))
                raise
            if preview is not None and focus is None and uid not in self._guesses:
                # first: the job's own set-up would hold the interpreter for a few ms
                threading.Thread(target=self._preview, args=(uid, preview), name="preview",
                                 daemon=True).start()
            if not self._started:  # set the job up while the metadata comes
                self._started = True
                self.download.hold()
                self.download.start()
                threading.Thread(target=self._watch, name="remote-watch", daemon=True).start()
            try:
                return self._plan_series(uid, focus)
            finally:
                self.download.release()  # on failure too: the study still becomes local

    def _plan_series(self, uid: str, focus: int | None) -> RemoteSeries:
        headers = series_metadata(self.peer, self.study_uid, uid)
        plan = plan_of(headers)
        if plan.main is None:
            raise RelayError("this series has no images to show")
        sops = [ref.sop_instance_uid for ref in plan.main.slices]
        with self._lock:
            guess, shown = self._guesses.get(uid), self._previews.get(uid)
        k = _first_slice(sops, focus, guess)
        loader = VolumeLoader.for_stack(plan.main, focus=k, wait_for_files=True,
                                        workers=self.workers,
                                        early=shown.pixels if shown is not None else None)
        series = RemoteSeries(uid=uid, plan=plan, loader=loader, first=k, sops=sops)
        for i, sop in enumerate(sops):
            series.slices_of.setdefault(sop, []).append(i)
        with self._lock:
            self._headers[uid] = headers
            self._series[uid] = series
            self.study = study_of(self.study_uid, self._listing or [], self._headers)
        self.download.read_in_order(uid, sops, k)
        self._prioritise(series, k)
        loader.start()
        for inst in self.store.instances(uid):  # already local (an earlier, partial fetch)
            loader.supply(inst)
        if self._finished.is_set():
            loader.finish_supply()
        return series

    def _preview(self, uid: str, listener: PreviewListener) -> None:
        """Guess, fetch and decode one image of series ``uid`` (on its own thread)."""
        try:
            row = next((r for r in self._listing or () if value(r, SERIES_UID) == uid), {})
            count = int(value(row, SERIES_INSTANCES, 0) or 0)
            sop = guess_middle(self.peer, self.study_uid, uid, count)
            if sop is None:
                return
            with self._lock:
                self._guesses.setdefault(uid, sop)  # the plan may start there (see below)
            found = fetch_preview(self.peer, self.download, self.store, self.study_uid,
                                  uid, sop, count)
            if found is None:
                return
            with self._lock:
                self._previews[uid] = found
                if uid in self._series:
                    return  # the plan was quicker: its volume shows the series already
            listener(found)
        except Exception:  # a preview is a nicety: the plan shows the series either way
            log.warning("no preview of the series", exc_info=True)

    def preview(self, series_uid: str) -> Preview | None:
        """The series' preview, if one was made."""
        with self._lock:
            return self._previews.get(series_uid)

    def _give_up(self, reason: str) -> None:
        """Opening failed before the download started: it never will (listeners hear None)."""
        self.error = reason
        self._end(None)

    def _end(self, result: TransferResult | None) -> None:
        """Tell the listeners, then the waiters: whoever sees :attr:`finished` (or returns from
        :meth:`wait`) sees what the listeners did (e.g. the runner's bookkeeping)."""
        with self._lock:
            self._ending = True
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(result)
            except Exception:
                log.exception("a remote-study listener failed")
        self._finished.set()

    def _watch(self) -> None:
        result = self.download.wait()
        with self._lock:
            self._result = result
            series = list(self._series.values())
        for s in series:
            s.loader.finish_supply()
        self._end(result)

    # -- reading ---------------------------------------------------------------------------
    def series(self, series_uid: str) -> RemoteSeries | None:
        with self._lock:
            return self._series.get(series_uid)

    def focus(self, series_uid: str, k: int) -> None:
        """The user looks at slice ``k`` of an open series: decode and fetch around it next
        (what earlier calls asked for and has not come yet is dropped)."""
        series = self.series(series_uid)
        if series is None:
            return
        series.loader.set_focus(k)
        self.download.read_focus(series_uid, k)
        self._prioritise(series, k)

    def _prioritise(self, series: RemoteSeries, k: int) -> None:
        arrived = self.download.arrived(series.uid)
        n = len(series.sops)
        wanted: list[str] = []
        for d in range(self.window + 1):
            for i in (k + d, k - d) if d else (k,):
                if 0 <= i < n:
                    sop = series.sops[i]
                    if sop not in arrived and sop not in wanted:
                        wanted.append(sop)
        self.download.prioritise(series.uid, wanted, replace=True)

    def state(self, series_uid: str, k: int) -> str:
        """``"ready"`` (decoded), ``"arrived"`` (in the store, decoding), ``"failed"`` or
        ``"coming"`` (still on the hub)."""
        series = self.series(series_uid)
        if series is None:
            return "coming"
        volume = series.loader.volume
        if volume.ready[k]:
            return "ready"
        if any(f.index == k for f in volume.failed_slices):
            return "failed"
        if series.sops[k] in self.download.arrived(series_uid):
            return "arrived"
        return "coming"

    def arrival(self, series_uid: str) -> tuple[int, int]:
        """(instances in the store, instances on the hub) of one series."""
        expected = self.download.expected(series_uid)
        if not expected:
            series = self.series(series_uid)
            expected = len(series.slices_of) if series else 0
        return len(self.download.arrived(series_uid)), expected

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def on_finished(self, listener: FinishedListener) -> None:
        """``listener(result)`` once the download is over (on the download's thread); at once
        when it already is."""
        with self._lock:
            done = self._ending
            if not done:
                self._listeners.append(listener)
        if done:
            listener(self._result)

    def wait(self, timeout: float | None = None) -> TransferResult | None:
        """Wait for the download to end; its result (None while still running or never
        started)."""
        if not self._started and not self._finished.is_set():
            return None
        self._finished.wait(timeout)
        return self._result

    def cancel(self) -> None:
        """Stop reading and downloading (the fetch job resumes another time)."""
        self.download.cancel()
        with self._lock:
            series = list(self._series.values())
        for s in series:
            s.loader.cancel()

    def _on_stored(self, sop: str, series_uid: str) -> None:
        series = self.series(series_uid)
        if series is None or sop not in series.slices_of:
            return
        inst = self.store.instance(sop)
        if inst is not None:
            series.loader.supply(inst)


def _first_slice(sops: list[str], focus: int | None, guess: str | None) -> int:
    """The slice to show first: ``focus`` if given, else the guessed preview instance when it
    is near the middle (the image on screen stays; it is not fetched twice), else the middle."""
    n = len(sops)
    if focus is not None:
        return min(max(0, focus), n - 1)
    middle = n // 2
    if guess is not None and guess in sops:
        k = sops.index(guess)
        if abs(k - middle) <= max(1, n // 10):
            return k
    return middle


__all__ = ["PreviewListener", "RemoteSeries", "RemoteStudy", "WINDOW"]
