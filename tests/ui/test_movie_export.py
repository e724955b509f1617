"""Cine and a turning 3D view exported as MP4 movies (issue 18), decoded back with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.render.movie import read_mp4
from app.store.local import Store
from app.ui.main_window import MainWindow
from app.ui.movie_export import TURN_FRAMES
from app.ui.view_export import to_rgb
from tests.ui.conftest import shown_window


@pytest.fixture(scope="module")
def movie_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("movie-home")
    synth = home.parent / "movie-synth"
    generate_series(synth, SeriesSpec(slices=18, rows=96, columns=96, pixel_spacing=2.0,
                                      slice_step=6.0, noise_hu=0, seed=8))
    import_paths(Store(home), [str(synth)])
    return home


@pytest.fixture
def viewer(qtbot, movie_home: Path):
    window: MainWindow = shown_window(qtbot, movie_home, 1100, 800)
    viewer = window.open_study(window.store.studies()[0].study_instance_uid)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.volume.finished, timeout=30_000)
    yield viewer
    viewer.close_all()


def _make(qtbot, viewer, path: Path, overlays: bool) -> list[np.ndarray]:
    viewer.movie_overlay_action.setChecked(overlays)
    done: list[str] = []
    job = viewer.export_movie(str(path))
    job.finished.connect(done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=60_000)
    return read_mp4(path)


def test_cine_movie_has_every_slice_with_or_without_the_overlay(qtbot, viewer,
                                                                tmp_path: Path) -> None:
    vp = viewer.viewports[0]
    k = vp.state.k
    with_overlay = _make(qtbot, viewer, tmp_path / "cine.mp4", True)
    assert len(with_overlay) == vp.n_slices == 18
    canvas = to_rgb(vp.grab_view())
    height, width = canvas.shape[:2]
    assert with_overlay[0].shape == (height + height % 2, width + width % 2, 3)
    assert vp.state.k == k  # back on the slice the user was reading
    # one frame per slice: the frame of the slice in view is that slice as on screen
    assert np.abs(with_overlay[k][:height, :width].astype(int) - canvas).mean() < 4
    assert np.abs(with_overlay[0].astype(int) - with_overlay[-1]).mean() > 1
    bare = _make(qtbot, viewer, tmp_path / "bare.mp4", False)
    assert len(bare) == 18
    # the patient's name is written in the top left corner only with the overlay
    corner = (slice(0, 40), slice(0, 200))
    assert with_overlay[k][corner].max() > 150 and bare[k][corner].max() < 60


@pytest.mark.gl
def test_3d_turn_movie_goes_once_around_and_the_view_comes_back(qtbot, viewer,
                                                               tmp_path: Path) -> None:
    view3d = viewer.show_3d()
    qtbot.waitUntil(lambda: view3d.scene is not None, timeout=60_000)
    view3d.reset_camera("left")
    before = view3d.snapshot()
    camera = view3d.scene.renderer.GetActiveCamera()
    position = np.array(camera.GetPosition())
    width, height = view3d.pixel_size()  # the movie's size: the view's when it was asked for
    done: list[object] = []
    task = viewer.export_movie(str(tmp_path / "turn.mp4"))
    task.succeeded.connect(done.append)
    task.failed.connect(done.append)
    assert not view3d.camera.isEnabled()  # the view is busy meanwhile, and says so
    qtbot.waitUntil(lambda: bool(done), timeout=180_000)
    assert done == [str(tmp_path / "turn.mp4")]
    frames = read_mp4(tmp_path / "turn.mp4")
    assert len(frames) == TURN_FRAMES
    assert frames[0].shape[:2] == (height + height % 2, width + width % 2)
    assert np.abs(frames[0][:height, :width].astype(int) - before).mean() < 4
    assert np.abs(frames[TURN_FRAMES // 4].astype(int) - frames[0]).mean() > 1  # turned
    assert np.allclose(camera.GetPosition(), position, atol=1e-3)  # once around
    assert view3d.scene.renderer.GetRenderWindow() is not None and view3d.camera.isEnabled()
