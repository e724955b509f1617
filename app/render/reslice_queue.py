"""Full-quality reslices off the GUI thread, newest request first, superseded ones dropped.

An MPR view asks for a full-quality picture once the user has stopped moving (~150 ms idle);
on a software-only machine an oblique 20 mm slab takes about as long again, which would stall
the window if done on the GUI thread. :class:`ResliceQueue` runs those requests on one worker
thread with its own :class:`~app.render.reslice.Reslicer` (``vtkImageReslice`` releases the
GIL while it works, so the GUI keeps running Python meanwhile).

Requests are keyed (one key per view): a new request replaces the one still waiting under the
same key, so a burst of changes costs one render. A request already running cannot be stopped
half-way; its result carries the request's ``token`` and the caller drops results whose token
is no longer the latest. Results are handed to ``on_done(job, reslice)`` on the worker thread;
a UI hops them to its own thread. No Qt here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.render.grid import SliceGrid
from app.render.reslice import Reslice, Reslicer, SlabMode

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ResliceJob:
    """One reslice to do: which view (``key``), where, how thick, and the caller's token."""

    key: str
    grid: SliceGrid
    slab_mm: float = 0.0
    mode: SlabMode = "mip"
    token: int = 0


Done = Callable[[ResliceJob, Reslice], None]


class ResliceQueue:
    """One worker thread reslicing the newest request per key.

    Parameters
    ----------
    reslicer
        Used only by the worker (give the GUI thread its own :class:`Reslicer` on the same
        array for its quick previews, so the two never wait for each other's lock).
    on_done
        Called on the worker thread with each finished job and its result.
    """

    def __init__(self, reslicer: Reslicer, on_done: Done) -> None:
        self.reslicer = reslicer
        self._on_done = on_done
        self._pending: dict[str, ResliceJob] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="mpr-reslice", daemon=True)
        self._thread.start()

    def submit(self, job: ResliceJob) -> None:
        """Queue ``job``, replacing a job with the same key that has not started yet."""
        with self._cond:
            if self._closed:
                return
            self._pending.pop(job.key, None)
            self._pending[job.key] = job  # newest last
            self._cond.notify()

    def cancel(self, key: str | None = None) -> None:
        """Drop waiting jobs (of ``key``, or all)."""
        with self._cond:
            if key is None:
                self._pending.clear()
            else:
                self._pending.pop(key, None)

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing running."""
        with self._cond:
            return not self._pending and not self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until :attr:`idle` (tests, scripts); True if it became idle."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the job it is running (waiting jobs are dropped)."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._pending))
                if self._closed:
                    return
                key = next(iter(self._pending))
                job = self._pending.pop(key)
                self._busy = True
            try:
                result = self.reslicer.slice(job.grid, slab_mm=job.slab_mm, mode=job.mode)
                self._on_done(job, result)
            except Exception:  # one bad request must not kill the worker
                log.exception("reslice failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
