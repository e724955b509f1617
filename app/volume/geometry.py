"""Volume geometry in LPS patient coordinates.

Conventions used everywhere in Relay:

* A volume array has shape ``(slices, rows, columns)``, indexed ``[k, j, i]``.
* :attr:`VolumeGeometry.affine` maps the homogeneous voxel index ``(i, j, k, 1)`` (column, row,
  slice) to LPS millimetres: ``+x`` patient left, ``+y`` posterior, ``+z`` head (superior).
  Column ``i`` steps along the DICOM row direction (ImageOrientationPatient[0:3]) by the column
  spacing (PixelSpacing[1]); row ``j`` along the column direction (IOP[3:6]) by the row spacing
  (PixelSpacing[0]); slice ``k`` along the stack's step between slice positions.
* Spacing tuples follow the array order: ``(slice, row, column)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LABELS = (("R", "L"), ("A", "P"), ("F", "H"))  # negative, positive end of x, y, z


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """Where a voxel array sits in the patient: a 4×4 affine, the shape and the frame."""

    affine: np.ndarray
    shape: tuple[int, int, int]
    frame_of_reference_uid: str = ""

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4×4, got {affine.shape}")
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm as (slice, row, column)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)  # columns i, j, k
        return float(norms[2]), float(norms[1]), float(norms[0])

    @property
    def row_direction(self) -> np.ndarray:
        """Unit LPS vector along a row (increasing column index i)."""
        return _unit(self.affine[:3, 0])

    @property
    def column_direction(self) -> np.ndarray:
        """Unit LPS vector down a column (increasing row index j)."""
        return _unit(self.affine[:3, 1])

    @property
    def slice_direction(self) -> np.ndarray:
        """Unit LPS vector from one slice to the next (increasing k)."""
        return _unit(self.affine[:3, 2])

    @property
    def origin(self) -> np.ndarray:
        """LPS position of voxel (0, 0, 0)'s centre."""
        return self.affine[:3, 3].copy()

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """LPS mm of voxel indices ``(..., 3)`` given as (i, j, k)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        lps: np.ndarray = ijk @ self.affine[:3, :3].T + self.affine[:3, 3]
        return lps

    def lps_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) voxel indices of LPS points ``(..., 3)``."""
        inv = np.linalg.inv(self.affine)
        xyz = np.asarray(xyz, dtype=np.float64)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def center_lps(self) -> np.ndarray:
        k, j, i = self.shape
        return self.index_to_lps(np.array([(i - 1) / 2, (j - 1) / 2, (k - 1) / 2]))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return np.asarray(v, dtype=np.float64) / n if n else np.asarray(v, dtype=np.float64)


def direction_label(vector: np.ndarray, *, threshold: float = 0.25, max_letters: int = 2) -> str:
    """Orientation letters for an LPS direction, strongest first ("L", "PH", "RA", ...).

    A component counts when its share of the vector is above ``threshold``; the label names at
    most ``max_letters`` axes, so a slightly tilted axial still reads "A"/"P" cleanly.
    """
    v = _unit(np.asarray(vector, dtype=np.float64))
    order = np.argsort(-np.abs(v))
    letters = []
    for axis in order[:max_letters]:
        if abs(v[axis]) < threshold:
            continue
        letters.append(_LABELS[axis][1 if v[axis] > 0 else 0])
    return "".join(letters)
