"""Relay's node answers queries and retrieves over its local store, as Horos and OsiriX do:
C-FIND (Study Root: study, series, image), C-GET and C-MOVE, against dcmtk's findscu, getscu and
movescu (with dcmtk's storescp as the C-MOVE destination)."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from app.imports.importer import import_paths
from app.net.devhub import free_port
from app.store.local import Store
from tests.net.dimse_node import (
    dataset_bytes,
    dcmtk,
    destination,
    needs_dcmtk,
    peer,
    running_node,
)

pytestmark = needs_dcmtk
GE = "ct-head/ge-hispeed-human-gantry-tilt"
SAME_IMAGE = "compressed/same-image-9-syntaxes"



def _find(listener, tmp: Path, level: str, *keys: str) -> list[pydicom.Dataset]:
    out = tmp / f"find-{level}-{time.monotonic_ns()}"
    out.mkdir()
    proc = dcmtk("findscu", "-S", *peer(listener), "-X", "-od", str(out),
                 "-k", f"QueryRetrieveLevel={level}", *[a for k in keys for a in ("-k", k)])
    assert proc.returncode == 0, proc.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def test_find_studies_by_name_wildcard_date_range_and_modality(filled_home, tmp_path, data):
    ge = pydicom.dcmread(sorted((data / GE).glob("*.dcm"))[0], stop_before_pixels=True)
    with running_node(filled_home) as node:
        every = _find(node, tmp_path, "STUDY", "StudyInstanceUID", "PatientName",
                      "NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
                      "ModalitiesInStudy", "StudyDate")
        by_name = _find(node, tmp_path, "STUDY", "StudyInstanceUID",
                        f"PatientName={str(ge.PatientName)[:3].lower()}*")
        by_date = _find(node, tmp_path, "STUDY", "StudyInstanceUID",
                        "StudyDate=20140301-20140331")  # the nine-syntax study: 20140310
        after = _find(node, tmp_path, "STUDY", "StudyInstanceUID", "StudyDate=20140311-")
        none = _find(node, tmp_path, "STUDY", "StudyInstanceUID", "ModalitiesInStudy=MR")
    assert len(every) == 2
    row = next(r for r in every if r.StudyInstanceUID == ge.StudyInstanceUID)
    assert int(row.NumberOfStudyRelatedInstances) == 28
    assert int(row.NumberOfStudyRelatedSeries) >= 1
    assert "CT" in list(row.ModalitiesInStudy) or row.ModalitiesInStudy == "CT"
    assert row.RetrieveAETitle == "RELAY"
    assert [r.StudyInstanceUID for r in by_name] == [ge.StudyInstanceUID]
    assert len(by_date) == 1 and by_date[0].StudyInstanceUID != ge.StudyInstanceUID
    assert after == []  # and the GE study, without a date, matches no range
    assert not [r for r in none if r.StudyInstanceUID == ge.StudyInstanceUID]


def test_find_series_and_images_of_a_study(filled_home, tmp_path, data):
    ge = pydicom.dcmread(sorted((data / GE).glob("*.dcm"))[0], stop_before_pixels=True)
    with running_node(filled_home) as node:
        series = _find(node, tmp_path, "SERIES", f"StudyInstanceUID={ge.StudyInstanceUID}",
                       "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances")
        images = _find(node, tmp_path, "IMAGE", f"StudyInstanceUID={ge.StudyInstanceUID}",
                       f"SeriesInstanceUID={ge.SeriesInstanceUID}", "SOPInstanceUID",
                       "InstanceNumber")
        without_study = dcmtk("findscu", "-S", "-v", *peer(node), "-k", "QueryRetrieveLevel=SERIES",
                              "-k", "SeriesInstanceUID")
    assert [s.SeriesInstanceUID for s in series] == [ge.SeriesInstanceUID]
    assert int(series[0].NumberOfSeriesRelatedInstances) == 28 and series[0].Modality == "CT"
    assert len(images) == 28 and len({i.SOPInstanceUID for i in images}) == 28
    # Study Root: a series query without the study's UID is refused, not answered with all.
    assert "DataSetDoesNotMatchSOPClass" in without_study.stdout + without_study.stderr


def _originals(data: Path) -> dict[str, Path]:
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
            for p in sorted((data / GE).glob("*.dcm"))}


def _received(folder: Path) -> dict[str, Path]:
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
            for p in folder.iterdir() if p.is_file()}


def test_get_a_study_with_getscu(filled_home, tmp_path, data):
    originals = _originals(data)
    study = pydicom.dcmread(next(iter(originals.values())), stop_before_pixels=True)
    out = tmp_path / "got"
    out.mkdir()
    with running_node(filled_home) as node:
        proc = dcmtk("getscu", "-S", *peer(node), "-od", str(out),
                     "-k", "QueryRetrieveLevel=STUDY",
                     "-k", f"StudyInstanceUID={study.StudyInstanceUID}")
    assert proc.returncode == 0, proc.stderr
    got = _received(out)
    assert got.keys() == originals.keys()
    for uid, path in got.items():
        assert dataset_bytes(path) == dataset_bytes(originals[uid])  # as stored, as imported


def test_get_one_series_of_compressed_images_in_their_own_syntax(filled_home, tmp_path, data):
    jls = next(p for p in sorted((data / SAME_IMAGE).glob("*.dcm"))
               if pydicom.dcmread(p).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80")
    ds = pydicom.dcmread(jls, stop_before_pixels=True)
    out = tmp_path / "got"
    out.mkdir()
    with running_node(filled_home) as node:
        proc = dcmtk("getscu", "-S", "+xt", *peer(node), "-od", str(out),
                     "-k", "QueryRetrieveLevel=IMAGE",
                     "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
                     "-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}",
                     "-k", f"SOPInstanceUID={ds.SOPInstanceUID}")
    assert proc.returncode == 0, proc.stderr
    (got,) = out.iterdir()
    received = pydicom.dcmread(got)
    assert received.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"
    assert received.PixelData == pydicom.dcmread(jls).PixelData  # the same codestream


def test_get_to_a_peer_taking_only_uncompressed_decodes_losslessly(filled_home, tmp_path, data):
    jls = next(p for p in sorted((data / SAME_IMAGE).glob("*.dcm"))
               if pydicom.dcmread(p).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80")
    ds = pydicom.dcmread(jls)
    out = tmp_path / "got"
    out.mkdir()
    with running_node(filled_home) as node:
        proc = dcmtk("getscu", "-S", *peer(node), "-od", str(out),  # default: uncompressed
                     "-k", "QueryRetrieveLevel=IMAGE",
                     "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
                     "-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}",
                     "-k", f"SOPInstanceUID={ds.SOPInstanceUID}")
    assert proc.returncode == 0, proc.stderr
    (got,) = out.iterdir()
    received = pydicom.dcmread(got)
    assert not received.file_meta.TransferSyntaxUID.is_compressed
    assert (received.pixel_array == ds.pixel_array).all()


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """dcmtk's storescp, the C-MOVE destination, writing into a folder."""
    out = tmp_path / "moved"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "VIEWER", "-od", str(out), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while dcmtk("echoscu", "-aec", "VIEWER", "127.0.0.1", str(port)).returncode != 0:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.2)
        yield port, out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_move_a_series_to_a_known_destination(filled_home, storescp, data):
    port, out = storescp
    originals = _originals(data)
    series = pydicom.dcmread(next(iter(originals.values())), stop_before_pixels=True)
    with running_node(filled_home, move_destinations=[destination("VIEWER", port)]) as node:
        proc = dcmtk("movescu", "-S", *peer(node), "-aem", "VIEWER",
                     "-k", "QueryRetrieveLevel=SERIES",
                     "-k", f"StudyInstanceUID={series.StudyInstanceUID}",
                     "-k", f"SeriesInstanceUID={series.SeriesInstanceUID}")
        assert proc.returncode == 0, proc.stderr
    got = _received(out)
    assert got.keys() == originals.keys()
    for uid, path in got.items():
        assert dataset_bytes(path) == dataset_bytes(originals[uid])


def test_move_to_an_unknown_destination_is_refused(filled_home, storescp, data):
    port, out = storescp
    study = pydicom.dcmread(sorted((data / GE).glob("*.dcm"))[0], stop_before_pixels=True)
    with running_node(filled_home, move_destinations=[destination("VIEWER", port)]) as node:
        proc = dcmtk("movescu", "-S", "-v", *peer(node), "-aem", "STRANGER",
                     "-k", "QueryRetrieveLevel=STUDY",
                     "-k", f"StudyInstanceUID={study.StudyInstanceUID}")
        assert dcmtk("echoscu", *peer(node)).returncode == 0
    text = proc.stdout + proc.stderr
    assert "MoveDestinationUnknown" in text or "a801" in text.lower(), text[-800:]
    assert not list(out.iterdir())  # nothing went anywhere


def _nine(data: Path) -> dict[str, Path]:
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
            for p in sorted((data / SAME_IMAGE).glob("*.dcm"))}


def _digest(path: Path) -> str:
    return hashlib.sha256(dataset_bytes(path)).hexdigest()


@pytest.mark.parametrize(("prefer", "syntax"), [
    ("+xt", "1.2.840.10008.1.2.4.80"), ("+xs", "1.2.840.10008.1.2.4.70"),
    ("+xv", "1.2.840.10008.1.2.4.90"), ("+xr", "1.2.840.10008.1.2.5")])
def test_get_sends_compressed_files_byte_for_byte(filled_home, tmp_path, data, prefer, syntax):
    """getscu preferring a compressed syntax gets the instances stored in it as stored: the
    SHA-256 of the data set that arrives is that of the stored one (nothing re-encoded)."""
    nine = {uid: p for uid, p in _nine(data).items()
            if pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax}
    first = pydicom.dcmread(next(iter(nine.values())), stop_before_pixels=True)
    out = tmp_path / "got"
    out.mkdir()
    with running_node(filled_home) as node:
        proc = dcmtk("getscu", "-S", "+B", prefer, *peer(node), "-od", str(out),
                     "-k", "QueryRetrieveLevel=IMAGE",
                     "-k", f"StudyInstanceUID={first.StudyInstanceUID}",
                     "-k", f"SeriesInstanceUID={first.SeriesInstanceUID}",
                     "-k", "SOPInstanceUID=" + "\\".join(nine))
    assert proc.returncode == 0, proc.stderr
    got = _received(out)
    assert got.keys() == nine.keys()
    for uid, path in got.items():
        assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == \
            syntax
        assert _digest(path) == _digest(nine[uid])


def test_move_sends_every_syntax_byte_for_byte(filled_home, tmp_path, data):
    """To a destination that accepts every syntax (storescp +xa), each of the nine instances
    arrives in its stored syntax with the SHA-256 of the stored data set."""
    nine = _nine(data)
    study = pydicom.dcmread(next(iter(nine.values())), stop_before_pixels=True)
    out = tmp_path / "moved"
    out.mkdir()
    port = free_port()
    scp = subprocess.Popen(["storescp", "+xa", "+B", "-aet", "VIEWER", "-od", str(out), str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while dcmtk("echoscu", "-aec", "VIEWER", "127.0.0.1", str(port)).returncode != 0:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.2)
        with running_node(filled_home, move_destinations=[destination("VIEWER", port)]) as node:
            proc = dcmtk("movescu", "-S", *peer(node), "-aem", "VIEWER",
                         "-k", "QueryRetrieveLevel=STUDY",
                         "-k", f"StudyInstanceUID={study.StudyInstanceUID}")
            assert proc.returncode == 0, proc.stderr
    finally:
        scp.terminate()
        scp.wait(timeout=10)
    got = _received(out)
    assert got.keys() == nine.keys()
    for uid, path in got.items():
        stored = pydicom.dcmread(nine[uid], stop_before_pixels=True).file_meta.TransferSyntaxUID
        assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == \
            stored
        assert _digest(path) == _digest(nine[uid]), stored.name


def test_move_sends_files_pydicom_would_encode_differently_byte_for_byte(tmp_path, data):
    """Two JPEG 2000 files (lossy and lossless) whose data sets pydicom would not write back
    identically: they still arrive with the SHA-256 of what is stored (sent from the file)."""
    files = [data / "compressed/jpeg2000/693_J2KI.dcm", data / "compressed/jpeg2000/693_J2KR.dcm"]
    home = tmp_path / "relay"
    store = Store(home)
    assert import_paths(store, [str(f) for f in files]).imported == 2
    stored = {inst.sop_instance_uid: inst for study in store.studies()
              for s in study.series for inst in store.instances(s.series_instance_uid)}
    out = tmp_path / "moved"
    out.mkdir()
    port = free_port()
    scp = subprocess.Popen(["storescp", "+xa", "+B", "-aet", "VIEWER", "-od", str(out),
                            str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while dcmtk("echoscu", "-aec", "VIEWER", "127.0.0.1", str(port)).returncode != 0:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.2)
        with running_node(home, move_destinations=[destination("VIEWER", port)]) as node:
            for study in store.studies():
                proc = dcmtk("movescu", "-S", *peer(node), "-aem", "VIEWER",
                             "-k", "QueryRetrieveLevel=STUDY",
                             "-k", f"StudyInstanceUID={study.study_instance_uid}")
                assert proc.returncode == 0, proc.stderr
    finally:
        scp.terminate()
        scp.wait(timeout=10)
    got = _received(out)
    assert got.keys() == stored.keys()
    for uid, path in got.items():
        inst = stored[uid]
        assert inst.path is not None
        assert _digest(path) == _digest(inst.path)
