"""Region statistics on one slice, and the same region mirrored across the midline.

Coordinates are the 2D view's millimetres: x along the row, y down the column, origin at the
first pixel's corner; ``spacing`` is (row, column) mm. A pixel is inside a region when its
centre is. A midline is two points the user set; :func:`mirror_stats` measures a region and its
mirror image across that line (the other hemisphere) and their difference, pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]
SHAPES = ("ellipse", "rect")


@dataclass(frozen=True)
class RoiStats:
    mean: float
    sd: float
    minimum: float
    maximum: float
    area_mm2: float
    pixels: int


@dataclass(frozen=True)
class MirroredRoi:
    """A region (``here``) and its mirror across the midline (``there``)."""

    here: RoiStats
    there: RoiStats

    @property
    def difference(self) -> float:
        """Mean here minus mean there (HU for CT): negative when this side is darker."""
        return self.here.mean - self.there.mean


def _inside(kind: str, p0: Point, p1: Point, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x0, x1 = sorted((p0[0], p1[0]))
    y0, y1 = sorted((p0[1], p1[1]))
    if kind == "ellipse":
        ax, ay = max((x1 - x0) / 2, 1e-9), max((y1 - y0) / 2, 1e-9)
        result: np.ndarray = (((x - (x0 + x1) / 2) / ax) ** 2
                              + ((y - (y0 + y1) / 2) / ay) ** 2) <= 1.0
        return result
    if kind == "rect":
        return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    raise ValueError(f"region kind must be one of {SHAPES}, not {kind!r}")


def _area(kind: str, p0: Point, p1: Point) -> float:
    w, h = abs(p1[0] - p0[0]), abs(p1[1] - p0[1])
    return math.pi * w * h / 4 if kind == "ellipse" else w * h


def _stats(picked: np.ndarray, area: float) -> RoiStats | None:
    picked = picked.astype(np.float64)
    picked = picked[~np.isnan(picked)]  # a value without a quantity (see RealWorldValues)
    if picked.size == 0:
        return None
    return RoiStats(float(picked.mean()), float(picked.std()), float(picked.min()),
                    float(picked.max()), float(area), int(picked.size))


def roi_stats(values: np.ndarray, kind: str, p0: Point, p1: Point,
              spacing: tuple[float, float]) -> RoiStats | None:
    """Statistics of ``values`` (rows, cols: modality or real-world values; NaN ones are left
    out) inside an ellipse/rectangle in mm (None when no pixel centre with a value is
    inside)."""
    dy, dx = spacing
    x0, x1 = sorted((p0[0], p1[0]))
    y0, y1 = sorted((p0[1], p1[1]))
    rows, cols = values.shape[:2]
    i0, i1 = max(0, int(math.floor(x0 / dx))), min(cols, int(math.ceil(x1 / dx)))
    j0, j1 = max(0, int(math.floor(y0 / dy))), min(rows, int(math.ceil(y1 / dy)))
    if i0 >= i1 or j0 >= j1:
        return None
    jj, ii = np.mgrid[j0:j1, i0:i1]
    inside = _inside(kind, p0, p1, (ii + 0.5) * dx, (jj + 0.5) * dy)
    return _stats(values[j0:j1, i0:i1][inside], _area(kind, p0, p1))


def reflect(points: np.ndarray, a: Point, b: Point) -> np.ndarray:
    """``points`` (..., 2) mirrored across the line through ``a`` and ``b``."""
    origin = np.asarray(a, dtype=np.float64)
    d = np.asarray(b, dtype=np.float64) - origin
    norm = float(np.hypot(*d))
    if norm == 0:
        raise ValueError("the midline needs two different points")
    d /= norm
    rel = np.asarray(points, dtype=np.float64) - origin
    along = rel @ d
    result: np.ndarray = origin + 2 * along[..., None] * d - rel
    return result


def mirror_stats(values: np.ndarray, kind: str, p0: Point, p1: Point,
                 spacing: tuple[float, float], midline: tuple[Point, Point]
                 ) -> MirroredRoi | None:
    """The region ``p0``–``p1`` and its mirror image across ``midline`` (two points).

    The mirrored region is every pixel whose centre, reflected across the midline, falls in
    the region: exact for a tilted midline, no resampling of the image. None when either side
    has no pixel (the region or its mirror is off the image).
    """
    here = roi_stats(values, kind, p0, p1, spacing)
    if here is None:
        return None
    dy, dx = spacing
    corners = np.array([p0, (p0[0], p1[1]), p1, (p1[0], p0[1])], dtype=np.float64)
    image = reflect(corners, *midline)
    rows, cols = values.shape[:2]
    i0 = max(0, int(math.floor(image[:, 0].min() / dx)))
    i1 = min(cols, int(math.ceil(image[:, 0].max() / dx)))
    j0 = max(0, int(math.floor(image[:, 1].min() / dy)))
    j1 = min(rows, int(math.ceil(image[:, 1].max() / dy)))
    if i0 >= i1 or j0 >= j1:
        return None
    jj, ii = np.mgrid[j0:j1, i0:i1]
    centres = np.stack([(ii + 0.5) * dx, (jj + 0.5) * dy], axis=-1)
    back = reflect(centres, *midline)
    inside = _inside(kind, p0, p1, back[..., 0], back[..., 1])
    there = _stats(values[j0:j1, i0:i1][inside], _area(kind, p0, p1))
    if there is None:
        return None
    return MirroredRoi(here, there)


def mirrored_corners(p0: Point, p1: Point, midline: tuple[Point, Point]) -> np.ndarray:
    """The four corners of the region's bounding box mirrored across the midline (to draw)."""
    corners = np.array([p0, (p1[0], p0[1]), p1, (p0[0], p1[1])], dtype=np.float64)
    return reflect(corners, *midline)
