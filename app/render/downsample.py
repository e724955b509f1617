"""Block-average a volume to fewer voxels, with the affine that keeps it in place.

Used for 3D on a CPU: the fixed-point ray caster spends seconds computing shading gradients for
100 M noisy CT voxels before the first frame, and every frame costs in proportion to the voxels
crossed. Averaging 2×2 in-plane blocks of a 0.45 mm CTA still leaves 0.9 mm voxels for a view
that shows the whole head in a few hundred pixels.
"""

from __future__ import annotations

import math

import numpy as np

from app.volume.geometry import VolumeGeometry


def factors_for(shape: tuple[int, int, int], max_voxels: int) -> tuple[int, int, int]:
    """Integer (slice, row, column) reduction factors bringing ``shape`` under ``max_voxels``.

    In-plane first (rows and columns together), then along the slices as well.
    """
    k, j, i = shape
    fz = fy = fx = 1
    while (math.ceil(k / fz) * math.ceil(j / fy) * math.ceil(i / fx)) > max_voxels:
        if fy <= fz:
            fy += 1
            fx += 1
        else:
            fz += 1
    return fz, fy, fx


def block_mean(array: np.ndarray, geometry: VolumeGeometry, factors: tuple[int, int, int]
               ) -> tuple[np.ndarray, VolumeGeometry]:
    """Mean of each ``factors`` block, as the same dtype, and its geometry.

    Works through the volume a few slices at a time (no float copy of the whole volume); edge
    voxels that do not fill a block are dropped.
    """
    fz, fy, fx = (int(f) for f in factors)
    if min(fz, fy, fx) < 1:
        raise ValueError(f"factors must be >= 1, got {factors}")
    if (fz, fy, fx) == (1, 1, 1):
        return array, geometry
    k, j, i = (n // f for n, f in zip(array.shape, (fz, fy, fx), strict=True))
    if min(k, j, i) < 1:
        raise ValueError(f"factors {factors} are larger than the volume {array.shape}")
    out = np.empty((k, j, i), dtype=array.dtype)
    integer = np.issubdtype(array.dtype, np.integer)
    for z in range(k):
        block = array[z * fz:(z + 1) * fz, :j * fy, :i * fx].astype(np.float32)
        mean = block.reshape(fz, j, fy, i, fx).mean(axis=(0, 2, 4))
        out[z] = np.rint(mean) if integer else mean
    scale = np.array([[fx, 0, 0, (fx - 1) / 2], [0, fy, 0, (fy - 1) / 2],
                      [0, 0, fz, (fz - 1) / 2], [0, 0, 0, 1]], dtype=np.float64)
    return out, VolumeGeometry(affine=geometry.affine @ scale, shape=out.shape,
                               frame_of_reference_uid=geometry.frame_of_reference_uid)
