"""Opening the 3D view: how long the window's event loop stalls, and when the picture is there.

Each series is imported into a temporary home and opened in the main window under Xvfb; once
its slices have loaded, the 3D layout is switched on. A 10 ms timer on the GUI thread records
every gap between its ticks from the switch until the first (full-quality) picture is on
screen, plus half a second: the longest gap is the longest the window was frozen. Printed per
series: the gaps' p50 / p99 / max, the stalls over 100 ms, the time to the first picture, and
as a control the same probe over 3 s of the idle window just before (on a machine whose cores
are busy with other work, the idle window alone shows stalls). The viewer makes the 3D view
and its OpenGL window ahead of time while the reader rests (``ViewerWidget._warm_3d``): the
same probe over that phase is printed too; ``--no-warm`` opens 3D without it (as before).

Series: the real Visible Human head (245 slices, 512², from ../shared/data) and a generated
512×512×400 CT (made once with ``relay synth`` into ``--cache``, as ``bench_load.py``).
``--pieces`` prints how long each piece made ahead held the GUI thread (the widget, then each
of ``Volume3DWidget.warm_up``'s steps; "(thread)": its frame drawn on a thread of its own,
the GUI thread's part only). ``--stacks`` prints, for each stall over 100 ms, where
every thread was during it (a watchdog thread samples them; a stall in a C call that holds the
interpreter shows no sample).

Mesa's software OpenGL compiles its shaders with LLVM and keeps them in an on-disk cache
(Relay's is in its home, ``app.ui.shader_cache``): the first 3D open after install runs with
it empty, every later one with it filled. ``--shader-cache both`` (the default) measures the
two in turn, each in a process of its own on one fresh cache folder (cold, then warm);
``cold`` only the first; ``mesa`` leaves Mesa's own default (``~/.cache``, as it happens to be).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/bench_3d_open.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QTimer  # noqa: E402

from app.imports.importer import import_paths  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui import viewer as viewer_module  # noqa: E402
from app.ui.main import application  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402

PROBE_MS = 10
IDLE = {"threading.py", "queue.py", "thread.py", "selectors.py"}
STALL_S = 0.1


def wait(app, until, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not until():
        if time.monotonic() > end:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.002)


class Watchdog(threading.Thread):
    """Samples every thread's stack while the GUI thread has not ticked for a while."""

    def __init__(self, ticks: list[float]) -> None:
        super().__init__(name="bench-watchdog", daemon=True)
        self.ticks = ticks
        self.samples: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.gui = threading.main_thread().ident

    def run(self) -> None:
        while not self.stop.wait(0.02):
            now = time.monotonic()
            if self.ticks and now - self.ticks[-1] > 0.06:
                frames = sys._current_frames()
                text = []
                for ident, frame in frames.items():
                    if ident == threading.get_ident():
                        continue
                    name = "GUI" if ident == self.gui else next(
                        (t.name for t in threading.enumerate() if t.ident == ident), "?")
                    stack = traceback.extract_stack(frame)[-6:]
                    if name != "GUI" and Path(stack[-1].filename).name in IDLE:
                        continue  # waiting for work
                    text.append(f"    [{name}] " + " <- ".join(
                        f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack)))
                self.samples.append((now, "\n".join(text)))


def probe(ticks: list[float]) -> QTimer:
    """A started timer of PROBE_MS on the GUI thread adding each tick's time to ``ticks``."""
    timer = QTimer()
    timer.setInterval(PROBE_MS)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    return timer


def gaps_ms(ticks: list[float]) -> list[float]:
    return [(b - a) * 1000 for a, b in zip(ticks, ticks[1:], strict=False)]


def idle_gaps(app, seconds: float) -> list[float]:
    """The probe's gaps (ms) over ``seconds`` of an idle window: what the machine's load
    alone costs the event loop."""
    ticks: list[float] = []
    timer = probe(ticks)
    ticks.append(time.monotonic())
    end = ticks[0] + seconds
    wait(app, lambda: time.monotonic() > end, seconds + 5)
    timer.stop()
    return gaps_ms(ticks)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def time_pieces(pieces: list[tuple[str, float]]) -> None:
    """Record in ``pieces`` how long each piece of making the 3D view ahead takes on the GUI
    thread, (name, ms) as they happen. Call once the prewarm thread has loaded the 3D view's
    modules (importing them here would stop it from making its render windows)."""
    from app.ui.volume3d import OFF_THREAD_STEPS, WARM_STEPS, Volume3DWidget

    if getattr(Volume3DWidget, "_bench_timed", False):
        return
    make, warm_up = viewer_module.ViewerWidget._make_view3d, Volume3DWidget.warm_up

    def timed_make(self):
        fresh = self.view3d is None
        t = time.perf_counter()
        made = make(self)
        if fresh:
            pieces.append(("widget", (time.perf_counter() - t) * 1000))
        return made

    def timed_warm_up(self, size):
        before = self._warm_step
        t = time.perf_counter()
        done = warm_up(self, size)
        ms = (time.perf_counter() - t) * 1000
        if self._warm_step != before:
            step = WARM_STEPS[before]
            pieces.append((f"{step} (thread)" if step in OFF_THREAD_STEPS else step, ms))
        elif ms > 5:  # waiting for a frame drawn on its thread, then tidying up after it
            pieces.append(("after it", ms))
        return done

    viewer_module.ViewerWidget._make_view3d = timed_make
    Volume3DWidget.warm_up = timed_warm_up
    Volume3DWidget._bench_timed = True


def measure(app, folder: Path, stacks: bool, no_warm: bool = False,
            pieces: list[tuple[str, float]] | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-bench3d-") as tmp:
        store = Store(Path(tmp))
        import_paths(store, [str(folder)])
        window = MainWindow(store)
        window.resize(1400, 950)
        if no_warm:
            viewer_module.WARM_3D_IDLE_S = 1e9  # as before: nothing made ahead
        window.show()
        uid = store.studies()[0].study_instance_uid
        viewer = window.open_study(uid)
        vp = viewer.viewports[0]
        wait(app, lambda: vp.volume is not None and vp.volume.finished, 120)
        # a user looks at the slices for a while before choosing 3D: the VTK modules loaded
        # in the background meanwhile (app.ui.prewarm)
        wait(app, lambda: "app.ui.volume3d" in sys.modules and not any(
            t.name == "relay-prewarm-3d" for t in threading.enumerate()), 60)
        # the viewer makes the 3D view's OpenGL window ahead of time while the reader rests:
        # the same probe over that, until it is made
        warm_ticks: list[float] = []
        warm_timer = probe(warm_ticks)
        warm_ticks.append(time.monotonic())
        if pieces is not None:
            pieces.clear()
            time_pieces(pieces)
        if not no_warm:
            wait(app, lambda: viewer.view3d is not None and viewer.view3d.warm, 60)
        warm_timer.stop()
        warm = gaps_ms(warm_ticks)
        for _ in range(20):
            app.processEvents()
        idle = idle_gaps(app, 3.0)  # the control: the same probe with nothing happening
        ticks: list[float] = []
        marks: dict[str, float] = {}
        watchdog = Watchdog(ticks)
        timer = probe(ticks)
        t0 = time.monotonic()
        ticks.append(t0)
        if stacks:
            watchdog.start()
        view3d = viewer.show_3d()
        assert view3d is not None
        ticks.append(time.monotonic())  # the switch itself is a gap too
        view3d.scene_ready.connect(lambda: marks.setdefault("first picture", time.monotonic()))
        wait(app, lambda: "first picture" in marks, 300)
        settle = time.monotonic() + 0.5
        wait(app, lambda: time.monotonic() > settle, 5)
        timer.stop()
        watchdog.stop.set()
        gaps = [(b - a, a - t0, a, b) for a, b in zip(ticks, ticks[1:], strict=False)]
        values = [g[0] * 1000 for g in gaps]
        shape = view3d.scene.array.shape[::-1] if view3d.scene else "?"
        slices = vp.volume.shape[0]
        print(f"3D of {folder.name} ({slices} slices), rendered as {shape}:")
        shown = "the worker's still frame" if getattr(view3d, "showing_still", False) else \
            "ray cast on the GUI thread"
        for name, t in marks.items():
            print(f"  {name} ({shown}): {t - t0:6.2f} s after the switch")
        print(f"  event-loop gaps ({PROBE_MS} ms probe): p50 {percentile(values, 50):.0f} ms, "
              f"p99 {percentile(values, 99):.0f} ms, max {max(values):.0f} ms; "
              f"stalls over {STALL_S * 1000:.0f} ms: "
              + (", ".join(f"{g * 1000:.0f} ms at {t:.2f} s" for g, t, *_ in gaps
                           if g > STALL_S) or "none"))
        if not no_warm:
            print(f"  the 3D view made ahead while the window rested ({len(warm)} probes): "
                  f"p50 {percentile(warm, 50):.0f} ms, p99 {percentile(warm, 99):.0f} ms, "
                  f"max {max(warm):.0f} ms")
            if pieces:
                print("  pieces made ahead (ms on the GUI thread): "
                      + ", ".join(f"{name} {ms:.0f}" for name, ms in pieces))
        print(f"  control, the idle window for 3 s before: p50 {percentile(idle, 50):.0f} ms, "
              f"p99 {percentile(idle, 99):.0f} ms, max {max(idle):.0f} ms")
        print(f"  target: no stall over {STALL_S * 1000:.0f} ms "
              f"[{'ok' if max(values) <= STALL_S * 1000 else 'NOT MET'}]")
        if stacks:
            for g, t, a, b in gaps:
                if g <= STALL_S:
                    continue
                print(f"  stall {g * 1000:.0f} ms at {t:.2f} s:")
                for when, text in watchdog.samples:
                    if a <= when <= b:
                        print(f"   +{(when - a) * 1000:.0f} ms\n{text}")
        viewer.close_all()
        window.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "relay-bench")
    parser.add_argument("--only", choices=("head", "synth"), default=None)
    parser.add_argument("--no-warm", action="store_true",
                        help="do not let the viewer make the 3D view ahead of time (as before)")
    parser.add_argument("--pieces", action="store_true",
                        help="print how long each piece made ahead held the GUI thread")
    parser.add_argument("--stacks", action="store_true",
                        help="print where each thread was during each stall over 100 ms")
    parser.add_argument("--shader-cache", choices=("both", "cold", "mesa"), default="both",
                        help="Mesa's shader cache: empty then filled (each run in a process of "
                             "its own), empty only, or Mesa's default as it is")
    parser.add_argument("--shader-cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.shader_cache != "mesa" and args.shader_cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="relay-bench3d-shaders-") as folder:
            runs = ("cold", "warm") if args.shader_cache == "both" else ("cold",)
            for label in runs:
                print(f"== shader cache {label} ({folder}); load {os.getloadavg()[0]:.2f}",
                      flush=True)
                subprocess.run([sys.executable, __file__, *sys.argv[1:],
                                "--shader-cache-dir", folder], check=True)
        return
    if args.shader_cache_dir is not None:
        from app.ui.shader_cache import MESA_CACHE_DIR, use_shader_cache

        os.environ.pop(MESA_CACHE_DIR, None)
        use_shader_cache(args.shader_cache_dir)  # as ``relay`` does with its home
    app = application()
    series = []
    if args.only != "synth":
        series.append(args.data / "ct-head" / "visible-human-male-head-1mm")
    if args.only != "head":
        from app.dicom.synth import SeriesSpec, generate_series

        folder = args.cache / "explicit"
        if not (folder / "IM00400.dcm").exists():
            print(f"generating {folder} ...", file=sys.stderr)
            generate_series(folder, SeriesSpec(slices=400, transfer_syntax="explicit"))
        series.append(folder)
    pieces: list[tuple[str, float]] | None = [] if args.pieces else None
    for folder in series:
        measure(app, folder, args.stacks, args.no_warm, pieces)


if __name__ == "__main__":
    main()
