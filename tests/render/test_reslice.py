"""Reslices through known points of an analytic phantom land where the anatomy is.

Each phantom is stored with a non-trivial affine (sagittal and 10° rotated with anisotropic
voxels; axial with 20° gantry tilt). Tolerance: half the largest voxel spacing.
"""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.util import numpy_support

from app.render.crosshair import Crosshair
from app.render.grid import SliceGrid, fit_grid, scale_bar
from app.render.planes import Plane, standard_plane
from app.render.reslice import Reslicer
from app.render.vtkimage import wrap_volume
from tests.render import phantom as ph

LABELS = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "H", "F"),
          "sagittal": ("A", "P", "H", "F")}


def _half_voxel(p: ph.Phantom) -> float:
    return max(p.geometry.spacing) / 2


@pytest.fixture(params=["sagittal", "tilted"])
def phantom(request) -> ph.Phantom:
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("shape", [ph.SPHERE_LEFT, ph.SPHERE_RIGHT, ph.MARK_OBLIQUE],
                         ids=["left", "right", "mark"])
def test_sphere_appears_at_its_position(phantom, view, shape):
    ch = Crosshair(phantom.geometry)
    ch.set_center(np.array(shape.center))
    grid = fit_grid(phantom.geometry, ch.plane(view))
    out = Reslicer(phantom.array, phantom.geometry).slice(grid)
    found = ph.blob_centroid(phantom.hu(out.pixels), shape.hu / 2,
                             near=grid.lps_to_pixel(np.array(shape.center)),
                             radius=(shape.radii[0] + 1.5) / grid.pixel_mm)
    error = np.linalg.norm(grid.pixel_to_lps(found) - np.array(shape.center))
    assert error <= _half_voxel(phantom), f"{view}: {error:.2f} mm off"
    assert (grid.labels.left, grid.labels.right, grid.labels.top, grid.labels.bottom) == \
        LABELS[view]


def test_patient_left_is_on_screen_right_and_anterior_on_top(sagittal):
    rs = Reslicer(sagittal.array, sagittal.geometry)
    grid = fit_grid(sagittal.geometry, standard_plane("axial", np.array([0.0, 0.0, 1.0])))
    mip = sagittal.hu(rs.slice(grid, slab_mm=30.0).pixels)
    left = ph.blob_centroid(mip, 150, near=grid.lps_to_pixel(np.array(ph.SPHERE_LEFT.center)),
                            radius=10)
    right = ph.blob_centroid(mip, 450, near=grid.lps_to_pixel(np.array(ph.SPHERE_RIGHT.center)),
                             radius=10)
    # SPHERE_LEFT is at the patient's left and anterior; SPHERE_RIGHT right and posterior.
    assert left[1] > mip.shape[1] / 2 > right[1]
    assert left[0] < mip.shape[0] / 2 < right[0]

    cor = fit_grid(sagittal.geometry, standard_plane("coronal", np.zeros(3)))
    cmip = sagittal.hu(rs.slice(cor, slab_mm=40.0).pixels)
    hi = ph.blob_centroid(cmip, 150, near=cor.lps_to_pixel(np.array(ph.SPHERE_LEFT.center)),
                          radius=10)
    lo = ph.blob_centroid(cmip, 450, near=cor.lps_to_pixel(np.array(ph.SPHERE_RIGHT.center)),
                          radius=10)
    assert hi[0] < lo[0]  # z = +8 above z = -6: head at the top


def test_30_degree_oblique_through_a_known_point(phantom):
    ch = Crosshair(phantom.geometry)
    ch.set_center(ph.POINT)
    ch.rotate("sagittal", ph.TILT)  # tilts the axial plane about the patient's x axis
    plane = ch.plane("axial")
    assert np.allclose(plane.right, ph.OBLIQUE_RIGHT)
    assert np.allclose(plane.down, ph.OBLIQUE_DOWN)
    grid = fit_grid(phantom.geometry, plane)
    hu = phantom.hu(Reslicer(phantom.array, phantom.geometry).slice(grid).pixels)
    half = _half_voxel(phantom)

    # the rod lies in this plane along screen-down through POINT: a vertical bright line.
    # Per row, its centre is the HU-weighted mean column; the painted rod's edges are quantised
    # to voxels, so single rows may be off by up to a voxel, their mean by half a voxel.
    r0, c0 = grid.lps_to_pixel(ph.POINT)
    offsets = []
    for mm in np.arange(-11.0, 11.5, 1.0):
        row = int(round(r0 + mm / grid.pixel_mm))
        lo, hi = int(c0 - 6 / grid.pixel_mm), int(c0 + 6 / grid.pixel_mm) + 1
        weights = np.clip(hu[row, lo:hi], 0, 500)
        assert weights.max() == pytest.approx(500, abs=5), f"rod missing {mm} mm from the point"
        offset = ((np.arange(lo, hi) * weights).sum() / weights.sum() - c0) * grid.pixel_mm
        assert abs(offset) <= 2 * half
        offsets.append(offset)
    assert abs(np.mean(offsets)) <= half
    # and it ends where it ends (15 mm from the point, radius 2)
    assert hu[int(round(r0 + 19 / grid.pixel_mm)), int(round(c0))] < 50

    mark = ph.blob_centroid(hu, 125, near=grid.lps_to_pixel(np.array(ph.MARK_OBLIQUE.center)),
                            radius=4 / grid.pixel_mm)
    assert np.linalg.norm(grid.pixel_to_lps(mark) - np.array(ph.MARK_OBLIQUE.center)) <= half
    assert mark[1] > c0  # the mark is at patient left of the rod: screen right
    labels = grid.labels
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "AF", "PH")


def test_grid_round_trips_and_scale_bar(sagittal):
    plane = Plane(center=np.array([1.0, 2.0, 3.0]), right=[1, 1, 0], down=[0, 0, -1])
    grid = fit_grid(sagittal.geometry, plane, pixel_mm=0.5)
    pts = grid.pixel_to_lps(np.array([[3.0, 7.0], [10.5, 20.25]]))
    assert np.allclose(grid.lps_to_pixel(pts), [[3.0, 7.0], [10.5, 20.25]])
    assert np.allclose(plane.distance(pts), 0.0)
    mm, px = scale_bar(grid)
    assert mm in (10.0, 20.0, 50.0) and px == pytest.approx(mm / 0.5)
    coarse = grid.coarsened(2)
    assert coarse.pixel_mm == 1.0
    centre = np.array([(grid.shape[0] - 1) / 2, (grid.shape[1] - 1) / 2])
    ccentre = np.array([(coarse.shape[0] - 1) / 2, (coarse.shape[1] - 1) / 2])
    assert np.allclose(grid.pixel_to_lps(centre), coarse.pixel_to_lps(ccentre))


def test_scrolling_keeps_the_picture_still(sagittal):
    a = fit_grid(sagittal.geometry, standard_plane("axial", np.array([0.0, 0.0, 0.0])))
    b = fit_grid(sagittal.geometry, standard_plane("axial", np.array([3.0, -2.0, 5.0])))
    assert a.shape == b.shape
    assert np.allclose(a.lps_to_pixel(np.array([1.0, 1.0, 0.0])),
                       b.lps_to_pixel(np.array([1.0, 1.0, 5.0])))
    moved = a.with_plane(b.plane)
    assert np.allclose(moved.origin, b.origin)


def test_axis_aligned_reslice_reproduces_stored_slices():
    linear = np.diag([0.5, 0.5, 2.0])
    p = ph.painted(ph.centred_affine(linear, (20, 40, 30)), (20, 40, 30))
    rs = Reslicer(p.array, p.geometry)
    for k in (0, 7, 19):
        centre = p.geometry.index_to_lps(np.array([14.5, 19.5, k]))
        grid = fit_grid(p.geometry, standard_plane("axial", centre))
        assert grid.shape == (40, 30)
        assert np.array_equal(rs.slice(grid).pixels, p.array[k])


def test_volume_is_shared_not_copied(sagittal):
    image = wrap_volume(sagittal.array)
    shared = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    assert np.shares_memory(shared, sagittal.array)
    rs = Reslicer(sagittal.array, sagittal.geometry)
    assert rs.array is sagittal.array
    grid = fit_grid(sagittal.geometry, standard_plane("axial", np.zeros(3)))
    assert rs.slice(grid).pixels.dtype == np.int16


def test_bad_requests_are_refused(sagittal):
    rs = Reslicer(sagittal.array, sagittal.geometry)
    grid = fit_grid(sagittal.geometry, standard_plane("axial", np.zeros(3)))
    with pytest.raises(ValueError, match="mode"):
        rs.slice(grid, slab_mm=10, mode="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interpolation"):
        rs.slice(grid, interpolation="sinc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slab_mm"):
        rs.slice(grid, slab_mm=80)
    with pytest.raises(ValueError, match="contiguous"):
        wrap_volume(sagittal.array[:, :, ::2])
    with pytest.raises(ValueError, match="shape"):
        Reslicer(sagittal.array[:5].copy(), sagittal.geometry)
    with pytest.raises(ValueError, match="bad grid"):
        SliceGrid(plane=grid.plane, origin=grid.origin, pixel_mm=0.0, shape=(2, 2))
