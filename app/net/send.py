"""Sending a study to a hub: streamed STOW-RS batches, two in flight, verified by QIDO.

One round of a send job: ask the hub (QIDO, paged) which of the job's instances it holds; those
are ``verified``; instances sent before but not found go back to ``pending`` (one attempt
counted); the ``pending`` ones are sent as STOW-RS batches of the stored bytes. Rounds repeat
until nothing is pending, so the last QIDO is the verification and the first one lets a resumed
job skip what the hub already has (nothing is sent twice after a kill). An instance the hub keeps
refusing is ``failed`` after ``max_attempts`` with the hub's reason. A hub outage is waited out
with backoff (up to ``give_up`` seconds); credentials, TLS and URL problems stop the job as
``stuck`` with the reason, to resume when the user has fixed them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import Cancelled, HubError, TransferError
from app.net.peer import Peer, StoreResult
from app.net.queue import Item, Job, TransferQueue
from app.net.retry import Backoff, retry_rounds
from app.settings import TransferSettings
from app.store.local import Store
from app.tasks import Progress
from app.workflow import audit

log = logging.getLogger(__name__)


@dataclass
class TransferResult:
    """How a send or fetch job ended; :meth:`to_json` is the ``--json`` shape."""

    job: str
    state: str
    instances: int
    verified: int
    missing: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "state": self.state, "instances": self.instances,
                "verified": self.verified, "missing": self.missing, "bytes": self.bytes,
                "seconds": round(self.seconds, 3)}

    @property
    def summary(self) -> str:
        """"N of M verified", or what is missing."""
        text = f"{self.verified} of {self.instances} verified"
        if self.missing:
            text += f"; {len(self.missing)} missing"
        return text


def send_job(store: Store, queue: TransferQueue, hub: str, study_uid: str,
             series_uids: list[str] | None = None, *, kind: str = "send") -> Job:
    """The job sending this study (or these series) to ``hub``: an unfinished one is resumed.
    ``kind`` is ``send`` (a DICOMweb hub) or ``pacs-send`` (a PACS, ``hub`` its name)."""
    series_uids = sorted(series_uids or [])
    job = queue.find_open(kind, hub, study_uid, series_uids)
    if job is not None:
        return job
    study = store.study(study_uid)
    if study is None:
        raise TransferError(f"study {study_uid} is not in the local store")
    wanted = [s for s in study.series if not series_uids or s.series_instance_uid in series_uids]
    unknown = set(series_uids) - {s.series_instance_uid for s in study.series}
    if unknown:
        raise TransferError(f"series not in study {study_uid}: {', '.join(sorted(unknown))}")
    items = []
    for series in wanted:
        for inst in store.instances(series.series_instance_uid):
            assert inst.path is not None
            rel = str(Path(inst.path).relative_to(store.root))
            items.append((inst.sop_instance_uid, series.series_instance_uid, rel, inst.size))
    if not items:
        raise TransferError(f"study {study_uid} has no instances to send")
    return queue.create(kind, hub, study_uid, series_uids, items)


class Sender:
    """Runs one send job to the end (or to a stop the user must act on)."""

    def __init__(self, store: Store, queue: TransferQueue, peer: Peer,
                 settings: TransferSettings, progress: Progress | None = None, *,
                 give_up: float | None = None) -> None:
        self.store = store
        self.queue = queue
        self.peer = peer
        self.settings = settings
        self.progress = progress or Progress("Sending")
        self.backoff = Backoff(settings, give_up)
        self.bytes = 0
        self.sent = audit.Arrivals()
        """When the hub confirmed this run's instances (the audit's ``send`` event)."""

    def run(self, job_id: str) -> TransferResult:
        job = self.queue.claim(job_id)
        started = time.monotonic()
        self.progress.set_total(job.total)
        self.progress.advance(job.count("sent", "verified", "failed"))
        message = ""
        try:
            message = retry_rounds(lambda: self._round(job), self.backoff, self.queue, job.id,
                                   self.progress)
        except Cancelled:
            self.queue.set_state(job.id, "paused", "paused by the user")
            message = "cancelled; the job resumes on the next 'relay send'"
        finally:
            self.queue.add_totals(job.id, self.bytes, time.monotonic() - started)
            self.progress.finish()
        return self._result(job.id, message)

    # -- one round -------------------------------------------------------------------------
    def _round(self, job: Job) -> bool:
        """Check the hub, then send what is pending; False when nothing is left to do."""
        self.progress.check()
        items = self.queue.items(job.id, ("pending", "sent"))
        if not items:
            return False
        on_hub = self._on_hub(job, items)
        changes: list[tuple[str, str, str]] = []
        retry: list[tuple[str, str, str]] = []
        pending: list[Item] = []
        sent_before = {i.sop_uid for i in items if i.state == "sent"}
        for item in items:
            if item.sop_uid in on_hub:
                changes.append((item.sop_uid, "verified", ""))
            elif item.state == "sent":
                retry.append((item.sop_uid, "pending", "confirmed by the hub but not found "
                                                       "by its search afterwards"))
            elif item.attempts >= self.settings.max_attempts:
                changes.append((item.sop_uid, "failed", item.reason or "refused by the hub"))
            else:
                pending.append(item)
        if changes:
            self.queue.mark_many(job.id, changes)
        self.progress.advance(sum(1 for u, _, _ in changes if u not in sent_before))
        if retry:
            self.queue.mark_many(job.id, retry, attempt=True)
            return True  # the next round sends them again
        if not pending:
            return False
        self.queue.note_attempt(job.id)
        self._send(job, pending)
        return True

    def _on_hub(self, job: Job, items: list[Item]) -> set[str]:
        """Which of these items the hub holds. One cheap study-level search first: a study the
        hub does not have needs no instance search. An instance confirmed by STOW but not found
        by UID matching is looked for once more in the full (paged) instance list."""
        if self.peer.study_instance_count(job.study_uid) is None:
            return set()
        uids = [i.sop_uid for i in items]
        try:
            found = self.peer.present(job.study_uid, uids)
        except HubError as exc:
            if exc.kind != "rejected":
                raise
            found = set()  # a hub without UID list matching: the full listing below
        if any(i.sop_uid not in found for i in items if i.state == "sent") or not found:
            found |= self.peer.instance_uids(job.study_uid) & set(uids)
        return found

    def send_now(self, job: Job, items: list[Item], batch_instances: int) -> None:
        """STOW these items now, in batches of ``batch_instances``, without first searching
        the hub (they were never sent): forwarding as they arrive (:mod:`app.net.forward`).
        The job is finished later by :meth:`run`."""
        self._send(job, items, batch_instances)

    def _send(self, job: Job, pending: list[Item], batch_instances: int | None = None) -> None:
        """STOW the pending items in batches, ``in_flight`` at a time; each confirmed batch is
        verified by QIDO on a side thread while the next batches go out."""
        size = max(1, batch_instances or self.settings.batch_instances)
        batches = [pending[i : i + size] for i in range(0, len(pending), size)]
        with ThreadPoolExecutor(max_workers=max(1, self.settings.in_flight),
                                thread_name_prefix="stow") as pool, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify") as checker:
            running: dict[Future[StoreResult], list[Item]] = {}
            checks: list[Future[set[str]]] = []
            error: HubError | None = None
            todo = iter(batches)
            while True:
                while error is None and len(running) < self.settings.in_flight:
                    batch = next(todo, None)
                    if batch is None:
                        break
                    running[pool.submit(self._stow, job, batch)] = batch
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    batch = running.pop(future)
                    try:
                        confirmed = self._record(job, batch, future.result())
                    except HubError as exc:
                        error = error or exc
                        continue
                    if confirmed:
                        checks.append(checker.submit(self.peer.present, job.study_uid,
                                                     confirmed))
                checks = self._verified(job, checks)
                if error is None:
                    self.progress.check()
            for check in checks:
                with contextlib.suppress(HubError):
                    check.result()
            self._verified(job, checks)
            if error is not None:
                raise error

    def _verified(self, job: Job, checks: list[Future[set[str]]]) -> list[Future[set[str]]]:
        """Record finished verifications; return those still running. A failed check is left
        to the next round's search."""
        still = []
        for check in checks:
            if not check.done():
                still.append(check)
                continue
            try:
                found = check.result()
            except HubError:
                continue
            if found:
                self.queue.mark(job.id, found, "verified")
        return still

    def _stow(self, job: Job, batch: list[Item]) -> StoreResult:
        files: list[tuple[Path, int]] = []
        gone: dict[str, str] = {}
        for item in batch:
            path = self.store.root / item.path
            try:
                intact = path.stat().st_size == item.size
            except OSError:
                intact = False
            if intact:
                files.append((path, item.size))
            else:
                gone[item.sop_uid] = "the local file is missing or changed"
        result = self.peer.store(files, job.study_uid) if files else StoreResult(frozenset())
        return StoreResult(result.stored, {**result.failed, **gone})

    def _record(self, job: Job, batch: list[Item], result: StoreResult) -> list[str]:
        """Record the hub's answer for a batch; return the SOP Instance UIDs it confirmed."""
        changes: list[tuple[str, str, str]] = []
        confirmed: list[str] = []
        for item in batch:
            if item.sop_uid in result.stored:
                changes.append((item.sop_uid, "sent", ""))
                confirmed.append(item.sop_uid)
                self.bytes += item.size
                self.sent.add(job.study_uid)
            else:
                reason = result.failed.get(item.sop_uid, "not confirmed in the hub's answer")
                changes.append((item.sop_uid, "pending", reason))
        self.queue.mark_many(job.id, changes, attempt=True)
        for uid, _, reason in changes:
            if reason:
                log.info("hub refused an instance: %s", reason)
                log.debug("refused %s: %s", uid, reason)
        self.progress.advance(len(confirmed))
        return confirmed

    def _result(self, job_id: str, message: str) -> TransferResult:
        job = self.queue.job(job_id)
        verified = job.count("verified")
        missing = [i.sop_uid for i in self.queue.items(job_id, ("pending", "sent", "failed"))]
        if not missing and job.state == "running":
            self.queue.set_state(job_id, "verified", f"{verified} of {job.total} verified")
        elif job.state == "running":
            failed = self.queue.items(job_id, ("failed",))
            reasons = sorted({i.reason for i in failed})
            message = message or f"{len(failed)} instance(s) refused by the hub: " + "; ".join(
                reasons)
            self.queue.set_state(job_id, "failed", message)
        job = self.queue.job(job_id)
        result = TransferResult(
            job=job_id, state="verified" if not missing else "failed", instances=job.total,
            verified=verified, missing=missing, bytes=job.bytes, seconds=job.seconds,
            message=message or job.message,
        )
        audit_transfer(self.store.home, job, self.peer.where, self.sent, result)
        return result


def audit_transfer(home: Path, job: Job, where: str, sent: audit.Arrivals,
                   result: TransferResult, *, verifies: bool = True) -> None:
    """The audit events of one run of a send job: ``send`` (what this run sent, when the first
    and last were confirmed) and, for a peer that can be searched, ``verify`` (how many of the
    job's instances were found there)."""
    peer = f"{job.hub}@{where}"
    detail = {**sent.detail(job.study_uid), "job": job.id, "bytes": result.bytes}
    final = job.state in ("verified", "failed", "sent")
    if detail["instances"] or result.state != "verified":
        outcome = audit.SUCCESS if job.state in ("verified", "sent") else \
            audit.SERIOUS_FAILURE if final else audit.MINOR_FAILURE
        audit.record(home, "send", outcome=outcome, study_uid=job.study_uid, peer=peer,
                     detail=detail)
    if verifies and final:
        audit.record(home, "verify", study_uid=job.study_uid, peer=peer,
                     outcome=audit.SUCCESS if not result.missing else audit.SERIOUS_FAILURE,
                     detail={"instances": result.verified, "missing": len(result.missing),
                             "job": job.id})


def run_send(store: Store, queue: TransferQueue, peer: Peer, job_id: str,
             settings: TransferSettings, progress: Progress | None = None, *,
             give_up: float | None = None) -> TransferResult:
    """Run (or resume) a send job; see :class:`Sender`."""
    return Sender(store, queue, peer, settings, progress, give_up=give_up).run(job_id)
