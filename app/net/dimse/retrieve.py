"""Retrieving a study (or some of its series) from a PACS into the local store: C-GET or C-MOVE,
in the durable transfer queue, through the store's one ingest path.

A job (kind ``pacs-retrieve``) learns its instances from an IMAGE-level C-FIND, marks those
already in the store, and asks for the rest series by series (the whole series when none is
here, else just the missing SOP Instance UIDs), so a job resumed after a kill asks only for what
is missing and every instance is stored once. Each received instance is checked and placed
durably (:func:`app.store.ingest.stage_bytes`: byte-exact as received, SHA-256, fsync) and
indexed within a fraction of a second, so a study can be opened while it arrives. An instance
the PACS sends that cannot be read gets a failure status and a reason; the rest goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from app.errors import Cancelled, DimseError, StoreError
from app.imports.media import Problem
from app.net.dimse.client import DimseClient
from app.net.dimse.query import find_instances, study_classes
from app.net.dimse.send import stop_state
from app.net.queue import Job, TransferQueue
from app.net.retry import Backoff, retry_rounds
from app.settings import TransferSettings
from app.store.ingest import Duplicate, stage_bytes
from app.store.local import Store, StoredFile
from app.tasks import Progress
from app.workflow import audit

log = logging.getLogger(__name__)

KIND = "pacs-retrieve"
METHODS = ("get", "move")
#: Received instances are indexed at least this often (seconds), so the study can be opened and
#: read while it arrives; and after this many, whichever comes first.
INDEX_EVERY_SECONDS = 0.25
INDEX_EVERY = 32


@dataclass
class RetrieveResult:
    """How a retrieve job ended; :meth:`to_json` is the ``relay retrieve --json`` shape."""

    job: str
    state: str
    instances: int
    stored: int
    failed: int
    bytes: int
    seconds: float
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "state": self.state, "instances": self.instances,
                "stored": self.stored, "failed": self.failed, "bytes": self.bytes,
                "seconds": round(self.seconds, 3)}


def retrieve_job(queue: TransferQueue, pacs: str, study_uid: str,
                 series_uids: list[str] | None = None) -> Job:
    """The job retrieving this study (or series) from ``pacs``: an unfinished one is resumed."""
    series = sorted(series_uids or [])
    job = queue.find_open(KIND, pacs, study_uid, series)
    return job or queue.create(KIND, pacs, study_uid, series, [])


class Receiver:
    """The C-STORE handler of a retrieval: each instance staged durably, indexed in batches,
    recorded in the job. Runs on pynetdicom's association threads."""

    def __init__(self, store: Store, queue: TransferQueue, job_id: str,
                 progress: Progress) -> None:
        self.store = store
        self.queue = queue
        self.job_id = job_id
        self.progress = progress
        self.bytes = 0
        self.problems: dict[str, str] = {}
        self._lock = threading.Lock()
        self.arrivals = audit.Arrivals()
        """When the instances of this run came (the audit's ``retrieve`` event)."""
        self._staged: list[StoredFile] = []
        self._known: list[str] = []
        self._last = 0.0
        #: SOP Instance UIDs already items of the job (others are added as they arrive).
        self.planned: set[str] = set()
        self._new: list[tuple[str, str, str, int]] = []

    def handle(self, event: evt.Event) -> int:
        data = event.encoded_dataset()
        sop = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        try:
            staged = stage_bytes(self.store, data, f"C-STORE {sop or '(no UID)'}")
        except StoreError as exc:
            log.error("a received instance cannot be stored: %s", exc)
            return 0xA700  # out of resources: the PACS may retry it
        if isinstance(staged, Problem):
            log.info("a received instance was refused: %s", staged.reason)
            with self._lock:
                self.problems[sop] = staged.reason
            return 0xC000  # cannot understand
        uid = staged.header.instance.sop_instance_uid
        series = staged.header.instance.series_instance_uid
        self.arrivals.add(staged.header.study.study_instance_uid,
                          new=not isinstance(staged, Duplicate))
        with self._lock:
            self.bytes += len(data)
            if isinstance(staged, Duplicate):
                self._known.append(uid)
            else:
                self._staged.append(staged)
            if uid not in self.planned:  # learnt as it arrives: recorded with the batch
                self._new.append((uid, series, "", len(data)))
                self.planned.add(uid)
            due = (len(self._staged) + len(self._known) >= INDEX_EVERY
                   or time.monotonic() - self._last >= INDEX_EVERY_SECONDS)
        if due:
            self.flush()
        return 0x0000

    def flush(self) -> None:
        """Index what was staged and record it in the job (``verified``: in the local store)."""
        with self._lock:
            files, self._staged = self._staged, []
            known, self._known = self._known, []
            new, self._new = self._new, []
            self._last = time.monotonic()
            if not files and not known:
                return
            if new:
                self.queue.add_items(self.job_id, new)
            if files:
                self.store.commit(files)
            uids = [f.header.instance.sop_instance_uid for f in files] + known
            self.queue.mark(self.job_id, uids, "verified")
        self.progress.advance(len(uids))


class PacsRetrieval:
    """Runs one ``pacs-retrieve`` job to the end (or to a stop the user must act on)."""

    def __init__(self, store: Store, queue: TransferQueue, client: DimseClient,
                 settings: TransferSettings, progress: Progress | None = None, *,
                 method: str = "get", give_up: float | None = None) -> None:
        if method not in METHODS:
            raise DimseError("failed", f"retrieve method must be one of {', '.join(METHODS)}")
        self.store = store
        self.queue = queue
        self.client = client
        self.settings = settings
        self.method = method
        self.progress = progress or Progress("Retrieving")
        self.backoff = Backoff(settings, give_up)
        self.receiver: Receiver | None = None
        self.classes: dict[str, str] = {}
        self._asked_whole = False

    @property
    def bytes(self) -> int:
        return self.receiver.bytes if self.receiver is not None else 0

    def run(self, job_id: str) -> RetrieveResult:
        job = self.queue.claim(job_id)
        self.receiver = Receiver(self.store, self.queue, job.id, self.progress)
        started = time.monotonic()
        message = ""
        try:
            message = self._rounds(job)
        except Cancelled:
            self.queue.set_state(job.id, "paused", "paused by the user")
            message = "cancelled; the job resumes on the next 'relay retrieve'"
        finally:
            self.receiver.flush()
            self.queue.add_totals(job.id, self.bytes, time.monotonic() - started)
            self.progress.finish()
        return self._result(job.id, message)

    def _rounds(self, job: Job) -> str:
        assert self.receiver is not None
        return retry_rounds(lambda: self._round(job), self.backoff, self.queue, job.id,
                            self.progress, peer_word="PACS", stopped=stop_state,
                            on_fault=self.receiver.flush)

    def _round(self, job: Job) -> bool:
        """Ask for what is missing; False when nothing is left to do."""
        self.progress.check()
        if not self._asked_whole and not self.queue.items(job.id) \
                and self.store.study(job.study_uid) is None:
            self._asked_whole = True  # none of it here yet: ask for all of it at once
            self._get_whole(job)
        self._plan(job)
        pending = self.queue.items(job.id, ("pending",))
        stale = [i for i in pending if i.attempts >= self.settings.max_attempts]
        if stale:
            self.queue.mark_many(job.id, [(i.sop_uid, "failed", i.reason or "the PACS did not "
                                           "send it") for i in stale])
        pending = [i for i in pending if i.attempts < self.settings.max_attempts]
        if not pending:
            return False
        self.queue.note_attempt(job.id)
        by_series: dict[str, list[str]] = {}
        for item in pending:
            by_series.setdefault(item.series_uid, []).append(item.sop_uid)
        assert self.receiver is not None
        try:
            for series_uid, uids in by_series.items():
                self._ask(job, series_uid, uids)
        finally:
            self.receiver.flush()  # what arrived before a fault is indexed now
        still = [i.sop_uid for i in self.queue.items(job.id, ("pending",))]
        problems = self.receiver.problems
        for uid in still:
            self.queue.mark(job.id, [uid], "pending", problems.get(uid, "the PACS did not send "
                                                                        "it"), attempt=True)
        return bool(still)

    def _get_whole(self, job: Job) -> None:
        """A fresh job asks for the whole study (or its series) at once, before listing its
        instances: the first image arrives after one round trip, not after an IMAGE-level
        search of the whole study. The listing afterwards finds anything that did not come."""
        classes, count = study_classes(self.client, job.study_uid, self.progress)
        if count:
            self.progress.set_total(count)
        ident = Dataset()
        ident.StudyInstanceUID = job.study_uid
        ident.QueryRetrieveLevel = "STUDY"
        if job.series_uids:
            ident.QueryRetrieveLevel = "SERIES"
            ident.SeriesInstanceUID = list(job.series_uids)
        assert self.receiver is not None
        try:
            if self.method == "get":
                self.client.get(ident, classes or _common_classes(), self.receiver.handle,
                                self.progress)
            else:
                self.client.move(ident, self.receiver.handle, self.progress)
        except DimseError as exc:
            if exc.retryable:
                raise
            log.info("asking for the whole study failed (%s); asking series by series", exc)
        finally:
            self.receiver.flush()

    def _plan(self, job: Job) -> None:
        """Learn the job's instances (IMAGE-level C-FIND) and mark those already stored."""
        found = list(find_instances(self.client, job.study_uid, list(job.series_uids) or None,
                                    self.progress))
        if not found and not self.queue.items(job.id):
            raise DimseError("failed", f"{self.client.peer.where} has no instances of study "
                                       f"{job.study_uid}" + (" in the series asked for"
                                                              if job.series_uids else ""))
        self.classes = {sop: cls for sop, _, cls in found if cls}
        self.queue.add_items(job.id, [(sop, series, "", 0) for sop, series, _ in found])
        assert self.receiver is not None
        self.receiver.planned.update(i.sop_uid for i in self.queue.items(job.id))
        here = [i.sop_uid for i in self.queue.items(job.id, ("pending", "failed"))
                if self.store.has_instance(i.sop_uid)]
        if here:
            self.queue.mark(job.id, here, "verified")
        job_now = self.queue.job(job.id)
        self.progress.set_total(job_now.total)
        if not self.progress.snapshot().done:
            self.progress.advance(job_now.count("verified"))

    def _ask(self, job: Job, series_uid: str, uids: list[str]) -> None:
        whole = not any(i.state == "verified" or i.attempts
                        for i in self.queue.items(job.id) if i.series_uid == series_uid)
        ident = Dataset()
        ident.StudyInstanceUID = job.study_uid
        ident.SeriesInstanceUID = series_uid
        if whole:
            ident.QueryRetrieveLevel = "SERIES"
        else:
            ident.QueryRetrieveLevel = "IMAGE"
            ident.SOPInstanceUID = uids
        assert self.receiver is not None
        classes = {self.classes.get(u, "") for u in uids} - {""}
        if self.method == "get":
            self.client.get(ident, classes or _common_classes(), self.receiver.handle,
                            self.progress)
        else:
            self.client.move(ident, self.receiver.handle, self.progress)

    def _result(self, job_id: str, message: str) -> RetrieveResult:
        job = self.queue.job(job_id)
        stored = job.count("verified")
        failed = job.count("failed")
        state = job.state
        if state == "running":
            if job.total and stored == job.total:
                state = "verified"
                message = f"{stored} of {job.total} instances in the local store"
            else:
                state = "failed"
                reasons = sorted({i.reason for i in self.queue.items(job_id, ("failed",))})
                message = message or (f"{job.total - stored} of {job.total} instances not "
                                      "retrieved: " + "; ".join(reasons))
            self.queue.set_state(job_id, state, message)
        arrivals = self.receiver.arrivals if self.receiver is not None else audit.Arrivals()
        audit.record(self.store.home, "retrieve", study_uid=job.study_uid,
                     peer=f"{job.hub}@{self.client.peer.where}",
                     outcome=audit.SUCCESS if state == "verified" else audit.SERIOUS_FAILURE
                     if state == "failed" else audit.MINOR_FAILURE,
                     detail={**arrivals.detail(job.study_uid), "job": job_id,
                             "method": self.method, "failed": failed})
        return RetrieveResult(job=job_id, state=state, instances=job.total, stored=stored,
                              failed=failed, bytes=job.bytes, seconds=job.seconds,
                              message=message or job.message)


def _common_classes() -> set[str]:
    """SOP classes proposed when the PACS would not say which a study holds."""
    return {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
            "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1",
            "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.1",
            "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.128",
            "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.59",
            "1.2.840.10008.5.1.4.1.1.11.1", "1.2.840.10008.5.1.4.1.1.6.1"}

