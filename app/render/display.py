"""Stored pixels to 8-bit display pixels, fast enough to scroll at 60+ frames per second.

For 8- and 16-bit stored data the whole chain (Modality LUT, VOI window, MONOCHROME1 / invert)
is folded into one lookup table indexed by the stored bits, built once per window change;
showing a slice is then a single ``take``. Other data (32-bit, float) goes through the VOI
function directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.render.slice_png import color_to_uint8
from app.render.voi import to_uint8


@dataclass(frozen=True)
class DisplayWindow:
    """How a slice is shown: window in modality units, VOI function, inversion."""

    center: float
    width: float
    function: str = "LINEAR"
    invert: bool = False


def window_lut(dtype: np.dtype, slope: float, intercept: float,
               window: DisplayWindow) -> np.ndarray | None:
    """A uint8 LUT indexed by the stored value's raw bits, or None when no LUT fits the dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize > 2:
        return None
    raw = np.arange(1 << (8 * dtype.itemsize), dtype=np.uint32)
    stored = raw.astype(f"u{dtype.itemsize}").view(dtype).astype(np.float64)
    return to_uint8(stored * slope + intercept, window.center, window.width, window.function,
                    window.invert)


def to_display(stored: np.ndarray, lut: np.ndarray | None, slope: float = 1.0,
               intercept: float = 0.0, window: DisplayWindow | None = None) -> np.ndarray:
    """uint8 image of a stored slice (grey; RGB input is returned as uint8 RGB)."""
    if stored.ndim == 3:  # colour: shown as stored, scaled to 8 bits
        return color_to_uint8(stored)
    if lut is not None:
        index = stored.view(f"u{stored.dtype.itemsize}")
        return lut.take(index)
    assert window is not None
    values = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return to_uint8(values, window.center, window.width, window.function, window.invert)


def auto_window(values: np.ndarray) -> tuple[float, float]:
    """A window from the data (1st to 99th percentile of a subsample), for images with none."""
    sample = values[::4, ::4] if values.ndim >= 2 else values
    lo, hi = np.percentile(sample.astype(np.float32), [1.0, 99.0])
    width = max(float(hi - lo), 1.0)
    return float(lo + width / 2.0), width
