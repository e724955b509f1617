"""A screen picture as a DICOM Secondary Capture image of the study it shows (PS3.3 A.8.1).

:func:`secondary_capture` wraps an 8-bit RGB picture (what the reading window shows: a slice, an
MPR plane or layout, the 3D view) into an SC object in the *same* study (patient and study
modules copied from a source image of it), in a new series, with a reference to the image it was
made from, so that a key view can be kept in the store and sent to the hub like any instance.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

log = logging.getLogger(__name__)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: Patient and study attributes copied from the source image (Patient, General Study and
#: Patient Study modules), when present.
COPIED = ("SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID",
          "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID", "StudyDate",
          "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
          "StudyDescription")


@dataclass(frozen=True)
class CaptureSeries:
    """The new series the captures of one session go to (one UID, one number)."""

    series_instance_uid: str
    series_number: int
    series_description: str = "Relay key views"

    @classmethod
    def new(cls, series_number: int = 9000, description: str = "Relay key views") -> CaptureSeries:
        return cls(str(generate_uid()), series_number, description)


def secondary_capture(rgb: np.ndarray, source: Path, series: CaptureSeries, *,
                      instance_number: int = 1, burned_in: bool = True,
                      derivation: str = "") -> bytes:
    """The bytes of an SC image of ``rgb`` (``(rows, cols, 3)`` uint8) in ``source``'s study.

    ``burned_in``: the picture carries text that may identify the patient (the overlay).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (rows, cols, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    src = pydicom.dcmread(source, stop_before_pixels=True)
    ds = Dataset()
    for keyword in COPIED:
        element = src.data_element(keyword) if keyword in src else None
        if element is not None:
            setattr(ds, keyword, element.value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                    "AccessionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")  # type 2: present, may be empty
    now = dt.datetime.now()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SeriesNumber = series.series_number
    ds.SeriesDescription = series.series_description
    ds.Laterality = ""  # type 2C: the body part may be paired, and no image laterality
    ds.ConversionType = "WSD"  # workstation
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ""
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    if derivation:
        ds.DerivationDescription = derivation[:1024]
    ref = Dataset()
    ref.ReferencedSOPClassUID = src.SOPClassUID
    ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
    ds.SourceImageSequence = [ref]
    rows, cols = rgb.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(rgb).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()

