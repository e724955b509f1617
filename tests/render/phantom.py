"""Analytic phantoms painted into volumes with non-trivial affines, for geometry tests.

Shapes sit at known LPS positions (mm, HU); voxels are painted at their own LPS centres, so
whatever the orientation, spacing or shear of the grid, the anatomy is where the shapes say.
Stored values are HU + 1024 (int16), i.e. slope 1, intercept -1024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.dicom.synth import Ellipsoid, Rod, Shape, paint
from app.render.planes import rotation
from app.volume.geometry import VolumeGeometry

INTERCEPT = -1024.0

#: 30° oblique test plane: the axial plane turned about the patient x axis, through POINT.
POINT = np.array([4.0, -2.0, 3.0])
TILT = 30.0
OBLIQUE_RIGHT = np.array([1.0, 0.0, 0.0])
OBLIQUE_DOWN = rotation(OBLIQUE_RIGHT, TILT) @ np.array([0.0, 1.0, 0.0])

BODY = Ellipsoid((0.0, 0.0, 0.0), (28.0, 34.0, 36.0), 0.0)
SPHERE_LEFT = Ellipsoid((15.0, -10.0, 8.0), (4.0, 4.0, 4.0), 300.0)  # patient left, anterior
SPHERE_RIGHT = Ellipsoid((-12.0, 12.0, -6.0), (3.0, 3.0, 3.0), 600.0)  # right, posterior, low
DARK = Ellipsoid((-4.0, 14.0, 14.0), (4.0, 4.0, 4.0), -500.0)
ROD_OBLIQUE = Rod(tuple(POINT - 15 * OBLIQUE_DOWN), tuple(POINT + 15 * OBLIQUE_DOWN), 2.0, 500.0)
MARK_OBLIQUE = Ellipsoid(tuple(POINT + 9 * OBLIQUE_RIGHT), (2.5, 2.5, 2.5), 250.0)
SHAPES: list[Shape] = [BODY, SPHERE_LEFT, SPHERE_RIGHT, DARK, ROD_OBLIQUE, MARK_OBLIQUE]


@dataclass
class Phantom:
    array: np.ndarray
    geometry: VolumeGeometry
    shapes: list[Shape]

    def hu(self, stored: np.ndarray) -> np.ndarray:
        return stored.astype(np.float32) + INTERCEPT


def affine_from(row_dir, col_dir, slice_step, spacing_rc, origin) -> np.ndarray:
    """Affine from DICOM-style directions: column i along row_dir, row j along col_dir."""
    a = np.eye(4)
    a[:3, 0] = np.asarray(row_dir, float) / np.linalg.norm(row_dir) * spacing_rc[1]
    a[:3, 1] = np.asarray(col_dir, float) / np.linalg.norm(col_dir) * spacing_rc[0]
    a[:3, 2] = slice_step
    a[:3, 3] = origin
    return a


def centred_affine(linear: np.ndarray, shape: tuple[int, int, int], centre=(0.0, 0.0, 0.0)):
    """Affine with the given 3×3 (columns i, j, k) whose volume centre is at ``centre``."""
    a = np.eye(4)
    a[:3, :3] = linear
    k, j, i = shape
    a[:3, 3] = np.asarray(centre) - linear @ np.array([(i - 1) / 2, (j - 1) / 2, (k - 1) / 2])
    return a


def painted(affine: np.ndarray, shape: tuple[int, int, int], shapes=SHAPES) -> Phantom:
    geometry = VolumeGeometry(affine=affine, shape=shape)
    k, j, i = shape
    kk, jj, ii = np.meshgrid(np.arange(k), np.arange(j), np.arange(i), indexing="ij")
    ijk = np.stack([ii, jj, kk], axis=-1).astype(np.float64)
    points = geometry.index_to_lps(ijk).astype(np.float32)
    hu = paint(shapes, points)
    stored = np.rint(hu - INTERCEPT).astype(np.int16)
    return Phantom(array=stored, geometry=geometry, shapes=list(shapes))


def sagittal_oblique_phantom() -> Phantom:
    """Stored as sagittal slices (like an MR), turned 10° off the axes, anisotropic voxels.

    Columns run posterior (0.6 mm), rows run to the feet (0.8 mm), slices run to the patient's
    right (1.3 mm); the whole frame is rotated 10° about an oblique axis.
    """
    turn = rotation(np.array([0.3, 0.5, 0.8]), 10.0)
    linear = turn @ np.stack([np.array([0, 1.0, 0]) * 0.6, np.array([0, 0, -1.0]) * 0.8,
                              np.array([-1.0, 0, 0]) * 1.3], axis=1)
    shape = (52, 96, 118)
    return painted(centred_affine(linear, shape), shape)


def tilted_phantom(tilt_deg: float = 20.0) -> Phantom:
    """An axial CT stack with gantry tilt: rows tilted, slices stepping along z (a shear)."""
    t = math.radians(tilt_deg)
    linear = np.stack([np.array([1.0, 0, 0]) * 0.7,
                       np.array([0.0, math.cos(t), -math.sin(t)]) * 0.7,
                       np.array([0.0, 0.0, 1.5])], axis=1)
    shape = (54, 100, 86)
    return painted(centred_affine(linear, shape), shape)


def blob_centroid(image: np.ndarray, threshold: float, near=None, radius: float = 12.0
                  ) -> np.ndarray:
    """(row, col) centroid of the pixels above ``threshold`` (within ``radius`` pixels of
    ``near`` when given, to keep other objects out)."""
    mask = image > threshold
    if near is not None:
        rr, cc = np.indices(image.shape)
        mask &= (rr - near[0]) ** 2 + (cc - near[1]) ** 2 <= radius**2
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise AssertionError("no pixel above threshold")
    return np.array([rows.mean(), cols.mean()])
