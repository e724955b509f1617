"""Fetching a study from a hub, the instances someone is looking at first.

:class:`Download` asks the hub for the study's series and their instance counts (one QIDO-RS
request), then streams whole series with WADO-RS multipart (``transfer-syntax=*``: the stored
bytes as they are), part by part into the store (:mod:`app.store.part_ingest`), in series order: the
series given to :meth:`Download.prioritise` first. Instances given to
:meth:`Download.prioritise` are fetched one by one, before the bulk when asked before the start
and on a second connection after, so the slice in view arrives in a fraction of the study's
download time. A series someone reads (:meth:`Download.read_in_order`) comes instead one
instance per request, several side by side, nearest the slice in view first, so that nothing
is fetched twice. :meth:`Download.on_stored` listeners hear of each instance as it enters the
store. A series that arrives short is listed instance by instance (QIDO) and what is missing is
fetched one by one; :meth:`Download.remaining` gives that list for a series on demand. Outages
are waited out with backoff (:func:`app.net.retry.retry_rounds`). What to ask for next (urgent
slices, reading order, series order, what is in flight) is decided by a pure
:class:`~app.net.schedule.FetchSchedule`; this module does the asking.

The job is recorded in the transfer queue like a send (per instance ``verified`` once in the
local store, ``pending`` if it did not arrive); a fetch killed at any point resumes from what the
store holds. "Verified" for a fetch: every series has as many distinct instances in the store as
the hub lists, and a short series is checked UID by UID.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from app.errors import Cancelled, HubError, RelayError, StoreError, TransferError
from app.net.peer import SERIES_INSTANCES, SERIES_UID, SOP_UID, Peer, value
from app.net.queue import ACTIVE, Job, TransferQueue
from app.net.retry import Backoff, retry_rounds, stop_on_fault, stop_state
from app.net.schedule import FetchSchedule
from app.net.send import TransferResult
from app.settings import TransferSettings
from app.store.local import Store
from app.store.part_ingest import PartIngest, PipedPart, StoredCallback
from app.tasks import Progress
from app.workflow import audit

log = logging.getLogger(__name__)

#: Requests side by side for a series someone reads (:meth:`Download.read_in_order`). One
#: request per instance pays a round trip each: over a 25 MB/s line with 40 ms round trips, a
#: 400-instance 256x256 series took 8.3 s with 3, 4.7 s with 8 and 4.5 s as one series stream
#: (``bench/bench_remote.py``; 512x512: 5.9 s with 8, 6.9 s streamed).
READ_WORKERS = 8
#: Slices this close to the one in view are indexed as soon as they arrive.
READ_URGENT = 8


def fetch_job(queue: TransferQueue, hub: str, study_uid: str,
              series_uids: Sequence[str] | None = None, *, method: str = "") -> Job:
    """The job fetching this study (or these series) from ``hub``: an unfinished one is
    resumed (with ``method``, when given, as its way of asking a PACS from now on)."""
    series = sorted(series_uids or [])
    job = queue.find_open("fetch", hub, study_uid, series)
    if job is None:
        return queue.create("fetch", hub, study_uid, series, [], method=method)
    if method and method != job.method:
        queue.set_method(job.id, method)
        job = queue.job(job.id)
    return job


def fetch_stop_state(exc: HubError) -> str:
    """A fetch stops ``waiting`` (an outage), ``stuck`` (credentials, TLS: the user must act)
    or ``failed``: the hub answered the retrieval against the rules (a part over the size cap,
    no boundary, not multipart), which trying again does not mend."""
    return "failed" if exc.kind == "not-dicomweb" else stop_state(exc)


class Download:
    """One study coming from a hub into the store; run it with :meth:`run` or :meth:`start`."""

    def __init__(self, store: Store, queue: TransferQueue, peer: Peer, hub: str,
                 study_uid: str, settings: TransferSettings, progress: Progress | None = None,
                 *, give_up: float | None = None, series_uids: Sequence[str] = (),
                 method: str = "") -> None:
        self.store = store
        self.queue = queue
        self.peer = peer
        self.hub = hub
        self.study_uid = study_uid
        #: Only these series of the study (empty: all of it).
        self.series_uids = sorted(series_uids)
        #: How a PACS is asked (``get``/``move``), recorded in a new job; empty: the profile's.
        self.method = method
        self.settings = settings
        self.progress = progress or Progress("Fetching")
        self.backoff = Backoff(settings, give_up)
        self.job_id = ""
        self._lock = threading.Lock()
        #: What to ask for next (read and changed with the lock held).
        self.schedule = FetchSchedule()
        self._listed: dict[str, set[str]] = {}  # series -> SOP UIDs the hub lists (when asked)
        self._arrival = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._done = threading.Event()
        self._go = threading.Event()  # cleared by hold(): plan, then wait for release()
        self._go.set()
        self._listeners: list[StoredCallback] = []
        self._thread: threading.Thread | None = None
        self._stalled = 0  # rounds in a row that brought nothing
        self._stall_message = ""
        self._result: TransferResult | None = None
        self.bytes = 0
        self.first_stored_at: float | None = None
        self.arrivals = audit.Arrivals()
        """When this run stored the study's instances (the audit's ``retrieve`` event)."""
        #: SOP Instance UIDs fetched one request each, in order (the rest came in bulk).
        self.singles: list[str] = []
        self.ingest = PartIngest(store, self._stored)

    # -- API for the viewer ----------------------------------------------------------------
    def on_stored(self, listener: StoredCallback) -> None:
        """Call ``listener(sop_uid, series_uid)`` when an instance is in the store (any thread)."""
        self._listeners.append(listener)

    def prioritise(self, series_uid: str | None = None, sop_uids: Iterable[str] = (), *,
                   replace: bool = False) -> None:
        """Fetch these instances next, one by one, and this series before the other series.

        ``sop_uids`` belong to ``series_uid`` (give it: the per-instance URL needs it).
        ``replace``: drop what earlier calls asked for and has not been fetched yet (the user
        scrolled on; an instance already on its way still arrives).
        """
        with self._lock:
            self.schedule.prioritise(series_uid, sop_uids, replace=replace)
        self._wake.set()

    def fetch_now(self, series_uid: str, sop_uid: str, timeout: float = 30.0) -> bool:
        """Fetch one instance on the calling thread, at once, and wait until it is in the store.

        For a preview while the job is still being planned or held (see :meth:`hold`): the
        instance goes the way of every other (checked, stored, indexed, ``on_stored``
        listeners), and a later :meth:`prioritise` of it is not fetched again. True when it
        is in the store; False when the hub refused or the store rejected it. Network: not
        on a UI thread.
        """
        with self._lock:  # claimed: nobody else asks for it meanwhile
            busy = not self.schedule.claim(sop_uid, series_uid)
        try:
            if not busy and not self._fetch_one(sop_uid, urgent=True):
                return False
        except HubError as exc:
            log.info("a single instance could not be fetched now: %s", exc)
            return False
        deadline = time.monotonic() + timeout
        refused = len(self.ingest.problems)
        with self._arrival:
            while not self.schedule.is_local(sop_uid):
                left = deadline - time.monotonic()
                if left <= 0 or len(self.ingest.problems) > refused:
                    return False
                self._arrival.wait(min(left, 0.05))
        return True

    def read_in_order(self, series_uid: str, sops: list[str], k: int) -> None:
        """Someone reads this series (``sops``: its instances in slice order; ``k``: the slice
        in view): fetch it instance by instance, nearest to the slice in view first
        (:meth:`read_focus` moves it), :data:`READ_WORKERS` requests side by side, instead of
        one series stream. A stream comes in the hub's order and would bring again every
        instance fetched one by one around the slice in view: measured over a 25 MB/s link
        with a reader scrolling five times, 62 instances fetched singly, 15 % of the study's
        bytes sent twice and the download 22 % longer."""
        with self._lock:
            self.schedule.read_in_order(series_uid, sops, k)

    def read_focus(self, series_uid: str, k: int) -> None:
        """The reader of ``series_uid`` looks at slice ``k`` now (see :meth:`read_in_order`)."""
        with self._lock:
            self.schedule.read_focus(series_uid, k)

    def expected(self, series_uid: str | None = None) -> int:
        """Instances the hub holds (in one series, or in the study)."""
        with self._lock:
            return self.schedule.expected(series_uid)

    def arrived(self, series_uid: str | None = None) -> set[str]:
        """SOP Instance UIDs in the local store (of one series, or all)."""
        with self._lock:
            return self.schedule.arrived(series_uid)

    def remaining(self, series_uid: str) -> set[str]:
        """SOP Instance UIDs of a series not in the local store yet. Asks the hub for the
        series' instance list the first time (network: call it off the UI thread)."""
        listed = self._listing(series_uid)
        return listed - self.arrived(series_uid)

    def hold(self) -> None:
        """Before :meth:`start`: plan the job, then wait for :meth:`release` before fetching
        (a viewer learns which instances it needs while the job is being set up)."""
        self._go.clear()

    def release(self) -> None:
        """Go on after :meth:`hold` (priorities given by then are fetched first)."""
        self._go.set()

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
        self._go.set()

    # -- the work --------------------------------------------------------------------------
    def run(self, job_id: str = "") -> TransferResult:
        """Run (or resume) the fetch job ``job_id`` (empty: the study's open fetch job, or a
        new one)."""
        started = time.monotonic()
        message = ""
        self.job_id = job_id or self.job_id
        lane = threading.Thread(target=self._lane, name="download-lane", daemon=True)
        try:
            self._plan()
            while not self._go.wait(0.1):
                self.progress.check()
            self._urgent_first()
            lane.start()
            self._stalled = 0
            message = retry_rounds(self._round, self.backoff, self.queue, self.job_id,
                                   self.progress, stopped=fetch_stop_state) or self._stall_message
        except Cancelled:
            message = "cancelled; the fetch resumes on the next 'relay fetch'"
            if self.job_id:
                self.queue.set_state(self.job_id, "paused", "paused by the user")
        except HubError as exc:  # the plan itself failed
            message = str(exc)
            if self.job_id:
                self.queue.set_state(self.job_id, "waiting" if exc.retryable else "stuck", message)
        except StoreError as exc:  # a full disk
            message = self._stopped_by(exc)
        except RelayError:  # the study is not on the hub: no job was made
            raise
        except Exception as exc:
            message = self._stopped_by(exc)
        finally:
            self._done.set()
            self._wake.set()
            if lane.is_alive():
                lane.join(30)
            try:
                self.ingest.close()  # the last batch is indexed (or the disk is full)
            except Exception as exc:
                message = self._stopped_by(exc)
            self.progress.finish()
        self._result = self._finish(message, time.monotonic() - started)
        return self._result

    def _stopped_by(self, exc: Exception) -> str:
        return stop_on_fault(self.queue, self.job_id, exc, "fetch")

    def _round(self) -> bool:
        """Bring the series still short; False when none is (or the hub stopped delivering)."""
        short = self._short_series()
        if not short:
            return False
        before = len(self.arrived())
        self._bulk(short)
        self.ingest.drain()
        if len(self.arrived()) > before:
            self._stalled = 0
            return True
        self._stalled += 1
        if self._stalled >= self.settings.max_attempts:
            self._stall_message = "the hub did not deliver every instance it lists"
            return False
        return True

    def _plan(self) -> None:
        """Ask the hub for the study's series and counts; record (or resume) the job."""
        found = list(self.peer.series(self.study_uid))
        if self.series_uids:
            found = [d for d in found if value(d, SERIES_UID) in self.series_uids]
        if not found:
            raise TransferError(f"study {self.study_uid} is not on hub '{self.hub}'"
                                + (" (not the series asked for)" if self.series_uids else ""))
        job = self.queue.job(self.job_id) if self.job_id else None
        job = job or self.queue.find_open("fetch", self.hub, self.study_uid, self.series_uids)
        if job is None:
            job = self.queue.create("fetch", self.hub, self.study_uid, self.series_uids, [],
                                    method=self.method)
        self.job_id = job.id
        self.queue.claim(job.id)
        for d in found:
            series = value(d, SERIES_UID)
            if not series:
                continue
            local = {i.sop_instance_uid for i in self.store.instances(series)}
            with self._lock:
                self.schedule.add_series(series, int(value(d, SERIES_INSTANCES, 0) or 0), local)
        self.progress.set_total(self.expected())
        self.progress.advance(len(self.arrived()))

    def _short_series(self) -> list[str]:
        with self._lock:
            return self.schedule.short_series()

    def _listing(self, series: str) -> set[str]:
        with self._lock:
            known = self._listed.get(series)
        if known is not None:
            return known
        listed = {u for d in self.peer.instances(self.study_uid, series)
                  if (u := value(d, SOP_UID))}
        with self._lock:
            self._listed[series] = listed
            self.schedule.set_listing(series, listed)
        return listed

    def _bulk(self, short: list[str]) -> None:
        """Stream the short series whole (in priority order); top up nearly complete ones."""
        done: set[str] = set()
        while True:
            self.progress.check()
            with self._lock:
                series = self.schedule.next_series(short, done)
                reading = series is not None and self.schedule.is_read(series)
            if series is None:
                return
            done.add(series)
            if reading:
                if not self._fetch_nearest(series):
                    continue  # the reader's new series first; this one in the next round
                self.ingest.drain()  # what came is indexed: only what did not is asked again
                if len(self.arrived(series)) >= self.expected(series):
                    continue
            elif len(self.arrived(series)) * 2 < self.expected(series):
                self._stream(series, None, self._close_part)
                continue
            # nearly complete, or what a read series' slice plan does not hold (other stacks,
            # non-images): one by one from the listing
            for sop in sorted(self.remaining(series)):
                self._fetch_one(sop)

    def _fetch_nearest(self, series: str) -> bool:
        """Fetch the series someone reads one instance per request, :data:`READ_WORKERS` at a
        time, each time the instance nearest the slice in view that is neither here nor on
        its way; an instance the hub no longer has (404) is left for the listing. False when
        it stopped because the reader turned to another series still coming (it is fetched
        first, then this one goes on)."""
        gone: set[str] = set()
        turned: list[str] = []

        def claim() -> tuple[str, int] | None:
            with self._lock:
                lead = self.schedule.turned_from(series)
                if lead is not None:
                    turned.append(lead)
                    return None
                return self.schedule.claim_nearest(series, gone)

        def work() -> None:
            while (claimed := claim()) is not None:
                sop, distance = claimed
                self.progress.check()
                # near the slice in view: indexed at once, not with the next batch
                if not self._fetch_one(sop, urgent=distance <= READ_URGENT):
                    gone.add(sop)

        with ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="download-read") as pool:
            for future in [pool.submit(work) for _ in range(READ_WORKERS)]:
                future.result()  # a fault (hub away, cancel) goes to run()'s handling
        return not turned

    def _next_urgent(self) -> str | None:
        with self._lock:
            return self.schedule.next_urgent()

    def _urgent_first(self) -> None:
        """Fetch what was prioritised before the start (the slice in view) before anything else,
        so the first image does not queue behind the bulk download. They are stored before the
        bulk starts: on a busy machine the bulk's first parts would otherwise overtake them in
        the ingest workers (a few milliseconds of the bulk against the picture the reader waits
        for)."""
        while (sop := self._next_urgent()) is not None:
            self._fetch_one(sop, urgent=True)
        self.ingest.drain()  # nothing submitted: returns at once

    def _lane(self) -> None:
        """The priority lane: instances someone is waiting for, one request each."""
        while not self._done.is_set():
            sop = self._next_urgent()
            if sop is None:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            try:
                self._fetch_one(sop, urgent=True)
            except (HubError, Cancelled) as exc:
                log.info("priority fetch failed (%s); the bulk download will bring it", exc)
            except Exception:
                log.exception("priority fetch failed")

    def _fetch_one(self, sop: str, urgent: bool = False) -> bool:
        """Fetch one instance (False: the hub no longer has it)."""
        with self._lock:
            series = self.schedule.series_of(sop)
            assert series is not None, "an instance is fetched only once its series is known"
            self.schedule.in_flight.add(sop)
            self.singles.append(sop)
        received = False
        try:
            self._stream(series, sop, self._close_urgent if urgent else self._close_part)
            received = True
            return True
        except HubError as exc:
            if exc.status != 404:
                raise
            log.warning("an instance listed by the hub is no longer there (404)")
            return False
        finally:
            with self._lock:  # received: still on its way until indexed (see _stored)
                if not received or self.schedule.is_local(sop):
                    self.schedule.release(sop)

    def _stream(self, series: str, sop: str | None, close: Callable[[PipedPart], None]) -> None:
        """Retrieve a series (or one of its instances) part by part; a part cut short by a
        fault is deleted."""
        current: list[PipedPart] = []

        def open_part(headers: dict[str, str]) -> PipedPart:
            part = self.ingest.open_part(headers)
            current[:] = [part]
            return part

        def close_part(part: PipedPart) -> None:
            current.clear()
            close(part)

        try:
            for _ in self.peer.retrieve(self.study_uid, series, sop, open_part=open_part,
                                        close_part=close_part):
                self.progress.check()
        finally:
            for part in current:
                part.discard()

    def _close_part(self, part: PipedPart, urgent: bool = False) -> None:
        with self._lock:
            self.bytes += part.size
        self.ingest.submit(part, urgent)

    def _close_urgent(self, part: PipedPart) -> None:
        self._close_part(part, urgent=True)

    def _stored(self, sop: str, series: str) -> None:
        with self._lock:
            if not self.schedule.arrived_one(sop, series):
                return
            if self.first_stored_at is None:
                self.first_stored_at = time.monotonic()
            self.arrivals.add(self.study_uid)
            self._arrival.notify_all()
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
        missing: list[str] = []
        for series in self._short_series():
            try:
                missing += sorted(self.remaining(series))
            except HubError:  # the hub is away: name the series and how many
                short = self.expected(series) - len(self.arrived(series))
                missing.append(f"{short} instance(s) of series {series}")
        arrived = self.arrived()
        self.queue.add_items(self.job_id, [(u, self.schedule.series_of(u) or "", "", 0)
                                           for u in sorted(arrived) + missing])
        self.queue.mark(self.job_id, arrived, "verified")
        self.queue.add_totals(self.job_id, self.bytes, seconds)
        job = self.queue.job(self.job_id)
        if job.state == "running":
            if missing:
                message = message or f"{len(missing)} instance(s) did not arrive"
                self.queue.set_state(self.job_id, "failed", message)
            else:
                self.queue.set_state(self.job_id, "verified",
                                     f"{len(arrived)} of {len(arrived)} in the local store")
        job = self.queue.job(self.job_id)
        if self.arrivals.studies() or job.state in ("failed", "stuck"):
            audit.record(self.store.home, "retrieve", study_uid=self.study_uid,
                         peer=f"{self.hub}@{self.peer.where}",
                         outcome=audit.SUCCESS if job.state == "verified" else
                         audit.SERIOUS_FAILURE if job.state == "failed" else audit.MINOR_FAILURE,
                         detail={**self.arrivals.pop(self.study_uid), "job": self.job_id,
                                 "missing": len(missing)})
        # verified only when the job is: a job stopped before its plan (the PACS down) has
        # nothing missing yet and is not complete
        complete = not missing and job.state == "verified"
        return TransferResult(job=self.job_id, state="verified" if complete else "failed",
                              instances=len(arrived) + len(missing), verified=len(arrived),
                              missing=missing, bytes=job.bytes, seconds=job.seconds,
                              message=message or ("" if complete else job.message),
                              resumable=job.state in ACTIVE)
