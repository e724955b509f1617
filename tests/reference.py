"""The plain pydicom path: the reference the fast path is checked against.

Nothing here is fast or clever on purpose: ``dcmread`` the whole file, take ``pixel_array``
(pydicom's defaults, with the installed plugins), map a palette through the file's LUT, and
compute the stack geometry straight from the datasets. Tests compare :mod:`app.dicom.pixels`,
:mod:`app.volume.stack` and :mod:`app.volume.loader` with these; ``bench/bench_load.py`` uses it as
the "plain
loop" baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def reference_frames(path: Path | str) -> np.ndarray:
    """All frames of one file as ``(frames, rows, columns[, 3])``, via ``ds.pixel_array``."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # no file meta: the encoding pydicom guessed
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(
            "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1" if little
            else "1.2.840.10008.1.2.2"
        )
    arr = ds.pixel_array
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return arr if frames > 1 else arr[None]


def reference_affine(paths: Sequence[Path | str]) -> tuple[np.ndarray, list[str]]:
    """The 4×4 LPS affine of single-frame files, sorted along the slice normal.

    Returns the affine and the paths in slice order. Column i steps along the first
    ImageOrientationPatient vector by PixelSpacing[1], row j along the second by PixelSpacing[0],
    slice k by the mean step between the first and last slice positions.
    """
    import pydicom

    rows = []
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        spacing = [float(v) for v in ds.PixelSpacing]
        rows.append((ipp, iop, spacing, str(p)))
    normal = np.cross(rows[0][1][:3], rows[0][1][3:])
    rows.sort(key=lambda r: float(np.dot(normal, r[0])))
    ipp0, iop, spacing, _ = rows[0]
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * spacing[1]
    affine[:3, 1] = iop[3:] * spacing[0]
    if len(rows) > 1:
        affine[:3, 2] = (rows[-1][0] - ipp0) / (len(rows) - 1)
    else:
        affine[:3, 2] = normal
    affine[:3, 3] = ipp0
    return affine, [r[3] for r in rows]
