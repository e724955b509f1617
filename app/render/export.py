"""One call from a volume to an 8-bit picture of a plane: what ``relay render`` uses.

``relay render SERIES_UID --out FILE.png --plane axial|coronal|sagittal [--slab MM --mode
mip|minip|avg]`` loads the volume, calls :func:`render_plane` and writes ``pixels`` as PNG. The
interactive viewer goes through the same :class:`~app.render.reslice.Reslicer`, so the script
and the screen show the same thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.render.crosshair import Alignment, Crosshair
from app.render.display import auto_window
from app.render.grid import SliceGrid, fit_grid
from app.render.planes import VIEWS, View
from app.render.reslice import Reslicer, SlabMode
from app.render.voi import to_uint8
from app.volume.geometry import VolumeGeometry

if TYPE_CHECKING:
    from app.dicom.value_maps import SupplementalPalette

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PlaneImage:
    """A rendered plane: 8-bit pixels, where they are, and how they were made.

    Attributes
    ----------
    pixels
        ``(rows, columns)`` uint8, row 0 at the top (``(rows, columns, 3)`` in a palette).
    grid
        Pixel positions in LPS, edge labels (``grid.labels``) and mm per pixel.
    window
        (center, width) used, in modality units (HU for CT).
    slab_mm, mode
        The slab (0 and ``""`` for a thin slice).
    """

    pixels: np.ndarray
    grid: SliceGrid
    window: tuple[float, float]
    slab_mm: float
    mode: str


def render_plane(array: np.ndarray, geometry: VolumeGeometry, *, plane: View = "axial",
                 slab_mm: float = 0.0, mode: SlabMode = "mip",
                 window: tuple[float, float] | None = None, slope: float = 1.0,
                 intercept: float = 0.0, center: np.ndarray | None = None,
                 pixel_mm: float | None = None, align: Alignment = "patient",
                 background: float | None = None, invert: bool = False,
                 palette: SupplementalPalette | None = None) -> PlaneImage:
    """Render an axial, coronal or sagittal plane (thin or slab) of a volume to 8 bits.

    Parameters
    ----------
    array, geometry
        The stored volume and where it is (regular; see :mod:`app.render.regrid`).
    plane
        ``"axial"``, ``"coronal"`` or ``"sagittal"``, from the patient axes.
    slab_mm, mode
        Slab thickness (0: thin slice) and ``"mip"``, ``"minip"`` or ``"avg"``.
    window
        (center, width) in modality units; by default spans the picture's own values.
    slope, intercept
        Rescale from stored values to modality units.
    center
        LPS point the plane passes through; default the volume centre.
    pixel_mm
        Output pixel size; default the smallest voxel spacing.
    align
        ``"patient"`` axes, or ``"acquisition"`` to follow a tilted/oblique acquisition.
    background
        Stored value outside the volume (default: the array's minimum).
    invert
        White for low values (MONOCHROME1).
    palette
        The series' Supplemental Palette Color LUT (a perfusion map): the plane in its
        colours where its stored values are in the palette's range (``array`` holds stored
        values), grey through the window elsewhere, as the MPR view shows it.
    """
    if plane not in VIEWS:
        raise ValueError(f"plane must be one of {VIEWS}, got {plane!r}")
    crosshair = Crosshair(geometry, align=align)
    if center is not None:
        crosshair.set_center(np.asarray(center, dtype=np.float64))
    grid = fit_grid(geometry, crosshair.plane(plane), pixel_mm=pixel_mm)
    reslicer = Reslicer(array, geometry, background=background)
    out = reslicer.slice(grid, slab_mm=slab_mm, mode=mode)
    values = out.pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    if window is None:
        window = auto_window(values)
    pixels = to_uint8(values, window[0], window[1], invert=invert)
    if palette is not None:
        pixels = palette.colour(out.pixels, pixels)
    log.debug("rendered %s plane %s, slab %.1f mm %s", plane, grid.shape, out.slab_mm, out.mode)
    return PlaneImage(pixels=pixels, grid=grid, window=(float(window[0]), float(window[1])),
                      slab_mm=out.slab_mm, mode=out.mode)
