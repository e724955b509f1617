"""Sending a study to a peer (a hub: streamed STOW-RS batches; a PACS: C-STORE), two batches in
flight, each confirmed by the peer (a search, or storage commitment).

One round of a send job: ask the hub (QIDO, paged) which of the job's instances it holds; those
are ``verified``; instances sent before but not found go back to ``pending`` (one attempt
counted); the ``pending`` ones are sent as STOW-RS batches of the stored bytes. Rounds repeat
until nothing is pending, so the last QIDO is the verification and the first one lets a resumed
job skip what the hub already has (nothing is sent twice after a kill). An instance the hub keeps
refusing is ``failed`` after ``max_attempts`` with the hub's reason. A hub outage is waited out
with backoff (up to ``give_up`` seconds); credentials, TLS and URL problems stop the job as
``stuck`` with the reason, to resume when the user has fixed them. Before each run a job's
instances follow the reconciled-copy rule (:func:`guard_job`): the outside original of a
reconciled study is never what goes out.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import (
    Cancelled,
    HubError,
    NotSupportedByPeer,
    RelayError,
    StoreError,
    TransferError,
)
from app.net.peer import Confirmation, Peer, StoreResult
from app.net.queue import ACTIVE, Item, Job, TransferQueue
from app.net.retry import Backoff, retry_rounds, stop_on_fault, stop_state
from app.net.verify import DIFFERS, differing_copies
from app.settings import TransferSettings
from app.store.local import Store
from app.tasks import Progress
from app.workflow import audit
from app.workflow.sendable import Repoint, job_refusal, outside_versions, repoints

log = logging.getLogger(__name__)

#: Why an instance is not sent when the hub already holds its outside original.
HOLDS_OUTSIDE = ("the destination already holds this instance's outside original under the "
                 "same UID (delivered before the study was reconciled) and keeps it: delete it "
                 "there, then retry this job to send the reconciled copy")
#: Why an instance queued before its study was reconciled is not sent once the reconciled
#: copy has left the store: its outside original is never sent in its place.
COPY_GONE = ("its reconciled copy is no longer in the store, and the outside original is not "
             "sent in its place")


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
    resumable: bool = False  # the job is kept (waiting, stuck, paused): the same command resumes it

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "state": self.state, "instances": self.instances,
                "verified": self.verified, "missing": self.missing, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "message": self.message}

    @property
    def summary(self) -> str:
        """"N of M verified", or what is missing."""
        text = f"{self.verified} of {self.instances} verified"
        if self.missing:
            text += f"; {len(self.missing)} missing"
        return text


def send_job(store: Store, queue: TransferQueue, hub: str, study_uid: str,
             series_uids: list[str] | None = None) -> Job:
    """The job sending this study (or these series) to ``hub`` (a hub or a PACS: any peer
    profile): an unfinished one is resumed."""
    series_uids = sorted(series_uids or [])
    job = queue.find_open("send", hub, study_uid, series_uids)
    if job is not None:
        refusal = job_refusal(store, study_uid, job.created)
        if not refusal:
            return job
        queue.set_state(job.id, "failed", refusal)  # queued before the reconcile: a new job
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
    job = queue.create("send", hub, study_uid, series_uids, items)
    outside = outside_versions(store, study_uid)
    if outside:
        held = {u for u, path in queue.delivered("send", hub, [i[0] for i in items])
                if path in outside}
        if held:
            queue.mark(job.id, held, "failed", HOLDS_OUTSIDE)
            job = queue.job(job.id)
    return job


def _repointed_state(move: Repoint, delivered: bool) -> tuple[str, str]:
    if delivered:
        return "failed", HOLDS_OUTSIDE
    if not move.path:
        return "failed", COPY_GONE
    return "pending", ""


def guard_job(store: Store, queue: TransferQueue, job: Job) -> str:
    """Apply the reconciled-copy rule (:mod:`app.workflow.sendable`) to a send job about to
    run: "" to go on, else why the job is refused. Instances queued with the file of an outside
    original that a UID-keeping reconcile superseded now send the reconciled copy's file; one
    this job already delivered in its outside version is failed with :data:`HOLDS_OUTSIDE`,
    one whose copy has left the store with :data:`COPY_GONE`."""
    refusal = job_refusal(store, job.study_uid, job.created)
    if refusal:
        return refusal
    items = queue.items(job.id)
    moves = repoints(store, job.study_uid, {i.sop_uid: i.path for i in items})
    if moves:
        delivered = {i.sop_uid for i in items if i.state in ("sent", "verified")}
        old = {i.sop_uid: i for i in items}
        queue.repoint(job.id, [
            (m.sop_uid, m.path or old[m.sop_uid].path, m.size or old[m.sop_uid].size,
             *_repointed_state(m, m.sop_uid in delivered)) for m in moves])
        log.info("%d queued instance(s) now send the reconciled copy of their study",
                 len(moves))
    return ""


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
        #: How the peer confirmed what it keeps (``search``, ``storage commitment``,
        #: ``C-FIND``); empty while nothing is confirmed.
        self.evidence = ""
        #: The peer can give no evidence (a PACS with neither commitment nor image queries):
        #: what it accepted stays ``sent``, and the job ends "sent, not verified".
        self.unverifiable = False
        #: Instances the peer took only decoded (lossless) to a syntax it accepts.
        self.decoded: set[str] = set()
        self.sent = audit.Arrivals()
        """When the peer confirmed this run's instances (the audit's ``send`` event)."""

    def run(self, job_id: str) -> TransferResult:
        job = self.queue.claim(job_id)
        refusal = guard_job(self.store, self.queue, job)
        if refusal:
            self.queue.set_state(job.id, "failed", refusal)
            return self._result(job.id, refusal)
        started = time.monotonic()
        self.progress.set_total(job.total)
        self.progress.advance(job.count("sent", "verified", "failed"))
        message = ""
        try:
            message = retry_rounds(lambda: self._round(job), self.backoff, self.queue, job.id,
                                   self.progress)
            if not message and self.settings.verify_bytes:
                self._compare_copies(job)
        except Cancelled:
            self.queue.set_state(job.id, "paused", "paused by the user")
            message = "cancelled; the job resumes on the next 'relay send'"
        except HubError as exc:  # the hub's copies could not be fetched to compare
            message = f"the hub's copies could not be compared: {exc}"
            self.queue.set_state(job.id, stop_state(exc), message)
        except StoreError as exc:
            message = stop_on_fault(self.queue, job.id, exc, "send")
        except RelayError:
            raise
        except Exception as exc:
            message = stop_on_fault(self.queue, job.id, exc, "send")
        finally:
            self.queue.add_totals(job.id, self.bytes, time.monotonic() - started)
            self.progress.finish()
            self.peer.close()
        return self._result(job.id, message)

    def _compare_copies(self, job: Job) -> None:
        """Every instance verified by search: fetch the hub's copies and compare their bytes
        (:mod:`app.net.verify`); a copy that differs fails its instance with the reason."""
        items = self.queue.items(job.id)
        if any(i.state != "verified" for i in items):
            return
        self.progress.advance(0, "comparing the hub's copies byte for byte")
        differ = differing_copies(self.store, self.peer, job.study_uid,
                                  [(i.sop_uid, i.series_uid) for i in items])
        if differ:
            self.queue.mark_many(job.id, [(u, "failed", why) for u, why in differ.items()])

    # -- one round -------------------------------------------------------------------------
    def _round(self, job: Job) -> bool:
        """Check the hub, then send what is pending; False when nothing is left to do."""
        self.progress.check()
        items = self.queue.items(job.id, ("pending", "sent"))
        if not items:
            return False
        on_hub = self._on_hub(job, items)
        if on_hub is None:  # the peer cannot be searched: what it accepted stays "sent"
            self.unverifiable = self.unverifiable or not self.evidence
            on_hub = set()
            items = [i for i in items if i.state == "pending"]
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

    def _on_hub(self, job: Job, items: list[Item]) -> set[str] | None:
        """Which of these items the hub holds (None: the peer cannot be searched). One cheap
        study-level search first: a study the hub does not have needs no instance search. An
        instance confirmed by STOW but not found by UID matching is looked for once more in
        the full (paged) instance list."""
        try:
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
        except NotSupportedByPeer as exc:
            log.info("cannot ask the peer what it holds: %s", exc)
            return None
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
            checks: list[Future[Confirmation]] = []
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
                        checks.append(checker.submit(self.peer.confirm, job.study_uid,
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

    def _verified(self, job: Job, checks: list[Future[Confirmation]]
                  ) -> list[Future[Confirmation]]:
        """Record finished verifications; return those still running. A failed check is left
        to the next round's search."""
        still = []
        for check in checks:
            if not check.done():
                still.append(check)
                continue
            try:
                confirmation = check.result()
            except HubError:
                continue
            if confirmation.found is None:
                self.unverifiable = self.unverifiable or not self.evidence
            elif confirmation.found:
                self.evidence = confirmation.evidence
                self.unverifiable = False
                self.queue.mark(job.id, confirmation.found, "verified")
            if confirmation.refused:  # the next round sends them again
                self.queue.mark(job.id, confirmation.refused, "pending",
                                f"sent but not confirmed by {confirmation.evidence}",
                                attempt=True)
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
        return StoreResult(result.stored, {**result.failed, **gone}, result.decoded)

    def _record(self, job: Job, batch: list[Item], result: StoreResult) -> list[str]:
        """Record the hub's answer for a batch; return the SOP Instance UIDs it confirmed."""
        changes: list[tuple[str, str, str]] = []
        confirmed: list[str] = []
        self.decoded |= result.decoded
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
        state = "verified" if not missing else "failed"
        if missing and self.unverifiable and len(missing) == job.count("sent"):
            state, missing = "sent", []  # accepted, and the peer cannot say more
        if job.state == "running":
            if state == "verified":
                by = f" by {self.evidence}" if self.evidence not in ("", "search") else ""
                words = f"{verified} of {job.total} verified{by}"
            elif state == "sent":
                words = (f"sent, not verified: {job.count('sent')} of {job.total} sent; the "
                         "peer offers neither storage commitment nor image queries")
            else:
                words = message or _failed_words(self.queue.items(job_id, ("failed",)),
                                                 self.store)
            if self.decoded:
                words += (f"; {len(self.decoded)} instance(s) decoded to uncompressed "
                          "(lossless) because the peer accepts only uncompressed for them")
            self.queue.set_state(job_id, state, words)
        job = self.queue.job(job_id)
        result = TransferResult(
            job=job_id, state=state, instances=job.total,
            verified=verified, missing=missing, bytes=job.bytes, seconds=job.seconds,
            message=message or job.message, resumable=job.state in ACTIVE,
        )
        audit_transfer(self.store.home, job, self.peer.where, self.sent, result,
                       verifies=state != "sent")
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


def _failed_words(failed: list[Item], store: Store | None = None) -> str:
    """"2 instance(s) refused by the hub: ... (image 3 of series #2 HEAD; ...)", and/or "1
    instance(s) differ on the hub: ..." (a copy that :mod:`app.net.verify` found with other
    bytes); the first images named, so the tech can find them."""
    differ = [i for i in failed if i.reason.startswith(DIFFERS)]
    refused = [i for i in failed if not i.reason.startswith(DIFFERS)]
    parts = [f"{len(group)} instance(s) {words}: " + "; ".join(sorted({i.reason for i in group}))
             + _which_images(store, group)
             for group, words in ((refused, "refused by the hub"), (differ, "differ on the hub"))
             if group]
    return "; ".join(parts)


def _which_images(store: Store | None, items: list[Item], shown: int = 3) -> str:
    """" (image 3 of series #2 HEAD; image 7 of series #2 HEAD and 4 more)", or ""."""
    if store is None:
        return ""
    names = []
    for item in items[:shown]:
        inst = store.instance(item.sop_uid)
        series = store.series(inst.series_instance_uid) if inst is not None else None
        if inst is None or series is None:
            continue
        image = "an image" if inst.instance_number is None else f"image {inst.instance_number}"
        names.append(f"{image} of series {series.title or series.modality}".rstrip())
    more = f" and {len(items) - shown} more" if len(items) > shown and names else ""
    return f" ({'; '.join(names)}{more})" if names else ""


def run_send(store: Store, queue: TransferQueue, peer: Peer, job_id: str,
             settings: TransferSettings, progress: Progress | None = None, *,
             give_up: float | None = None) -> TransferResult:
    """Run (or resume) a send job; see :class:`Sender`."""
    return Sender(store, queue, peer, settings, progress, give_up=give_up).run(job_id)
