"""Forwarding as instances arrive: the forwarding rules applied, STOW-RS batches streamed.

:class:`Forwarder` takes each instance stored by the listener (or an import, or a fetch) as an
:class:`~app.workflow.rules.Arrival`, and for every target of every rule it matches records it
at once in the durable transfer queue (one send job per target and study, stroke priority when
a stroke rule matched). One lane per target then sends what is pending, as it comes: a batch
closes after ``batch_instances`` instances (N) or when its first instance has waited
``batch_ms`` (T), so the hub holds the first slices while the scanner is still sending. Each
batch is verified by search on a side thread (:class:`~app.net.send.Sender`). When a study
goes quiet (``quiet_seconds`` without an instance, or its association ended) a last round of
the sender checks every instance on the hub and finishes the job (``verified``, with its audit
events). Stroke jobs go first in every lane.

Nothing is sent twice: an instance is recorded once per job; one in flight at a kill is
``pending`` and the hub is searched for it before it goes again. A hub that is away leaves the
instances pending; the lane tries again with backoff, and a job left over when the forwarder
stops stays queued for the next ``relay listen`` or the window's transfer queue. A PACS target
is streamed to the same way: the same send job over its :class:`~app.net.dimse.peer.DimsePeer`,
whose C-STORE associations stay open between batches (one association carries a study's
batches while they keep coming) and whose Storage Commitment is asked in batches as it goes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import HubError, RelayError
from app.net.peer import Peer
from app.net.queue import ACTIVE, STROKE_PRIORITY, TransferQueue
from app.settings import ForwardingSettings, Settings, load_settings
from app.store.local import Store
from app.workflow.rules import Arrival, Target, arrival_of, targets

log = logging.getLogger(__name__)

#: Job IDs a :class:`Forwarder` of this process is sending; the queue runner leaves them alone.
STREAMING: set[str] = set()
_STREAMING_LOCK = threading.Lock()
#: Longest wait between retries of a target that is away (seconds).
MAX_RETRY_SECONDS = 30.0


@dataclass
class _Stream:
    """One study being forwarded to one target."""

    job_id: str
    priority: int
    pending_since: float | None = None
    last_arrival: float = field(default_factory=time.monotonic)
    closing: bool = False
    retry_at: float = 0.0
    failures: int = 0


class Forwarder:
    """Applies the forwarding rules of ``store``'s home to arriving instances."""

    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self.store = store
        self.home = Path(store.home)
        self.settings = settings or load_settings(self.home)
        self.queue = TransferQueue(self.home)
        self.stats: Counter[str] = Counter()
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._lock = threading.Lock()

    @property
    def rules(self) -> ForwardingSettings:
        return self.settings.forwarding

    def active(self) -> bool:
        """Is there a rule to apply?"""
        return any(r.enabled and r.targets for r in self.rules.rules)

    def offer(self, arrival: Arrival) -> list[Target]:
        """Record ``arrival`` for the targets of the rules it matches; return those targets."""
        found = targets(self.rules.rules, arrival)
        for target in found:
            self._lane(target).add(arrival, target)
        if found:
            self.stats["offered"] += 1
        return found

    def imported(self, stored: Any) -> None:
        """An import stored this file (:func:`app.imports.importer.import_paths`'s
        ``on_stored``)."""
        self.offer(arrival_of(stored, "import"))

    def attach(self, listener: Any) -> None:
        """Apply the rules to what a :class:`~app.net.dimse.listener.Listener` receives."""
        listener.subscribe_instances(
            lambda stored, calling: self.offer(arrival_of(stored, "listener", calling)))
        listener.subscribe(lambda study: self.study_done(study.study_uid))

    def study_done(self, study_uid: str) -> None:
        """The sender of ``study_uid`` is done (its association ended): finish it now."""
        for lane in list(self._lanes.values()):
            lane.close_study(study_uid)

    def resume(self) -> int:
        """Take up the unfinished jobs of the rules' targets (left by a Relay that stopped)."""
        names = {tuple(t.split(":", 1)) for r in self.rules.rules if r.enabled for t in r.targets}
        n = 0
        for job in self.queue.jobs(ACTIVE):
            if job.kind != "send" or job.state in ("paused", "stuck"):
                continue
            for kind in ("hub", "pacs"):
                if (kind, job.hub) in names:
                    self._lane(Target(kind, job.hub, "stroke" if job.priority else "normal")
                               ).adopt(job.id, job.study_uid, job.priority)
                    n += 1
                    break
        return n

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every lane has finished its studies; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        for lane in list(self._lanes.values()):
            if not lane.wait_idle(deadline - time.monotonic()):
                return False
        return True

    def finish_in_background(self, study_uids: list[str], timeout: float) -> threading.Thread:
        """Finish these studies' forwarding on a thread of its own, then stop (what is not
        done within ``timeout`` stays queued for the transfer queue)."""
        for uid in study_uids:
            self.study_done(uid)
        thread = threading.Thread(target=self.close, args=(timeout,), name="forward-finish",
                                  daemon=True)
        thread.start()
        return thread

    def close(self, timeout: float = 10.0) -> None:
        """Finish what can be finished within ``timeout``; the rest stays queued."""
        for lane in list(self._lanes.values()):
            lane.close_all()
        self.wait_idle(timeout)
        for lane in list(self._lanes.values()):
            lane.stop()

    def _lane(self, target: Target) -> _Lane:
        key = (target.kind, target.name)
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(self, target.kind, target.name)
            return lane


class _Lane:
    """Sends one target's forwarded studies, stroke first, in a thread of its own."""

    def __init__(self, forwarder: Forwarder, kind: str, name: str) -> None:
        self.fwd = forwarder
        self.kind = kind
        self.name = name
        self.streams: dict[str, _Stream] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self._busy = False
        self._peer: Peer | None = None
        self._senders: dict[str, object] = {}
        self._thread = threading.Thread(target=self._run, name=f"forward-{name}", daemon=True)
        self._thread.start()

    # -- from the arrival threads ----------------------------------------------------------
    def add(self, arrival: Arrival, target: Target) -> None:
        queue = self.fwd.queue
        priority = STROKE_PRIORITY if target.stroke else 0
        job_kind = "send"  # one send job for a hub and a PACS
        with self._cond:
            stream = self.streams.get(arrival.study_uid)
            if stream is None:
                job = queue.find_open(job_kind, self.name, arrival.study_uid, [])
                if job is None:
                    job = queue.create(job_kind, self.name, arrival.study_uid, [], [],
                                       priority=priority)
                stream = self.streams[arrival.study_uid] = _Stream(job.id, max(job.priority,
                                                                               priority))
                with _STREAMING_LOCK:
                    STREAMING.add(job.id)
                log.info("forwarding a study to %s '%s'%s", self.kind, self.name,
                         " at stroke priority" if priority else "")
            if priority > stream.priority:
                queue.raise_priority(stream.job_id, priority)
                stream.priority = priority
            queue.add_items(stream.job_id, [(arrival.sop_uid, arrival.series_uid,
                                             arrival.relpath, arrival.size)])
            now = time.monotonic()
            stream.last_arrival = now
            stream.closing = False
            if stream.pending_since is None:
                stream.pending_since = now
            self._cond.notify_all()

    def adopt(self, job_id: str, study_uid: str, priority: int) -> None:
        """Finish a job recorded before (a restart): its study is taken as complete."""
        with self._cond:
            if study_uid not in self.streams:
                self.streams[study_uid] = _Stream(job_id, priority, closing=True)
                with _STREAMING_LOCK:
                    STREAMING.add(job_id)
            self._cond.notify_all()

    def close_study(self, study_uid: str) -> None:
        with self._cond:
            stream = self.streams.get(study_uid)
            if stream is not None:
                stream.closing = True
                self._cond.notify_all()

    def close_all(self) -> None:
        with self._cond:
            for stream in self.streams.values():
                stream.closing = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self.streams or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            leftover = [s.job_id for s in self.streams.values()]
            self._cond.notify_all()
        self._thread.join(30)
        for job_id in leftover:  # the next relay listen or the window's queue takes it up
            self.fwd.queue.set_state(job_id, "queued", "forwarding resumes on the next start")
            with _STREAMING_LOCK:
                STREAMING.discard(job_id)

    # -- the lane's thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                work = self._due()
                if work is None:
                    self._cond.wait(self._sleep())
                    continue
                study_uid, stream, finish = work
                self._busy = True
                if not finish:
                    stream.pending_since = None  # what comes from now on opens a new batch
            try:
                if finish:
                    self._finish(study_uid, stream)
                else:
                    self._send_pending(stream)
                stream.failures = 0
            except HubError as exc:
                self._fault(stream, exc)
            except RelayError as exc:
                self._fault(stream, HubError("failed", str(exc)))
            except Exception:
                log.exception("forwarding to '%s' failed", self.name)
                self._fault(stream, HubError("failed", "unexpected error"))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _due(self) -> tuple[str, _Stream, bool] | None:
        """The next piece of work (stroke first): a batch to send, or a study to finish."""
        cfg = self.fwd.rules
        now = time.monotonic()
        for uid, s in sorted(self.streams.items(), key=lambda kv: -kv[1].priority):
            if s.retry_at > now:
                continue
            waited = (now - s.pending_since) if s.pending_since is not None else None
            if waited is not None and (
                    waited * 1000 >= cfg.batch_ms or s.closing
                    or self._pending_count(s) >= cfg.batch_instances):
                return uid, s, False
            if s.pending_since is None and (s.closing or now - s.last_arrival >= cfg.quiet_seconds):
                return uid, s, True
        return None

    def _sleep(self) -> float:
        """Seconds until something may be due (bounded: arrivals also wake the lane)."""
        cfg = self.fwd.rules
        now = time.monotonic()
        waits = [1.0]
        for s in self.streams.values():
            if s.pending_since is not None:
                waits.append(s.pending_since + cfg.batch_ms / 1000 - now)
            waits.append(s.last_arrival + cfg.quiet_seconds - now)
            if s.retry_at:
                waits.append(s.retry_at - now)
        return max(0.005, min(waits))

    def _pending_count(self, stream: _Stream) -> int:
        return self.fwd.queue.job(stream.job_id).count("pending")

    def _sender(self, stream: _Stream) -> object:
        """The job's sender (kept for the job's life, so its audit event counts every batch)."""
        sender = self._senders.get(stream.job_id)
        if sender is None:
            from app.net import hubs
            from app.net.send import Sender

            settings = self.fwd.settings
            if self._peer is None:  # a hub (DICOMweb) or a PACS (DIMSE): the same seam
                self._peer = hubs.connect(self.fwd.home, self.name, settings,
                                          pool_size=settings.transfer.in_flight + 1)
            sender = Sender(self.fwd.store, self.fwd.queue, self._peer, settings.transfer,
                            give_up=MAX_RETRY_SECONDS)
            self._senders[stream.job_id] = sender
        return sender

    def _send_pending(self, stream: _Stream) -> None:
        from app.net.send import Sender

        sender = self._sender(stream)
        assert isinstance(sender, Sender)
        queue = self.fwd.queue
        job = queue.claim(stream.job_id)
        items = queue.items(job.id, ("pending",))
        if items:
            sender.send_now(job, items, self.fwd.rules.batch_instances)
            self.fwd.stats["batches"] += -(-len(items) // max(1, self.fwd.rules.batch_instances))
            self.fwd.stats["sent"] += len(items)

    def _finish(self, study_uid: str, stream: _Stream) -> None:
        sender = self._sender(stream)
        result = sender.run(stream.job_id)  # type: ignore[attr-defined]
        state = self.fwd.queue.job(stream.job_id).state
        if state in ("waiting",):
            raise HubError("unreachable", getattr(result, "message", "") or "waiting")
        log.info("forwarded study to '%s': %s", self.name, state)
        with self._cond:
            self.streams.pop(study_uid, None)
            self._senders.pop(stream.job_id, None)
            with _STREAMING_LOCK:
                STREAMING.discard(stream.job_id)
        self.fwd.stats[f"jobs_{state}"] += 1

    def _fault(self, stream: _Stream, exc: HubError) -> None:
        stream.failures += 1
        delay = min(MAX_RETRY_SECONDS, 0.5 * 2 ** min(stream.failures, 8))
        log.warning("forwarding to '%s': %s; trying again in %.1f s", self.name, exc, delay)
        self.fwd.queue.set_state(stream.job_id, "waiting", str(exc), next_try=time.time() + delay)
        with self._cond:
            stream.retry_at = time.monotonic() + delay
            if stream.pending_since is None and self._pending_count(stream):
                stream.pending_since = time.monotonic()
