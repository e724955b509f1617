"""Thick slabs: MIP of a known rod gives its maximum, thickness is respected in every plane.

Every test here runs twice: through the layer-sampling kernel (:mod:`app.render.slab`, what
full-quality oblique slabs use when it is built) and through ``vtkImageReslice`` alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.render import slab
from app.render.crosshair import Crosshair
from app.render.grid import fit_grid
from app.render.planes import Plane
from app.render.reslice import Reslicer
from tests.render import phantom as ph


@pytest.fixture(autouse=True, params=["layers", "vtk"])
def backend(request, monkeypatch) -> str:
    """Which slab path the Reslicers made in the test take for oblique full-quality slabs."""
    if request.param == "layers" and not slab.is_available():
        pytest.skip("slab kernel not built (pip install -e . / setup.py build_ext --inplace)")
    if request.param == "vtk":
        monkeypatch.setattr(slab, "is_available", lambda array=None: False)
    return str(request.param)


def _plane(p: ph.Phantom, view: str, center: np.ndarray) -> Plane:
    ch = Crosshair(p.geometry)
    if view == "oblique":
        ch.rotate("sagittal", 30.0)
        ch.rotate("axial", -20.0)
        view = "coronal"
    return ch.plane(view).moved_to(center)  # type: ignore[arg-type]


VIEWS = ["axial", "coronal", "sagittal", "oblique"]


def _near(image: np.ndarray, grid, point: np.ndarray, mm: float) -> np.ndarray:
    """Pixels within ``mm`` of ``point``'s projection."""
    r0, c0 = grid.lps_to_pixel(point)
    rr, cc = np.indices(image.shape)
    return image[(rr - r0) ** 2 + (cc - c0) ** 2 <= (mm / grid.pixel_mm) ** 2]


@pytest.mark.parametrize("view", VIEWS)
def test_slab_thickness_is_respected(sagittal, view):
    sphere = ph.SPHERE_RIGHT  # radius 3 mm, 600 HU, in 0 HU tissue
    centre = np.array(sphere.center)
    plane = _plane(sagittal, view, centre)
    plane = plane.moved_to(centre + 8.0 * plane.normal)  # sphere spans 5..11 mm behind
    grid = fit_grid(sagittal.geometry, plane)
    rs = Reslicer(sagittal.array, sagittal.geometry)
    near = grid.lps_to_pixel(centre)
    rr, cc = np.indices(grid.shape)
    window = (rr - near[0]) ** 2 + (cc - near[1]) ** 2 <= (5 / grid.pixel_mm) ** 2

    def peak(slab: float) -> float:
        out = rs.slice(grid, slab_mm=slab, mode="mip")
        return float(sagittal.hu(out.pixels)[window].max())

    # Linear interpolation reaches one voxel: a slab that stops more than a voxel short of the
    # sphere shows nothing of it; one that covers it shows its full value.
    voxel = max(sagittal.geometry.spacing)
    assert peak(2 * (5.0 - voxel - 0.1)) < 50
    assert peak(2 * 11.0 + 2) == pytest.approx(600, abs=2)  # takes all of it
    assert peak(0.0) < 50


@pytest.mark.parametrize("view", VIEWS)
def test_mip_of_a_rod_gives_its_maximum(tilted, view):
    plane = _plane(tilted, view, ph.POINT + np.array([0.0, 0.0, 2.0]))
    grid = fit_grid(tilted.geometry, plane)
    out = Reslicer(tilted.array, tilted.geometry).slice(grid, slab_mm=20.0, mode="mip")
    hu = tilted.hu(out.pixels)
    assert _near(hu, grid, ph.POINT, 8.0).max() == pytest.approx(500, abs=1)
    assert out.samples >= 20 / max(tilted.geometry.spacing) and out.slab_mm == 20.0
    assert out.mode == "mip"


def test_minip_and_average(sagittal):
    rs = Reslicer(sagittal.array, sagittal.geometry)
    dark = np.array(ph.DARK.center)
    plane = _plane(sagittal, "coronal", dark + np.array([0.0, 4.0, 0.0]))
    grid = fit_grid(sagittal.geometry, plane)
    minip = sagittal.hu(rs.slice(grid, slab_mm=16.0, mode="minip").pixels)
    assert _near(minip, grid, dark, 2.0).max() == pytest.approx(-500, abs=1)
    assert _near(minip, grid, dark - np.array([0.0, 0.0, 8.0]), 1.0).min() == \
        pytest.approx(0, abs=1)

    # the mean through a 4 mm-radius sphere of 300 HU in 0 HU over 20 mm: 300 * 8/20
    sphere = np.array(ph.SPHERE_LEFT.center)
    grid = fit_grid(sagittal.geometry, _plane(sagittal, "axial", sphere))
    avg = sagittal.hu(rs.slice(grid, slab_mm=20.0, mode="avg").pixels)
    r, c = np.rint(grid.lps_to_pixel(sphere)).astype(int)
    assert avg[r, c] == pytest.approx(120, rel=0.12)
    far = grid.lps_to_pixel(np.array([-20.0, 0.0, 8.0])).astype(int)  # body only
    assert avg[far[0], far[1]] == pytest.approx(0, abs=1)


def test_fast_slab_is_close_and_cheaper(tilted):
    plane = _plane(tilted, "oblique", ph.POINT)
    grid = fit_grid(tilted.geometry, plane)
    rs = Reslicer(tilted.array, tilted.geometry)
    full = rs.slice(grid, slab_mm=20.0)
    fast = rs.slice(grid.coarsened(2), slab_mm=20.0, fast=True)
    assert fast.samples < full.samples
    assert fast.pixels.shape[0] == pytest.approx(full.pixels.shape[0] / 2, abs=1)
    assert _near(tilted.hu(fast.pixels), grid.coarsened(2), ph.POINT, 8.0).max() == \
        pytest.approx(500, abs=1)


def test_fast_step_thins_the_slab_samples(tilted):
    rs = Reslicer(tilted.array, tilted.geometry)
    grid = fit_grid(tilted.geometry, Crosshair(tilted.geometry).plane("coronal"))
    two = rs.slice(grid.coarsened(4), slab_mm=20.0, fast=True)
    four = rs.slice(grid.coarsened(4), slab_mm=20.0, fast=True, fast_step=4.0)
    assert four.samples < two.samples and four.slab_mm == 20.0
    assert rs.slice(grid, slab_mm=20.0, fast_step=4.0).samples > two.samples  # only when fast
    with pytest.raises(ValueError, match="fast_step must be at least 1"):
        rs.slice(grid, slab_mm=20.0, fast=True, fast_step=0.5)
