"""Waiting out a hub outage: exponential backoff with a deadline, cancellable."""

from __future__ import annotations

import logging
import time

from app.errors import HubError
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
