"""The layer-sampling slab kernel (:mod:`app.render.slab`) against ``vtkImageReslice``."""

from __future__ import annotations

import numpy as np
import pytest

from app.render import slab
from app.render.crosshair import Crosshair
from app.render.grid import fit_grid
from app.render.reslice import Reslicer

pytestmark = pytest.mark.skipif(not slab.is_available(), reason="slab kernel not built "
                                "(pip install -e . / python setup.py build_ext --inplace)")


def _oblique_grid(p, coarsen: int = 1):
    ch = Crosshair(p.geometry)
    ch.rotate("sagittal", 30.0)
    ch.rotate("axial", -20.0)
    return fit_grid(p.geometry, ch.plane("coronal")).coarsened(coarsen)


@pytest.mark.parametrize("mode", ["mip", "minip", "avg"])
def test_kernel_matches_vtk_inside_the_volume(sagittal, mode):
    grid = _oblique_grid(sagittal)
    rs = Reslicer(sagittal.array, sagittal.geometry)
    ours = rs.slice(grid, slab_mm=12.0, mode=mode)
    rs._layered = False
    theirs = rs.slice(grid, slab_mm=12.0, mode=mode)
    assert ours.samples == pytest.approx(theirs.samples, abs=1)
    diff = np.abs(ours.pixels.astype(np.int32) - theirs.pixels)
    # same trilinear field, samples placed differently along the ray: they differ where the
    # values change within a sample step (edges), never in bulk
    assert np.median(diff) <= 1
    assert np.mean(diff <= 30) > 0.97


def test_uint16_int16_and_threads_give_the_same_picture(sagittal):
    grid = _oblique_grid(sagittal)
    rs = Reslicer(sagittal.array, sagittal.geometry)
    to_index = np.linalg.inv(sagittal.geometry.affine)
    one = slab.composite(sagittal.array, to_index, grid, 20.0, "mip", 0.0, threads=1)
    two = slab.composite(sagittal.array, to_index, grid, 20.0, "mip", 0.0, threads=2)
    unsigned = slab.composite(sagittal.array.astype(np.uint16), to_index, grid, 20.0, "mip",
                              0.0, threads=3)
    assert np.array_equal(one, two) and np.array_equal(one, unsigned)
    assert unsigned.dtype == np.uint16
    assert rs.slice(grid, slab_mm=20.0).pixels.dtype == np.int16


def test_outside_the_volume_is_background(sagittal):
    grid = _oblique_grid(sagittal, 2)
    far = grid.with_plane(grid.plane.moved_to(grid.plane.center + 500.0 * grid.normal))
    out = Reslicer(sagittal.array, sagittal.geometry, background=-7).slice(far, slab_mm=20.0,
                                                                            mode="avg")
    assert (out.pixels == -7).all()


def test_what_the_kernel_refuses(sagittal):
    grid = _oblique_grid(sagittal, 4)
    to_index = np.linalg.inv(sagittal.geometry.affine)
    assert not slab.is_available(sagittal.array.astype(np.float32))
    assert not slab.is_available(sagittal.array[:, :, ::2])
    with pytest.raises(ValueError, match="the slab kernel needs"):
        slab.composite(sagittal.array.astype(np.float32), to_index, grid, 10.0, "mip", 0.0)
    # a float volume still gets its slab, through vtkImageReslice
    out = Reslicer(sagittal.array.astype(np.float32), sagittal.geometry).slice(grid, slab_mm=10.0)
    assert out.samples > 1 and out.pixels.dtype == np.float32
