"""A synthetic enhanced multi-frame CT, written as a stream: any size without holding it.

:func:`generate_multiframe` writes one Enhanced CT Image object whose frames are the slices the
single-frame generator (:mod:`app.dicom.synth`) would write for the same :class:`SeriesSpec`:
the same phantom, positions and grey values, with the geometry in the functional groups
(shared: pixel measures, orientation, rescale, window; per frame: position and frame content).
The header is written by pydicom; the pixel data element is then appended frame by frame, so
a 2 GB object costs one frame of memory (used by ``bench/bench_scale.py`` and the scale tests).
"""

from __future__ import annotations

import datetime
import math
import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID

from app.dicom.synth import SeriesSpec, _dataset, _uid, head_phantom, paint_plane
from app.tasks import Progress

ENHANCED_CT = UID("1.2.840.10008.5.1.4.1.1.2.1")
#: Per-frame attributes of the single-frame object that move into the functional groups.
_MOVED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
          "RescaleIntercept", "RescaleSlope", "RescaleType", "WindowCenter", "WindowWidth",
          "SliceLocation", "InstanceNumber")
#: Largest pixel data a native (unencapsulated) element can hold: a 32-bit length, even.
MAX_PIXEL_BYTES = 0xFFFFFFFE


def _item(**values: object) -> Dataset:
    item = Dataset()
    for key, value in values.items():
        setattr(item, key, value)
    return item


def generate_multiframe(path: Path, spec: SeriesSpec, progress: Progress | None = None, *,
                        distinct: int | None = None) -> Path:
    """Write ``spec.slices`` frames of ``spec.rows`` x ``spec.columns`` as one Enhanced CT
    object at ``path`` (Explicit VR Little Endian); return ``path``.

    ``distinct``: paint only this many planes, evenly spread, each frame showing the nearest
    one painted before it (for size benches, where painting 4,096 planes of 512 x 512 would
    take minutes and the pixels do not matter); None paints every frame."""
    frame_bytes = spec.rows * spec.columns * 2
    total = frame_bytes * spec.slices
    if total > MAX_PIXEL_BYTES:
        raise ValueError(f"{total} bytes of pixels do not fit one native pixel data element")
    study_uid = spec.study_instance_uid or _uid(spec, "study")
    series_uid = spec.series_instance_uid or _uid(spec, "series", spec.series_number, "mf")
    for_uid = _uid(spec, "for")
    tilt = math.radians(spec.tilt_deg)
    row_dir = np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    dx = dy = spec.pixel_spacing
    x0 = -(spec.columns - 1) * dx / 2.0
    y0 = -(spec.rows - 1) * dy / 2.0
    origins = [np.array([x0, y0 * math.cos(tilt), z - y0 * math.sin(tilt)], np.float32)
               for z in spec.positions()]
    now = datetime.datetime(2026, 11, 28, 8, 30, 0)
    ds = _dataset(spec, study_uid, series_uid, for_uid, 0, origins[0], row_dir, col_dir, now)
    ds.SOPInstanceUID = _uid(spec, "sop", series_uid, "multiframe")
    ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_CT
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    shared = _item(
        PixelMeasuresSequence=DicomSequence([_item(
            PixelSpacing=ds.PixelSpacing, SliceThickness=ds.SliceThickness)]),
        PlaneOrientationSequence=DicomSequence([_item(
            ImageOrientationPatient=ds.ImageOrientationPatient)]),
        PixelValueTransformationSequence=DicomSequence([_item(
            RescaleIntercept=ds.RescaleIntercept, RescaleSlope=ds.RescaleSlope,
            RescaleType=ds.RescaleType)]),
        FrameVOILUTSequence=DicomSequence([_item(
            WindowCenter=ds.WindowCenter, WindowWidth=ds.WindowWidth)]))
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence([_item(
        PlanePositionSequence=DicomSequence([_item(
            ImagePositionPatient=[f"{v:.4f}" for v in origin])]),
        FrameContentSequence=DicomSequence([_item(
            StackID="1", InStackPositionNumber=k + 1, DimensionIndexValues=[1, k + 1])]),
    ) for k, origin in enumerate(origins)])
    for keyword in _MOVED:
        if keyword in ds:
            delattr(ds, keyword)
    ds.InstanceNumber = 1
    ds.NumberOfFrames = spec.slices
    ds.ContentQualification = "PRODUCT"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = head_phantom(0.0, spec.phantom)
    rng = np.random.default_rng(spec.seed)
    if progress:
        progress.set_total(spec.slices, "Generating")
    with open(path, "wb") as fp:
        pydicom.dcmwrite(fp, ds, enforce_file_format=True)
        fp.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, total))
        every = max(1, spec.slices // distinct) if distinct else 1
        frame = b""
        for k, origin in enumerate(origins):
            if k % every == 0:
                hu = paint_plane(shapes, origin, row_dir * dx, col_dir * dy, spec.rows,
                                 spec.columns)
                if spec.noise_hu:
                    hu += rng.normal(0.0, spec.noise_hu, hu.shape).astype(np.float32)
                frame = np.clip(np.rint(hu + 1024.0), -2048, 4095).astype("<i2").tobytes()
            fp.write(frame)
            if progress:
                progress.advance()
                progress.check()
    return path
