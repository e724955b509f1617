"""Oblique reslice and thick slabs (MIP, MinIP, average) with ``vtkImageReslice``.

The volume stays as stored (int16/uint16, rescale not applied): VTK reads the numpy buffer in
place, and every output pixel is sampled at its LPS position through the inverse of the
volume's affine, so any orientation, anisotropic spacing or gantry-tilt shear is honoured
without resampling the volume first. Results are in stored values; apply rescale and window
afterwards on the (small) 2-D image.

Speed (see ``bench/bench_mpr.py``): planes whose axes fall on the array axes take VTK's
permutation path and are fast at any slab thickness. Oblique slabs at full quality go to
:mod:`app.render.slab` (rays sampled where they cross the voxel layers, bilinear in each layer,
rows split between threads) when it is built, else to ``vtkImageReslice`` (a trilinear sample
per step, 3-5× slower); interactive callers pass ``fast=True`` while dragging.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from vtkmodules.vtkImagingCore import vtkImageReslice

from app.render import slab as layer_slab
from app.render.grid import SliceGrid
from app.render.vtkimage import image_scalars, set_vtk_matrix, vtk_matrix, wrap_volume
from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

SlabMode = Literal["mip", "minip", "avg"]
Interpolation = Literal["nearest", "linear", "cubic"]
SLAB_MODES: tuple[str, ...] = ("mip", "minip", "avg")

#: Thickest slab offered (mm).
MAX_SLAB_MM = 50.0


@dataclass(frozen=True, eq=False)
class Reslice:
    """A resliced image in stored values, and where its pixels are.

    Attributes
    ----------
    pixels
        ``(rows, columns)`` array, same dtype as the volume.
    grid
        Where each pixel lies in LPS; orientation letters and mm per pixel for overlays.
    slab_mm
        Slab thickness actually used (0 for a thin slice).
    mode
        ``"mip"``, ``"minip"`` or ``"avg"`` for a slab; ``""`` for a thin slice.
    samples
        Number of samples taken across the slab (1 for a thin slice).
    """

    pixels: np.ndarray
    grid: SliceGrid
    slab_mm: float
    mode: str
    samples: int


class Reslicer:
    """Reslices one volume; reuse it for every plane of that volume (it keeps VTK state).

    Parameters
    ----------
    array
        The stored voxels, ``(slices, rows, columns)``, C-contiguous; shared, never copied.
    geometry
        Where the array sits in LPS.
    background
        Stored value for samples outside the volume; by default the array's minimum.

    Notes
    -----
    One call at a time: calls are serialised by a lock, so a worker thread may use it, but
    parallel reslicing needs one :class:`Reslicer` per thread.
    """

    def __init__(self, array: np.ndarray, geometry: VolumeGeometry, *,
                 background: float | None = None) -> None:
        if tuple(array.shape) != tuple(geometry.shape):
            raise ValueError(f"array shape {array.shape} does not match geometry {geometry.shape}")
        self.array = array
        self.geometry = geometry
        self._to_index = np.linalg.inv(geometry.affine)
        self._layered = layer_slab.is_available(array)
        self._image = wrap_volume(array)
        self._lock = threading.Lock()
        self._reslice = vtkImageReslice()
        self._reslice.SetInputData(self._image)
        self._reslice.SetOutputSpacing(1.0, 1.0, 1.0)
        self._reslice.SetOutputOrigin(0.0, 0.0, 0.0)
        self._reslice.AutoCropOutputOff()
        self._reslice.SetSlabSliceSpacingFraction(1.0)
        self._axes = vtk_matrix(np.eye(4))
        self._reslice.SetResliceAxes(self._axes)
        if background is None:
            background = float(array.min()) if array.size else 0.0
        self.background = float(background)
        self._reslice.SetBackgroundLevel(background)

    def step_mm(self, normal: np.ndarray) -> float:
        """Sample spacing along ``normal`` that visits every voxel layer crossed (mm)."""
        per_mm = np.abs(self._to_index[:3, :3] @ np.asarray(normal, dtype=np.float64))
        return 1.0 / float(per_mm.max())

    def slice(self, grid: SliceGrid, *, slab_mm: float = 0.0, mode: SlabMode = "mip",
              interpolation: Interpolation = "linear", fast: bool = False,
              fast_step: float = 2.0) -> Reslice:
        """Sample the volume on ``grid``, thin or as a slab centred on the grid's plane.

        Parameters
        ----------
        grid
            Output pixels (see :func:`app.render.grid.fit_grid`).
        slab_mm
            Slab thickness in mm (0 for a thin slice; at most :data:`MAX_SLAB_MM`), from
            ``-slab_mm/2`` to ``+slab_mm/2`` along the normal, sampled no further apart than
            one voxel layer: evenly (``vtkImageReslice``), or, for an oblique plane at full
            quality, exactly where each ray crosses the layers (:mod:`app.render.slab`).
        mode
            ``"mip"`` (maximum), ``"minip"`` (minimum) or ``"avg"`` (mean) across the slab.
        interpolation
            ``"linear"`` (default), ``"nearest"`` or ``"cubic"``.
        fast
            While the user drags: nearest-neighbour samples ``fast_step`` times as far apart
            across a slab. Pass a coarsened grid as well for the full speed-up.
        fast_step
            How many voxel layers apart a ``fast`` slab is sampled (default 2; a caller that
            coarsens its grid further can thin the slab samples to match).
        """
        if mode not in SLAB_MODES:
            raise ValueError(f"mode must be one of {SLAB_MODES}, got {mode!r}")
        if interpolation not in ("nearest", "linear", "cubic"):
            raise ValueError(f"interpolation must be nearest, linear or cubic, "
                             f"got {interpolation!r}")
        if not 0.0 <= slab_mm <= MAX_SLAB_MM:
            raise ValueError(f"slab_mm must be between 0 and {MAX_SLAB_MM}, got {slab_mm}")
        if fast_step < 1.0:
            raise ValueError(f"fast_step must be at least 1, got {fast_step}")
        samples, step = self._slab_samples(grid, slab_mm, fast_step if fast else 1.0)
        if fast and samples > 1:
            interpolation = "nearest"
        matrix = _snap(self._to_index @ grid.vtk_axes(step))
        if samples > 1 and not fast and interpolation == "linear" and self._layered \
                and not _is_permutation(matrix):
            return self._layer_slab(grid, slab_mm, mode)
        with self._lock:
            rs = self._reslice
            set_vtk_matrix(self._axes, matrix)
            self._axes.Modified()
            rs.SetOutputExtent(0, grid.shape[1] - 1, 0, grid.shape[0] - 1, 0, 0)
            {"nearest": rs.SetInterpolationModeToNearestNeighbor,
             "linear": rs.SetInterpolationModeToLinear,
             "cubic": rs.SetInterpolationModeToCubic}[interpolation]()
            rs.SetSlabNumberOfSlices(samples)
            {"mip": rs.SetSlabModeToMax, "minip": rs.SetSlabModeToMin,
             "avg": rs.SetSlabModeToMean}[mode]()
            rs.Modified()
            rs.Update()
            pixels = image_scalars(rs.GetOutput())[0].copy()
        return Reslice(pixels=pixels, grid=grid, slab_mm=slab_mm if samples > 1 else 0.0,
                       mode=mode if samples > 1 else "", samples=samples)

    def _layer_slab(self, grid: SliceGrid, slab_mm: float, mode: SlabMode) -> Reslice:
        """A full-quality oblique slab through :mod:`app.render.slab` (same sample spacing)."""
        pixels = layer_slab.composite(self.array, self._to_index, grid, slab_mm, mode,
                                      self.background)
        samples = layer_slab.samples_across(self._to_index, grid.normal, slab_mm)
        return Reslice(pixels=pixels, grid=grid, slab_mm=slab_mm, mode=mode, samples=samples)

    def _slab_samples(self, grid: SliceGrid, slab_mm: float, factor: float
                      ) -> tuple[int, float]:
        if slab_mm <= 0.0:
            return 1, 1.0
        nominal = self.step_mm(grid.normal) * factor
        samples = max(2, math.ceil(slab_mm / nominal - 1e-9) + 1)
        return samples, slab_mm / (samples - 1)


def _snap(matrix: np.ndarray) -> np.ndarray:
    """Zero the rounding dust (1e-17) in a reslice matrix.

    VTK takes a much faster path when the matrix is a permutation (the plane runs along the
    array axes), but only when the other entries are exactly zero.
    """
    out = matrix.copy()
    linear = out[:3, :3]
    linear[np.abs(linear) < 1e-9 * np.abs(linear).max()] = 0.0
    return out


def _is_permutation(matrix: np.ndarray) -> bool:
    """Whether each row and column of the 3×3 part has one non-zero (VTK's fast path)."""
    nonzero = matrix[:3, :3] != 0.0
    return bool((nonzero.sum(axis=0) == 1).all() and (nonzero.sum(axis=1) == 1).all())
