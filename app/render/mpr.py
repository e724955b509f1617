"""What MPR and 3D reslice: the loading volume itself, or a regular copy when one is needed.

Most stacks are regular (even steps, one rescale): then the views reslice the volume's own
array, in its stored dtype, while the loader is still filling it — slices that have not arrived
yet are blank. Two kinds of stack cannot be resliced as stored:

* unevenly spaced slices: no affine describes them, so they are resampled along the stack in
  patient space (:func:`app.render.regrid.regular_volume`), once every slice is in;
* slices with different rescale slopes or intercepts: one stored value would mean different
  things in different slices, so MPR uses a copy in modality units.

Either way the user is told, in :attr:`MprSource.notes`. A gantry tilt needs nothing: the
affine's shear puts every voxel where it was in the patient.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from app.errors import GeometryError, RelayError
from app.render.regrid import needs_resampling, regular_volume
from app.volume.array import Volume
from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

#: Below this angle (degrees) between the slice normal and the stacking line, no tilt is noted.
TILT_DEGREES = 0.1


@dataclass(frozen=True, eq=False)
class MprSource:
    """The array MPR and 3D work on, with how to read its values and what the user must know.

    Attributes
    ----------
    array
        ``(slices, rows, columns)``: the volume's own array (``live``) or a regular copy.
    geometry
        Its LPS affine.
    slope, intercept
        Stored value × slope + intercept = modality value (HU for CT).
    background
        Stored value used outside the volume (air for CT, 0 otherwise).
    notes
        Plain sentences to show beside the views (resampling, tilt, assumed distances).
    live
        True when ``array`` is the loading volume's: slices not loaded yet read as blank.
    tilt_note
        The one of ``notes`` on a gantry tilt ("" when the stack is not tilted): a view that
        states the series' issues already says it.
    """

    array: np.ndarray
    geometry: VolumeGeometry
    slope: float
    intercept: float
    background: float
    notes: tuple[str, ...]
    live: bool
    tilt_note: str = ""


def wait_reason(volume: Volume) -> str | None:
    """Why MPR must wait for every slice of ``volume`` (a sentence), or None if it need not.

    Raises
    ------
    GeometryError
        When no volume can be built for MPR at all (one slice, colour, a stack that goes back
        and forth).
    """
    _check_shape(volume)
    if _uneven(volume):
        return ("The slices are unevenly spaced: they are resampled for MPR once all "
                f"{volume.shape[0]} have loaded.")
    if volume.uniform_rescale is None:
        return ("The slices have different rescale values: MPR uses a copy in modality units, "
                f"made once all {volume.shape[0]} have loaded.")
    return None


def mpr_source(volume: Volume, *, modality: str = "") -> MprSource:
    """The array, geometry and notes for MPR and 3D of ``volume``.

    Call it as soon as the volume exists when :func:`wait_reason` is None (the result reads
    the live array); otherwise once the volume has finished loading — it resamples then, which
    takes a moment on a large stack: call it off the GUI thread.

    Raises
    ------
    RelayError
        If the volume must be complete first and is not.
    GeometryError
        See :func:`wait_reason`.
    """
    reason = wait_reason(volume)
    if reason is not None and not volume.finished:
        raise RelayError(f"not every slice has loaded yet. {reason}")
    notes: list[str] = []
    array, geometry = volume.array, volume.geometry
    rescale = volume.uniform_rescale
    if rescale is None:
        array = volume.modality_values()
        slope, intercept = 1.0, 0.0
        notes.append("The slices have different rescale slopes or intercepts, so MPR and 3D use "
                     "a copy of the volume in modality units.")
    else:
        slope, intercept = rescale
    positions = volume.positions
    if np.isnan(positions).any():
        notes.append("The images have no position data: for MPR they are stacked in file order, "
                     f"{volume.spacing[0]:g} mm apart (assumed, not measured).")
    elif _uneven(volume):
        regridded = regular_volume(np.ascontiguousarray(array), positions,
                                   row_direction=geometry.row_direction,
                                   column_direction=geometry.column_direction,
                                   pixel_spacing=geometry.spacing[1:],
                                   frame_of_reference_uid=geometry.frame_of_reference_uid)
        array, geometry = regridded.array, regridded.geometry
        if regridded.note:
            notes.append(regridded.note)
    tilt = _tilt_degrees(geometry)
    tilt_note = ""
    if tilt > TILT_DEGREES:
        tilt_note = (f"Gantry tilt of {tilt:.1f}°: MPR and 3D place every voxel where it was in "
                     "the patient (the tilt is corrected; the planes are in patient "
                     "coordinates).")
        notes.append(tilt_note)
    background = _background(array.dtype, slope, intercept, modality)
    live = array is volume.array
    log.debug("MPR source %s %s, live=%s, %d notes", array.shape, array.dtype, live, len(notes))
    return MprSource(array=array, geometry=geometry, slope=slope, intercept=intercept,
                     background=background, notes=tuple(notes), live=live,
                     tilt_note=tilt_note)


def _check_shape(volume: Volume) -> None:
    if volume.array.ndim != 3:
        raise GeometryError("MPR and 3D need a greyscale series; this one is in colour")
    if volume.shape[0] < 2:
        raise GeometryError("MPR and 3D need a stack of at least 2 slices; this series has 1")


def _uneven(volume: Volume) -> bool:
    positions = volume.positions
    if np.isnan(positions).any():
        return False
    g = volume.geometry
    return needs_resampling(positions, row_direction=g.row_direction,
                            column_direction=g.column_direction,
                            pixel_spacing=(g.spacing[1], g.spacing[2]))


def _tilt_degrees(geometry: VolumeGeometry) -> float:
    normal = np.cross(geometry.row_direction, geometry.column_direction)
    cos = min(1.0, abs(float(normal @ geometry.slice_direction)))
    return math.degrees(math.acos(cos))


def _background(dtype: np.dtype, slope: float, intercept: float, modality: str) -> float:
    """Stored value for "nothing here": -1024 HU for CT, else 0, within the dtype's range."""
    value = (-1024.0 - intercept) / slope if modality == "CT" and slope else 0.0
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        value = float(min(max(round(value), info.min), info.max))
    return value
