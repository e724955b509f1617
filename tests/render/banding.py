"""A banding oracle for 3D pictures, and a skull-like shell whose true picture has none.

Wood-grain bands are ripples a few pixels wide on a surface that should be smooth. The ripple
of a picture is the mean absolute difference between it and its own 5×5 box blur, over the
inside of the object (its silhouette eroded, so the edges against the background do not
count), in grey levels. A smoothly shaded sphere has almost none.
"""

from __future__ import annotations

import numpy as np

from app.volume.geometry import VolumeGeometry

INTERCEPT = -1024.0


def ripple(rgb: np.ndarray, *, threshold: float = 40.0, erode: int = 6) -> float:
    """Mean |picture − 5×5 box blur| (grey levels) inside the object of an RGB picture."""
    grey = rgb.astype(np.float32).mean(axis=2)
    inside = grey > threshold
    for _ in range(erode):
        inside[1:-1, 1:-1] &= (inside[:-2, 1:-1] & inside[2:, 1:-1]
                               & inside[1:-1, :-2] & inside[1:-1, 2:])
        inside[[0, -1], :] = False
        inside[:, [0, -1]] = False
    if not inside.any():
        raise AssertionError("nothing rendered to measure")
    pad = np.pad(grey, 2, mode="edge")
    rows, cols = grey.shape
    blur = sum(pad[a:a + rows, b:b + cols] for a in range(5) for b in range(5)) / 25.0
    return float(np.abs(grey - blur)[inside].mean())


def skull_shell(shape: tuple[int, int, int] = (140, 220, 220),
                spacing: tuple[float, float, float] = (1.0, 0.8, 0.8),
                outer_mm: float = 66.0, inner_mm: float = 59.0
                ) -> tuple[np.ndarray, VolumeGeometry]:
    """A 7 mm bone shell (1200 HU) around brain (30 HU) in air, centred at the origin, edges
    blurred over 1 mm as a scanner does; stored as HU − ``INTERCEPT`` (int16)."""
    k, j, i = shape
    dz, dy, dx = spacing
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * d
            for n, d in ((k, dz), (j, dy), (i, dx))]
    r = np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2
                + axes[2][None, None, :] ** 2)

    def inside(radius: float) -> np.ndarray:
        return np.clip(0.5 + (radius - r), 0.0, 1.0)

    body = inside(outer_mm)
    brain = inside(inner_mm)
    hu = -1000.0 * (1.0 - body) + 1200.0 * (body - brain) + 30.0 * brain
    affine = np.diag([dx, dy, dz, 1.0])
    affine[:3, 3] = [-(i - 1) / 2 * dx, -(j - 1) / 2 * dy, -(k - 1) / 2 * dz]
    return (np.rint(hu - INTERCEPT).astype(np.int16),
            VolumeGeometry(affine=affine, shape=shape, frame_of_reference_uid="1.2.3"))
