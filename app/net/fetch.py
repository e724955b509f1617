"""Fetching a study from a hub, the instances someone is looking at first.

:class:`Download` lists the study's instances on the hub (QIDO), then streams whole series with
WADO-RS multipart (``transfer-syntax=*``: the stored bytes as they are), part by part to disk, in
series order: the series given to :meth:`Download.prioritise` first. Instances given to
:meth:`Download.prioritise` are fetched one by one on a second connection at the same time, so
the slice in view and its neighbours arrive in a fraction of the study's download time.
:meth:`Download.on_stored` listeners hear of each instance as it enters the store, and
:meth:`Download.remaining` tells which are still coming. Outages are waited out with backoff.

The job is recorded in the transfer queue like a send: per instance, ``pending`` until it is in
the local store (``verified``); a fetch killed at any point resumes where the store stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from app.errors import Cancelled, HubError, TransferError
from app.net.dicomweb import SERIES_UID, SOP_UID, DicomWebClient, value
from app.net.ingest import PartFile, PartIngest, StoredCallback
from app.net.queue import TransferQueue
from app.net.retry import Backoff
from app.net.send import TransferResult
from app.settings import TransferSettings
from app.store import Store
from app.tasks import Progress

log = logging.getLogger(__name__)


class Download:
    """One study coming from a hub into the store; run it with :meth:`run` or :meth:`start`."""

    def __init__(self, store: Store, queue: TransferQueue, client: DicomWebClient, hub: str,
                 study_uid: str, settings: TransferSettings, progress: Progress | None = None,
                 *, give_up: float | None = None) -> None:
        self.store = store
        self.queue = queue
        self.client = client
        self.hub = hub
        self.study_uid = study_uid
        self.settings = settings
        self.progress = progress or Progress("Fetching")
        self.backoff = Backoff(settings, give_up)
        self.job_id = ""
        self._lock = threading.Lock()
        self._series_of: dict[str, str] = {}  # sop -> series
        self._local: set[str] = set()
        self._series_order: list[str] = []
        self._urgent: deque[str] = deque()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._listeners: list[StoredCallback] = []
        self._thread: threading.Thread | None = None
        self._result: TransferResult | None = None
        self.bytes = 0
        self.first_stored_at: float | None = None
        self.ingest = PartIngest(store, self._stored)

    # -- API for the viewer ----------------------------------------------------------------
    def on_stored(self, listener: StoredCallback) -> None:
        """Call ``listener(sop_uid, series_uid)`` when an instance is in the store (any thread)."""
        self._listeners.append(listener)

    def prioritise(self, series_uid: str | None = None, sop_uids: Iterable[str] = ()) -> None:
        """Fetch these instances next (one by one), and this series before the other series."""
        with self._lock:
            for sop in reversed(list(sop_uids)):
                if sop not in self._local:
                    self._urgent.appendleft(sop)
            if series_uid:
                if series_uid in self._series_order:
                    self._series_order.remove(series_uid)
                self._series_order.insert(0, series_uid)
        self._wake.set()

    def remaining(self, series_uid: str | None = None) -> set[str]:
        """SOP Instance UIDs not in the local store yet (of one series, or all)."""
        with self._lock:
            return {s for s, se in self._series_of.items()
                    if s not in self._local and (series_uid is None or se == series_uid)}

    def start(self) -> Download:
        """Run in a background thread; :meth:`wait` for the result."""
        self._thread = threading.Thread(target=self.run, name="download", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> TransferResult | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._result

    def cancel(self) -> None:
        self.progress.cancel()
        self._wake.set()

    # -- the work --------------------------------------------------------------------------
    def run(self) -> TransferResult:
        started = time.monotonic()
        message = ""
        lane = threading.Thread(target=self._lane, name="download-lane", daemon=True)
        try:
            self._plan()
            self._urgent_first()
            lane.start()
            rounds_without_progress = 0
            while True:
                try:
                    left = self.remaining()
                    if not left:
                        break
                    before = len(left)
                    self._bulk(left)
                    self.ingest.drain()
                    if len(self.remaining()) >= before:
                        rounds_without_progress += 1
                        if rounds_without_progress >= self.settings.max_attempts:
                            message = "the hub did not deliver every instance it listed"
                            break
                    else:
                        rounds_without_progress = 0
                    self.backoff.reset()
                except HubError as exc:
                    delay = self.backoff.next_delay(exc)
                    if delay is None:
                        self.queue.set_state(self.job_id, "waiting" if exc.retryable else "stuck",
                                             str(exc))
                        message = str(exc)
                        break
                    log.warning("%s; trying again in %.0f s", exc, delay)
                    self.queue.set_state(self.job_id, "waiting", str(exc),
                                         next_try=time.time() + delay)
                    Backoff.sleep(delay, self.progress)
                    self.queue.set_state(self.job_id, "running")
        except Cancelled:
            message = "cancelled; the fetch resumes on the next 'relay fetch'"
            if self.job_id:
                self.queue.set_state(self.job_id, "paused", "paused by the user")
        except HubError as exc:  # the plan itself failed
            message = str(exc)
            if self.job_id:
                self.queue.set_state(self.job_id, "waiting" if exc.retryable else "stuck", message)
        finally:
            self._done.set()
            self._wake.set()
            if lane.is_alive():
                lane.join(30)
            self.ingest.close()
            self.progress.finish()
        self._result = self._finish(message, time.monotonic() - started)
        return self._result

    def _plan(self) -> None:
        """List the study's instances on the hub; record (or resume) the job."""
        instances = list(self.client.instances(self.study_uid, fields=(SERIES_UID,)))
        if not instances:
            raise TransferError(f"study {self.study_uid} is not on hub '{self.hub}'")
        order: list[str] = []
        items = []
        for d in instances:
            sop, series = value(d, SOP_UID), value(d, SERIES_UID)
            if not sop or not series:
                continue
            self._series_of[sop] = series
            if series not in order:
                order.append(series)
            items.append((sop, series, "", 0))
        job = self.queue.find_open("fetch", self.hub, self.study_uid, [])
        if job is None:
            job = self.queue.create("fetch", self.hub, self.study_uid, [], items)
        else:
            self.queue.add_items(job.id, items)
        self.job_id = job.id
        self.queue.claim(job.id)
        local = {sop for sop in self._series_of if self.store.has_instance(sop)}
        with self._lock:
            self._local |= local
            self._series_order += [s for s in order if s not in self._series_order]
        self.progress.set_total(len(self._series_of), "Fetching")
        self.progress.advance(len(local))

    def _bulk(self, left: set[str]) -> None:
        """Stream, series by series in priority order, every series with instances left."""
        done_series: set[str] = set()
        while True:
            self.progress.check()
            with self._lock:
                series = next((s for s in self._series_order if s not in done_series), None)
            if series is None:
                return
            done_series.add(series)
            wanted = self.remaining(series)
            if not wanted:
                continue
            total = sum(1 for se in self._series_of.values() if se == series)
            if len(wanted) * 2 >= total:
                self._stream(f"/studies/{self.study_uid}/series/{series}", self._close_part)
            else:
                for sop in sorted(wanted):
                    self._fetch_one(sop)

    def _urgent_first(self) -> None:
        """Fetch what was prioritised before the start (the slice in view) before anything else,
        so the first image does not queue behind the bulk download."""
        while True:
            with self._lock:
                sop = self._urgent.popleft() if self._urgent else None
            if sop is None:
                return
            if sop in self._local or sop not in self._series_of:
                continue
            self._fetch_one(sop, urgent=True)

    def _lane(self) -> None:
        """The priority lane: instances someone is waiting for, one request each."""
        while not self._done.is_set():
            with self._lock:
                sop = self._urgent.popleft() if self._urgent else None
            if sop is None:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            if sop in self._local or sop not in self._series_of:
                continue
            try:
                self._fetch_one(sop, urgent=True)
            except (HubError, Cancelled) as exc:
                log.info("priority fetch failed (%s); the bulk download will bring it", exc)
            except Exception:
                log.exception("priority fetch failed")

    def _fetch_one(self, sop: str, urgent: bool = False) -> None:
        series = self._series_of[sop]
        path = f"/studies/{self.study_uid}/series/{series}/instances/{sop}"
        try:
            self._stream(path, self._close_urgent if urgent else self._close_part)
        except HubError as exc:
            if exc.status != 404:
                raise
            log.warning("an instance listed by the hub is no longer there (404)")

    def _stream(self, path: str, close: Callable[[PartFile], None]) -> None:
        """Retrieve ``path`` part by part; a part cut short by a fault is deleted."""
        current: list[PartFile] = []

        def open_part(headers: dict[str, str]) -> PartFile:
            current[:] = [PartFile(self.store, headers)]
            return current[0]

        def close_part(part: PartFile) -> None:
            current.clear()
            close(part)

        try:
            for _ in self.client.retrieve(path, open_part, close_part):
                self.progress.check()
        finally:
            for part in current:
                part.discard()

    def _close_part(self, part: PartFile, urgent: bool = False) -> None:
        with self._lock:
            self.bytes += part.size
        self.ingest.submit(part, urgent)

    def _close_urgent(self, part: PartFile) -> None:
        self._close_part(part, urgent=True)

    def _stored(self, sop: str, series: str) -> None:
        with self._lock:
            if sop in self._local:
                return
            self._local.add(sop)
            if self.first_stored_at is None:
                self.first_stored_at = time.monotonic()
        self.progress.advance(1)
        for listener in list(self._listeners):
            try:
                listener(sop, series)
            except Exception:
                log.exception("a download listener failed")

    def _finish(self, message: str, seconds: float) -> TransferResult:
        if not self.job_id:
            return TransferResult(job="", state="failed", instances=0, verified=0,
                                  message=message)
        stored = [s for s in self._series_of if self.store.has_instance(s)]
        self.queue.mark(self.job_id, stored, "verified")
        self.queue.add_totals(self.job_id, self.bytes, seconds)
        job = self.queue.job(self.job_id)
        missing = [i.sop_uid for i in self.queue.items(self.job_id, ("pending", "failed"))]
        if job.state == "running":
            if missing:
                message = message or f"{len(missing)} instance(s) did not arrive"
                self.queue.set_state(self.job_id, "failed", message)
            else:
                self.queue.set_state(self.job_id, "verified",
                                     f"{job.total} of {job.total} in the local store")
        job = self.queue.job(self.job_id)
        return TransferResult(job=self.job_id, state="failed" if missing else "verified",
                              instances=job.total, verified=job.count("verified"),
                              missing=missing, bytes=job.bytes, seconds=job.seconds,
                              message=message or (job.message if missing else ""))
