"""Opening the 3D view of a real head CT does not freeze the window (issue 18, "Speed"): the
scene is resampled, shaded and first rendered on a worker thread; the GUI thread only puts the
finished picture on screen."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.store.local import Store
from app.ui.main_window import MainWindow
from tests.ui.conftest import shown_window

pytestmark = [pytest.mark.usefixtures("data"), pytest.mark.gl, pytest.mark.slow]

#: Longest the event loop may stall while the 3D of the Visible Human head opens. Generous for
#: a busy two-core machine (the hand-over of the finished scene measured 0.25 s there); before
#: the scene left the GUI thread it stalled 3 to 10 s (bench/bench_3d_open.py).
MAX_STALL_S = 0.8


@pytest.fixture(scope="module")
def head_home(tmp_path_factory, data: Path) -> Path:
    home = tmp_path_factory.mktemp("head3d")
    small = home.parent / "head3d-small"
    generate_series(small, SeriesSpec(slices=30, rows=64, columns=64, pixel_spacing=3.0,
                                      slice_step=3.0, noise_hu=0, seed=3,
                                      series_description="small (synthetic)"))
    import_paths(Store(home), [str(small), str(data / "ct-head" / "visible-human-male-head-1mm")])
    return home


def _session(qtbot, window: MainWindow, description: str):
    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == description)
    viewer = window.open_study(uid)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.volume.finished, timeout=60_000)
    return vp.session



def _hosted(qtbot, width: int, height: int):
    """A 3D view laid out in a host widget of this size (closed by qtbot), not shown yet."""
    from app.ui.volume3d import Volume3DWidget

    host = QWidget()
    qtbot.addWidget(host)
    host.resize(width, height)
    view3d = Volume3DWidget(host)
    QVBoxLayout(host).addWidget(view3d)
    return host, view3d

def test_opening_3d_of_a_head_ct_keeps_the_window_responsive(qtbot, head_home: Path) -> None:

    window = shown_window(qtbot, head_home, 1200, 900)
    small = _session(qtbot, window, "CT HEAD WO CONTRAST (synthetic demo)")
    head = _session(qtbot, window, "Visible Human Male")
    host, view3d = _hosted(qtbot, 900, 700)
    host.show()
    qtbot.waitExposed(host)
    # the OpenGL window is made once per 3D view: warm it on a small series first
    view3d.set_series(small)
    qtbot.waitUntil(lambda: view3d.scene is not None, timeout=60_000)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    ticks.append(time.monotonic())
    try:
        view3d.set_series(head)
        qtbot.waitUntil(lambda: view3d.scene is not None, timeout=180_000)
        qtbot.wait(300)
    finally:
        timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 20 and gaps.max() < MAX_STALL_S, sorted(gaps)[-5:]
    # and the picture on screen is the head at full quality, drawn by the worker
    assert view3d.showing_still and view3d.scene.array.size <= 32_000_000
    picture = view3d.snapshot()
    assert picture.mean() > 5
    view3d.style.InvokeEvent("StartInteractionEvent")  # the user turns it: VTK draws it
    assert not view3d.showing_still and view3d.scene.volume.GetVisibility()
    view3d.style.InvokeEvent("EndInteractionEvent")
    assert np.abs(view3d.snapshot().astype(int) - picture).mean() < 2  # the same picture
    view3d.close_3d()
    for viewer in window.viewers.values():
        viewer.close_all()


def test_the_3d_view_is_made_ahead_while_the_reader_rests(qtbot, head_home: Path) -> None:
    """Once a series has loaded and the reader leaves the slices alone, the viewer makes the 3D
    view and its OpenGL window as a hidden page, a piece at a time; choosing 3D then shows it
    with nothing left to make, the cube turning with the scene's camera."""
    window = shown_window(qtbot, head_home, 1200, 900)
    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == "CT HEAD WO CONTRAST (synthetic demo)")
    viewer = window.open_study(uid)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.volume.finished, timeout=60_000)
    qtbot.waitUntil(lambda: viewer.view3d is not None and viewer.view3d.warm, timeout=60_000)
    view3d = viewer.view3d
    assert viewer.pages.currentWidget() is not view3d and not view3d.isVisible()
    assert view3d.scene is None and view3d.orientation is not None
    assert not view3d.orientation.GetEnabled()  # made, not shown yet
    shown = viewer.show_3d()
    assert shown is view3d
    qtbot.waitUntil(lambda: view3d.scene is not None, timeout=120_000)
    assert not view3d._initializing  # the OpenGL window was there already
    qtbot.waitUntil(lambda: not view3d._orientation_pending, timeout=10_000)
    assert view3d.orientation.GetEnabled()
    assert view3d.orientation.GetCurrentRenderer() is view3d.scene.renderer
    picture = view3d.snapshot()
    assert picture.shape[:2] == tuple(reversed(view3d.pixel_size()))
    assert picture.mean() > 5  # the head, not a black window
    viewer.close_all()


def test_the_3d_view_takes_the_render_windows_made_on_the_prewarm_thread(qtbot) -> None:
    """Making a render window opens a connection to the display (20-60 ms holding the
    interpreter): the prewarm thread makes two, the 3D view's and the worker's first, so the
    GUI thread does not."""
    from app.ui import prewarm
    from app.ui.volume3d import Volume3DWidget

    prewarm._windows.clear()
    prewarm._import()  # what the prewarm thread does
    made = list(prewarm._windows)
    assert len(made) == 2
    view3d = Volume3DWidget()
    qtbot.addWidget(view3d)
    assert any(view3d.render_window is window for window in made)
    spare = prewarm.spare_render_window()  # the worker's, taken when the scene is prepared
    assert spare is not None and spare is not view3d.render_window
    assert prewarm.spare_render_window() is None
    view3d.close_3d()


def test_each_piece_made_ahead_is_a_call_of_its_own(qtbot) -> None:
    """The OpenGL context is made in a call of ``warm_up`` of its own, at the size the view
    will be shown at; its first frame (a software OpenGL compiles its shaders there), the
    still frame's and the cube's are drawn on a thread of their own, so the window answers
    meanwhile. Then the window draws on the GUI thread as before."""
    from app.ui.volume3d import WARM_STEPS

    host, view3d = _hosted(qtbot, 640, 480)
    host.layout().activate()
    size = view3d.pixel_size()
    window = view3d.render_window
    drawn_on: list[int] = []
    window.AddObserver("StartEvent", lambda *_: drawn_on.append(threading.get_ident()))
    assert not view3d.warm_up(size)  # the context
    assert window.GetInitialized() and window.GetNeverRendered()
    assert tuple(window.GetSize()) == size
    assert not drawn_on
    calls = 1
    while not view3d.warm_up(size):
        calls += 1
        qtbot.wait(5)
    assert calls >= len(WARM_STEPS) and view3d.warm and not window.GetNeverRendered()
    gui = threading.get_ident()
    assert drawn_on[0] != gui  # the first frame
    assert sum(t != gui for t in drawn_on) == 3  # the first frame, the still's, the cube's
    assert view3d.snapshot().shape == (size[1], size[0], 3)  # the GUI thread's again
    assert drawn_on[-1] == gui
    view3d.close_3d()


def test_3d_opened_before_it_was_made_ahead_draws_its_first_frame_on_a_thread(qtbot) -> None:
    """Shown at once (the reader chose 3D before the build-ahead), the view makes the same
    pieces, one per turn of the event loop, the first frame on a thread of its own."""

    host, view3d = _hosted(qtbot, 480, 360)
    drawn_on: list[int] = []
    view3d.render_window.AddObserver(
        "StartEvent", lambda *_: drawn_on.append(threading.get_ident()))
    host.show()
    qtbot.waitExposed(host)
    qtbot.waitUntil(lambda: view3d.warm and view3d._initialized, timeout=30_000)
    assert drawn_on[0] != threading.get_ident()
    assert view3d.snapshot().shape[:2] == view3d.pixel_size()[::-1]
    view3d.close_3d()


def test_the_vtk_widget_waits_for_a_frame_drawn_on_its_thread(qtbot) -> None:
    """An event reaching VTK's widget (a paint renders, a resize sizes the window) while the
    warm-up frame is drawn on its thread waits for it: the OpenGL context is current on one
    thread at a time."""

    host, view3d = _hosted(qtbot, 320, 240)
    host.layout().activate()
    size = view3d.pixel_size()
    view3d.warm_up(size)  # the context
    view3d.warm_up(size)  # its first frame, on its thread
    frame = view3d._frame
    assert frame is not None
    QApplication.sendEvent(view3d.vtk, QEvent(QEvent.Type.UpdateRequest))
    assert frame.done and view3d._frame is None
    view3d.close_3d()
