"""Scrolling two series together when they share no frame of reference (today and a prior).

Scanners give the table position as the slice's z (superior) coordinate; two studies of one
patient are alike there up to where the patient lay, which the user corrects with an offset
(mm). A slice is compared by ``table_position - offset``; :func:`linked_slice` finds the slice
of the other series nearest to that.
"""

from __future__ import annotations

import numpy as np

from app.volume.geometry import VolumeGeometry


def table_positions(geometry: VolumeGeometry) -> np.ndarray:
    """The z (LPS superior) coordinate of every slice's centre, mm."""
    n, rows, cols = geometry.shape
    ijk = np.stack([np.full(n, (cols - 1) / 2), np.full(n, (rows - 1) / 2),
                    np.arange(n, dtype=np.float64)], axis=1)
    points = geometry.affine[:3, :3] @ ijk.T + geometry.affine[:3, 3:4]
    result: np.ndarray = points[2]
    return result


def linked_slice(source: VolumeGeometry, k: int, target: VolumeGeometry, *,
                 source_offset: float = 0.0, target_offset: float = 0.0) -> int:
    """The slice of ``target`` at the table position of ``source``'s slice ``k`` (offsets
    subtracted from each side's positions)."""
    z = float(table_positions(source)[k]) - source_offset
    return int(np.argmin(np.abs(table_positions(target) - target_offset - z)))


def offset_for(source: VolumeGeometry, k: int, target: VolumeGeometry, k_target: int,
               target_offset: float = 0.0) -> float:
    """The offset of ``source`` that makes its slice ``k`` line up with ``target``'s slice
    ``k_target`` (the user scrolled ``source`` alone to the matching slice)."""
    return float(table_positions(source)[k] - (table_positions(target)[k_target] - target_offset))
