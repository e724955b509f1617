"""Screenshots of the real window for docs/: run under a real X server (Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py [OUT]

Imports the shared real data into a temporary home, opens the studies as a user would and saves
PNGs of the whole window (window manager-free Xvfb: the window is grabbed by Qt). The MPR and 3D
layouts are shot from the X server's screen instead, because the 3D view is drawn by OpenGL
straight into its window, which Qt's own grab does not see.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

from PySide6.QtCore import QEventLoop, QPoint, QPointF, QRect, QTimer  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.imports.importer import import_paths  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui.main import application  # noqa: E402
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


def save_widget(widget, out: Path, name: str) -> None:
    """``widget`` shown, raised and painted, saved as ``out / name``."""
    widget.show()
    widget.raise_()
    wait(500)
    widget.grab().save(str(out / name))
    print("wrote", out / name)


def window_with_hubs(home: Path, hubs: list, size: tuple[int, int], **incoming) -> MainWindow:
    """A window on a new home that knows ``hubs`` (HubProfile), with these Incoming settings."""
    from app.settings import load_settings, save_settings

    home.mkdir()
    settings = load_settings(home)
    settings.hubs = list(hubs)
    for key, value in incoming.items():
        setattr(settings.incoming, key, value)
    save_settings(home, settings)
    window = MainWindow(Store(home))
    window.resize(*size)
    window.show()
    return window


def grab_screen(window, path: Path) -> None:
    """The window as the X server shows it (OpenGL content included)."""
    window.repaint()  # every widget painted now (Qt may leave unchanged parts of the screen)
    wait(600)  # let the X server catch up with the last paints
    g = window.frameGeometry()
    QApplication.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height()).save(
        str(path))


def loaded(viewer) -> bool:
    return all(v.volume is not None and v.volume.finished for v in viewer.visible_viewports()
               if v.session is not None)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    with tempfile.TemporaryDirectory() as home:
        store = Store(Path(home))
        window = MainWindow(store)
        window.resize(1600, 1000)
        window.show()
        wait(300)
        window.grab().save(str(out / "start-empty-store.png"))
        import_paths(store, [str(DATA / "ct-head"), str(DATA / "mr-brain"), str(DATA / "cd")])
        window.refresh()
        # the study with the most series selected: its thumbnail strip under the tree
        widest = max(store.studies(), key=lambda st: len(st.series))
        window.browser.select_study(widest.study_instance_uid)
        wait(3000)  # thumbnails
        window.grab().save(str(out / "browser.png"))

        by_desc = {s.study_description: s for s in store.studies()}
        vhm = window.open_study(by_desc["Visible Human Male"].study_instance_uid)
        wait_until(lambda: loaded(vhm))
        vp = vhm.viewports[0]
        vp.show_slice(int(vp.n_slices * 0.72))
        vp.set_window(40, 80)
        wait(300)
        from docs.exchange_screenshots import head_box, zoom_to

        zoom_to(vp, head_box(vp))  # the head fills the view, as a reader would zoom it
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
        mpr_shots(window, tilt, out, "mpr-ct-tilted-uneven.png", window_=(40, 80))

        window.open_study(by_desc["Visible Human Male"].study_instance_uid)
        mpr_shots(window, vhm, out)
        volume_shots(window, vhm, out)
        for viewer in window.viewers.values():
            viewer.close_all()
        window.close()
    from docs.exchange_screenshots import main as exchange_shots

    exchange_shots(out)  # Transfers panel and Incoming list, with a real local Orthanc hub
    app.quit()
    print(f"screenshots in {out}")


def mpr_settled(mpr) -> bool:
    return (mpr.source is not None and mpr._queue.idle and all(
        v.full_quality and v.shown is not None for v in mpr.views.values()))


def mpr_shots(window, viewer, out: Path, name: str = "", window_=(40, 80)) -> None:
    """MPR of the viewer's series: thin planes (and, on the head CT, an oblique 20 mm MIP)."""
    mpr = viewer.show_mpr()
    wait_until(lambda: mpr.source is not None and mpr.session.volume.finished)
    wait_until(lambda: mpr_settled(mpr))
    mpr.set_window(*window_)
    if name:  # the tilted, unevenly spaced CT: its notes beside the views
        wait_until(lambda: mpr_settled(mpr))
        grab_screen(window, out / name)
        return
    # Visible Human head: the crosshair 35 mm above the centre (brain), brain window; its
    # axial field is 512 mm wide, so zoom the axial view in on the head as a reader would
    mpr.crosshair.set_center(mpr.source.geometry.center_lps() + np.array([0.0, 0.0, 35.0]))
    axial = mpr.views["axial"]
    axial.box.scaleBy((0.6, 0.6), center=QPointF(*axial.scene_of_lps(mpr.crosshair.center)))
    wait_until(lambda: mpr_settled(mpr))
    grab_screen(window, out / "mpr-ct-head-brain.png")
    # a 20 mm MIP slab, bone window, axial tilted 12° (as along the orbitomeatal line)
    mpr.reset()
    mpr.set_slab("mip", 20.0)
    mpr.crosshair.rotate("sagittal", -12.0)
    mpr.set_window(600, 2800)
    wait_until(lambda: mpr_settled(mpr))
    grab_screen(window, out / "mpr-ct-head-mip20-oblique.png")
    mpr.set_slab("", 0.0)
    mpr.reset()
    for view in mpr.views.values():
        view.fit()


def grab_3d(window, view3d, path: Path) -> None:
    """The window with the 3D view's own rendering painted where the view is. The screen alone
    is not enough: with offscreen OpenGL (OSMesa, as in the tests) VTK never draws to the X
    window, and a grab showed whatever was there before (the MPR layout)."""
    rendered(view3d)
    window.repaint()
    wait(600)
    g = window.frameGeometry()
    shot = QApplication.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height())
    pixels = np.ascontiguousarray(view3d.snapshot())
    h, w = pixels.shape[:2]
    image = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    origin = view3d.vtk.mapTo(window, QPoint(0, 0)) + (window.geometry().topLeft() - g.topLeft())
    painter = QPainter(shot)
    painter.drawImage(QRect(origin, view3d.vtk.size()), image)
    painter.end()
    shot.save(str(path))


def rendered(view3d) -> None:
    """Draw the 3D view now and let the screen show it: a shot taken before would show the
    layout that was there before (the MPR), as the first 3D shots did."""
    view3d.render()
    QApplication.processEvents()
    wait(400)


def volume_shots(window, viewer, out: Path) -> None:
    """3D of the head CT: bone, skin (padding around the scan clipped away), a cut skull."""
    view3d = viewer.show_3d()
    started = time.monotonic()
    wait_until(lambda: view3d.scene is not None)
    print(f"3D ready {time.monotonic() - started:.1f} s after the 3D button")
    scene = view3d.scene
    scene.zoom(1.15)
    view3d.set_preset("bone")
    grab_3d(window, view3d, out / "3d-ct-head-bone.png")
    # a box around the skull and 15 mm of skin: cuts away the frozen gelatine block the
    # Visible Human was scanned in (the flat panels beside the head)
    skull = np.array(scene.content_bounds(300.0))
    low, high = skull[0::2] - 15.0, skull[1::2] + 15.0
    view3d.set_clip_box(low, high)
    view3d.set_preset("soft")
    scene.rotate(azimuth=-35.0)
    grab_3d(window, view3d, out / "3d-ct-head-skin.png")
    # cut the top of the skull away to look at the skull base from above and in front
    view3d.set_preset("bone")
    scene.reset_camera("anterior")
    scene.rotate(elevation=40.0)
    view3d.set_clip_box(low, np.array([high[0], high[1], (low[2] + high[2]) / 2 + 25.0]))
    view3d.clip_button.setChecked(True)
    grab_3d(window, view3d, out / "3d-ct-head-bone-cut.png")
    view3d.clip_button.setChecked(False)


if __name__ == "__main__":
    main()
