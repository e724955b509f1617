"""The function behind ``relay render --plane``: 8-bit pictures with the anatomy in place."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.display import auto_window
from app.render.export import render_plane
from app.volume.geometry import VolumeGeometry
from tests.render import phantom as ph


def test_axial_slab_picture(sagittal):
    out = render_plane(sagittal.array, sagittal.geometry, plane="axial", slab_mm=30.0,
                       mode="mip", window=(300.0, 600.0), intercept=ph.INTERCEPT,
                       center=np.array([0.0, 0.0, 1.0]))
    assert out.pixels.dtype == np.uint8 and out.pixels.ndim == 2
    assert (out.slab_mm, out.mode, out.window) == (30.0, "mip", (300.0, 600.0))
    assert (out.grid.labels.left, out.grid.labels.right) == ("R", "L")
    r, c = np.rint(out.grid.lps_to_pixel(np.array(ph.SPHERE_RIGHT.center))).astype(int)
    assert out.pixels[r, c] == 255  # 600 HU at the top of a 0..600 window
    r, c = np.rint(out.grid.lps_to_pixel(np.array(ph.SPHERE_LEFT.center))).astype(int)
    assert out.pixels[r, c] == pytest.approx(128, abs=2)  # 300 HU mid-window


@pytest.mark.parametrize("plane", ["coronal", "sagittal"])
def test_other_planes_and_auto_window(tilted, plane):
    out = render_plane(tilted.array, tilted.geometry, plane=plane, intercept=ph.INTERCEPT)
    assert out.pixels.max() == 255 and out.pixels.min() == 0
    assert out.grid.labels.top == "H"
    with pytest.raises(ValueError, match="plane must be one of"):
        render_plane(tilted.array, tilted.geometry, plane="transverse")  # type: ignore[arg-type]


def test_window_follows_dicom_linear_function():
    # a one-voxel-thick volume holding the values to window: the thin axial plane shows them
    stored = np.array([[[0, 1024, 1064, 1104, 3000]] * 2] * 2, dtype=np.int16)
    g = VolumeGeometry(affine=np.eye(4), shape=stored.shape)
    out = render_plane(stored, g, plane="axial", window=(40, 80), intercept=-1024,
                       center=np.array([0.0, 0.0, 0.0]))
    assert out.pixels[0].tolist() == [0, 0, 129, 255, 255]
    c, w = auto_window(np.tile(np.arange(1000, dtype=np.float32), (4, 1)) - 1024)
    assert w > 900 and c == pytest.approx(-1024 + 500, abs=10)
