"""One window/level model for every 2D view: the viewport and each MPR plane.

A :class:`WindowLevel` holds the window (centre and width in modality units, HU for CT), the
file's VOI LUT function (LINEAR, LINEAR_EXACT, SIGMOID), the inversion (MONOCHROME1 starts
inverted), how a mouse drag changes it, and a small cache of display lookup tables, so that
showing a slice after the first is one ``take`` (see :mod:`app.render.display`).

:func:`series_window` decides the window a series opens in, once per series: the file's window,
else a preset by modality and body part (:func:`~app.render.window_presets.default_preset`),
else one from the values of its first slice (:func:`~app.render.display.auto_window`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from app.render.display import DisplayWindow, auto_window, to_display, window_lut
from app.render.window_presets import body_width_mm, default_preset

#: Window change per screen pixel dragged, as a share of the width (at least 10 units): 300 px
#: across change the width by its own size, as in Weasis.
DRAG_PIXELS_PER_WIDTH = 300.0
#: Display LUTs kept (one per window, dtype and rescale; a drag makes a new one per step).
LUT_CACHE = 8


class WindowLevel:
    """The window of one view, its VOI LUT function and inversion; makes display pixels."""

    def __init__(self, center: float = math.nan, width: float = math.nan, *,
                 function: str = "LINEAR", invert: bool = False) -> None:
        self.center = float(center)
        self.width = float(width)
        self.function = (function or "LINEAR").strip().upper()
        self.invert = invert
        self._luts: dict[tuple[object, ...], np.ndarray | None] = {}

    @property
    def known(self) -> bool:
        """Whether a window has been set (a series without one waits for its first slice)."""
        return not math.isnan(self.center)

    @property
    def pair(self) -> tuple[float, float]:
        return self.center, self.width

    def set(self, center: float, width: float) -> None:
        self.center, self.width = float(center), max(1.0, float(width))

    def forget(self) -> None:
        """No window until :meth:`set` (or :meth:`display`'s fallback) gives one."""
        self.center = self.width = math.nan

    def drag(self, dx: float, dy: float) -> None:
        """A mouse drag of (``dx``, ``dy``) screen pixels: right widens, down raises the level."""
        if not self.known:
            return
        scale = max(self.width, 10.0) / DRAG_PIXELS_PER_WIDTH
        self.set(self.center + dy * scale, self.width + dx * scale)

    def copy_from(self, other: WindowLevel) -> None:
        """Take ``other``'s window and inversion (not its VOI function: that is the file's)."""
        self.center, self.width, self.invert = other.center, other.width, other.invert

    def display_window(self) -> DisplayWindow:
        return DisplayWindow(self.center, self.width, self.function, self.invert)

    def display(self, stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
        """uint8 display pixels of ``stored`` values (Modality LUT ``slope``, ``intercept``)."""
        if not self.known:
            self.set(*auto_window(stored.astype(np.float32) * np.float32(slope)
                                  + np.float32(intercept)))
        window = self.display_window()
        key = (stored.dtype.str, float(slope), float(intercept), window)
        if key not in self._luts:
            if len(self._luts) >= LUT_CACHE:
                self._luts.clear()
            self._luts[key] = window_lut(stored.dtype, slope, intercept, window)
        return to_display(stored, self._luts[key], slope, intercept, window)


def series_window(*, file_window: tuple[float, float] | None, modality: str, body_part: str,
                  texts: Iterable[str], values: np.ndarray | None,
                  pixel_mm: float) -> tuple[float, float] | None:
    """The window a series opens in (see the module docstring); None while it needs the values
    of a slice that has not arrived yet."""
    if file_window:
        return file_window
    preset = default_preset(modality, body_part, texts)
    if preset is None and values is not None:
        width = body_width_mm(values, pixel_mm) if modality == "CT" else None
        preset = default_preset(modality, body_part, texts, width)
    if preset is not None:
        return preset.center, preset.width
    return auto_window(values) if values is not None else None
