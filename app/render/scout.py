"""Reference (scout) lines: where another view's slice plane cuts the slice in view.

A viewport's scene is in millimetres on its slice: ``x`` along the row (pixel ``i`` covers
``[i dx, (i + 1) dx)``), ``y`` down the column. :func:`reference_line` returns the segment, in
those millimetres, where the plane of slice ``k_other`` of another volume (same frame of
reference) crosses slice ``k`` of this one, clipped to the image; None when the planes are
parallel or do not meet inside it. Tilted (sheared) stacks are handled by the affines.
"""

from __future__ import annotations

import numpy as np

from app.volume.geometry import VolumeGeometry

#: Planes closer to parallel than this (|sin| of the angle between normals) draw no line.
PARALLEL = 1e-3


def slice_plane(geometry: VolumeGeometry, k: float) -> tuple[np.ndarray, np.ndarray]:
    """(point, unit normal) of slice ``k``'s plane in LPS."""
    point = (geometry.affine @ np.array([0.0, 0.0, float(k), 1.0]))[:3]
    normal = np.cross(geometry.affine[:3, 0], geometry.affine[:3, 1])
    return point, normal / np.linalg.norm(normal)


def reference_line(geometry: VolumeGeometry, k: int, other: VolumeGeometry, k_other: int
                   ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The segment (two (x, y) mm points) of ``other``'s slice plane on slice ``k``."""
    point, normal = slice_plane(other, k_other)
    _, own_normal = slice_plane(geometry, k)
    if np.linalg.norm(np.cross(normal, own_normal)) < PARALLEL:
        return None
    _, rows, cols = geometry.shape
    a = geometry.affine
    dx, dy = float(np.linalg.norm(a[:3, 0])), float(np.linalg.norm(a[:3, 1]))
    origin = (a @ np.array([-0.5, -0.5, float(k), 1.0]))[:3]  # the image's corner
    # normal . (origin + x/dx a_i + y/dy a_j - point) = 0  ->  A x + B y + C = 0
    big_a = float(normal @ a[:3, 0]) / dx
    big_b = float(normal @ a[:3, 1]) / dy
    big_c = float(normal @ (origin - point))
    return _clip(big_a, big_b, big_c, cols * dx, rows * dy)


def _clip(a: float, b: float, c: float, width: float, height: float
          ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The part of the line ``a x + b y + c = 0`` inside ``[0, width] × [0, height]``."""
    points: list[tuple[float, float]] = []
    if abs(b) > 1e-12:
        for x in (0.0, width):
            y = -(a * x + c) / b
            if -1e-9 <= y <= height + 1e-9:
                points.append((x, y))
    if abs(a) > 1e-12:
        for y in (0.0, height):
            x = -(b * y + c) / a
            if -1e-9 <= x <= width + 1e-9:
                points.append((x, y))
    unique: list[tuple[float, float]] = []
    for p in points:
        if all(abs(p[0] - q[0]) + abs(p[1] - q[1]) > 1e-6 for q in unique):
            unique.append(p)
    if len(unique) < 2:
        return None
    return unique[0], unique[1]
