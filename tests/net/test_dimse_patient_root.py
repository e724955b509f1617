"""Relay's node answers the Patient Root model too (PS3.4 C.6.1), as Horos and OsiriX do:
findscu/getscu/movescu ``-P`` at PATIENT, STUDY and IMAGE level, the Patient ID being the unique
key of the top level (a study query without it is refused, not answered with everything)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from app.net.devhub import free_port
from tests.net.dimse_node import dataset_bytes, dcmtk, destination, needs_dcmtk, peer, running_node

pytestmark = needs_dcmtk
GE = "ct-head/ge-hispeed-human-gantry-tilt"
SAME_IMAGE = "compressed/same-image-9-syntaxes"



@pytest.fixture
def ge(data: Path) -> pydicom.Dataset:
    return pydicom.dcmread(sorted((data / GE).glob("*.dcm"))[0], stop_before_pixels=True)


def _find(listener, tmp: Path, level: str, *keys: str) -> tuple[list[pydicom.Dataset], str]:
    out = tmp / f"find-{level}-{time.monotonic_ns()}"
    out.mkdir()
    proc = dcmtk("findscu", "-P", "-v", *peer(listener), "-X", "-od", str(out),
                 "-k", f"QueryRetrieveLevel={level}", *[a for k in keys for a in ("-k", k)])
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))], proc.stdout + proc.stderr


def test_find_patients_then_their_studies_series_and_images(filled_home, tmp_path, ge):
    with running_node(filled_home) as node:
        patients, _ = _find(node, tmp_path, "PATIENT", "PatientID", "PatientName",
                            "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances")
        one, _ = _find(node, tmp_path, "PATIENT", f"PatientID={ge.PatientID}",
                       "NumberOfPatientRelatedInstances")
        studies, _ = _find(node, tmp_path, "STUDY", f"PatientID={ge.PatientID}",
                           "StudyInstanceUID", "NumberOfStudyRelatedInstances")
        images, _ = _find(node, tmp_path, "IMAGE", f"PatientID={ge.PatientID}",
                          f"StudyInstanceUID={ge.StudyInstanceUID}",
                          f"SeriesInstanceUID={ge.SeriesInstanceUID}", "SOPInstanceUID")
        refused, text = _find(node, tmp_path, "STUDY", "StudyInstanceUID")
    assert len(patients) == 2
    assert sum(int(p.NumberOfPatientRelatedInstances) for p in patients) == 28 + 9
    assert [str(p.PatientID) for p in one] == [str(ge.PatientID)]
    assert int(one[0].NumberOfPatientRelatedInstances) == 28
    assert [s.StudyInstanceUID for s in studies] == [ge.StudyInstanceUID]
    assert int(studies[0].NumberOfStudyRelatedInstances) == 28
    assert len({i.SOPInstanceUID for i in images}) == 28
    assert refused == [] and "DataSetDoesNotMatchSOPClass" in text  # needs PatientID


def test_get_every_study_of_a_patient(filled_home, tmp_path, ge, data):
    out = tmp_path / "got"
    out.mkdir()
    with running_node(filled_home) as node:
        proc = dcmtk("getscu", "-P", "+B", *peer(node), "-od", str(out),
                     "-k", "QueryRetrieveLevel=PATIENT", "-k", f"PatientID={ge.PatientID}")
    assert proc.returncode == 0, proc.stderr
    originals = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
                 for p in sorted((data / GE).glob("*.dcm"))}
    got = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in out.iterdir()}
    assert got.keys() == originals.keys()
    assert all(dataset_bytes(p) == dataset_bytes(originals[u]) for u, p in got.items())


def test_move_a_study_by_patient_root(filled_home, tmp_path, ge):
    out = tmp_path / "moved"
    out.mkdir()
    port = free_port()
    scp = subprocess.Popen(["storescp", "-aet", "VIEWER", "-od", str(out), str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while dcmtk("echoscu", "-aec", "VIEWER", "127.0.0.1", str(port)).returncode != 0:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.2)
        with running_node(filled_home, move_destinations=[destination("VIEWER", port)]) as node:
            proc = dcmtk("movescu", "-P", *peer(node), "-aem", "VIEWER",
                         "-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientID={ge.PatientID}",
                         "-k", f"StudyInstanceUID={ge.StudyInstanceUID}")
            wrong = dcmtk("movescu", "-P", *peer(node), "-aem", "VIEWER",
                          "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=SOMEONE-ELSE",
                          "-k", f"StudyInstanceUID={ge.StudyInstanceUID}")
    finally:
        scp.terminate()
        scp.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert wrong.returncode == 0, wrong.stderr  # nothing matched: nothing to move
    assert len(list(out.iterdir())) == 28  # the study once; nothing for the other patient
