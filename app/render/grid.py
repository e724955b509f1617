"""The pixel grid of a resliced image, in mm, with what overlays need to annotate it.

A :class:`SliceGrid` says where every output pixel sits in the patient: pixel ``(row, col)`` is
at ``origin + col * pixel_mm * right + row * pixel_mm * down`` (LPS mm). It also gives the
orientation letters for the four image edges and the mm per pixel for a scale bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.render.planes import Plane
from app.volume.geometry import VolumeGeometry, direction_label


@dataclass(frozen=True)
class EdgeLabels:
    """Orientation letters at the middle of each image edge ("R", "L", "AF", ...)."""

    left: str
    right: str
    top: str
    bottom: str


@dataclass(frozen=True, eq=False)
class SliceGrid:
    """Square-pixel output grid on a plane: where each pixel of a reslice lies in LPS."""

    plane: Plane
    origin: np.ndarray
    pixel_mm: float
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        origin = np.array(self.origin, dtype=np.float64).reshape(3)
        origin.setflags(write=False)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        if self.pixel_mm <= 0 or min(self.shape) < 1:
            raise ValueError(f"bad grid: pixel_mm={self.pixel_mm}, shape={self.shape}")

    @property
    def right(self) -> np.ndarray:
        return self.plane.right

    @property
    def down(self) -> np.ndarray:
        return self.plane.down

    @property
    def normal(self) -> np.ndarray:
        return self.plane.normal

    @property
    def labels(self) -> EdgeLabels:
        """Orientation letters for the left, right, top and bottom edges."""
        return EdgeLabels(left=direction_label(-self.right), right=direction_label(self.right),
                          top=direction_label(-self.down), bottom=direction_label(self.down))

    @property
    def size_mm(self) -> tuple[float, float]:
        """Height and width of the image in mm (pixel centre to pixel centre plus one pixel)."""
        return self.shape[0] * self.pixel_mm, self.shape[1] * self.pixel_mm

    def pixel_to_lps(self, rows_cols: np.ndarray) -> np.ndarray:
        """LPS mm of (continuous) pixel coordinates ``(..., 2)`` given as (row, col)."""
        rc = np.asarray(rows_cols, dtype=np.float64)
        points: np.ndarray = (self.origin + rc[..., 1:2] * self.pixel_mm * self.right
                + rc[..., 0:1] * self.pixel_mm * self.down)
        return points

    def lps_to_pixel(self, points: np.ndarray) -> np.ndarray:
        """Continuous (row, col) of LPS points ``(..., 3)`` projected onto the plane."""
        d = np.asarray(points, dtype=np.float64) - self.origin
        return np.stack([d @ self.down, d @ self.right], axis=-1) / self.pixel_mm

    def vtk_axes(self, step_mm: float) -> np.ndarray:
        """4×4 matrix from output (col, row, slab step) to LPS, for a reslice."""
        m = np.eye(4)
        m[:3, 0] = self.right * self.pixel_mm
        m[:3, 1] = self.down * self.pixel_mm
        m[:3, 2] = self.normal * step_mm
        m[:3, 3] = self.origin
        return m

    def with_plane(self, plane: Plane) -> SliceGrid:
        """The same in-plane framing moved onto a parallel plane (e.g. while scrolling)."""
        shift = (plane.center - self.plane.center) @ self.normal
        return SliceGrid(plane=plane, origin=self.origin + shift * self.normal,
                         pixel_mm=self.pixel_mm, shape=self.shape)

    def coarsened(self, factor: int) -> SliceGrid:
        """A grid covering the same field with ``factor``× larger pixels (for interaction)."""
        if factor <= 1:
            return self
        rows, cols = (max(1, math.ceil(n / factor)) for n in self.shape)
        pixel = self.pixel_mm * factor
        # keep the field centre where it was
        centre = self.pixel_to_lps(np.array([(self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2]))
        origin = centre - (cols - 1) / 2 * pixel * self.right - (rows - 1) / 2 * pixel * self.down
        return SliceGrid(plane=self.plane, origin=origin, pixel_mm=pixel, shape=(rows, cols))


def fit_grid(geometry: VolumeGeometry, plane: Plane, *, pixel_mm: float | None = None,
             max_size: int = 1024) -> SliceGrid:
    """A grid on ``plane`` that covers the whole volume seen through it.

    The field is centred on the volume centre projected onto the plane (so scrolling the plane
    does not shift the picture), and wide enough for the volume's bounding box in any rotation.
    ``pixel_mm`` defaults to the smallest voxel spacing; it grows if the grid would exceed
    ``max_size`` pixels on a side.
    """
    if pixel_mm is None:
        pixel_mm = min(geometry.spacing)
    centre = geometry.center_lps()
    k, j, i = geometry.shape
    corners = np.array([[a, b, c] for a in (-0.5, i - 0.5) for b in (-0.5, j - 0.5)
                        for c in (-0.5, k - 0.5)])
    offsets = geometry.index_to_lps(corners) - centre
    half_w = float(np.abs(offsets @ plane.right).max())
    half_h = float(np.abs(offsets @ plane.down).max())
    pixel_mm = max(pixel_mm, 2 * max(half_w, half_h) / max_size)
    cols = max(1, min(max_size, math.ceil(2 * half_w / pixel_mm - 1e-6)))
    rows = max(1, min(max_size, math.ceil(2 * half_h / pixel_mm - 1e-6)))
    in_plane = centre - ((centre - plane.center) @ plane.normal) * plane.normal
    origin = (in_plane - (cols - 1) / 2 * pixel_mm * plane.right
              - (rows - 1) / 2 * pixel_mm * plane.down)
    return SliceGrid(plane=plane, origin=origin, pixel_mm=pixel_mm, shape=(rows, cols))


def scale_bar(grid: SliceGrid, *, max_fraction: float = 0.25) -> tuple[float, float]:
    """A round scale-bar length: (mm, pixels), at most ``max_fraction`` of the image width."""
    limit = grid.shape[1] * grid.pixel_mm * max_fraction
    if limit <= 0:
        return 0.0, 0.0
    exponent = math.floor(math.log10(limit))
    best = 10.0**exponent
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * 10.0**exponent <= limit:
            best = step * 10.0**exponent
    return best, best / grid.pixel_mm
