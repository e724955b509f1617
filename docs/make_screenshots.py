"""Screenshots of the real window for docs/: run under a real X server (Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py [OUT]

Imports the shared real data into a temporary home, opens the studies as a user would and saves
PNGs of the whole window (window manager-free Xvfb: the window is grabbed by Qt).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.importer import import_paths  # noqa: E402
from app.store import Store  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(cond, timeout_ms: int = 60_000) -> None:
    waited = 0
    while not cond() and waited < timeout_ms:
        wait(50)
        waited += 50


def loaded(viewer) -> bool:
    return all(v.volume is not None and v.volume.finished for v in viewer.visible_viewports()
               if v.session is not None)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as home:
        store = Store(Path(home))
        window = MainWindow(store)
        window.resize(1600, 1000)
        window.show()
        wait(300)
        window.grab().save(str(out / "start-empty-store.png"))
        import_paths(store, [str(DATA / "ct-head"), str(DATA / "mr-brain"), str(DATA / "cd")])
        window.refresh()
        wait(3000)  # thumbnails
        window.grab().save(str(out / "browser.png"))

        by_desc = {s.study_description: s for s in store.studies()}
        vhm = window.open_study(by_desc["Visible Human Male"].study_instance_uid)
        wait_until(lambda: loaded(vhm))
        vp = vhm.viewports[0]
        vp.show_slice(int(vp.n_slices * 0.72))
        vp.set_window(40, 80)
        wait(300)
        window.grab().save(str(out / "viewer-ct-brain-window.png"))
        vp.set_window(40, 40)
        wait(300)
        window.grab().save(str(out / "viewer-ct-stroke-window.png"))

        mr = window.open_study(by_desc["d2n_Philips_3T_R571"].study_instance_uid)
        wait_until(lambda: loaded(mr))
        mr.set_layout("1×2")
        series = {s.series_description: s.series_instance_uid for s in mr.study.series}
        mr.show_series(series["ADNI_Sag3D MPRAGE"], mr.viewports[0])
        mr.show_series(series["3DpCASL"], mr.viewports[1])
        wait_until(lambda: loaded(mr))
        wait(500)
        window.grab().save(str(out / "viewer-mr-sagittal.png"))

        tilt = window.open_study(by_desc["HEAD"].study_instance_uid)
        wait_until(lambda: loaded(tilt))
        tvp = tilt.viewports[0]
        tvp.show_slice(14)
        wait(300)
        window.grab().save(str(out / "viewer-ct-tilted.png"))
        window.close()
    app.quit()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
