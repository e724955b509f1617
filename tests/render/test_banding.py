"""No wood-grain bands in 3D: a smooth bone surface renders smooth, whether the volume is
rendered on its own grid or resampled to the voxel budget (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.offscreen import OffscreenView
from app.render.scene3d import VolumeScene
from tests.render.banding import INTERCEPT, ripple, skull_shell

pytestmark = pytest.mark.gl

#: Ripple (grey levels) of the smooth shell: about 1 when smooth, 6 to 7 with bands.
SMOOTH = 2.5


@pytest.fixture(scope="module")
def shell() -> tuple[np.ndarray, object]:
    return skull_shell()


def _picture(array: np.ndarray, geometry, **kw) -> tuple[np.ndarray, VolumeScene]:
    scene = VolumeScene(array, geometry, intercept=INTERCEPT, preset="bone", **kw)
    scene.reset_camera("left")
    scene.rotate(azimuth=25.0, elevation=20.0)
    view = OffscreenView(scene.renderer, (400, 400))
    try:
        return view.render(), scene
    finally:
        view.close()


def test_the_oracle_sees_the_bands_of_unsmoothed_voxels(shell) -> None:
    banded, _ = _picture(*shell, max_voxels=None, smooth=0.0)
    assert ripple(banded) > 2 * SMOOTH


def test_bone_surface_is_smooth_on_the_stored_grid(shell) -> None:
    picture, scene = _picture(*shell, max_voxels=None)
    assert scene.note is None and scene.array.shape == shell[0].shape
    assert ripple(picture) < SMOOTH


def test_bone_surface_is_smooth_when_resampled_to_the_budget(shell) -> None:
    array, _ = shell
    picture, scene = _picture(*shell, max_voxels=array.size // 6)
    assert scene.array.size <= array.size // 6
    spacing = scene.geometry.spacing
    assert max(spacing) / min(spacing) < 1.05  # the budget spent on equal voxels
    assert scene.note is not None and "resampled" in scene.note
    assert ripple(picture) < SMOOTH
