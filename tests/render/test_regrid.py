"""Uneven and tilted stacks: resampled correctly in patient space, and the user is told."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from app.dicom.synth import paint
from app.errors import GeometryError
from app.render.crosshair import Crosshair
from app.render.grid import fit_grid
from app.render.regrid import regular_volume
from app.render.reslice import Reslicer
from tests.render import phantom as ph

ROWS, COLS, PIXEL = 90, 80, 0.8


def _stack(z_positions, tilt_deg=0.0):
    """Slices painted at their own positions: tilted rows, slices stepping along z."""
    t = math.radians(tilt_deg)
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, math.cos(t), -math.sin(t)])
    jj, ii = np.indices((ROWS, COLS)).astype(np.float64)
    slices, positions = [], []
    for z in z_positions:
        origin = np.array([-(COLS - 1) / 2 * PIXEL, -(ROWS - 1) / 2 * PIXEL * math.cos(t),
                           z + (ROWS - 1) / 2 * PIXEL * math.sin(t)])
        pts = origin + ii[..., None] * PIXEL * row + jj[..., None] * PIXEL * col
        slices.append(np.rint(paint(ph.SHAPES, pts.astype(np.float32)) - ph.INTERCEPT))
        positions.append(origin)
    return np.stack(slices).astype(np.int16), np.array(positions), row, col


def test_regular_stack_is_taken_as_is():
    array, pos, row, col = _stack(np.arange(-30.0, 30.0, 1.5), tilt_deg=12.0)
    out = regular_volume(array, pos, row_direction=row, column_direction=col,
                         pixel_spacing=(PIXEL, PIXEL))
    assert out.note is None and out.array is array
    assert np.allclose(out.geometry.index_to_lps(np.array([0.0, 0.0, 3.0])), pos[3])


@pytest.mark.parametrize("tilt", [0.0, 18.5])
def test_uneven_stack_is_resampled_in_patient_space(tilt):
    rng = np.random.default_rng(4)
    steps = rng.choice([1.1, 2.5, 4.2], size=30)
    z = -30.0 + np.concatenate([[0.0], np.cumsum(steps)])
    z = z[z < 34]
    array, pos, row, col = _stack(z, tilt_deg=tilt)
    out = regular_volume(array, pos, row_direction=row, column_direction=col,
                         pixel_spacing=(PIXEL, PIXEL))
    assert out.note is not None and "resampled" in out.note
    # spacing measured across the slices (along their normal): the table's steps x cos(tilt)
    across = np.cos(np.radians(tilt))
    spread = re.search(r"\(([\d.]+) to ([\d.]+) mm apart\)", out.note)
    grid = re.search(r"resampled to \d+ slices ([\d.]+) mm apart", out.note)
    assert spread and grid, out.note
    assert float(spread[1]) == pytest.approx(1.1 * across, abs=0.01)
    assert float(spread[2]) == pytest.approx(4.2 * across, abs=0.01)
    assert float(grid[1]) == pytest.approx(1.1 * across, abs=0.01)
    assert out.array.dtype == np.int16
    assert np.allclose(out.geometry.index_to_lps(np.zeros(3)), pos[0])
    last = out.geometry.index_to_lps(np.array([0.0, 0.0, out.array.shape[0] - 1]))
    assert (last - pos[0]) @ (pos[-1] - pos[0]) / np.linalg.norm(pos[-1] - pos[0]) == \
        pytest.approx(np.linalg.norm(pos[-1] - pos[0]), abs=1.1)
    rs = Reslicer(out.array, out.geometry)
    ch = Crosshair(out.geometry)
    for shape in (ph.SPHERE_LEFT, ph.SPHERE_RIGHT):
        ch.set_center(np.array(shape.center))
        for view in ("axial", "coronal", "sagittal"):
            grid = fit_grid(out.geometry, ch.plane(view))
            img = ph.Phantom(array=out.array, geometry=out.geometry, shapes=[]).hu(
                rs.slice(grid).pixels)
            found = ph.blob_centroid(img, shape.hu / 2,
                                     near=grid.lps_to_pixel(np.array(shape.center)),
                                     radius=(shape.radii[0] + 1.5) / grid.pixel_mm)
            # coarse stored steps (up to 4.2 mm) blur along z; the centre stays put
            error = np.linalg.norm(grid.pixel_to_lps(found) - np.array(shape.center))
            assert error <= 1.0, f"{view}: {error:.2f} mm"


def test_stacks_that_are_not_volumes_are_refused():
    array, pos, row, col = _stack([0.0, 1.0, 2.0, 3.0])
    kw = dict(row_direction=row, column_direction=col, pixel_spacing=(PIXEL, PIXEL))
    bent = pos.copy()
    bent[2, 0] += 3.0
    with pytest.raises(GeometryError, match="one line"):
        regular_volume(array, bent, **kw)
    twice = pos.copy()
    twice[2] = twice[1]
    with pytest.raises(GeometryError, match="repeat"):
        regular_volume(array, twice, **kw)
    flat = pos.copy()
    flat[:, 2] = 0.0
    flat[:, 0] = [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(GeometryError, match="own plane"):
        regular_volume(array, flat, **kw)
    with pytest.raises(GeometryError, match="positions"):
        regular_volume(array, pos[:3], **kw)
