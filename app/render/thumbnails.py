"""Series thumbnails: the middle slice, windowed (in its palette's colours when it has one, as
a perfusion map does), small, cached as PNG under the home.

Computed from the index and one decoded frame (and, for the palette, the header of that one
file), so a browser can ask for many in the background.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from app.dicom.pixels import read_frame
from app.dicom.value_maps import SupplementalPalette, read_value_maps
from app.render.display import auto_window
from app.render.slice_png import render_pixels
from app.store.local import Store
from app.volume.plans import series_plan
from app.volume.stack import SliceRef

log = logging.getLogger(__name__)

SIZE = 112
#: In the cached file's name: a new one when a series' thumbnail would look different from the
#: one already cached (2: in its palette's colours).
VERSION = 2


def thumbnail_path(store: Store, series_uid: str) -> Path:
    return store.home / "cache" / "thumbnails" / f"{series_uid}.v{VERSION}.png"


def series_thumbnail(store: Store, series_uid: str, size: int = SIZE) -> np.ndarray | None:
    """uint8 grey ``(h, w)`` or RGB ``(h, w, 3)`` thumbnail, from the cache when there.

    Returns None for series without a decodable image (e.g. header-only objects).
    """
    cached = thumbnail_path(store, series_uid)
    if cached.exists():
        try:
            return np.asarray(Image.open(cached))
        except OSError:
            cached.unlink(missing_ok=True)
    image = _render(store, series_uid, size)
    if image is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        (cached.parent / f"{series_uid}.png").unlink(missing_ok=True)  # before VERSION
        tmp = cached.with_suffix(".part")
        Image.fromarray(image).save(tmp, format="PNG")
        tmp.replace(cached)
    return image


def _render(store: Store, series_uid: str, size: int) -> np.ndarray | None:
    stack = series_plan(store, series_uid).main
    if stack is None:
        return None
    ref = stack.slices[len(stack.slices) // 2]
    if ref.path is None:
        return None
    try:
        stored = read_frame(ref.path, ref.transfer_syntax_uid, ref.info, ref.frame)
    except Exception as exc:  # a thumbnail is never worth an error dialog
        log.info("no thumbnail for a series: %s", type(exc).__name__)
        return None
    return slice_thumbnail(stored, ref, size, read_value_maps(str(ref.path)).palette)


def slice_thumbnail(stored: np.ndarray, ref: SliceRef, size: int = SIZE,
                    palette: SupplementalPalette | None = None) -> np.ndarray:
    """A thumbnail of one decoded slice in its file's window (or one from its values), the
    values in ``palette`` (its file's Supplemental Palette Color LUT) in its colours."""
    window = ref.window
    if window is None and stored.ndim == 2:
        window = auto_window(stored.astype(np.float32) * ref.rescale_slope + ref.rescale_intercept)
    image = render_pixels(stored, ref, window, palette)
    pil = Image.fromarray(image)
    pil.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(pil)
