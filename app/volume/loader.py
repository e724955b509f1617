"""Progressive volume loading: the slice in view first, then outward, then whatever arrives later.

Typical use (a viewer)::

    plan = plan_series(store.instances(uid))
    loader = VolumeLoader.for_stack(plan.main, focus=k_in_view, progress=progress).start()
    volume = loader.volume            # allocated, geometry known, no pixels yet
    volume.subscribe(on_slice)        # on_slice(k, ok) from the loader's thread
    loader.set_focus(k)               # the user scrolled: decode around k next
    loader.cancel()                   # or progress.cancel()

Remote reading (files land in the store while a download runs)::

    loader = VolumeLoader.for_stack(stack_from_metadata, wait_for_files=True).start()
    ...  loader.supply(instance)      # each time an instance is stored (offsets from import)
    loader.finish_supply()            # the download is over: what never came is failed

Scheduling: the focus slice is decoded at once in the loader's own thread (no pool start-up in
the way), then the rest is handed out nearest-to-focus first, a few tasks at a time so a new
focus takes effect within a slice or two. Uncompressed frames are read by the loader's thread
straight into the array, between two looks at its events (copying a slice from the page cache
costs less than handing it to a thread); compressed ones go to the codec process pool
(:mod:`app.dicom.decodepool`), which writes into the volume's shared buffer. A failed slice is
marked on the volume with its path and reason; the rest goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from app.dicom import decodepool
from app.dicom.pixels import frame_nbytes, is_native_direct, read_frame
from app.errors import DecodeError, GeometryError
from app.model import Instance
from app.tasks import Progress
from app.volume.array import Volume
from app.volume.sharedbuf import SharedBuffer
from app.volume.stack import SliceRef, Stack, slices_of

if TYPE_CHECKING:
    from app.volume.early_slice import EarlySlice

log = logging.getLogger(__name__)

#: Tasks in flight per worker: small, so a new focus takes effect quickly.
IN_FLIGHT_PER_WORKER = 2
#: A volume may use at most this share of the machine's memory.
MAX_MEMORY_SHARE = 0.5


class VolumeLoader:
    """Fills a :class:`~app.volume.array.Volume`, focus first; cancellable, re-prioritisable.

    Parameters
    ----------
    volume
        The allocated volume (see :meth:`for_stack`).
    focus
        Slice to decode first (default: the middle one).
    progress
        Counts slices; cancelling it stops the load.
    workers
        Decoding processes/threads (default: one per core).
    wait_for_files
        Keep running for slices whose file is not there yet, until :meth:`finish_supply`.
    early
        A slice decoded before the plan existed (:func:`app.volume.early_slice.early_slice`); used
        if it is
        the focus slice, ignored otherwise.
    hold
        After the focus slice, wait up to this many seconds for :meth:`release` before
        decoding the rest: a viewer draws its first image without the readers competing for
        the interpreter (it calls :meth:`release` once the image is drawn).
    codecs_here
        May this process decode compressed frames itself (the slice in view at once, and
        while the pool is still starting)? A process that has not imported the codecs (``relay
        load`` starts the pool instead, :func:`app.dicom.decodepool.start`) passes False: then every
        compressed frame, the slice in view first, is decoded by the pool, and pydicom and its
        plug-ins (~27 MB) stay out of the process that holds the volume.

    Attributes
    ----------
    first_slice_seconds, seconds : float or None
        Time from construction to the first finished slice / to the end of the load.
    """

    def __init__(self, volume: Volume, *, focus: int | None = None,
                 progress: Progress | None = None, workers: int | None = None,
                 wait_for_files: bool = False, started: float | None = None,
                 early: EarlySlice | None = None, hold: float = 0.0,
                 codecs_here: bool = True) -> None:
        self.volume = volume
        self.progress = progress or Progress("Loading")
        self.workers = workers or decodepool.default_workers()
        self.started = started if started is not None else time.monotonic()
        self.first_slice_seconds: float | None = None
        self.seconds: float | None = None
        n = len(volume.slices)
        self._focus = n // 2 if focus is None else min(max(0, focus), max(0, n - 1))
        self._accepting = wait_for_files
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._pending: set[int] = set()
        self._waiting: set[int] = set()
        self._order: list[int] = []
        self._in_flight: dict[int, Future[Any]] = {}
        self._threads: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._retried: set[int] = set()
        self._pool_cold = True
        self._no_processes = False
        self._early = early
        self._hold = hold
        self._codecs_here = codecs_here
        self._released = threading.Event()
        for k, ref in enumerate(volume.slices):
            (self._pending if _has_file(ref) else self._waiting).add(k)
        self.progress.set_total(n, "Loading")
        self._take_early()

    @classmethod
    def for_stack(cls, stack: Stack, **kwargs: Any) -> VolumeLoader:
        """Allocate a volume for ``stack`` (shared with workers when it needs codecs)."""
        started = kwargs.pop("started", None) or time.monotonic()
        check_size(stack)
        codecs = any(not is_native_direct(s.transfer_syntax_uid, s.info) for s in stack.slices)
        volume = Volume.allocate(stack, allocator=SharedBuffer if codecs else None)
        return cls(volume, started=started, **kwargs)

    # -- caller side -------------------------------------------------------------------------
    def start(self) -> VolumeLoader:
        """Run in a background thread; returns self."""
        self._thread = threading.Thread(target=self.run, name="volume-loader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Cancel, and end at once also when never started (its :meth:`join` returns)."""
        self.cancel()
        if self._thread is None:
            self.start()  # a cancelled load ends at once

    def set_focus(self, k: int) -> None:
        """Decode around slice ``k`` next (the user scrolled there)."""
        self._events.put(("focus", int(k)))

    def supply(self, instance: Instance) -> list[int]:
        """A file for some slices has arrived (and been indexed): decode it. Returns slices."""
        matched = []
        by_key = {(r.sop_instance_uid, r.frame): r for r in slices_of([instance])}
        for k, ref in enumerate(self.volume.slices):
            new = by_key.get((ref.sop_instance_uid, ref.frame))
            if new is not None and (not self.volume.ready[k] or ref.path is None):
                matched.append(k)
                self._events.put(("supply", k, new))
        return matched

    def finish_supply(self) -> None:
        """No more files will arrive; slices still without one are marked failed."""
        self._events.put(("finish",))

    def release(self) -> None:
        """The first image is drawn: go on with the rest (see ``hold``)."""
        self._released.set()

    def cancel(self) -> None:
        self.progress.cancel()
        self._released.set()
        self._events.put(("cancel",))

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the load to end; True if it has."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Volume:
        """Load in the calling thread; returns the volume when every slice is done."""
        try:
            self._reorder()
            self._first(self._next())  # the slice in view, at once
            if self._hold > 0:
                self._released.wait(self._hold)
            owner = self.volume._owner
            if getattr(owner, "needs_populate", False):  # commit the memory ahead of the readers
                threading.Thread(target=owner.populate, name="populate", daemon=True).start()
            while not self.progress.cancelled:
                self._fill()
                if not self._in_flight and not self._pending and not (
                        self._waiting and self._accepting):
                    break
                if (self._pool_cold and self._codecs_here and self._pending
                        and self._events.empty()):
                    self._decode_inline(self._next())  # no worker has answered yet: help
                    continue
                self._handle(self._events.get())
        finally:
            self._finish()
        return self.volume

    def _handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "done":
            self._on_done(event[1], event[2])
        elif kind == "focus":
            self._focus = min(max(0, event[1]), len(self.volume.slices) - 1)
            self._reorder()
        elif kind == "supply":
            k, ref = event[1], event[2]
            if self.volume.ready[k]:  # its pixels came early: only note where its file is
                if self.volume.slices[k].path is None:
                    self.volume.replace_slice(k, ref)
            elif k in self._waiting or k in self._pending or k in self.volume._failed:
                self.volume.replace_slice(k, ref)
                self._waiting.discard(k)
                self._pending.add(k)
                self._reorder()
        elif kind == "finish":
            self._accepting = False
            for k in sorted(self._waiting):
                self.volume.mark_failed(k, "the file never arrived")
                self.progress.advance(1)
            self._waiting.clear()

    def _reorder(self) -> None:
        f = self._focus
        self._order = sorted(self._pending, key=lambda k: (abs(k - f), k < f), reverse=True)

    def _next(self) -> int | None:
        while self._order:
            k = self._order.pop()  # nearest to focus is last
            if k in self._pending:
                self._pending.discard(k)
                return k
        return None

    def _fill(self) -> None:
        limit = self.workers * IN_FLIGHT_PER_WORKER
        while len(self._in_flight) < limit and not self.progress.cancelled:
            k = self._next()
            if k is None:
                return
            ref = self.volume.slices[k]
            if is_native_direct(ref.transfer_syntax_uid, ref.info):
                # straight from the file into the array, here: a thread pool's hand-offs cost
                # more than the copy (bench/bench_load.py: c/fl 3 -> ~1.3 on 400 slices)
                self._decode_inline(k)
                self._drain()
            else:
                self._submit(k)

    def _drain(self) -> None:
        """Handle the events already queued (a new focus, finished pool tasks), no waiting."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            self._handle(event)

    def _submit(self, k: int) -> None:
        ref = self.volume.slices[k]
        future: Future[Any] | None = None
        if not (is_native_direct(ref.transfer_syntax_uid, ref.info) or self._no_processes):
            future = self._submit_to_pool(k, ref)
        if future is None:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="read")
            future = self._threads.submit(self._read_here, k)
        self._in_flight[k] = future
        future.add_done_callback(
            lambda fut, k=k: self._events.put(("done", k, fut)))  # type: ignore[misc]

    def _submit_to_pool(self, k: int, ref: SliceRef) -> Future[Any] | None:
        try:
            return decodepool.get_pool(self.workers).submit(
                decodepool.decode_to_buffer, str(self.volume._owner.path),
                k * frame_nbytes(ref.info), str(ref.path), ref.transfer_syntax_uid,
                decodepool.slim(ref.info), ref.frame)
        except Exception as exc:  # no processes here (frozen app, sandbox): decode in threads
            log.warning("codec processes unavailable (%s); decoding in this process",
                        type(exc).__name__)
            decodepool.reset_pool()
            self._no_processes = True
            return None

    def _read_here(self, k: int) -> str | None:
        ref = self.volume.slices[k]
        try:
            read_frame(ref.path, ref.transfer_syntax_uid, ref.info, ref.frame,  # type: ignore[arg-type]
                       out=self.volume.array[k])
            return None
        except DecodeError as exc:
            return str(exc)

    def _first(self, k: int | None) -> None:
        """Decode slice ``k`` before anything else: here, or by the pool when this process
        keeps no codecs (then wait for it, so nothing competes with it)."""
        if k is None:
            return
        ref = self.volume.slices[k]
        if self._codecs_here or is_native_direct(ref.transfer_syntax_uid, ref.info):
            self._decode_inline(k)
            return
        self._submit(k)
        while k in self._in_flight and not self.progress.cancelled:
            self._handle(self._events.get())

    def _decode_inline(self, k: int | None) -> None:
        if k is not None:
            self._record(k, self._read_here(k))

    def _take_early(self) -> None:
        """Use the slice decoded before the loader existed if it is the focus slice (then it is
        ready as soon as the volume is). A slice still waiting for its file takes it too (a
        remote preview): the file, once supplied, is only noted, not decoded again."""
        early, self._early = self._early, None
        k = self._focus
        if early is None or (k not in self._pending and k not in self._waiting):
            return
        ref = self.volume.slices[k]
        target = self.volume.array[k]
        if (ref.sop_instance_uid, ref.frame) != (early.sop_instance_uid, early.frame) or (
                early.pixels.shape != target.shape or early.pixels.dtype != target.dtype):
            return
        target[...] = early.pixels
        self._pending.discard(k)
        self._waiting.discard(k)
        self._record(k, None, at=early.ready_at)

    def _on_done(self, k: int, future: Future[Any]) -> None:
        if self._in_flight.get(k) is not future:
            return  # a retried slice's first attempt
        del self._in_flight[k]
        self._pool_cold = False
        try:
            error = future.result()
        except BrokenProcessPool:
            decodepool.reset_pool()
            if k not in self._retried:  # maybe another slice crashed the worker: try again
                self._retried.add(k)
                self._submit(k)
                return
            error = f"{self.volume.slices[k].path}: the decoder crashed on this file"
        except Exception as exc:  # the task itself never raises; a cancelled pool might
            error = f"{self.volume.slices[k].path}: {type(exc).__name__} while decoding"
        self._record(k, error)

    def _record(self, k: int, error: str | None, at: float | None = None) -> None:
        if error is None:
            self.volume.mark_ready(k)
        else:
            log.warning("slice %d not loaded: %s", k, error)
            self.volume.mark_failed(k, _reason(error, self.volume.slices[k]))
        if self.first_slice_seconds is None:
            self.first_slice_seconds = (time.monotonic() if at is None else at) - self.started
        self.progress.advance(1)

    def _finish(self) -> None:
        for future in self._in_flight.values():
            future.cancel()
        for future in self._in_flight.values():
            if not future.cancelled():  # a worker still writing into the buffer: let it end
                with contextlib.suppress(Exception):
                    future.result(timeout=60)
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        owner = self.volume._owner
        if hasattr(owner, "unlink"):
            owner.unlink()
        self.seconds = time.monotonic() - self.started
        self.progress.finish()
        self._done.set()


def load_stack(stack: Stack, *, focus: int | None = None, progress: Progress | None = None,
               workers: int | None = None) -> tuple[Volume, VolumeLoader]:
    """Load a whole stack in the calling thread; returns the volume and the finished loader."""
    loader = VolumeLoader.for_stack(stack, focus=focus, progress=progress, workers=workers)
    loader.run()
    return loader.volume, loader


def check_size(stack: Stack) -> None:
    """Refuse a volume larger than a fair share of this machine's memory (a lying header).

    Raises
    ------
    GeometryError
        With the size the volume would need.
    """
    if not stack.slices:
        raise GeometryError("the series has no images")
    nbytes = len(stack.slices) * frame_nbytes(stack.slices[0].info)
    limit = _memory_bytes() * MAX_MEMORY_SHARE
    if nbytes > limit:
        raise GeometryError(
            f"the volume would need {nbytes / 2**30:.1f} GiB, more than "
            f"{MAX_MEMORY_SHARE:.0%} of this computer's memory ({_memory_bytes() / 2**30:.1f} GiB)"
        )


def _memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float(8 << 30)


def _has_file(ref: SliceRef) -> bool:
    return ref.path is not None


def _reason(error: str, ref: SliceRef) -> str:
    """The error without the leading path (the report shows the path beside it)."""
    prefix = f"{ref.path}: "
    return error[len(prefix):] if error.startswith(prefix) else error


__all__ = ["VolumeLoader", "check_size", "load_stack"]
