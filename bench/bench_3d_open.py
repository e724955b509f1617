"""Opening the 3D view: how long the window's event loop stalls, and when the picture is there.

The real Visible Human head (245 slices, 512², from ../shared/data) is imported into a temporary
home and opened in the main window under Xvfb; once its slices have loaded, the 3D layout is
switched on. A 5 ms timer on the GUI thread records every gap between its ticks from the switch
until the first (full-quality) picture is on screen, plus half a second: the longest gap is the
longest the window was frozen. Printed: longest stall, the stalls over 100 ms, the time to the
first picture.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/bench_3d_open.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QTimer  # noqa: E402

from app.imports.importer import import_paths  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui.main import application  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402


def wait(app, until, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not until():
        if time.monotonic() > end:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--series", default="ct-head/visible-human-male-head-1mm")
    args = parser.parse_args()
    app = application()
    with tempfile.TemporaryDirectory(prefix="relay-bench3d-") as tmp:
        store = Store(Path(tmp))
        import_paths(store, [str(args.data / args.series)])
        window = MainWindow(store)
        window.resize(1400, 950)
        window.show()
        uid = store.studies()[0].study_instance_uid
        viewer = window.open_study(uid)
        vp = viewer.viewports[0]
        wait(app, lambda: vp.volume is not None and vp.volume.finished, 120)
        # a user looks at the slices for a while before choosing 3D: the VTK modules loaded
        # in the background meanwhile (app.ui.prewarm)
        wait(app, lambda: not any(t.name == "relay-prewarm-3d" for t in threading.enumerate()),
             60)
        for _ in range(20):
            app.processEvents()
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append(time.monotonic()))
        marks: dict[str, float] = {}
        timer.start()
        t0 = time.monotonic()
        ticks.append(t0)
        view3d = viewer.show_3d()
        assert view3d is not None
        view3d.scene_ready.connect(lambda: marks.setdefault("first picture", time.monotonic()))
        wait(app, lambda: "first picture" in marks, 300)
        settle = time.monotonic() + 0.5
        wait(app, lambda: time.monotonic() > settle, 5)
        timer.stop()
        gaps = [(b - a, a - t0) for a, b in zip(ticks, ticks[1:], strict=False)]
        worst = max(gaps)
        print(f"3D of {args.series}: {view3d.scene.array.shape[::-1] if view3d.scene else '?'}")
        shown = "the worker's still frame" if getattr(view3d, "showing_still", False) else \
            "ray cast on the GUI thread"
        for name, t in marks.items():
            print(f"  {name} ({shown}): {t - t0:6.2f} s after the switch")
        print(f"  longest stall {worst[0] * 1000:6.0f} ms (at {worst[1]:.2f} s); "
              f"stalls over 100 ms: "
              + (", ".join(f"{g * 1000:.0f} ms at {t:.2f} s" for g, t in gaps if g > 0.1)
                 or "none"))
        print(f"  target: no stall over 100 ms [{'ok' if worst[0] <= 0.1 else 'NOT MET'}]")
        viewer.close_all()


if __name__ == "__main__":
    main()
