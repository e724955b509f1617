"""The volume the 3D view renders: smoothly resampled to a voxel budget, with the affine that
keeps it in place.

The CPU fixed-point ray caster shades with a gradient computed per voxel by central differences.
On a sharp edge (the outer table of the skull, a contrast-filled vessel) those gradients step
from one voxel layer to the next, and the picture shows the layers as terraces: concentric
"wood-grain" rings on the skull, 2 mm apart when the volume was block-averaged to 2 mm voxels,
fainter at the stored 1 mm. Rings go away when the volume is resampled with an anti-aliasing
(Lanczos) kernel to the finest grid the budget allows, the same size along every axis, and
lightly smoothed (a Gaussian of under one voxel, below what the view can show):
``bench/bench_3d_banding.py`` measures the bands and the speed.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from vtkmodules.vtkImagingCore import vtkImageResize, vtkImageSincInterpolator
from vtkmodules.vtkImagingGeneral import vtkImageGaussianSmooth

from app.render.vtkimage import image_scalars, wrap_volume
from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

#: Gaussian smoothing of the rendered volume, in its voxels (standard deviation). 0.8 removes
#: the terraces on the Visible Human skull at 1 to 1.3 mm voxels; 0.5 leaves some.
SMOOTH_VOXELS = 0.8


def render_spacing(shape: tuple[int, int, int], spacing: tuple[float, float, float],
                   max_voxels: int) -> tuple[float, float, float]:
    """(slice, row, column) voxel sizes in mm for rendering a ``shape`` volume of ``spacing``
    with at most ``max_voxels`` voxels.

    The finest voxel size ``s`` that fits, never finer than the stored one on any axis: each
    axis gets ``max(stored, s)``, so the coarsest axis is left alone while the finer ones are
    brought down to it (a 0.45 mm in-plane, 1 mm slice CTA first loses in-plane voxels).
    """
    if max_voxels < 1:
        raise ValueError(f"max_voxels must be >= 1, got {max_voxels}")
    sizes = [n * float(d) for n, d in zip(shape, spacing, strict=True)]  # mm along each axis

    def count(s: float) -> float:
        return math.prod(_samples(n, size, max(d, s))
                         for n, size, d in zip(shape, sizes, spacing, strict=True))

    if count(0.0) <= max_voxels:
        return tuple(float(d) for d in spacing)  # type: ignore[return-value]
    low, high = min(spacing), max(sizes)
    for _ in range(60):  # bisection on the voxel size
        mid = (low + high) / 2
        low, high = (low, mid) if count(mid) <= max_voxels else (mid, high)
    return tuple(float(max(d, high)) for d in spacing)  # type: ignore[return-value]


def _samples(n: int, size_mm: float, spacing: float) -> int:
    """Voxels along an axis of ``n`` voxels, ``size_mm`` long, at ``spacing``."""
    return n if spacing <= size_mm / n + 1e-9 else max(2, min(n, math.floor(size_mm / spacing)))


def resample_for_3d(array: np.ndarray, geometry: VolumeGeometry, *, max_voxels: int | None,
                    smooth: float = SMOOTH_VOXELS) -> tuple[np.ndarray, VolumeGeometry]:
    """The volume to render: resampled to at most ``max_voxels`` voxels (``None``: the stored
    grid) with a Lanczos anti-aliasing kernel, then smoothed by a Gaussian of ``smooth`` voxels
    (0: not smoothed). Same dtype as ``array``; its geometry keeps every structure in place
    (the first and last voxel centres along each axis stay where they were).

    Returns ``array`` and ``geometry`` themselves when there is nothing to do. Runs in VTK's
    threads, without holding the Python interpreter: call it off the GUI thread.
    """
    if array.ndim != 3:
        raise ValueError(f"array must be 3-D, got shape {array.shape}")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
    shape = tuple(int(n) for n in array.shape)
    out_shape = shape
    if max_voxels is not None:
        spacing = render_spacing(shape, geometry.spacing, max_voxels)  # type: ignore[arg-type]
        out_shape = tuple(_samples(n, n * d, s) for n, d, s in
                          zip(shape, geometry.spacing, spacing, strict=True))
    if out_shape == shape and smooth == 0:
        return array, geometry
    image = wrap_volume(np.ascontiguousarray(array))
    if out_shape != shape:
        resize = vtkImageResize()
        resize.SetInputData(image)
        resize.SetResizeMethodToOutputDimensions()
        resize.SetOutputDimensions(out_shape[2], out_shape[1], out_shape[0])
        resize.BorderOff()  # the corner voxels' centres stay where they are
        lanczos = vtkImageSincInterpolator()
        lanczos.SetWindowFunctionToLanczos()
        lanczos.AntialiasingOn()  # widens the kernel by the reduction: no aliasing
        resize.SetInterpolator(lanczos)
        resize.Update()
        image = resize.GetOutput()
    if smooth > 0:
        gauss = vtkImageGaussianSmooth()
        gauss.SetInputData(image)
        gauss.SetDimensionality(3)
        gauss.SetStandardDeviations(smooth, smooth, smooth)  # in voxels
        gauss.SetRadiusFactors(2.5, 2.5, 2.5)
        gauss.Update()
        image = gauss.GetOutput()
    out = np.array(image_scalars(image), dtype=array.dtype, order="C")  # own memory
    scale = [(n - 1) / (m - 1) if m > 1 else 1.0 for n, m in zip(shape, out_shape, strict=True)]
    affine = geometry.affine @ np.diag([scale[2], scale[1], scale[0], 1.0])
    log.debug("3D volume %s resampled to %s, smoothed %.2f voxels", shape, out.shape, smooth)
    return out, VolumeGeometry(affine=affine, shape=out.shape,
                               frame_of_reference_uid=geometry.frame_of_reference_uid)
