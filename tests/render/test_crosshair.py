"""Linked crosshair: moving, scrolling and rotating keep the three planes linked."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.crosshair import Crosshair
from app.render.planes import VIEWS


def _perpendicular(planes):
    normals = np.stack([p.normal for p in planes.values()])
    return np.allclose(np.abs(normals @ normals.T), np.eye(3), atol=1e-9)


def test_starts_at_volume_centre_on_patient_planes(sagittal):
    ch = Crosshair(sagittal.geometry)
    assert np.allclose(ch.center, sagittal.geometry.center_lps())
    assert np.allclose(ch.plane("axial").normal, [0, 0, 1])


def test_moving_in_one_view_moves_the_others(sagittal):
    ch = Crosshair(sagittal.geometry)
    seen = []
    ch.subscribe(lambda c: seen.append(c.center))
    before = ch.center
    ch.move("axial", 5.0, -3.0)  # 5 mm to screen right (patient left), 3 mm up (anterior)
    assert np.allclose(ch.center - before, [5.0, -3.0, 0.0])
    for view in VIEWS:
        assert np.isclose(ch.plane(view).distance(ch.center), 0.0)
    assert np.isclose(abs(ch.plane("sagittal").distance(before)), 5.0)
    ch.scroll("axial", 4.0)  # axial normal points to the head
    assert np.isclose(ch.center[2], before[2] + 4.0)
    assert len(seen) == 2


def test_point_is_kept_inside_the_volume(sagittal):
    ch = Crosshair(sagittal.geometry)
    ch.set_center(np.array([0.0, 0.0, 500.0]))
    ijk = sagittal.geometry.lps_to_index(ch.center)
    k, j, i = sagittal.geometry.shape
    assert np.all(ijk >= -1e-9) and np.all(ijk <= np.array([i, j, k]) - 1 + 1e-9)


def test_rotating_in_axial_turns_coronal_and_sagittal_only(sagittal):
    ch = Crosshair(sagittal.geometry)
    axial = ch.plane("axial")
    ch.rotate("axial", 30.0)
    planes = ch.planes()
    assert _perpendicular(planes)
    assert np.allclose(planes["axial"].right, axial.right)
    assert np.allclose(planes["axial"].down, axial.down)
    # the coronal plane turned 30° about the head-feet axis
    assert np.isclose(abs(planes["coronal"].normal @ [0, 1, 0]), np.cos(np.radians(30)))
    assert np.isclose(planes["coronal"].normal[2], 0.0)
    # crosshair lines in the axial view turned counter-clockwise on screen
    line = ch.lines("axial")["coronal"]
    assert np.isclose(abs(np.degrees(np.arctan2(-line[1], line[0]))), 30.0)


def test_rotation_sign_is_counter_clockwise_on_screen(sagittal):
    ch = Crosshair(sagittal.geometry)
    ch.rotate("axial", 20.0)
    # the coronal line (horizontal at rest) now points up-right: screen right and up (down < 0)
    right, down = ch.lines("axial")["coronal"]
    assert right > 0 and down < 0


def test_rotations_compose_and_reset(sagittal):
    ch = Crosshair(sagittal.geometry)
    ch.move("coronal", 3, 3)
    for _ in range(36):
        ch.rotate("sagittal", 10.0)
    assert np.allclose(ch.frame, np.eye(3), atol=1e-9)  # full turn
    ch.rotate("coronal", 25.0)
    ch.rotate("axial", -40.0)
    assert _perpendicular(ch.planes())
    ch.reset()
    assert np.allclose(ch.frame, np.eye(3))
    assert np.allclose(ch.center, sagittal.geometry.center_lps())


def test_acquisition_reset_matches_stored_slices(tilted):
    ch = Crosshair(tilted.geometry, align="acquisition")
    axial = ch.plane("axial")
    assert np.allclose(axial.right, tilted.geometry.row_direction)
    assert np.allclose(axial.down, tilted.geometry.column_direction)
    with pytest.raises(ValueError, match="align must be"):
        ch.reset(align="array")


def test_a_failing_listener_does_not_stop_the_others(sagittal, caplog):
    ch = Crosshair(sagittal.geometry)
    got = []
    ch.subscribe(lambda c: 1 / 0)
    unsubscribe = ch.subscribe(lambda c: got.append(1))
    ch.move("axial", 1, 1)
    unsubscribe()
    ch.move("axial", 1, 1)
    assert got == [1]
    assert "listener failed" in caplog.text
