"""One slice to an 8-bit image and a PNG: the ``relay render`` pipeline, without a display.

stored pixels → Modality LUT (rescale) → VOI LUT (the file's window and function unless given)
→ 8 bits (inverted for MONOCHROME1); the stored values a Supplemental Palette Color LUT covers
(a perfusion map's) in its colours, as RGB. Colour slices are written as RGB, scaled to 8 bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.dicom.pixels import read_frame
from app.render.voi import full_range_window, to_uint8
from app.volume.stack import SliceRef

if TYPE_CHECKING:  # pydicom only when a slice is rendered: `relay load` stays without it
    from app.dicom.value_maps import SupplementalPalette


def render_ref(ref: SliceRef, window: tuple[float, float] | None = None) -> np.ndarray:
    """Decode slice ``ref`` and window it to ``(rows, columns)`` uint8 (RGB: ``(..., 3)``, as
    a colour image or one with a palette is)."""
    from app.dicom.value_maps import read_value_maps

    stored = read_frame(ref.path, ref.transfer_syntax_uid, ref.info, ref.frame)  # type: ignore[arg-type]
    palette = read_value_maps(str(ref.path)).palette if ref.path is not None else None
    return render_pixels(stored, ref, window, palette)


def render_pixels(stored: np.ndarray, ref: SliceRef,
                  window: tuple[float, float] | None = None,
                  palette: SupplementalPalette | None = None) -> np.ndarray:
    """Window already decoded stored pixels of ``ref`` into uint8; with ``palette`` (its
    file's Supplemental Palette Color LUT), the values it covers in its colours (RGB)."""
    if stored.ndim == 3:
        return color_to_uint8(stored)
    values = stored.astype(np.float64) * ref.rescale_slope + ref.rescale_intercept
    center, width = window or ref.window or full_range_window(values)
    invert = ref.info.photometric_interpretation == "MONOCHROME1"
    grey = to_uint8(values, center, width, ref.info.voi_lut_function, invert=invert)
    return grey if palette is None else palette.colour(stored, grey)


def color_to_uint8(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb
    top = max(1, int(rgb.max()))
    return np.rint(rgb.astype(np.float64) * (255.0 / top)).astype(np.uint8)


def write_png(image: np.ndarray, path: Path | str) -> None:
    """Write a uint8 grey or RGB image as PNG."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG")
