"""Thick slabs sampled where each ray crosses the voxel layers (a small C kernel).

For an oblique slab, ``vtkImageReslice`` takes a trilinear sample (eight voxels) at evenly
spaced points along each ray. This backend samples each ray exactly where it crosses the layers
of the array axis it runs most along (the "layer axis"): there trilinear interpolation is a
bilinear one inside that layer (four voxels), and the samples are ``1 / |d_a|`` mm apart, the
spacing :meth:`~app.render.reslice.Reslicer.step_mm` already uses. Why that spacing is enough: a
ray that passes within a voxel of a voxel's centre is sampled in that voxel's own layer, so a
one-voxel-thin vessel is attenuated only by the ray's distance to it *within* the layer (set by
the output pixel grid), never by the phase of the samples along the ray; even sampling at the
same spacing can land halfway between two layers and halve such a vessel.

Rows are split between threads; the kernel releases the GIL. Works on the stored int16/uint16
array in place. A backend in the pydicom sense: :func:`is_available` and one function.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from app.render.grid import SliceGrid


def _load() -> Any:
    try:
        return importlib.import_module("app.render._slab")
    except ImportError:  # not built: `pip install -e .` or `python setup.py build_ext --inplace`
        return None


_slab: Any = _load()

MODES = {"mip": 0, "minip": 1, "avg": 2}
DTYPES = (np.dtype("int16"), np.dtype("uint16"))
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def is_available(array: np.ndarray | None = None) -> bool:
    """Whether the kernel is built (and takes ``array``: int16/uint16, C-contiguous, ≥ 2³)."""
    if _slab is None:
        return False
    if array is None:
        return True
    return (array.ndim == 3 and array.dtype in DTYPES and array.flags.c_contiguous
            and min(array.shape) >= 2)


def layer_axis(to_index: np.ndarray, normal: np.ndarray) -> tuple[int, float]:
    """The array axis (0 = column i, 1 = row j, 2 = slice k) the normal crosses layers of
    fastest, and the sample spacing along the normal (mm): one layer of that axis."""
    per_mm = np.abs(np.asarray(to_index)[:3, :3] @ np.asarray(normal, dtype=np.float64))
    axis = int(np.argmax(per_mm))
    return axis, 1.0 / float(per_mm[axis])


def samples_across(to_index: np.ndarray, normal: np.ndarray, slab_mm: float) -> int:
    """Most layers one ray crosses in a slab of ``slab_mm`` (some rays cross one fewer)."""
    _axis, step = layer_axis(to_index, normal)
    return math.floor(slab_mm / step + 1e-9) + 1


def composite(array: np.ndarray, to_index: np.ndarray, grid: SliceGrid, slab_mm: float,
              mode: str, background: float, *, threads: int | None = None) -> np.ndarray:
    """The slab composite on ``grid`` (``(rows, cols)``, the array's dtype).

    Parameters
    ----------
    array
        Stored voxels ``(slices, rows, columns)``, int16 or uint16, C-contiguous (shared).
    to_index
        4×4 matrix from LPS mm to array index ``(i, j, k)`` (the inverse of the affine).
    grid
        Output pixels; the slab is centred on its plane.
    slab_mm
        Thickness (mm), from ``-slab_mm / 2`` to ``+slab_mm / 2`` along the normal.
    mode
        ``"mip"``, ``"minip"`` or ``"avg"``.
    background
        Stored value of samples outside the volume.
    threads
        Threads to split the rows between (default: the number of CPUs).
    """
    if _slab is None:
        raise RuntimeError("the slab kernel is not built: run `pip install -e .` "
                           "(or `python setup.py build_ext --inplace`) with a C compiler")
    if not is_available(array):
        raise ValueError(f"the slab kernel needs a C-contiguous int16/uint16 volume of at "
                         f"least 2 voxels per axis, got {array.dtype} {array.shape}")
    axis, _step = layer_axis(to_index, grid.normal)
    m = np.asarray(to_index, dtype=np.float64) @ grid.vtk_axes(1.0)
    geometry = np.concatenate([m[:3, 3], m[:3, 0], m[:3, 1], m[:3, 2],
                               [slab_mm / 2.0, float(background)]]).astype(np.float64)
    rows, cols = grid.shape
    out = np.empty((rows, cols), dtype=array.dtype)
    k, j, i = array.shape
    run: Callable[[int, int, int], None] = functools.partial(
        _slab.slab, array, out, array.dtype == np.uint16, (i, j, k), geometry, MODES[mode], axis)
    n = threads or os.cpu_count() or 1
    if n <= 1 or rows < 16:
        run(0, rows, cols)
        return out
    block = max(4, math.ceil(rows / (4 * n)))  # a few blocks per thread: the volume is not
    starts = range(0, rows, block)              # under every row alike
    for future in [_executor(n).submit(run, r0, min(rows, r0 + block), cols)
                   for r0 in starts]:
        future.result()
    return out


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < threads:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="slab")
        return _pool
