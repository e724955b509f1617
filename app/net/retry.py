"""Waiting out a hub outage: exponential backoff with a deadline, cancellable.

:func:`retry_rounds` is the one retry loop of a transfer job (hub send and fetch, PACS send and
retrieve alike): it runs the job's rounds, waits out a retryable :class:`~app.errors.HubError` with
:class:`Backoff` while the job shows ``waiting`` in the queue, and leaves the job ``waiting``
(retryable, deadline passed) or ``stuck`` (the user must act) when it stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.errors import HubError, StoreError, StoreFull
from app.net.queue import TransferQueue
from app.settings import TransferSettings
from app.tasks import Progress

log = logging.getLogger(__name__)


class Backoff:
    """Decides whether and how long to wait after a retryable :class:`HubError`.

    ``give_up`` (seconds, None: never) bounds the total time spent waiting since the last
    success; :meth:`reset` is called after each success.
    """

    def __init__(self, settings: TransferSettings, give_up: float | None) -> None:
        self.initial = max(0.05, settings.retry_initial_seconds)
        self.maximum = max(self.initial, settings.retry_max_seconds)
        self.give_up = give_up
        self.delay = self.initial
        self.since: float | None = None

    def reset(self) -> None:
        self.delay = self.initial
        self.since = None

    def next_delay(self, error: HubError) -> float | None:
        """Seconds to wait before trying again, or None when it is time to stop."""
        if not error.retryable:
            return None
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if self.give_up is not None and now + self.delay - self.since > self.give_up:
            return None
        delay = self.delay
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    @staticmethod
    def sleep(seconds: float, progress: Progress) -> None:
        """Sleep, waking early (with :class:`~app.errors.Cancelled`) if the task is cancelled."""
        end = time.monotonic() + seconds
        while True:
            progress.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))


def stop_state(exc: HubError) -> str:
    """The state a job stops in after this fault: ``waiting`` (trying later can help) or
    ``stuck`` (the user must fix something: credentials, TLS, address)."""
    return "waiting" if exc.retryable else "stuck"


def retry_rounds(round_: Callable[[], bool], backoff: Backoff, queue: TransferQueue,
                 job_id: str, progress: Progress, *, peer_word: str = "hub",
                 stopped: Callable[[HubError], str] = stop_state,
                 on_fault: Callable[[], None] | None = None) -> str:
    """Call ``round_`` until it returns False (nothing left to do), waiting out outages of the
    peer (``peer_word`` in the progress detail: "waiting for the hub").

    Returns "" when the rounds ran out, or the fault that stopped them (the job is then in the
    state ``stopped`` gives for it). ``on_fault`` runs first after each fault (a receiver
    flushing what did come). :class:`~app.errors.Cancelled` and other errors pass.
    """
    while True:
        try:
            if not round_():
                return ""
            backoff.reset()
        except HubError as exc:
            if on_fault is not None:
                on_fault()
            delay = backoff.next_delay(exc)
            if delay is None:
                queue.set_state(job_id, stopped(exc), str(exc))
                return str(exc)
            log.warning("%s; trying again in %.0f s", exc, delay)
            queue.set_state(job_id, "waiting", str(exc), next_try=time.time() + delay)
            progress.advance(0, f"waiting for the {peer_word}: {exc}")
            Backoff.sleep(delay, progress)
            queue.set_state(job_id, "running")


def stop_on_fault(queue: TransferQueue, job_id: str, exc: Exception, what: str) -> str:
    """End job ``job_id`` after a fault that is neither the peer's nor the user's: the store's
    (a full disk: ``stuck`` until space is freed, the same command completes it; other store
    faults ``failed``) or Relay's own (``failed``, logged with its traceback). Returns the
    plain words, also kept as the job's message; never leaves the job ``running``."""
    if isinstance(exc, StoreError):
        state, message = ("stuck" if isinstance(exc, StoreFull) else "failed"), str(exc)
    else:
        log.error("the %s stopped on an unexpected error", what, exc_info=exc)
        state, message = "failed", f"unexpected error ({type(exc).__name__}); see the log"
    if job_id:
        queue.set_state(job_id, state, message)
    return message
