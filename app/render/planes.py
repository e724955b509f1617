"""Image planes in LPS patient space, and the standard (axial, coronal, sagittal) views.

A view is defined from the patient axes, never from the array axes, so a sagittal MR or a tilted
CT reformats into the same anatomy. Display follows the radiological convention:

* axial: viewed from the feet, patient left on screen right, anterior at the top;
* coronal: viewed from the front, patient left on screen right, head at the top;
* sagittal: viewed from the patient's left, anterior on screen left, head at the top.

A :class:`Plane` carries a point and two orthonormal in-plane axes: ``right`` (increasing image
column) and ``down`` (increasing image row). Its ``normal`` is ``right × down``, pointing away from
the viewer.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.volume.geometry import VolumeGeometry

View = Literal["axial", "coronal", "sagittal"]
VIEWS: tuple[View, ...] = ("axial", "coronal", "sagittal")

#: Screen axes (right, down) of each view when nothing is rotated, in LPS.
STANDARD_AXES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "axial": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),
    "coronal": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    "sagittal": (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])),
}


@dataclass(frozen=True, eq=False)
class Plane:
    """An image plane: a point on it (LPS mm) and unit in-plane axes ``right`` and ``down``."""

    center: np.ndarray
    right: np.ndarray
    down: np.ndarray

    def __post_init__(self) -> None:
        right = _unit(self.right)
        down = np.asarray(self.down, dtype=np.float64)
        down = _unit(down - (down @ right) * right)
        for name, value in (("center", self.center), ("right", right), ("down", down)):
            arr = np.array(value, dtype=np.float64).reshape(3)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def normal(self) -> np.ndarray:
        """Unit normal ``right × down`` (points away from the viewer)."""
        normal: np.ndarray = np.cross(self.right, self.down)
        return normal

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of LPS points ``(..., 3)`` from the plane along the normal."""
        distance: np.ndarray = (np.asarray(points, dtype=np.float64) - self.center) @ self.normal
        return distance

    def moved_to(self, center: np.ndarray) -> Plane:
        """The same orientation through another point."""
        return Plane(center=np.asarray(center, dtype=np.float64), right=self.right, down=self.down)


def standard_plane(view: View, center: np.ndarray) -> Plane:
    """The unrotated axial, coronal or sagittal plane through ``center`` (LPS mm)."""
    right, down = STANDARD_AXES[view]
    return Plane(center=np.asarray(center, dtype=np.float64), right=right, down=down)


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """3×3 right-handed rotation by ``degrees`` about ``axis`` (Rodrigues)."""
    k = _unit(axis)
    t = math.radians(degrees)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    matrix: np.ndarray = np.eye(3) + math.sin(t) * kx + (1.0 - math.cos(t)) * (kx @ kx)
    return matrix


def view_plane(view: View, frame: np.ndarray, center: np.ndarray) -> Plane:
    """The plane of ``view`` for a rotated frame (columns x', y', z'), with upright screen axes.

    The plane's normal is the frame's rotated standard normal. Within the plane, the screen axes
    are the rotation that comes closest to the view's standard axes (a 2-D Procrustes fit), so a
    view never spins on screen when the planes are rotated about its own normal, and the head
    stays up in coronal and sagittal views however the other planes are tilted.
    """
    right0, down0 = STANDARD_AXES[view]
    normal = _unit(np.asarray(frame, dtype=np.float64) @ np.cross(right0, down0))
    if normal @ np.cross(right0, down0) < 0:
        normal = -normal
    e1 = _any_perpendicular(normal)
    e2 = np.cross(normal, e1)
    a1, a2 = right0 @ e1, right0 @ e2
    b1, b2 = down0 @ e1, down0 @ e2
    phi = math.atan2(a2 - b1, a1 + b2)
    right = math.cos(phi) * e1 + math.sin(phi) * e2
    return Plane(center=np.asarray(center, dtype=np.float64), right=right,
                 down=np.cross(normal, right))


def acquisition_frame(geometry: VolumeGeometry) -> np.ndarray:
    """Rotation frame (columns x', y', z') aligned with the stored image plane.

    The acquired plane's row and column directions and their normal, assigned to the patient
    axes they are closest to (with signs chosen to point the same way). With this frame the view
    matching the acquisition shows exactly the stored slices: the tilted slices of a gantry-tilted
    CT in the axial view, the stored slices of a sagittal MR in the sagittal view.
    """
    row, col = geometry.row_direction, geometry.column_direction
    col = _unit(col - (col @ row) * row)
    acquired = np.stack([row, col, np.cross(row, col)], axis=1)  # columns
    best: tuple[float, tuple[int, ...]] = (-1.0, (0, 1, 2))
    for perm in itertools.permutations(range(3)):
        score = sum(abs(acquired[axis, perm[axis]]) for axis in range(3))
        if score > best[0]:
            best = (score, perm)
    frame = np.empty((3, 3))
    for axis, source in enumerate(best[1]):
        column = acquired[:, source]
        frame[:, axis] = column if column[axis] >= 0 else -column
    if np.linalg.det(frame) < 0:
        weakest = int(np.argmin(np.abs(np.diag(frame))))
        frame[:, weakest] = -frame[:, weakest]
    return frame


def _any_perpendicular(normal: np.ndarray) -> np.ndarray:
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    return _unit(np.cross(normal, helper))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(v))
    if n == 0.0:
        raise ValueError("direction vector has zero length")
    return v / n
