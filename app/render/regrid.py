"""Make a regular volume from a stack whose slices are unevenly spaced.

An affine can describe a tilted stack (it becomes a shear, and reslicing through it is exact)
but not uneven steps between slices. For MPR and 3D such a stack is resampled along the stack
direction: each new slice is the linear blend of the two stored slices around it, voxel by
voxel, which is interpolation along the straight line joining the two samples in patient space.
The caller is told so in a sentence it must show beside the view; the stored slices themselves
are not changed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from app.errors import GeometryError
from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

#: At most this many times more slices than were stored, and never more than MAX_SLICES.
MAX_UPSAMPLING = 4
MAX_SLICES = 2048


@dataclass(frozen=True, eq=False)
class Regridded:
    """A regular volume for reslicing and 3D.

    Attributes
    ----------
    array
        The stored array itself when the stack was already regular, else a new resampled one.
    geometry
        Its affine.
    note
        ``None`` when nothing was resampled; otherwise a sentence for the user.
    """

    array: np.ndarray
    geometry: VolumeGeometry
    note: str | None


def regular_volume(array: np.ndarray, positions: np.ndarray, *, row_direction: np.ndarray,
                   column_direction: np.ndarray, pixel_spacing: tuple[float, float],
                   frame_of_reference_uid: str = "", tolerance_mm: float | None = None
                   ) -> Regridded:
    """A volume on a regular grid from slices at the given positions, resampling if needed.

    Parameters
    ----------
    array
        Stored slices ``(slices, rows, columns)``, in stack order.
    positions
        ``(slices, 3)`` ImagePositionPatient of each slice (LPS mm), same order.
    row_direction, column_direction
        ImageOrientationPatient's two unit vectors (shared by all slices).
    pixel_spacing
        PixelSpacing: (row spacing, column spacing) in mm.
    frame_of_reference_uid
        Carried into the geometry.
    tolerance_mm
        Largest difference between steps still taken as regular; default 1 % of the mean step
        (at least 0.01 mm).

    Raises
    ------
    GeometryError
        When slices do not lie on one line, repeat a position, go back and forth, or step
        within their own plane: no correct volume can be built, and none is guessed.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = array.shape[0]
    if positions.shape[0] != n:
        raise GeometryError(f"{positions.shape[0]} slice positions for {n} slices")
    row = np.asarray(row_direction, dtype=np.float64)
    col = np.asarray(column_direction, dtype=np.float64)
    linear = np.stack([row * pixel_spacing[1], col * pixel_spacing[0], np.zeros(3)], axis=1)
    if n == 1:
        linear[:, 2] = np.cross(row, col)
        return Regridded(array, _geometry(linear, positions[0], array.shape,
                                          frame_of_reference_uid), None)
    along, t = _stack_line(positions, row, col, min(pixel_spacing))
    steps = np.diff(t)
    mean = float(t[-1] / (n - 1))
    tolerance = max(0.01, 0.01 * mean) if tolerance_mm is None else tolerance_mm
    if float(np.abs(steps - mean).max()) <= tolerance:
        linear[:, 2] = along * mean
        return Regridded(array, _geometry(linear, positions[0], array.shape,
                                          frame_of_reference_uid), None)
    step = max(float(steps.min()), float(t[-1]) / min(MAX_SLICES - 1, MAX_UPSAMPLING * n))
    count = int(math.floor(t[-1] / step + 1e-6)) + 1
    out = _resample(array, t, step, count)
    linear[:, 2] = along * step
    # Spacing is told across the slices (along their normal), as the series' issues tell it:
    # along a tilted stack's line the same slices are 1 / cos(tilt) further apart.
    across = abs(float(along @ np.cross(row, col)))
    note = (f"Slices are unevenly spaced ({_mm(steps.min() * across)} to "
            f"{_mm(steps.max() * across)} mm apart): for MPR and 3D the {n} slices were "
            f"resampled to {count} slices {_mm(step * across)} mm apart by linear interpolation "
            f"in patient coordinates. The stored slices are unchanged.")
    log.info("resampled uneven stack: %d slices -> %d at %.3f mm", n, count, step)
    return Regridded(out, _geometry(linear, positions[0], out.shape, frame_of_reference_uid),
                     note)


def needs_resampling(positions: np.ndarray, *, row_direction: np.ndarray,
                     column_direction: np.ndarray, pixel_spacing: tuple[float, float],
                     tolerance_mm: float | None = None) -> bool:
    """True when :func:`regular_volume` would resample these slice positions (uneven steps).

    Cheap (positions only, no pixels), so a viewer can decide before the pixels have arrived
    whether it may reslice the stored array as it fills in, or must wait and resample.

    Raises
    ------
    GeometryError
        For the stacks :func:`regular_volume` refuses.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if positions.shape[0] < 3:
        return False
    row = np.asarray(row_direction, dtype=np.float64)
    col = np.asarray(column_direction, dtype=np.float64)
    _, t = _stack_line(positions, row, col, min(pixel_spacing))
    mean = float(t[-1] / (positions.shape[0] - 1))
    tolerance = max(0.01, 0.01 * mean) if tolerance_mm is None else tolerance_mm
    return bool(float(np.abs(np.diff(t) - mean).max()) > tolerance)


def _stack_line(positions: np.ndarray, row: np.ndarray, col: np.ndarray,
                pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit stacking direction and each slice's distance along it; checks the stack."""
    span = positions[-1] - positions[0]
    length = float(np.linalg.norm(span))
    if length < 1e-6:
        raise GeometryError("first and last slice are at the same position")
    along = span / length
    normal = np.cross(row, col)
    if abs(float(along @ normal)) < 0.05:
        raise GeometryError("slices step within their own plane; not a volume")
    t = (positions - positions[0]) @ along
    off = np.linalg.norm(positions - positions[0] - t[:, None] * along, axis=1).max()
    if off > max(0.01, 0.1 * pixel):
        raise GeometryError(f"slice positions are not on one line ({off:.2f} mm off it)")
    if np.any(np.diff(t) <= 1e-3):
        raise GeometryError("slice positions repeat or go back: sort and de-duplicate first")
    return along, t


def _resample(array: np.ndarray, t: np.ndarray, step: float, count: int) -> np.ndarray:
    """Linear blend of the two stored slices around each new position, one slice at a time."""
    out = np.empty((count, *array.shape[1:]), dtype=array.dtype)
    integer = np.issubdtype(array.dtype, np.integer)
    for m in range(count):
        pos = min(m * step, float(t[-1]))
        k = min(int(np.searchsorted(t, pos, side="right")) - 1, len(t) - 2)
        w = (pos - t[k]) / (t[k + 1] - t[k])
        if w <= 1e-6:
            out[m] = array[k]
        elif w >= 1 - 1e-6:
            out[m] = array[k + 1]
        else:
            blend = array[k].astype(np.float32) * np.float32(1 - w) + \
                array[k + 1].astype(np.float32) * np.float32(w)
            out[m] = np.rint(blend) if integer else blend
    return out


def _geometry(linear: np.ndarray, origin: np.ndarray, shape: tuple[int, ...],
              frame_of_reference_uid: str) -> VolumeGeometry:
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = origin
    return VolumeGeometry(affine=affine, shape=(int(shape[0]), int(shape[1]), int(shape[2])),
                          frame_of_reference_uid=frame_of_reference_uid)


def _mm(value: float) -> str:
    """A distance as the series' issues write it: "1.08", "4", "7.5"."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
