"""Sending a study to a PACS (C-STORE), in the durable transfer queue, verified with evidence.

A job (kind ``pacs-send``) runs in rounds like a hub send: ask the PACS which of the job's
instances it already holds (IMAGE-level C-FIND), so a resumed job never sends twice what arrived
before a kill; send the rest as stored (or decoded, when the PACS accepts only uncompressed:
said in the job's message); then verify. Verification is Storage Commitment where the PACS
offers it, else an IMAGE-level C-FIND of the SOP Instance UIDs, else the job ends ``sent`` with
"sent, not verified" - never ``verified`` without evidence. A PACS outage is waited out with
backoff; a refusal the user must fix (AE titles, TLS) stops the job as ``stuck``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait

from pydicom.dataset import Dataset

from app.errors import Cancelled, DimseError, HubError
from app.net.dimse.client import DimseClient, Sender, StoreOutcome
from app.net.queue import Item, Job, TransferQueue
from app.net.retry import Backoff, retry_rounds
from app.net.send import TransferResult, audit_transfer
from app.settings import TransferSettings
from app.store.local import Store
from app.tasks import Progress
from app.workflow import audit

log = logging.getLogger(__name__)

KIND = "pacs-send"
#: Instances recorded as sent in one queue transaction (a kill loses at most these records;
#: the next run finds those instances on the PACS and does not send them again).
MARK_EVERY = 32


class PacsSender:
    """Runs one ``pacs-send`` job to the end (or to a stop the user must act on)."""

    def __init__(self, store: Store, queue: TransferQueue, client: DimseClient,
                 settings: TransferSettings, progress: Progress | None = None, *,
                 give_up: float | None = None, commit_wait: float = 10.0) -> None:
        self.store = store
        self.queue = queue
        self.client = client
        self.settings = settings
        self.progress = progress or Progress("Sending")
        self.backoff = Backoff(settings, give_up)
        self.commit_wait = commit_wait
        self.bytes = 0
        self.decoded = 0
        self.evidence = ""
        self._lock = threading.Lock()
        self.sent = audit.Arrivals()

    def run(self, job_id: str) -> TransferResult:
        job = self.queue.claim(job_id)
        started = time.monotonic()
        self.progress.set_total(job.total)
        self.progress.advance(job.count("sent", "verified", "failed"))
        message = ""
        try:
            message = self._rounds(job)
        except Cancelled:
            self.queue.set_state(job.id, "paused", "paused by the user")
            message = "cancelled; the job resumes on the next 'relay send'"
        finally:
            self.queue.add_totals(job.id, self.bytes, time.monotonic() - started)
            self.progress.finish()
        return self._result(job.id, message)

    def _rounds(self, job: Job) -> str:
        return retry_rounds(lambda: self._round(job), self.backoff, self.queue, job.id,
                            self.progress, peer_word="PACS", stopped=stop_state)

    # -- one round -------------------------------------------------------------------------
    def _round(self, job: Job) -> bool:
        """Send what the PACS lacks, then verify; False when nothing is left to do."""
        self.progress.check()
        items = self.queue.items(job.id, ("pending", "sent"))
        if not items:
            return False
        on_pacs = self._on_pacs(job, [i.sop_uid for i in items])
        pending: list[Item] = []
        changes: list[tuple[str, str, str]] = []
        for item in items:
            if item.sop_uid in (on_pacs or set()) and item.state == "pending":
                changes.append((item.sop_uid, "sent", ""))  # arrived before a kill
            elif item.state == "pending":
                if item.attempts >= self.settings.max_attempts:
                    changes.append((item.sop_uid, "failed", item.reason or "refused by the PACS"))
                else:
                    pending.append(item)
        if changes:
            self.queue.mark_many(job.id, changes)
            self.progress.advance(len(changes))
        if pending:
            self.queue.note_attempt(job.id)
            self._send(pending, job)
            return True
        self._verify(job)
        return False

    def _on_pacs(self, job: Job, uids: list[str]) -> set[str] | None:
        """Which of these SOP Instance UIDs the PACS holds (C-FIND), or None if it will not say."""
        query = Dataset()
        query.StudyInstanceUID = job.study_uid
        query.SeriesInstanceUID = ""
        query.SOPInstanceUID = ""
        wanted = set(uids)
        try:
            return {str(m.SOPInstanceUID) for m in self.client.find("IMAGE", query, self.progress)
                    if str(m.get("SOPInstanceUID", "")) in wanted}
        except DimseError as exc:
            if exc.retryable and exc.kind != "aborted":
                raise
            log.info("the PACS does not answer image queries: %s", exc)
            return None

    def _send(self, pending: list[Item], job: Job) -> None:
        """C-STORE the pending items on ``in_flight`` associations side by side (one was half
        of storescu's speed into Orthanc: bench/bench_dimse.py), each a stripe of the list."""
        info = self._stored_info(pending)
        pairs = [(c, ts) for c, ts in info.values()]
        lanes = max(1, min(self.settings.in_flight, len(pending)))
        stripes = [pending[k::lanes] for k in range(lanes)]
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="c-store") as pool:
            futures = [pool.submit(self._lane, stripe, info, pairs, job, stop)
                       for stripe in stripes]
            wait(futures)
        errors = [f.exception() for f in futures if f.exception() is not None]
        for exc in errors:
            if isinstance(exc, Cancelled):
                raise exc
        if errors:
            raise errors[0]  # type: ignore[misc]

    def _lane(self, items: list[Item], info: dict[str, tuple[str, str]],
              pairs: list[tuple[str, str]], job: Job, stop: threading.Event) -> None:
        done: list[tuple[str, str, str]] = []
        try:
            with self.client.sending(pairs) as sender:
                for n, item in enumerate(items, 1):
                    if stop.is_set():
                        return
                    self.progress.check()
                    outcome = self._send_one(sender, item, info.get(item.sop_uid), n)
                    if outcome.stored:
                        done.append((item.sop_uid, "sent", ""))
                        with self._lock:
                            self.bytes += item.size
                            self.decoded += outcome.decoded
                        self.sent.add(job.study_uid)
                        self.progress.advance(1)
                    else:
                        reason = outcome.comment or f"the PACS answered 0x{outcome.status:04X}"
                        self.queue.mark(job.id, [item.sop_uid], "pending", reason, attempt=True)
                        log.info("the PACS refused an instance: %s", reason)
                    if len(done) >= MARK_EVERY:
                        self.queue.mark_many(job.id, done, attempt=True)
                        done = []
        except BaseException:
            stop.set()
            raise
        finally:
            self.queue.mark_many(job.id, done, attempt=True)

    def _send_one(self, sender: Sender, item: Item, info: tuple[str, str] | None,
                  msg_id: int) -> StoreOutcome:
        path = self.store.root / item.path
        try:
            intact = path.stat().st_size == item.size
        except OSError:
            intact = False
        if not intact or info is None:
            return StoreOutcome(0xA700, comment="the local file is missing or changed")
        return sender.send(path, info[0], info[1], msg_id=msg_id % 65536 or 1)

    def _stored_info(self, items: Iterable[Item]) -> dict[str, tuple[str, str]]:
        """SOP Instance UID -> (SOP Class UID, stored transfer syntax), from the store index."""
        out: dict[str, tuple[str, str]] = {}
        for series_uid in sorted({i.series_uid for i in items}):
            for inst in self.store.instances(series_uid):
                out[inst.sop_instance_uid] = (inst.sop_class_uid, inst.transfer_syntax_uid)
        return out

    # -- verification ----------------------------------------------------------------------
    def _verify(self, job: Job) -> None:
        sent = self.queue.items(job.id, ("sent",))
        if not sent:
            return
        uids = [i.sop_uid for i in sent]
        info = self._stored_info(sent)
        committed = self.client.commit([(info[u][0], u) for u in uids if u in info],
                                       wait=self.commit_wait)
        if committed is not None:
            self.evidence = "storage commitment"
            found: set[str] | None = committed
        else:
            found = self._on_pacs(job, uids)
            self.evidence = "C-FIND" if found is not None else ""
        if found is None:
            return  # sent, not verified: said by _result
        self.queue.mark(job.id, [u for u in uids if u in found], "verified")
        gone = [u for u in uids if u not in found]
        if gone:
            self.queue.mark(job.id, gone, "pending", f"sent but not confirmed by "
                                                     f"{self.evidence}", attempt=True)

    def _result(self, job_id: str, message: str) -> TransferResult:
        job = self.queue.job(job_id)
        verified = job.count("verified")
        missing = [i.sop_uid for i in self.queue.items(job_id, ("pending", "failed"))]
        notes = []
        if self.decoded:
            notes.append(f"{self.decoded} instance(s) decoded to uncompressed (lossless) because "
                         "the PACS accepts only uncompressed for them")
        state = job.state
        if job.state == "running":
            if missing:
                failed = self.queue.items(job_id, ("failed",))
                reasons = sorted({i.reason for i in failed})
                message = message or f"{len(failed)} instance(s) refused by the PACS: " + \
                    "; ".join(reasons)
                state = "failed"
            elif job.count("sent"):
                state = "sent"
                message = (f"sent, not verified: {job.count('sent')} of {job.total} sent; the "
                           "PACS offers neither storage commitment nor image queries")
            else:
                state = "verified"
                message = f"{verified} of {job.total} verified by {self.evidence or 'the PACS'}"
            self.queue.set_state(job_id, state, "; ".join([message, *notes]))
        job = self.queue.job(job_id)
        result = TransferResult(job=job_id, state=state, instances=job.total, verified=verified,
                                missing=missing, bytes=job.bytes, seconds=job.seconds,
                                message=job.message if state != "paused" else message)
        audit_transfer(self.store.home, job, self.client.peer.where, self.sent, result,
                       verifies=state != "sent")
        return result


def stop_state(exc: HubError) -> str:
    """``waiting`` (try later), ``failed`` (the PACS answered: no), ``stuck`` (the user must
    fix something: AE titles, TLS, address)."""
    return "waiting" if exc.retryable else "failed" if exc.kind == "failed" else "stuck"
