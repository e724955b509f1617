"""A probe of the GUI thread's event loop: every gap between ticks of a 5 ms timer, and for each
stall (a tick later than ``threshold``) what the GUI thread was doing and where its time went.

A watcher thread looks every 10 ms. Once the loop has not ticked for 30 ms it samples
the GUI thread's stack (``sys._current_frames``) until the loop ticks again, and reads the GUI
thread's scheduler statistics (``/proc/self/task/<tid>/schedstat``) at both ends, so each stall
splits into

* **running**: the GUI thread on a CPU, i.e. work on the GUI thread (the product's, or the
  garbage collector's: the samples tell which);
* **runnable**: ready but waiting for a CPU (the OS scheduler: other processes, a CPU hog);
* **waiting**: neither, i.e. blocked: on the GIL held by another thread, a lock, or I/O.

:meth:`LoopProbe.report` names the worst stalls with their most frequent stacks, for a failed
assertion's message and for the log.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType

from PySide6.QtCore import QTimer


def _schedstat(tid: int) -> tuple[int, int]:
    """(ns on a CPU, ns waiting on a run queue) of thread ``tid``; zeros where not readable."""
    try:
        run, queued, _ = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        return int(run), int(queued)
    except (OSError, ValueError):
        return 0, 0


def _threads_cpu() -> dict[int, tuple[int, int]]:
    """(ns on a CPU, ns runnable without one) of every thread of this process, by native id."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            run, queued = (task / "schedstat").read_text().split()[:2]
            out[int(task.name)] = int(run), int(queued)
        except (OSError, ValueError):
            pass
    return out


#: x86-64 system call numbers a waiting GUI thread is usually found in
_SYSCALLS = {"0": "read", "1": "write", "7": "poll", "23": "select", "202": "futex (GIL/lock)",
             "232": "epoll_wait", "271": "ppoll", "74": "fsync", "75": "fdatasync",
             "281": "epoll_pwait", "running": "running"}


def _syscall(tid: int) -> str:
    """The system call thread ``tid`` is blocked in (``/proc/.../syscall``), in a word."""
    try:
        first = Path(f"/proc/self/task/{tid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return "?"
    return _SYSCALLS.get(first, f"syscall {first}")


def _short(frame: traceback.FrameSummary) -> str:
    parts = frame.filename.rsplit("/", 2)
    return f"{'/'.join(parts[-2:])}:{frame.lineno} {frame.name}"


@dataclasses.dataclass
class Stall:
    """One stall of the event loop: its length and where the GUI thread's time went."""

    seconds: float = 0.0
    #: when it began (``time.perf_counter()`` of the last tick before it)
    at: float = 0.0
    running: float = 0.0
    runnable: float = 0.0
    gc: float = 0.0
    samples: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    #: the other threads busiest during the stall: (ms on a CPU, ms runnable without one,
    #: name, a stack of theirs); one of them holds the GIL when the GUI thread waits for it
    others: list[tuple[float, float, str, tuple[str, ...]]] = dataclasses.field(
        default_factory=list)
    #: what the GUI thread was blocked in at each sample (a system call), counted
    blocked: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: the watcher was not running during the stall either (no samples, nothing of others)
    unseen: bool = False

    @property
    def waiting(self) -> float:
        return max(0.0, self.seconds - self.running - self.runnable)

    def top(self, n: int = 2) -> list[tuple[int, tuple[str, ...]]]:
        counted = collections.Counter(self.samples)
        return [(count, stack) for stack, count in counted.most_common(n)]

    def describe(self, frames: int = 8) -> str:
        lines = [f"{self.seconds * 1e3:.0f} ms: running {self.running * 1e3:.0f} ms "
                 f"(of which gc {self.gc * 1e3:.0f} ms), runnable (no CPU) "
                 f"{self.runnable * 1e3:.0f} ms, waiting (GIL/lock/IO) "
                 f"{self.waiting * 1e3:.0f} ms; {len(self.samples)} samples "
                 f"(in: {', '.join(f'{k} {v}x' for k, v in self.blocked.most_common())})"]
        if self.unseen:
            lines.append("  unseen: the watcher thread could not run during it either")
        for count, stack in self.top():
            lines.append(f"  {count}x " + " < ".join(stack[:frames]))
        for ran, queued, name, stack in self.others:
            lines.append(f"  meanwhile {name} ran {ran:.0f} ms, runnable {queued:.0f} ms: "
                         + " < ".join(stack[:frames]))
        return "\n".join(lines)


class LoopProbe:
    """Ticks every ``interval_ms`` on the GUI thread (create and start it there)."""

    def __init__(self, interval_ms: int = 5, threshold: float = 0.08,
                 sample_after: float = 0.03) -> None:
        self.interval = interval_ms / 1000
        self.threshold = threshold
        #: the GUI thread's stack is sampled from this long without a tick (stalls over
        #: ``threshold`` are kept): the work of a stall is often done in its first 80 ms
        self.sample_after = sample_after
        self.gaps: list[float] = []
        self.stalls: list[Stall] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self._gui = threading.get_ident()
        self._tid = threading.get_native_id()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._gc_seconds = 0.0
        self._gc_started = 0.0
        #: (wall s, GUI thread's ns on a CPU, ns runnable) at start, and their growth at stop
        self._span: tuple[float, int, int] = (0.0, 0, 0)
        self.busy: tuple[float, float, float] = (0.0, 0.0, 0.0)

    # -- the GUI thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._last = time.perf_counter()
        self._span = (self._last, *_schedstat(self._tid))
        gc.callbacks.append(self._gc)
        self.timer.start()
        self._watcher.start()

    def stop(self) -> None:
        if self.timer.isActive():
            wall, run, queued = self._span
            now_run, now_queued = _schedstat(self._tid)
            self.busy = (time.perf_counter() - wall, (now_run - run) / 1e9,
                         (now_queued - queued) / 1e9)
        self.timer.stop()
        self._done.set()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        if self._watcher.is_alive() and threading.get_ident() != self._watcher.ident:
            self._watcher.join(1.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last - self.interval)
        self._last = now

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """Time spent collecting garbage on the GUI thread (the collector runs on whichever
        thread allocated last, so only the GUI thread's share counts)."""
        if threading.get_ident() != self._gui:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self._gc_seconds += time.perf_counter() - self._gc_started
            self._gc_started = 0.0

    # -- the watcher thread -----------------------------------------------------------------
    def _watch(self) -> None:
        before = (self._last, _schedstat(self._tid), self._gc_seconds)
        stall: Stall | None = None
        seen = len(self.gaps)
        others_cpu: dict[int, tuple[int, int]] = {}
        others_stacks: dict[int, list[FrameType]] = {}
        opened: tuple[float, tuple[int, int], float] = before
        first_gap = 0  # the index in self.gaps of the open stall's own gap, when it comes
        while not self._done.wait(0.01):
            count = len(self.gaps)  # before self._last: _tick appends, then moves _last
            last = self._last
            sched = _schedstat(self._tid)
            if stall is not None and last != opened[0]:  # the loop ticked again: close it
                self._others(stall, others_cpu, others_stacks)
                # the gap that ended it, not up to the newest tick: the watcher may look late
                stall.seconds = max(self.gaps[first_gap:],
                                    default=last - opened[0] - self.interval)
                stall.running = (sched[0] - opened[1][0]) / 1e9
                stall.runnable = (sched[1] - opened[1][1]) / 1e9
                stall.gc = self._gc_seconds - opened[2]
                stall.at = opened[0]
                if stall.seconds > self.threshold:
                    self.stalls.append(stall)
                stall = None
                seen, before = len(self.gaps), (last, sched, self._gc_seconds)
            if stall is None and time.perf_counter() - last > self.sample_after:
                stall, opened = Stall(), before if before[0] == last else (last, sched,
                                                                            self._gc_seconds)
                first_gap = count
                others_cpu = _threads_cpu()
                others_stacks.clear()
            if stall is not None:
                frames = sys._current_frames()
                for ident, other in frames.items():
                    if ident not in (self._gui, threading.get_ident()):
                        others_stacks.setdefault(ident, []).append(other)
                frame = frames.get(self._gui)
                stall.blocked[_syscall(self._tid)] += 1
                if frame is not None:
                    stack = traceback.extract_stack(frame)
                    stall.samples.append(tuple(_short(f) for f in reversed(stack)
                                               if "/_pytest/" not in f.filename
                                               and "/pluggy/" not in f.filename)[:12])
            elif last != before[0]:
                # ticks since the last look; a stall the watcher never saw open (it could not
                # run either: the whole process without a CPU or the GIL) is kept too, with
                # its scheduler figures but no samples
                gaps = self.gaps[seen:]
                if gaps and max(gaps) > self.threshold:
                    self.stalls.append(Stall(
                        seconds=max(gaps), at=before[0],
                        running=(sched[0] - before[1][0]) / 1e9,
                        runnable=(sched[1] - before[1][1]) / 1e9,
                        gc=self._gc_seconds - before[2], unseen=True))
                before = (last, sched, self._gc_seconds)
            seen = len(self.gaps)

    def _others(self, stall: Stall, cpu_before: dict[int, tuple[int, int]],
                stacks: dict[int, list[FrameType]]) -> None:
        """The three other threads that ran most since the stall was seen, with the stack each
        showed most often (a thread holding the GIL shows where it held it)."""
        after = _threads_cpu()
        threads = {t.native_id: t for t in threading.enumerate()}
        busy = sorted(((sum(after[tid]) - sum(cpu_before.get(tid, (0, 0))), tid) for tid in after
                       if tid != self._tid and tid != threading.get_native_id()), reverse=True)
        for ns, tid in busy[:3]:
            if ns < 5e6:
                break
            ran = (after[tid][0] - cpu_before.get(tid, (0, 0))[0]) / 1e6
            thread = threads.get(tid)
            frames = stacks.get(thread.ident or 0, []) if thread is not None else []
            summaries = collections.Counter(
                tuple(_short(f) for f in reversed(traceback.extract_stack(f)))[:12]
                for f in frames)
            stack = summaries.most_common(1)[0][0] if summaries else ("no Python frame seen",)
            stall.others.append((ran, ns / 1e6 - ran, thread.name if thread else f"tid {tid}",
                                 stack))

    # -- results ----------------------------------------------------------------------------
    def stall(self, quantile: float = 1.0) -> float:
        ordered = sorted(self.gaps)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0

    def worst(self, n: int = 3) -> list[Stall]:
        return sorted(self.stalls, key=lambda s: s.seconds, reverse=True)[:n]

    def summary(self) -> str:
        over = [s for s in self.stalls if s.seconds > 0.1]
        return (f"event loop: {len(self.gaps)} ticks, stall p50 {self.stall(0.5) * 1e3:.1f} ms, "
                f"p99 {self.stall(0.99) * 1e3:.1f} ms, max {self.stall() * 1e3:.1f} ms; "
                f"{len(over)} stalls over 100 ms: running "
                f"{sum(s.running for s in over) * 1e3:.0f} ms (gc "
                f"{sum(s.gc for s in over) * 1e3:.0f} ms), runnable "
                f"{sum(s.runnable for s in over) * 1e3:.0f} ms, waiting "
                f"{sum(s.waiting for s in over) * 1e3:.0f} ms; GUI thread on a CPU "
                f"{self.busy[1]:.2f} s and runnable {self.busy[2]:.2f} s of {self.busy[0]:.1f} s")

    def report(self, n: int = 3) -> str:
        """The summary and the ``n`` worst stalls, each with its most frequent stacks."""
        return "\n".join([self.summary(), *(s.describe() for s in self.worst(n))])
