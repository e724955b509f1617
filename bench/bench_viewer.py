"""Viewer speed: open-to-first-image vs full load, and scrolling / window-levelling frame rates.

A generated 400-slice 512×512 CT is imported into a temporary home and opened in the real main
window (offscreen Qt). Printed side by side in one run:

* time from "open" (the study tab is asked for) to the end of the first paint of the image, and
  to the loader's end (the whole series decoded), and their ratio: uncompressed and JPEG-LS,
  with the study's files in the page cache ("warm": just received or imported) and dropped
  from it first ("cold": opened again after a reboot or days later), at the program's GIL
  switch interval, then warm at Python's default one;
* frames per second when scrolling through all slices (each frame: new slice through the display
  LUT, texture upload, overlay text, a synchronous repaint);
* frames per second while window/level is dragged (each frame rebuilds the display LUT);
* one repaint of the viewport against a bare QWidget that only draws the same slice scaled and
  12 lines of text: the least any Qt viewport pays for a first image, whatever it opens.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_viewer.py [--slices 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.dicom.synth import SeriesSpec, generate_series  # noqa: E402
from app.imports.importer import import_paths  # noqa: E402
from app.startup import startup_done  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui.main import GUI_SWITCH_INTERVAL, application  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=400)
    args = parser.parse_args()
    app = application()  # as the program sets it up (GIL switch interval included)
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        src = Path(tmp) / "ct"
        spec = SeriesSpec(slices=args.slices, series_description="uncompressed")
        generate_series(src / "explicit", spec)
        study_uid = __import__("pydicom").dcmread(
            next((src / "explicit").iterdir()), stop_before_pixels=True).StudyInstanceUID
        generate_series(src / "jpegls", SeriesSpec(
            slices=args.slices, transfer_syntax="jpegls", series_number=3,
            series_description="JPEG-LS", study_instance_uid=study_uid))
        store = Store(Path(tmp) / "home")
        import_paths(store, [str(src)])
        subprocess_cat(src / "explicit")
        subprocess_cat(src / "jpegls")
        window = MainWindow(store)
        window.resize(1400, 900)
        window.show()
        app.processEvents()
        startup_done()  # as app.ui.main.run does before its event loop
        study = store.studies()[0]
        _settle(app, window, study)

        # The program's GIL switch interval, with the study's files in the page cache (a study
        # just received or imported) and not (opened again days later); then Python's default
        # interval, warm, for comparison.
        runs = [(GUI_SWITCH_INTERVAL, "warm"), (GUI_SWITCH_INTERVAL, "cold"), (0.005, "warm")]
        for interval, cache in runs:
            sys.setswitchinterval(interval)
            for series in study.series:
                if cache == "cold":
                    evict(store, series.series_instance_uid)
                label = f"{series.series_description}, {cache} cache, switch {interval * 1000:g} ms"
                first, full, vp, viewer = _open_timed(app, window, study, series)
                loader = vp.session.loader
                print(f"[{label}] open -> first image {first * 1000:6.1f} ms, all {vp.n_slices} "
                      f"slices {full * 1000:7.1f} ms: {100 * first / full:5.2f} % (target <= 5 %);"
                      f" loader alone: first {loader.first_slice_seconds * 1000:.1f} ms, "
                      f"all {loader.seconds * 1000:.1f} ms"
                      + (f"; image set in the viewer at {_open_timed.image_set * 1000:.1f} ms"
                         if _open_timed.image_set is not None else ""))
        sys.setswitchinterval(GUI_SWITCH_INTERVAL)

        first, full, vp, viewer = _open_timed(app, window, study, study.series[0])
        canvas = vp.canvas.viewport()
        vp.set_window(40, 80)
        frames = 0
        t0 = time.perf_counter()
        for _round in range(2):
            for k in range(vp.n_slices):
                vp.show_slice(k)
                canvas.repaint()
                frames += 1
        scroll_fps = frames / (time.perf_counter() - t0)
        frames = 0
        t0 = time.perf_counter()
        for i in range(300):
            vp.set_window(40 + (i % 50), 80 + (i % 30))
            canvas.repaint()
            frames += 1
        wl_fps = frames / (time.perf_counter() - t0)
        print(f"scrolling           : {scroll_fps:7.1f} frames/s  (target >= 60)")
        print(f"window/level drag   : {wl_fps:7.1f} frames/s")
        size = canvas.size()
        bare = bare_repaint_ms(vp.image.image, size.width(), size.height())
        print(f"one repaint: the viewport {1000 / scroll_fps:.2f} ms; a bare QWidget drawing the "
              f"same slice ({size.width()}x{size.height()}, smooth, 12 lines of text) "
              f"{bare:.2f} ms: the floor of any first image")
        window.close()


def bare_repaint_ms(pixels, width: int, height: int, n: int = 200) -> float:
    """Milliseconds per synchronous repaint of a plain QWidget that only fills, draws the 8-bit
    slice scaled (smooth) and 12 lines of text: what any Qt viewport pays at least per frame."""
    import numpy as np
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QFont, QImage, QPainter
    from PySide6.QtWidgets import QApplication, QWidget

    data = np.ascontiguousarray(pixels, dtype=np.uint8)
    image = QImage(data.data, data.shape[1], data.shape[0], data.strides[0],
                   QImage.Format.Format_Grayscale8)

    class Bare(QWidget):
        def paintEvent(self, event) -> None:  # noqa: N802
            painter = QPainter(self)
            painter.fillRect(self.rect(), QColor(0, 0, 0))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            side = min(self.width(), self.height())
            painter.drawImage(QRectF((self.width() - side) / 2, 0, side, side), image)
            painter.setPen(QColor(255, 255, 255))
            painter.setFont(QFont(self.font().family(), 11))
            for i in range(12):
                painter.drawText(10, 20 + 16 * i, f"Im {i + 1} / 400   +12.5 mm   W 80 L 40")
            painter.end()

    widget = Bare()
    widget.resize(width, height)
    widget.show()
    QApplication.processEvents()  # exposed: before that a repaint paints nothing
    for _ in range(20):
        widget.repaint()
    t0 = time.perf_counter()
    for _ in range(n):
        widget.repaint()
    seconds = (time.perf_counter() - t0) / n
    widget.close()
    return seconds * 1000


def _open_timed(app, window, study, series):
    """Open ``series`` in a fresh study tab; time the first image and the full load.

    "First image" is the first paint of the viewport with this series' slice in view: taken
    when its overlay has been painted over the image, in the paint itself (the viewport's
    ``paint_overlay`` is wrapped on this one instance; overriding the canvas's C++ paintEvent
    from Python and restoring it crashed PySide later). "Full load" is the loader's own end
    (every slice decoded). The event loop runs as in the program (blocked in Qt between
    events); a 1 ms timer only stops the loop once both are known.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    for viewer in list(window.viewers.values()):
        window._on_tab_close(window.tabs.indexOf(viewer))
    app.processEvents()
    loop = QEventLoop()
    marks: dict[str, float] = {}
    uid = series.series_instance_uid
    t0 = time.monotonic()  # the loader's clock
    viewer = window.open_study(study.study_instance_uid, series.series_instance_uid)
    vp = viewer.viewports[0]
    if vp.image.image is not None:  # the viewer came up with its image (not painted yet)
        marks["set"] = time.monotonic() - t0
    paint_overlay = vp.paint_overlay

    def timed_overlay(painter, rect) -> None:
        paint_overlay(painter, rect)
        volume = vp.volume
        if ("first" not in marks and vp.session is not None
                and vp.session.series.series_instance_uid == uid and volume is not None
                and vp.image.image is not None and volume.ready[vp.state.k]):
            marks["first"] = time.monotonic() - t0

    def check() -> None:
        loader = vp.session.loader
        if "first" in marks and loader is not None and loader.seconds is not None:
            marks["full"] = loader.started + loader.seconds - t0
            loop.quit()

    vp.paint_overlay = timed_overlay
    try:
        timer = QTimer()
        timer.setInterval(1)
        timer.timeout.connect(check)
        timer.start()
        loop.exec()
        timer.stop()
    finally:
        del vp.paint_overlay  # the class's method again
    _open_timed.image_set = marks.get("set")
    return marks["first"], marks["full"], vp, viewer


def _settle(app, window, study, timeout: float = 60.0) -> None:
    """Let the window finish what it does once shown (the browser's thumbnails, decoded on a
    background thread, and the spare reading tab), as it has by the time a user picks a study:
    a first open timed during that work measured the contention, not the open."""
    uids = {s.series_instance_uid for s in study.series}
    end = time.monotonic() + timeout
    while time.monotonic() < end and not (
            window._spare is not None and uids <= set(window.thumbnails._done)):
        app.processEvents()
        time.sleep(0.005)


def evict(store: Store, series_uid: str) -> int:
    """Drop the series' stored files from the page cache (as after a reboot or days later);
    returns how many. ``posix_fadvise`` needs no privilege; written files are clean once the
    import has fsync'ed them, so the kernel can let them go."""
    n = 0
    for instance in store.instances(series_uid):
        if instance.path is None:
            continue
        fd = os.open(instance.path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n += 1
        finally:
            os.close(fd)
    return n


def subprocess_cat(folder: Path) -> None:
    """Warm the page cache the way a second look at a study would find it."""
    for path in folder.iterdir():
        path.read_bytes()


if __name__ == "__main__":
    main()
