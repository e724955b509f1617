"""Block averaging for 3D keeps the anatomy in place."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.crosshair import Crosshair
from app.render.downsample import block_mean, factors_for
from app.render.grid import fit_grid
from app.render.reslice import Reslicer
from tests.render import phantom as ph


def test_factors():
    assert factors_for((400, 512, 512), 32_000_000) == (1, 2, 2)
    assert factors_for((100, 64, 64), 10**9) == (1, 1, 1)
    k, j, i = factors_for((2000, 512, 512), 10_000_000)
    assert (2000 // k) * (512 // j) * (512 // i) <= 10_000_000


def test_block_mean_keeps_positions(tilted):
    small, geometry = block_mean(tilted.array, tilted.geometry, (2, 2, 2))
    assert small.dtype == tilted.array.dtype
    assert small.shape == tuple(n // 2 for n in tilted.array.shape)
    assert small[3, 4, 5] == pytest.approx(tilted.array[6:8, 8:10, 10:12].mean(), abs=0.5)
    # a block's centre is the mean of its voxels' centres
    corners = tilted.geometry.index_to_lps(np.array([[10, 8, 6], [11, 9, 7]], dtype=float))
    assert np.allclose(geometry.index_to_lps(np.array([5.0, 4.0, 3.0])), corners.mean(axis=0))
    ch = Crosshair(geometry)
    ch.set_center(np.array(ph.SPHERE_LEFT.center))
    grid = fit_grid(geometry, ch.plane("coronal"))
    img = tilted.hu(Reslicer(small, geometry).slice(grid).pixels)
    found = ph.blob_centroid(img, 150, near=grid.lps_to_pixel(np.array(ph.SPHERE_LEFT.center)),
                             radius=6 / grid.pixel_mm)
    assert np.linalg.norm(grid.pixel_to_lps(found) - ph.SPHERE_LEFT.center) <= \
        max(geometry.spacing) / 2
    assert block_mean(tilted.array, tilted.geometry, (1, 1, 1))[0] is tilted.array
    with pytest.raises(ValueError, match="factors must be >= 1"):
        block_mean(tilted.array, tilted.geometry, (0, 1, 1))
