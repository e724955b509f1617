"""Progress and cancel for long work, without Qt.

One :class:`Progress` object travels with a task. The worker calls :meth:`Progress.advance` and
:meth:`Progress.check`; whoever started the task reads :meth:`Progress.snapshot`, subscribes with
:meth:`Progress.subscribe` (a terminal bar in the CLI, a Qt signal bridge in the UI) or calls
:meth:`Progress.cancel`. Listeners run on the worker's thread: a UI must hop to its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.errors import Cancelled


@dataclass(frozen=True)
class ProgressState:
    """What a progress display needs to draw one frame."""

    label: str
    done: int
    total: int | None
    elapsed: float
    cancelled: bool
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        """Done / total in 0..1, or None when the total is not known yet."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def rate(self) -> float:
        """Units per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


Listener = Callable[[ProgressState], None]


class Progress:
    """Thread-safe progress counter with a cancel flag.

    Parameters
    ----------
    label
        What is being done, in a few words ("Importing", "Sending to Hub").
    total
        Number of units when known; may be set later with :meth:`set_total`.
    min_interval
        Listeners are called at most this often (seconds), except for the final call.
    """

    def __init__(self, label: str = "", total: int | None = None, *, min_interval: float = 0.05):
        self._lock = threading.Lock()
        self._label = label
        self._total = total
        self._done = 0
        self._detail = ""
        self._start = time.monotonic()
        self._cancel = threading.Event()
        self._listeners: list[Listener] = []
        self._min_interval = min_interval
        self._last_emit = 0.0

    # -- worker side -------------------------------------------------------------------------
    def set_total(self, total: int | None, label: str | None = None) -> None:
        with self._lock:
            self._total = total
            if label is not None:
                self._label = label
        self._emit(force=True)

    def advance(self, n: int = 1, detail: str | None = None) -> None:
        """Count ``n`` more units done."""
        with self._lock:
            self._done += n
            if detail is not None:
                self._detail = detail
        self._emit()

    def check(self) -> None:
        """Raise :class:`~app.errors.Cancelled` if someone asked to stop."""
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def finish(self) -> None:
        """Tell listeners the task has ended (call once, success or not)."""
        self._emit(force=True)

    # -- caller side -------------------------------------------------------------------------
    def cancel(self) -> None:
        if self._cancel.is_set():
            return
        self._cancel.set()
        self._emit(force=True)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def snapshot(self) -> ProgressState:
        with self._lock:
            return ProgressState(
                label=self._label,
                done=self._done,
                total=self._total,
                elapsed=time.monotonic() - self._start,
                cancelled=self._cancel.is_set(),
                detail=self._detail,
            )

    def _emit(self, force: bool = False) -> None:
        if not self._listeners:
            return
        now = time.monotonic()
        if not force and now - self._last_emit < self._min_interval:
            return
        self._last_emit = now
        state = self.snapshot()
        for listener in list(self._listeners):
            listener(state)
