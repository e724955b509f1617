"""VOI LUT functions (DICOM PS3.3 C.11.2.1.2 and C.11.2.1.3), as pure numpy.

Each maps modality values (HU for CT) through a window of ``center`` and ``width`` onto the output
range ``[y_min, y_max]`` (0..255 for an 8-bit display):

* ``LINEAR`` (the default): the classic window with the standard's half-pixel offsets,
  ``width >= 1``;
* ``LINEAR_EXACT``: the same without the offsets, ``width > 0``;
* ``SIGMOID``: a smooth S-curve centred on ``center``.

The window to start with is the file's (the first value when there are several); MONOCHROME1
images are inverted after the VOI LUT (``invert=True``), so white stays "more attenuating".
"""

from __future__ import annotations

from typing import Any

import numpy as np

FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def voi_linear(x: Any, center: float, width: float, y_min: float = 0.0,
               y_max: float = 255.0) -> np.ndarray:
    """LINEAR: PS3.3 C.11.2.1.2.1 (``width`` must be at least 1)."""
    if width < 1:
        raise ValueError(f"LINEAR needs a window width of at least 1, got {width}")
    x = np.asarray(x, dtype=np.float64)
    c, w = center - 0.5, width - 1.0
    if w == 0:
        return np.where(x <= c, y_min, y_max).astype(np.float64)
    y: np.ndarray = np.clip(((x - c) / w + 0.5) * (y_max - y_min) + y_min, y_min, y_max)
    return y


def voi_linear_exact(x: Any, center: float, width: float, y_min: float = 0.0,
                     y_max: float = 255.0) -> np.ndarray:
    """LINEAR_EXACT: PS3.3 C.11.2.1.3.2 (``width`` must be above 0)."""
    if width <= 0:
        raise ValueError(f"LINEAR_EXACT needs a window width above 0, got {width}")
    x = np.asarray(x, dtype=np.float64)
    y: np.ndarray = np.clip(((x - center) / width + 0.5) * (y_max - y_min) + y_min, y_min, y_max)
    return y


def voi_sigmoid(x: Any, center: float, width: float, y_min: float = 0.0,
                y_max: float = 255.0) -> np.ndarray:
    """SIGMOID: PS3.3 C.11.2.1.3.1, ``y = (y_max - y_min) / (1 + exp(-4 (x - c) / w)) + y_min``."""
    if width <= 0:
        raise ValueError(f"SIGMOID needs a window width above 0, got {width}")
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        y: np.ndarray = (y_max - y_min) / (1.0 + np.exp(-4.0 * (x - center) / width)) + y_min
    return y


_BY_NAME = {"LINEAR": voi_linear, "LINEAR_EXACT": voi_linear_exact, "SIGMOID": voi_sigmoid}


def apply_voi(x: Any, center: float, width: float, function: str = "LINEAR",
              y_min: float = 0.0, y_max: float = 255.0) -> np.ndarray:
    """Apply the named VOI LUT function (unknown or empty names mean LINEAR)."""
    func = _BY_NAME.get((function or "LINEAR").strip().upper(), voi_linear)
    if func is voi_linear and width < 1:
        width = 1.0
    return func(x, center, width, y_min, y_max)


def to_uint8(x: Any, center: float, width: float, function: str = "LINEAR",
             invert: bool = False) -> np.ndarray:
    """Window modality values into an 8-bit grey image (MONOCHROME1: ``invert=True``)."""
    y = apply_voi(x, center, width, function, 0.0, 255.0)
    if invert:
        y = 255.0 - y
    grey: np.ndarray = np.rint(y).astype(np.uint8)
    return grey


def full_range_window(x: np.ndarray) -> tuple[float, float]:
    """A window covering all values of ``x`` (when the file gives none)."""
    lo, hi = float(np.min(x)), float(np.max(x))
    return (lo + hi) / 2.0, max(1.0, hi - lo + 1.0)
