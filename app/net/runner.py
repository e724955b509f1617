"""Running the transfer queue in the background (the window's queue panel), without Qt.

:class:`QueueRunner` runs one job at a time in a worker thread: queued jobs, jobs waiting for a
hub whose retry time has come, and jobs left ``running`` by a Relay that was killed. The UI adds
jobs (:meth:`QueueRunner.send`, :meth:`QueueRunner.fetch`), reads :meth:`QueueRunner.jobs` and
the live :class:`~app.tasks.Progress` of the running job (:meth:`QueueRunner.progress`; speed in
its ``rate`` and ``detail``), and asks to :meth:`pause`, :meth:`resume`, :meth:`cancel` or
:meth:`retry`. A stuck job's ``message`` is the plain explanation to show. Listeners given to
:meth:`subscribe` hear of every change, on the worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.errors import RelayError
from app.net import forward, hubs
from app.net.fetch import READ_WORKERS, Download, fetch_job
from app.net.peer import Mover, Peer
from app.net.queue import Job, TransferQueue
from app.net.remote import RemoteStudy
from app.net.send import Sender, send_job
from app.settings import TransferSettings, load_settings
from app.store.local import Store
from app.tasks import Progress

log = logging.getLogger(__name__)

Listener = Callable[[str], None]
#: A mover made for a job: (store, queue, peer, job, settings, progress, give_up) -> Mover.
MoverFactory = Callable[[Store, TransferQueue, Peer, Job, TransferSettings, Progress,
                         float | None], Mover]

#: Job kind -> how its mover is made; the runner drives every mover alike (:class:`Mover`).
MOVERS: dict[str, MoverFactory] = {
    "send": lambda store, queue, peer, job, settings, progress, give_up: Sender(
        store, queue, peer, settings, progress, give_up=give_up),
    "fetch": lambda store, queue, peer, job, settings, progress, give_up: Download(
        store, queue, peer, job.hub, job.study_uid, settings, progress, give_up=give_up,
        series_uids=job.series_uids, method=job.method),
}

class QueueRunner:
    """Works through the transfer queue of one Relay home."""

    #: How long a remote open waits for the worker to let go of the same study's fetch job
    #: (cancelled at once; a read blocked on a silent hub ends with its read timeout) before it
    #: says so plainly: one job never has two downloads.
    handover_seconds = 90.0

    def __init__(self, home: Path, *, poll_seconds: float = 1.0,
                 yield_seconds: float = 10.0) -> None:
        self.home = Path(home)
        self.poll_seconds = poll_seconds
        # a job whose hub stays unreachable this long goes back to ``waiting`` (retried after
        # ``transfer.retry_max_seconds``), so one hub that is down does not hold up the others
        self.yield_seconds = yield_seconds
        self._queue = TransferQueue(self.home)
        self._lock = threading.Lock()
        self._worker_free = threading.Condition(self._lock)  # told when the worker ends a job
        self._current: tuple[str, Progress] | None = None
        #: Jobs run outside the worker (a remote study being read): job id -> its progress.
        self._foreground: dict[str, Progress] = {}
        self._remotes: dict[str, RemoteStudy] = {}
        self._mover: Mover | None = None
        self._intent: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- API -------------------------------------------------------------------------------
    def start(self) -> QueueRunner:
        self._thread = threading.Thread(target=self._loop, name="transfer-queue", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Pause the running job (it resumes next time) and end the worker."""
        self._stop.set()
        with self._lock:
            if self._current:
                self._intent[self._current[0]] = "queued"  # not the user's pause: resume later
                self._current[1].cancel()
            for job_id, progress in self._foreground.items():
                self._intent[job_id] = "queued"  # the worker finishes it next time
                progress.cancel()
            remotes = list(self._remotes.values())
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for remote in remotes:
            remote.wait(timeout)

    def subscribe(self, listener: Listener) -> None:
        """``listener(job_id)`` is called when a job changes state."""
        self._listeners.append(listener)

    def jobs(self) -> list[Job]:
        return self._queue.jobs()

    def progress(self, job_id: str) -> Progress | None:
        with self._lock:
            if job_id in self._foreground:
                return self._foreground[job_id]
            return self._current[1] if self._current and self._current[0] == job_id else None

    def transferred_bytes(self, job_id: str) -> int | None:
        """Bytes moved so far in this run of the running job (for a speed in MB/s), else None."""
        with self._lock:
            remote = self._remotes.get(job_id)
            if remote is not None:  # a study being read while it downloads
                return remote.download.bytes
            running = self._current is not None and self._current[0] == job_id
            mover = self._mover
        return mover.bytes if running and mover is not None else None

    def send(self, hub: str, study_uid: str, series_uids: list[str] | None = None) -> str:
        store = Store(self.home)
        job = send_job(store, self._queue, hub, study_uid, series_uids)
        self._wake.set()
        return job.id

    def fetch(self, hub: str, study_uid: str, series_uids: list[str] | None = None, *,
              method: str = "") -> str:
        """Queue a fetch of a study (or some series) from a hub or PACS (``method``: how a
        PACS is asked, ``get`` or ``move``; empty: as its profile says)."""
        job = fetch_job(self._queue, hub, study_uid, series_uids, method=method)
        self._wake.set()
        return job.id

    def open_remote(self, hub: str, study_uid: str) -> RemoteStudy:
        """Read a study from a hub while it downloads: a fetch job run at once, beside the
        worker (reading never waits behind a send), the instances in view first.

        Returns the :class:`~app.net.remote.RemoteStudy` not started yet: call its
        ``open_series`` (network) off the UI thread; the job is recorded in the queue like
        any fetch and, if Relay stops first, finished later by the worker.
        """
        with self._lock:
            job = self._queue.find_open("fetch", hub, study_uid, [])
            if job is not None and job.id in self._foreground:
                raise RelayError(f"study {study_uid} is already being read from hub '{hub}'")
            if job is None:
                job = self._queue.create("fetch", hub, study_uid, [], [])
            busy = self._current is not None and self._current[0] == job.id
            if busy:  # the worker has it: it lets go, then this open takes over
                assert self._current is not None
                self._current[1].cancel()
            progress = Progress(f"Fetching from {hub}")
            self._foreground[job.id] = progress
        if busy and not self._wait_worker_done(job.id, self.handover_seconds):
            with self._lock:
                self._foreground.pop(job.id, None)
                self._intent[job.id] = "queued"  # the worker's fetch goes on later
            raise RelayError(f"study {study_uid} is being fetched in the background and has not "
                             "stopped yet (the hub is slow to answer); try again in a moment")
        try:
            settings = load_settings(self.home)
            peer = hubs.connect(self.home, hub, settings,  # + the series being read
                                pool_size=settings.transfer.in_flight + 2 + READ_WORKERS)
            download = Download(Store(self.home), self._queue, peer, hub, study_uid,
                                settings.transfer, progress,
                                give_up=settings.transfer.give_up_seconds)
        except Exception:
            with self._lock:
                self._foreground.pop(job.id, None)
            raise
        download.job_id = job.id  # known at once (its plan finds the same open job)
        remote = RemoteStudy(Store(self.home), download, peer)
        job_id = job.id
        with self._lock:
            self._remotes[job_id] = remote
        remote.on_finished(lambda result: self._foreground_done(job_id, result, remote.error))
        self._changed(job.id)
        return remote

    def _wait_worker_done(self, job_id: str, timeout: float) -> bool:
        """Wait until the worker no longer runs ``job_id``; False if it still does after
        ``timeout`` seconds."""
        with self._worker_free:
            return self._worker_free.wait_for(
                lambda: not (self._current and self._current[0] == job_id), timeout)

    def _foreground_done(self, job_id: str, result: object = None, error: str = "") -> None:
        with self._lock:
            # A job that never started (e.g. the study is not on the hub) is marked failed
            # before it leaves the foreground: the worker would otherwise take it, still
            # "queued", in between and run it again (then "stuck" instead of "failed").
            never_started = bool(result is None and error
                                 and self._queue.job(job_id).state == "queued")
            if never_started:
                self._queue.set_state(job_id, "failed", error)
            self._foreground.pop(job_id, None)
            self._remotes.pop(job_id, None)
            intent = self._intent.pop(job_id, None)
        if intent and not never_started:
            self._queue.set_state(job_id, intent, "" if intent == "queued" else
                                  f"{intent} by the user")
        self._changed(job_id)

    def pause(self, job_id: str) -> None:
        self._interrupt(job_id, "paused")

    def cancel(self, job_id: str) -> None:
        self._interrupt(job_id, "cancelled")

    def resume(self, job_id: str) -> None:
        with self._lock:
            # The job shows paused a moment before its worker lets go of it (requests on the
            # wire end first): a Resume pressed then must not be undone by the pause landing.
            if job_id in self._intent:
                self._intent[job_id] = "queued"
            self._queue.set_state(job_id, "queued")
        self._changed(job_id)

    def retry(self, job_id: str) -> None:
        """Try a failed or stuck job again, with fresh attempts for refused instances."""
        self._queue.reset_failed(job_id)
        self.resume(job_id)

    # -- worker ----------------------------------------------------------------------------
    def _interrupt(self, job_id: str, state: str) -> None:
        with self._lock:
            foreground = self._foreground.get(job_id)
            if foreground is not None:
                self._intent[job_id] = state
                foreground.cancel()
                return
            running = self._current is not None and self._current[0] == job_id
            if running:
                self._intent[job_id] = state
                assert self._current is not None
                self._current[1].cancel()
        if not running:
            self._queue.set_state(job_id, state, f"{state} by the user")
            self._changed(job_id)

    def _changed(self, job_id: str) -> None:
        self._wake.set()
        for listener in list(self._listeners):
            try:
                listener(job_id)
            except Exception:
                log.exception("a queue listener failed")

    def _next_job(self) -> Job | None:
        """The job to run next, made the worker's current job in the same hold of the lock:
        a remote open of the same study either sees it taken (and takes it over) or takes it
        first (and the worker skips it), never both running it."""
        now = time.time()
        # The queue is read under the lock that open_remote and _foreground_done hold while
        # they create, mark and hand over a foreground job: a snapshot taken apart from the
        # read let the worker run a remote open's job (seen under load).
        with self._lock:
            job = self._pick(now)
            if job is not None:
                verb = "Sending to" if job.kind == "send" else "Fetching from"
                self._current = (job.id, Progress(f"{verb} {job.hub}", total=job.total or None))
            return job

    def _pick(self, now: float) -> Job | None:
        """The first runnable job, stroke transfers first, then oldest first (the caller holds
        the lock)."""
        waiting = list(reversed(self._queue.jobs(("queued", "waiting", "running"))))
        waiting.sort(key=lambda j: -j.priority)
        for job in waiting:
            if job.id in self._foreground or job.id in forward.STREAMING:
                continue
            if job.state == "waiting" and job.next_try > now:
                continue
            if job.state == "running" and job.owner_pid is not None:
                try:
                    self._queue.claim(job.id)  # only succeeds when its owner is gone
                except RelayError:
                    continue
            return job
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self._next_job()
            if job is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            assert self._current is not None and self._current[0] == job.id
            progress = self._current[1]
        self._changed(job.id)
        try:
            settings = load_settings(self.home)
            store = Store(self.home)
            give_up = min(settings.transfer.give_up_seconds, self.yield_seconds)
            peer = hubs.connect(self.home, job.hub, settings, retrieve=job.method,
                                pool_size=settings.transfer.in_flight + 1)
            mover = MOVERS[job.kind](store, self._queue, peer, job, settings.transfer,
                                     progress, give_up)
            with self._lock:
                self._mover = mover
            mover.run(job.id)
            after = self._queue.job(job.id)
            if after.state == "waiting" and after.next_try == 0:
                self._queue.set_state(job.id, "waiting", after.message,
                                      next_try=time.time() + settings.transfer.retry_max_seconds)
        except RelayError as exc:
            self._queue.set_state(job.id, "stuck", str(exc))
        except Exception as exc:
            log.exception("transfer job crashed")
            self._queue.set_state(job.id, "stuck", f"unexpected error: {type(exc).__name__}")
        finally:
            with self._lock:
                self._current = None
                self._mover = None
                intent = self._intent.pop(job.id, None)
                self._worker_free.notify_all()
            if intent:
                words = "" if intent == "queued" else f"{intent} by the user"
                self._queue.set_state(job.id, intent, words)
            self._changed(job.id)
