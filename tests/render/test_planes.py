"""Plane model: standard views from patient axes, upright screen axes, acquisition frames."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.planes import (
    VIEWS,
    Plane,
    acquisition_frame,
    rotation,
    standard_plane,
    view_plane,
)
from app.volume.geometry import VolumeGeometry
from tests.render.phantom import centred_affine


@pytest.mark.parametrize(("view", "right", "down", "normal"), [
    ("axial", (1, 0, 0), (0, 1, 0), (0, 0, 1)),
    ("coronal", (1, 0, 0), (0, 0, -1), (0, 1, 0)),
    ("sagittal", (0, 1, 0), (0, 0, -1), (-1, 0, 0)),
])
def test_standard_views_follow_radiological_convention(view, right, down, normal):
    plane = standard_plane(view, np.zeros(3))
    assert np.allclose(plane.right, right)
    assert np.allclose(plane.down, down)
    assert np.allclose(plane.normal, normal)
    assert np.allclose(view_plane(view, np.eye(3), np.zeros(3)).right, right)


def test_plane_orthonormalises_and_measures_distance():
    plane = Plane(center=np.array([1.0, 2.0, 3.0]), right=[2.0, 0, 0], down=[0.3, 1.0, 0])
    assert np.isclose(np.linalg.norm(plane.right), 1) and np.isclose(plane.right @ plane.down, 0)
    assert np.isclose(plane.distance(np.array([5.0, 5.0, 7.0])), 4.0)


def test_rotation_is_right_handed():
    assert np.allclose(rotation(np.array([0, 0, 1.0]), 90) @ [1, 0, 0], [0, 1, 0])


@pytest.mark.parametrize("view", VIEWS)
def test_rotating_about_a_views_own_normal_keeps_its_screen_axes(view):
    plane = view_plane(view, np.eye(3), np.zeros(3))
    frame = rotation(plane.normal, 37.0)
    turned = view_plane(view, frame, np.zeros(3))
    assert np.allclose(turned.right, plane.right) and np.allclose(turned.down, plane.down)


def test_tilted_coronal_keeps_the_head_up():
    frame = rotation(np.array([1.0, 0, 0]), 30.0)  # tilt about the patient's left-right axis
    coronal = view_plane("coronal", frame, np.zeros(3))
    assert coronal.down[2] < -0.8  # still feet at the bottom
    assert np.allclose(coronal.right, [1, 0, 0])


def test_acquisition_frame_of_sagittal_and_tilted_stacks():
    sag = VolumeGeometry(affine=centred_affine(
        np.stack([[0, 1.0, 0], [0, 0, -1.0], [-1.0, 0, 0]], axis=1), (10, 10, 10)),
        shape=(10, 10, 10))
    assert np.allclose(acquisition_frame(sag), np.eye(3))
    t = np.radians(15)
    tilt = VolumeGeometry(affine=centred_affine(
        np.stack([[1.0, 0, 0], [0, np.cos(t), -np.sin(t)], [0, 0, 1.0]], axis=1), (10, 10, 10)),
        shape=(10, 10, 10))
    frame = acquisition_frame(tilt)
    assert np.isclose(np.linalg.det(frame), 1.0)
    axial = view_plane("axial", frame, np.zeros(3))
    assert np.allclose(axial.down, [0, np.cos(t), -np.sin(t)])  # the stored column direction
    assert np.allclose(axial.right, [1, 0, 0])
