"""Resampling for 3D spends the voxel budget on equal voxels and keeps the anatomy in place."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.render.crosshair import Crosshair
from app.render.downsample import render_spacing, resample_for_3d
from app.render.grid import fit_grid
from app.render.reslice import Reslicer
from tests.render import phantom as ph


def _count(shape, spacing, out) -> int:
    return math.prod(n if s <= d else math.floor(n * d / s)
                     for n, d, s in zip(shape, spacing, out, strict=True))


def test_render_spacing_spends_the_budget_on_equal_voxels():
    # the Visible Human head: 1 mm everywhere, 64 M voxels into 32 M -> 1.26 mm cubes
    out = render_spacing((245, 512, 512), (1.0, 1.0, 1.0), 32_000_000)
    assert out == pytest.approx((2 ** (1 / 3),) * 3, rel=0.01)
    assert 0.95 * 32_000_000 < _count((245, 512, 512), (1.0,) * 3, out) <= 32_000_000
    # a CTA with 0.45 mm pixels and 1 mm slices: only the pixels get bigger
    out = render_spacing((400, 512, 512), (1.0, 0.45, 0.45), 32_000_000)
    assert out[0] == 1.0 and out[1] == out[2] and 0.45 < out[1] < 1.0
    assert _count((400, 512, 512), (1.0, 0.45, 0.45), out) <= 32_000_000
    # under the budget: the stored spacing
    assert render_spacing((100, 64, 64), (2.0, 0.5, 0.5), 10**9) == (2.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="max_voxels"):
        render_spacing((10, 10, 10), (1.0, 1.0, 1.0), 0)


def test_resampled_volume_keeps_positions(tilted):
    small, geometry = resample_for_3d(tilted.array, tilted.geometry,
                                      max_voxels=tilted.array.size // 8, smooth=0.0)
    assert small.dtype == tilted.array.dtype and small.size <= tilted.array.size // 8
    # the first and last voxel centres stay where they were
    last = np.array(small.shape[::-1], dtype=float) - 1
    stored_last = np.array(tilted.array.shape[::-1], dtype=float) - 1
    assert np.allclose(geometry.index_to_lps(np.zeros(3)), tilted.geometry.index_to_lps(
        np.zeros(3)))
    assert np.allclose(geometry.index_to_lps(last), tilted.geometry.index_to_lps(stored_last))
    ch = Crosshair(geometry)
    ch.set_center(np.array(ph.SPHERE_LEFT.center))
    grid = fit_grid(geometry, ch.plane("coronal"))
    img = tilted.hu(Reslicer(small, geometry).slice(grid).pixels)
    found = ph.blob_centroid(img, 150, near=grid.lps_to_pixel(np.array(ph.SPHERE_LEFT.center)),
                             radius=6 / grid.pixel_mm)
    assert np.linalg.norm(grid.pixel_to_lps(found) - ph.SPHERE_LEFT.center) <= \
        max(geometry.spacing) / 2


def test_smoothing_keeps_the_grid_and_the_mean(tilted):
    smooth, geometry = resample_for_3d(tilted.array, tilted.geometry, max_voxels=None)
    assert smooth.shape == tilted.array.shape and geometry is not tilted.geometry
    assert np.allclose(geometry.affine, tilted.geometry.affine)
    assert abs(float(smooth.mean()) - float(tilted.array.mean())) < 1.0
    assert np.abs(np.diff(smooth.astype(float), axis=2)).mean() < \
        np.abs(np.diff(tilted.array.astype(float), axis=2)).mean()  # smoother


def test_nothing_to_do_returns_the_stored_array(tilted):
    same, geometry = resample_for_3d(tilted.array, tilted.geometry, max_voxels=None, smooth=0)
    assert same is tilted.array and geometry is tilted.geometry
    with pytest.raises(ValueError, match="smooth"):
        resample_for_3d(tilted.array, tilted.geometry, max_voxels=None, smooth=-1)
