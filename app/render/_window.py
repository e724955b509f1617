"""Private windowing helper for the render core, until ``app/render/voi.py`` lands.

Implements the DICOM linear VOI function (PS3.3 C.11.2.1.2.1) on modality values
(stored × slope + intercept) and maps to 8 bits; replace with ``app.render.voi`` when it exists.
"""

from __future__ import annotations

import numpy as np


def window_to_uint8(stored: np.ndarray, *, center: float, width: float, slope: float = 1.0,
                    intercept: float = 0.0) -> np.ndarray:
    """8-bit display values of a (small, 2-D) stored image for window ``center``/``width``."""
    values = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    width = max(float(width), 1.0)
    scaled = ((values - np.float32(center - 0.5)) / np.float32(width - 1.0 or 1.0) + 0.5) * 255
    out: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out


def auto_window(stored: np.ndarray, *, slope: float = 1.0, intercept: float = 0.0,
                low_percentile: float = 1.0, high_percentile: float = 99.5
                ) -> tuple[float, float]:
    """A window (center, width) spanning the image's values between two percentiles."""
    values = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    lo, hi = (float(v) for v in np.percentile(values, [low_percentile, high_percentile]))
    if hi <= lo:
        hi = lo + 1.0
    return (lo + hi) / 2, hi - lo
