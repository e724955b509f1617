"""A series' pixels as one array, with its geometry, value mapping and per-slice state.

A :class:`Volume` is allocated in full before any pixel is decoded (``(slices, rows, columns)``,
or ``(..., 3)`` for colour) in the dtype the pixels are stored in: int16/uint16 for CT and MR,
never a float copy. The Modality LUT (RescaleSlope/Intercept, per slice where enhanced objects
vary it) is applied lazily by :meth:`Volume.modality_slice` / :meth:`Volume.modality_values`,
which return float32 only when the rescale is not integral.

Slices fill in while a :class:`~app.volume.loader.VolumeLoader` works; a slice's pixels are
undefined
until it is ready (the array is not zero-filled up front, to keep the load at memory speed).
``volume.ready[k]`` turns True after slice ``k``'s pixels are in place; it is safe to read from
any thread (one byte per slice, set once, after the pixels were written). A slice that cannot be
decoded is zeroed, listed in :attr:`Volume.failed_slices` (path + reason), and never becomes
ready. Listeners added with
:meth:`Volume.subscribe` are called as ``listener(k, ok)`` from the loader's thread, so a UI must
hop to its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.dicom.pixels import frame_dtype, frame_shape
from app.volume.geometry import VolumeGeometry
from app.volume.sharedbuf import LocalBuffer
from app.volume.stack import SliceRef, Stack

SliceListener = Callable[[int, bool], None]


@dataclass(frozen=True)
class FailedSlice:
    """A slice that could not be decoded: its index, file and the reason in plain words."""

    index: int
    path: str
    reason: str


class Volume:
    """Pixels of one stack plus geometry, rescale, default window and per-slice state.

    Build one with :meth:`Volume.allocate`; fill it with :class:`~app.volume.loader.VolumeLoader`.

    Attributes
    ----------
    array : numpy.ndarray
        ``(slices, rows, columns)`` (``(..., 3)`` RGB) of stored values, sorted along the normal.
    geometry : VolumeGeometry
        4×4 LPS affine (i=column, j=row, k=slice) and shape.
    slices : tuple of SliceRef
        Where each slice comes from (file, frame) and its header values.
    positions : numpy.ndarray
        ``(slices, 3)`` LPS position of each slice's first pixel (NaN where unknown).
    issues : tuple of str
        Geometry problems, as sentences (see :mod:`app.volume.stack`).
    slope, intercept : numpy.ndarray
        Per-slice Modality LUT: ``value = stored * slope + intercept``.
    """

    def __init__(self, *, array: np.ndarray, geometry: VolumeGeometry,
                 slices: tuple[SliceRef, ...], positions: np.ndarray,
                 issues: tuple[str, ...] = (), owner: Any = None) -> None:
        n = len(slices)
        if array.shape[0] != n:
            raise ValueError(f"array has {array.shape[0]} slices, {n} slice references given")
        self.array = array
        self.geometry = geometry
        self.slices = slices
        self.positions = positions
        self.issues = issues
        self.slope = np.array([s.rescale_slope for s in slices], dtype=np.float64)
        self.intercept = np.array([s.rescale_intercept for s in slices], dtype=np.float64)
        first = slices[0].info if slices else None
        self.photometric_interpretation = first.photometric_interpretation if first else ""
        self.voi_lut_function = (first.voi_lut_function or "LINEAR") if first else "LINEAR"
        self.default_window = next((s.window for s in slices if s.window), None)
        self._ready = np.zeros(n, dtype=bool)
        self._failed: dict[int, FailedSlice] = {}
        self._cond = threading.Condition()
        self._listeners: list[SliceListener] = []
        self._owner = owner  # keeps the buffer mapped as long as the array lives

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def allocate(cls, stack: Stack, *, allocator: Callable[[int], Any] | None = None) -> Volume:
        """An empty volume for ``stack`` (no pixel read yet).

        Parameters
        ----------
        stack
            From :func:`app.volume.stack.plan_series`.
        allocator
            ``allocator(nbytes)`` returning an object with ``.array(shape, dtype)`` (e.g.
            :class:`app.volume.sharedbuf.SharedBuffer`) when the pixels must be writable by worker
            processes; zeroed private memory (:class:`app.volume.sharedbuf.LocalBuffer`) otherwise.
        """
        first = stack.slices[0].info
        shape = (len(stack.slices), *frame_shape(first))
        dtype = frame_dtype(first)
        owner = (allocator or LocalBuffer)(int(np.prod(shape)) * dtype.itemsize)
        array = owner.array(shape, dtype)
        return cls(array=array, geometry=stack.geometry, slices=stack.slices,
                   positions=stack.positions, issues=stack.issues, owner=owner)

    # -- state -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        return self.geometry.shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm as (slice, row, column)."""
        return self.geometry.spacing

    @property
    def ready(self) -> np.ndarray:
        """Read-only view: ``ready[k]`` is True once slice ``k`` is decoded and in place."""
        view = self._ready.view()
        view.setflags(write=False)
        return view

    @property
    def failed_slices(self) -> list[FailedSlice]:
        with self._cond:
            return sorted(self._failed.values(), key=lambda f: f.index)

    @property
    def finished(self) -> bool:
        """Every slice is either ready or failed."""
        with self._cond:
            return int(self._ready.sum()) + len(self._failed) == len(self.slices)

    def subscribe(self, listener: SliceListener) -> None:
        """Call ``listener(k, ok)`` whenever slice ``k`` finishes (ok=False: it failed)."""
        with self._cond:
            self._listeners.append(listener)

    def wait(self, k: int | None = None, timeout: float | None = None) -> bool:
        """Block until slice ``k`` (or every slice, when None) is ready or failed."""
        def done() -> bool:
            if k is None:
                return int(self._ready.sum()) + len(self._failed) == len(self.slices)
            return bool(self._ready[k]) or k in self._failed

        with self._cond:
            return self._cond.wait_for(done, timeout)

    # -- loader side -------------------------------------------------------------------------
    def mark_ready(self, k: int) -> None:
        """Record that slice ``k``'s pixels are in place (loader only)."""
        with self._cond:
            self._ready[k] = True
            self._failed.pop(k, None)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(k, True)

    def mark_failed(self, k: int, reason: str) -> None:
        """Record that slice ``k`` cannot be decoded; its pixels are zeroed (loader only)."""
        self.array[k] = 0
        path = str(self.slices[k].path or "")
        with self._cond:
            self._failed[k] = FailedSlice(index=k, path=path, reason=reason)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(k, False)

    def replace_slice(self, k: int, ref: SliceRef) -> None:
        """Point slice ``k`` at another file (one that arrived later); loader only."""
        slices = list(self.slices)
        slices[k] = ref
        self.slices = tuple(slices)
        self.slope[k] = ref.rescale_slope
        self.intercept[k] = ref.rescale_intercept

    # -- values ------------------------------------------------------------------------------
    @property
    def uniform_rescale(self) -> tuple[float, float] | None:
        """(slope, intercept) when every slice shares them, else None."""
        if len(self.slope) and np.all(self.slope == self.slope[0]) and np.all(
                self.intercept == self.intercept[0]):
            return float(self.slope[0]), float(self.intercept[0])
        return None

    @property
    def modality_dtype(self) -> np.dtype[Any]:
        """dtype of modality values: the stored one, int32 for integral rescale, else float32."""
        if np.all(self.slope == 1) and np.all(self.intercept == 0):
            return self.array.dtype
        integral = np.all(self.slope == np.rint(self.slope)) and np.all(
            self.intercept == np.rint(self.intercept))
        return np.dtype(np.int32 if integral else np.float32)

    def modality_slice(self, k: int) -> np.ndarray:
        """Slice ``k`` in modality units (HU for CT): ``stored * slope + intercept``."""
        return self._rescale(self.array[k], self.slope[k], self.intercept[k])

    def modality_values(self) -> np.ndarray:
        """The whole volume in modality units (a new array: use per slice when you can)."""
        out = np.empty(self.array.shape, self.modality_dtype)
        for k in range(len(self.slices)):
            out[k] = self.modality_slice(k)
        return out

    def _rescale(self, stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
        dtype = self.modality_dtype
        if dtype == self.array.dtype:
            return stored
        if dtype == np.int32:
            out = stored.astype(np.int32)
            if slope != 1:
                out *= int(slope)
            out += int(intercept)
            return out
        return stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
