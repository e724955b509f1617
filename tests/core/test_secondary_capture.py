"""A Secondary Capture of a screen picture: a valid SC object (dciodvfy) in the source's study,
a new series, pixels as given, and kept in the store like any instance."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.dicom.secondary_capture import SECONDARY_CAPTURE, CaptureSeries, secondary_capture
from app.errors import DicomReadError
from app.imports.importer import import_paths
from app.store.ingest import store_instance
from app.store.local import Store


@pytest.fixture
def source(data: Path) -> Path:
    return sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").iterdir())[3]


def test_capture_is_a_valid_sc_in_the_same_study(source: Path, tmp_path: Path) -> None:
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[5:10, 6:20] = (255, 128, 7)
    series = CaptureSeries.new(9001)
    data = secondary_capture(rgb, source, series, instance_number=2, derivation="test")
    path = tmp_path / "sc.dcm"
    path.write_bytes(data)
    ds, src = pydicom.dcmread(path), pydicom.dcmread(source, stop_before_pixels=True)
    assert ds.SOPClassUID == SECONDARY_CAPTURE and ds.file_meta.MediaStorageSOPClassUID == \
        SECONDARY_CAPTURE
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientName == src.PatientName
    assert ds.SeriesInstanceUID == series.series_instance_uid != src.SeriesInstanceUID
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    np.testing.assert_array_equal(ds.pixel_array, rgb)
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert not errors, errors


def test_capture_goes_into_the_store_as_a_new_series(source: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    import_paths(store, [str(source)])
    study_uid = pydicom.dcmread(source, stop_before_pixels=True).StudyInstanceUID
    data = secondary_capture(np.full((8, 8, 3), 9, np.uint8), source, CaptureSeries.new())
    store_instance(store, data, "key view 1")
    study = store.study(study_uid)
    assert study is not None and len(study.series) == 2
    assert {s.modality for s in study.series} == {"CT", "OT"}
    with pytest.raises(DicomReadError, match="already in the store"):
        store_instance(store, data, "key view 1")
    with pytest.raises(DicomReadError):
        store_instance(store, b"not dicom at all", "junk")
