"""Test-only: read a folder of single-frame slices (or one enhanced multi-frame file) into a
regular volume, just enough to check rendering on real data until ``app/volume.py`` lands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from app.geometry import VolumeGeometry
from app.render.regrid import regular_volume


@dataclass
class Series:
    array: np.ndarray
    geometry: VolumeGeometry
    slope: float
    intercept: float
    note: str | None
    stored: np.ndarray  # the slices as read, stack order
    positions: np.ndarray


def read_series(folder: Path) -> Series:
    datasets = []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" in ds and ("ImagePositionPatient" in ds
                                  or "PerFrameFunctionalGroupsSequence" in ds):
            datasets.append(ds)
    if len(datasets) == 1 and int(getattr(datasets[0], "NumberOfFrames", 1)) > 1:
        return _multiframe(datasets[0])
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))
    stored = np.stack([d.pixel_array for d in datasets])
    positions = np.array([d.ImagePositionPatient for d in datasets], dtype=float)
    spacing = tuple(float(v) for v in datasets[0].PixelSpacing)
    out = regular_volume(stored, positions, row_direction=iop[:3], column_direction=iop[3:],
                         pixel_spacing=spacing)
    return Series(out.array, out.geometry, float(getattr(datasets[0], "RescaleSlope", 1)),
                  float(getattr(datasets[0], "RescaleIntercept", 0)), out.note, stored, positions)


def _multiframe(ds) -> Series:
    frames = ds.PerFrameFunctionalGroupsSequence
    shared = ds.SharedFunctionalGroupsSequence[0]

    def item(frame, name):
        return getattr(frame, name, None) or getattr(shared, name)

    iop = np.array(item(frames[0], "PlaneOrientationSequence")[0].ImageOrientationPatient, float)
    spacing = tuple(float(v) for v in item(frames[0], "PixelMeasuresSequence")[0].PixelSpacing)
    positions = np.array([f.PlanePositionSequence[0].ImagePositionPatient for f in frames], float)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(positions @ normal)
    stored = ds.pixel_array[order]
    positions = positions[order]
    out = regular_volume(np.ascontiguousarray(stored), positions, row_direction=iop[:3],
                         column_direction=iop[3:], pixel_spacing=spacing)
    rescale = item(frames[0], "PixelValueTransformationSequence")[0] \
        if hasattr(frames[0], "PixelValueTransformationSequence") or \
        hasattr(shared, "PixelValueTransformationSequence") else None
    slope = float(getattr(rescale, "RescaleSlope", 1)) if rescale is not None else 1.0
    intercept = float(getattr(rescale, "RescaleIntercept", 0)) if rescale is not None else 0.0
    return Series(out.array, out.geometry, slope, intercept, out.note, stored, positions)
