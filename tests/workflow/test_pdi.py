"""Export to disc (IHE PDI): the file-set re-imports byte for byte, dcmtk reads the DICOMDIR,
the ISO holds the same tree."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pydicom
import pytest

from app.workflow import audit
from app.workflow.burn import find_burner
from app.workflow.derive import WorkflowError
from app.workflow.export import export_studies, iso_path
from tests.workflow.conftest import OUTSIDE, import_into, outside_cd

ISO_NAME = re.compile(r"^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?$")
needs_dcmtk = pytest.mark.skipif(shutil.which("dcmmkdir") is None, reason="needs dcmtk")
needs_xorriso = pytest.mark.skipif(shutil.which("xorriso") is None, reason="needs xorriso")


def _digests(store) -> dict[str, str]:
    rows = store._connect().execute("SELECT sop_instance_uid, sha256 FROM instances").fetchall()
    return {r[0]: r[1] for r in rows}


def _tree(folder: Path) -> list[str]:
    return sorted("/" + p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file())


@pytest.fixture
def exported(tmp_path, home, data, ge_files):
    store = import_into(home, data / "cd" / "pydicom-dicomdirtests", *ge_files)
    studies = [s.study_instance_uid for s in store.studies()]
    result = export_studies(store, studies, tmp_path / "disc", iso=tmp_path / "disc.iso")
    return store, result


def test_the_export_reimports_byte_for_byte(tmp_path, exported):
    store, result = exported
    originals = _digests(store)
    assert result.instances == len(originals)
    again = import_into(tmp_path / "again", result.to)
    assert _digests(again) == originals
    assert result.rewritten == []


def test_a_file_stored_without_a_part10_header_gets_one(tmp_path, home, data, ge_files):
    store = import_into(home, data / "malformed" / "ExplVR_LitEndNoMeta.dcm", ge_files[0])
    originals = _digests(store)
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "disc")
    rewritten = set(result.rewritten)
    assert len(rewritten) == 1  # the intended change: a Part 10 header, the data set as it was
    back = _digests(import_into(tmp_path / "again", result.to))
    assert set(back) == set(originals)
    assert {u: d for u, d in back.items() if u not in rewritten} == {
        u: d for u, d in originals.items() if u not in rewritten}
    uid = next(iter(rewritten))
    fixed = pydicom.dcmread(result.to / result.files[uid])
    stored = pydicom.dcmread(store.instance(uid).path, force=True)
    assert fixed.file_meta.MediaStorageSOPInstanceUID == uid
    assert [e for e in fixed if e.tag != 0x00080005] == [e for e in stored if e.tag != 0x00080005]


def test_the_file_set_is_laid_out_for_a_disc(exported):
    _, result = exported
    assert (result.to / "DICOMDIR").is_file() and (result.to / "README.TXT").is_file()
    for path in result.to.rglob("*"):
        assert ISO_NAME.match(path.name), path
    fs = pydicom.fileset.FileSet(pydicom.dcmread(result.to / "DICOMDIR"))
    assert len(fs) == result.instances
    assert {i.SOPInstanceUID for i in fs} == set(result.files)
    assert OUTSIDE["PatientID"] not in (result.to / "README.TXT").read_text()


@pytest.mark.dcmtk
@needs_dcmtk
def test_dcmtk_reads_the_dicomdir_and_finds_every_record(tmp_path, exported):
    _, result = exported
    dump = subprocess.run(["dcmdump", str(result.to / "DICOMDIR")], capture_output=True,
                          text=True, timeout=60)
    assert dump.returncode == 0 and "E:" not in dump.stderr
    assert dump.stdout.count("ReferencedSOPInstanceUIDInFile") == result.instances
    # dcmmkdir in append mode reads the DICOMDIR and checks each file against its record
    # (on a copy: it rewrites the DICOMDIR).
    copy = tmp_path / "check"
    shutil.copytree(result.to, copy)
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")
                   if p.is_file() and p.name not in ("DICOMDIR", "README.TXT", "INDEX.HTM"))
    run = subprocess.run(["dcmmkdir", "-v", "+A", "-nb", "-Nxc", "+I", "+D", "DICOMDIR",
                          *files], cwd=copy, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "appending to DICOMDIR" in run.stderr
    assert run.stderr.count("record for this SOP instance already exists") == len(files)
    assert "E:" not in run.stderr


@needs_xorriso
def test_the_iso_holds_the_same_tree_and_bytes(tmp_path, exported):
    _, result = exported
    listing = subprocess.run(["xorriso", "-indev", str(result.iso), "-find", "/", "-type", "f"],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    names = sorted(line.strip().strip("'") for line in listing.stdout.splitlines() if line)
    assert names == _tree(result.to)
    out = tmp_path / "from-iso"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(result.iso), "-extract", "/",
                    str(out)], capture_output=True, timeout=120, check=True)
    for name in names:
        assert hashlib.sha256((out / name[1:]).read_bytes()).digest() == hashlib.sha256(
            (result.to / name[1:]).read_bytes()).digest(), name


def test_relay_export_deidentified_leaves_the_store_alone(tmp_path, home, ge_files):
    outside_cd(tmp_path / "cd", ge_files, 4)
    store = import_into(home, tmp_path / "cd")
    before = _digests(store)
    study = store.studies()[0].study_instance_uid
    run = subprocess.run(
        [sys.executable, "-m", "app", "--home", str(home), "export", study, "--to",
         str(tmp_path / "out"), "--deidentify", "retain-dates", "--pseudonym", "CASE-12",
         "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["instances"] == 4 and out["excluded"] == []
    assert _digests(store) == before and len(store.studies()) == 1
    for uid, file_id in out["files"].items():
        raw = (tmp_path / "out" / file_id).read_bytes()
        for value in OUTSIDE.values():
            assert len(value) < 4 or value.encode() not in raw  # (sex "F" is in any file)
        ds = pydicom.dcmread(tmp_path / "out" / file_id)
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientID == "CASE-12"
        assert uid not in before
    events = [e for e in audit.read(home) if e["event"] == "export"]
    assert events[-1]["detail"]["deidentified"] is True
    assert events[-1]["event_id"]["code"] == "110106"


def _stick(root: Path) -> dict[str, bytes]:
    """A USB stick's root as a tech finds it: a document, the system's hidden folder."""
    (root / "System Volume Information").mkdir(parents=True)
    (root / "System Volume Information" / "IndexerVolumeGuid").write_bytes(b"{guid}")
    (root / "thesis.doc").write_bytes(b"x")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file()}


def test_a_disc_asked_for_in_a_folder_in_use_goes_into_a_new_folder_in_it(tmp_path, home,
                                                                          ge_files):
    store = import_into(home, *ge_files[:2])
    study = store.studies()[0].study_instance_uid
    stick = tmp_path / "stick"
    before = _stick(stick)
    first = export_studies(store, [study], stick, iso=tmp_path / "first.iso")
    today = f"DICOM_{date.today():%Y%m%d}"
    assert first.to == stick / f"{today}_1" and first.requested == stick
    assert (first.to / "DICOMDIR").is_file() and first.instances == 2
    assert not (stick / "DICOMDIR").exists()
    again = import_into(tmp_path / "again", first.to)
    assert len(again.studies()) == 1
    second = export_studies(store, [study], stick)
    assert second.to == stick / f"{today}_2"
    assert {p.relative_to(stick).as_posix(): p.read_bytes() for p in stick.rglob("*")
            if p.is_file() and not p.is_relative_to(first.to)
            and not p.is_relative_to(second.to)} == before  # nothing there was touched
    assert first.to_json()["requested"] == str(stick)
    assert export_studies(store, [study], tmp_path / "new").requested is None


def test_a_disc_into_a_folder_that_holds_a_disc_or_a_file_is_refused(tmp_path, home, ge_files):
    store = import_into(home, *ge_files[:2])
    study = store.studies()[0].study_instance_uid
    export_studies(store, [study], tmp_path / "disc")
    written = sorted(p.name for p in (tmp_path / "disc").iterdir())
    with pytest.raises(WorkflowError, match="already holds a disc"):
        export_studies(store, [study], tmp_path / "disc")
    assert sorted(p.name for p in (tmp_path / "disc").iterdir()) == written
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "thesis.doc").write_text("x")
    with pytest.raises(WorkflowError, match="is a file"):
        export_studies(store, [study], tmp_path / "used" / "thesis.doc", layout="folder")
    with pytest.raises(WorkflowError, match="is a file"):
        export_studies(store, [study], tmp_path / "used" / "thesis.doc")


def test_relay_export_into_a_stick_says_where_the_disc_went(tmp_path, home, ge_files):
    store = import_into(home, *ge_files[:2])
    study = store.studies()[0].study_instance_uid
    stick = tmp_path / "stick"
    _stick(stick)
    relay = [sys.executable, "-m", "app", "--home", str(home), "export", study, "--to",
             str(stick)]
    run = subprocess.run([*relay, "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    first = stick / f"DICOM_{date.today():%Y%m%d}_1"
    assert out["to"] == str(first) and out["requested"] == str(stick)
    assert out["instances"] == 2 and (first / "DICOMDIR").is_file()
    assert all((first / rel).is_file() for rel in out["files"].values())
    run = subprocess.run(relay, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    second = first.with_name(first.name[:-1] + "2")
    assert f"{stick} is not empty: the disc went into a new folder in it, {second.name}" \
        in run.stdout
    assert f"2 instances written to {second}" in run.stdout
    refused = subprocess.run([*relay[:-1], str(first)], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "already holds a disc (a DICOMDIR)" in refused.stderr


@pytest.mark.skipif(bool(list(Path("/dev").glob("sr[0-9]*"))), reason="a drive is present")
def test_burn_says_so_when_there_is_no_drive(tmp_path, home, ge_files):
    store = import_into(home, *ge_files[:2])
    assert "no optical drive" in str(find_burner())
    run = subprocess.run(
        [sys.executable, "-m", "app", "--home", str(home), "export",
         store.studies()[0].study_instance_uid, "--to", str(tmp_path / "d"), "--iso",
         str(tmp_path / "d.iso"), "--burn", "--json"], capture_output=True, text=True,
        timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["burned"] is None
    assert "no optical drive" in run.stderr


def test_index_htm_lists_the_studies_links_the_readme_and_reaches_nothing_outside(exported):
    import xml.etree.ElementTree as ET

    store, result = exported
    index = result.to / "INDEX.HTM"
    root = ET.fromstring(index.read_bytes())  # well-formed XHTML
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    rows = root.findall(".//h:table/h:tr", ns)[1:]
    assert len(rows) == len(store.studies())
    assert [a.get("href") for a in root.iter("{http://www.w3.org/1999/xhtml}a")] == [
        "README.TXT"]
    assert not root.findall(".//h:script", ns) and not root.findall(".//h:img", ns)
    text = "".join(root.itertext())
    assert f"{result.instances} DICOM image(s) of {len(store.studies())} study/studies" in text
    assert ISO_NAME.match(index.name)


def test_a_deidentified_disc_index_carries_no_original_identity(tmp_path, home, ge_files):
    outside_cd(tmp_path / "cd", ge_files, 2)
    store = import_into(home, tmp_path / "cd")
    result = export_studies(store, [store.studies()[0].study_instance_uid], tmp_path / "out",
                            deidentify=(), pseudonym="CASE-12")
    index = (tmp_path / "out" / "INDEX.HTM").read_text(encoding="utf-8")
    assert "CASE-12" in index and result.instances == 2
    for value in ("MUELLER", OUTSIDE["PatientID"], "1948-03-13", OUTSIDE["AccessionNumber"]):
        assert value not in index


def test_relay_export_to_a_plain_folder_is_the_same_export(tmp_path, home, data):
    store = import_into(home, data / "cd" / "pydicom-dicomdirtests")
    study = next(s for s in store.studies() if len(s.series) > 1)
    one = study.series[1].series_instance_uid
    relay = [sys.executable, "-m", "app", "--home", str(home), "export",
             study.study_instance_uid, "--to", str(tmp_path / "plain")]
    run = subprocess.run([*relay, "--layout", "folder", "--series", one, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["layout"] == "folder" and out["instances"] == study.series[1].instance_count
    assert not (tmp_path / "plain" / "DICOMDIR").exists()
    stored = {i.sop_instance_uid: i.sha256 for i in store.instances(one)}
    assert set(out["files"]) == set(stored)
    for uid, rel in out["files"].items():
        raw = (tmp_path / "plain" / rel).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == stored[uid]
        assert study.patient.patient_name.split("^")[0] not in rel
    refused = subprocess.run([*relay, "--layout", "folder", "--iso", str(tmp_path / "x.iso")],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "fileset layout" in refused.stderr
    events = [e for e in audit.read(home) if e["event"] == "export"]
    assert events[-1]["detail"]["layout"] == "folder"


def test_the_dicomdir_and_index_hold_valid_values_where_the_files_do_not(tmp_path, home, data,
                                                                        ge_files):
    face = data / "malformed" / "OT-PAL-8-face.dcm"  # ACR-NEMA: 1996.10.29, 15:18:59
    long_id = data / "malformed" / "bad_sequence.dcm"  # Study ID of 64 characters (SH: 16)
    store = import_into(home, face, long_id, ge_files[0])
    originals = _digests(store)
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "disc")
    assert result.instances == 3 and not result.failed
    studies = {r.StudyInstanceUID: r for r in
               pydicom.dcmread(result.to / "DICOMDIR").DirectoryRecordSequence
               if r.DirectoryRecordType == "STUDY"}
    face_ds = pydicom.dcmread(face, force=True, stop_before_pixels=True)
    record = studies[face_ds.StudyInstanceUID]
    assert (record.StudyDate, record.StudyTime) == ("19961029", "151859")
    long_uid = pydicom.dcmread(long_id, stop_before_pixels=True).SOPInstanceUID
    assert studies[pydicom.dcmread(long_id).StudyInstanceUID].StudyID == "1"
    assert long_uid in result.placeholders
    # the files are as they came: the ACR-NEMA file only gained its Part 10 header
    on_disc = pydicom.dcmread(result.to / result.files[face_ds.SOPInstanceUID])
    assert (on_disc.StudyDate, on_disc.StudyTime) == ("1996.10.29", "15:18:59")
    back = _digests(import_into(tmp_path / "again", result.to))
    assert {u: d for u, d in back.items() if u not in result.rewritten} == {
        u: d for u, d in originals.items() if u not in result.rewritten}
    index = (result.to / "INDEX.HTM").read_text(encoding="utf-8")
    assert "1996-10-29" in index and "1996.10.29" not in index
    assert "UNKNOWN" not in index and "1900-01-01" not in index  # placeholders stay in the DICOMDIR


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="needs dicom3tools")
def test_dicom3tools_find_no_error_in_a_dicomdir_of_an_acr_nema_file(tmp_path, home, data,
                                                                      ge_files):
    store = import_into(home, data / "malformed" / "OT-PAL-8-face.dcm", ge_files[0])
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "disc")
    for tool in ("dciodvfy", "dcentvfy"):
        out = subprocess.run([tool, str(result.to / "DICOMDIR")], capture_output=True,
                             text=True, timeout=60)
        errors = [line for line in (out.stdout + out.stderr).splitlines()
                  if line.startswith("Error")]
        assert not errors, (tool, errors)


def _documents(ge_files: list[Path]) -> dict[str, pydicom.Dataset]:
    """A key object selection, a presentation state and a measurement report of the CT, as
    Relay writes its findings (highdicom)."""
    import warnings

    from app.workflow.findings import Findings, Mark, RegionFinding, build_gsps, build_kos, build_sr

    sources = {}
    for path in ge_files[:2]:
        ds = pydicom.dcmread(path)
        for keyword in ("PatientBirthDate", "PatientSex"):  # highdicom asks for them
            setattr(ds, keyword, ds.get(keyword, ""))
        sources[ds.SOPInstanceUID] = ds
    first = next(iter(sources))
    region = RegionFinding(first, "ellipse", (2.0, 2.0), (9.0, 9.0), 31.0, 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return {"kos": build_kos([first], "key image", sources),
                "pr": build_gsps([Mark(first, "length", ((1.0, 1.0), (20.0, 20.0)))], sources),
                "sr": build_sr(Findings(str(sources[first].StudyInstanceUID),
                                        regions=(region,)), sources)}


def _variant(ds: pydicom.Dataset, path: Path, **changes: str | None) -> Path:
    """A copy of ``ds`` (a new SOP Instance UID) with ``changes`` (None removes), at ``path``."""
    import copy

    from pydicom.uid import generate_uid

    out = copy.deepcopy(ds)
    out.SOPInstanceUID = out.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword, value in changes.items():
        if value is None:
            del out[keyword]
        else:
            setattr(out, keyword, value)
    out.save_as(path, enforce_file_format=True)
    return path


def _dicom3tools_errors(dicomdir: Path) -> list[str]:
    errors = []
    for tool in ("dciodvfy", "dcentvfy"):
        out = subprocess.run([tool, str(dicomdir)], capture_output=True, text=True, timeout=60)
        errors += [f"{tool}: {line}" for line in (out.stdout + out.stderr).splitlines()
                   if line.startswith("Error")]
    return errors


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="needs dicom3tools")
def test_documents_lacking_or_garbling_their_record_values_still_go_on_the_disc(
        tmp_path, home, ge_files):
    """A KOS without Content Date, one with the ACR-NEMA date 2024.01.02, a presentation state
    without its creation date, an SR with no completion flag and a time of 25:00: each record
    holds a valid value (conformed, or the placeholder), the files are written as stored."""
    docs = _documents(ge_files)
    made = [_variant(docs["kos"], tmp_path / "kos1.dcm", ContentDate=None),
            _variant(docs["kos"], tmp_path / "kos2.dcm", ContentDate="2024.01.02"),
            _variant(docs["pr"], tmp_path / "pr.dcm", PresentationCreationDate=None),
            _variant(docs["sr"], tmp_path / "sr.dcm", CompletionFlag=None, ContentTime="25:00")]
    store = import_into(home, *ge_files[:2], *made)
    originals = _digests(store)
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "disc")
    assert not result.failed and result.instances == 6
    records = {r.ReferencedSOPInstanceUIDInFile: r for r in
               pydicom.dcmread(result.to / "DICOMDIR").DirectoryRecordSequence
               if "ReferencedSOPInstanceUIDInFile" in r}
    kos1, kos2, pr, sr = (records[pydicom.dcmread(p).SOPInstanceUID] for p in made)
    assert (kos1.DirectoryRecordType, kos1.ContentDate) == ("KEY OBJECT DOC", "19000101")
    assert kos2.ContentDate == "20240102"
    assert (pr.DirectoryRecordType, pr.PresentationCreationDate) == ("PRESENTATION", "19000101")
    assert (sr.DirectoryRecordType, sr.CompletionFlag, sr.ContentTime) == (
        "SR DOCUMENT", "PARTIAL", "000000")
    assert all(i.RelationshipType == "HAS CONCEPT MOD" for i in sr.ContentSequence)
    assert "ContentSequence" not in kos1  # its root has no concept modifier
    assert _dicom3tools_errors(result.to / "DICOMDIR") == []
    assert _digests(import_into(tmp_path / "again", result.to)) == originals


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="needs dicom3tools")
def test_an_object_no_record_can_be_made_for_is_left_off_the_disc_with_a_line(
        tmp_path, home, data, ge_files):
    """A KOS without its document title (Concept Name Code Sequence, no placeholder can say
    what it is) and a file with no Study or Series Instance UID: each is one line naming it and
    why; the CT is written, the DICOMDIR and INDEX.HTM list only what is on the disc."""
    docs = _documents(ge_files)
    untitled = _variant(docs["kos"], tmp_path / "kos.dcm", ConceptNameCodeSequence=None)
    no_uids = data / "compressed" / "jpeg-ls" / "JLSL_08_07_0_1F.dcm"
    store = import_into(home, *ge_files[:2], untitled, no_uids)
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "disc")
    assert result.instances == 2
    reasons = sorted(p.reason for p in result.failed)
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith("left off the disc: no DICOMDIR record (KEY OBJECT DOC) can "
                                 "be made for this Key Object Selection Document")
    assert "Concept Name Code Sequence" in reasons[0]
    assert reasons[1] == ("left off the disc: the file carries no Study Instance UID and no "
                          "Series Instance UID, which its DICOMDIR records need; reconcile the "
                          "study to make a copy that carries them, and export that")
    stored = {str(i.path) for s in store.studies() for se in s.series
              for i in store.instances(se.series_instance_uid)}
    assert {p.path for p in result.failed} <= stored  # each names its stored file
    on_disc = {r.ReferencedSOPInstanceUIDInFile for r in
               pydicom.dcmread(result.to / "DICOMDIR").DirectoryRecordSequence
               if "ReferencedSOPInstanceUIDInFile" in r}
    assert on_disc == {pydicom.dcmread(p).SOPInstanceUID for p in ge_files[:2]}
    assert _dicom3tools_errors(result.to / "DICOMDIR") == []
    assert "2 DICOM image(s) of 1 study/studies" in (result.to / "INDEX.HTM").read_text()


def test_the_iso_of_a_disc_at_a_drive_root_goes_to_documents_not_beside_it(tmp_path, home,
                                                                          ge_files):
    """An empty stick's root (/media/usb) is the disc: /media/usb.iso would be on another drive,
    usually one that cannot be written, and inside the disc it would be a stray file on it."""
    docs, day = tmp_path / "Documents", date(2026, 12, 6)
    assert iso_path(tmp_path / "disc", tmp_path / "disc", docs, day) == tmp_path / "disc.iso"
    stick = tmp_path / "stick"
    assert iso_path(stick, stick / "DICOM_20261206_1", docs, day) == \
        stick / "DICOM_20261206_1.iso"  # a stick in use: beside the new disc folder, on it
    roots = [Path("/"), *(p for p in map(Path, ("/proc", "/dev/shm", "/sys"))
                         if os.path.ismount(p))]
    assert len(roots) > 1  # a mount point, as a stick's is
    for root in roots:
        assert iso_path(root, root, docs, day) == docs / "DICOM_20261206_1.iso", root
    store = import_into(home, *ge_files[:2])
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "disc", iso=iso_path(Path("/"), Path("/"), docs, day))
    assert result.iso == docs / "DICOM_20261206_1.iso" and result.iso.is_file()  # made docs
    assert (result.to / "DICOMDIR").is_file()
    assert not [p for p in result.to.rglob("*") if p.suffix.upper() == ".ISO"]
    assert iso_path(Path("/"), Path("/"), docs, day) == docs / "DICOM_20261206_2.iso"


def test_a_plain_folder_export_takes_files_without_study_or_series_uids(tmp_path, home, data,
                                                                       ge_files):
    """The folder layout groups by the study and series the store shows them under (Relay
    derived them at import), and writes the files as stored."""
    lacking = [data / "compressed" / "jpeg-ls" / n for n in
               ("JLSL_08_07_0_1F.dcm", "JLSL_16_15_1_1F.dcm")]
    store = import_into(home, *lacking, *ge_files[:2])
    originals = _digests(store)
    result = export_studies(store, [s.study_instance_uid for s in store.studies()],
                            tmp_path / "plain", layout="folder")
    assert result.instances == 4 and not result.failed
    assert len(result.folders) == len(store.studies())
    assert _digests(import_into(tmp_path / "again", tmp_path / "plain")) == originals


def test_what_an_export_leaves_off_is_named_as_what_it_is(tmp_path, home, ge_files):
    """The export's line says what it left off: "1 object NOT written" for a key object
    selection no DICOMDIR record can be made for, "1 document" for a measurement report cut
    short in the store, "2 files" for both; "1 image" only for an image."""
    from app.ui.format import not_done
    from app.workflow.derive import study_instances

    docs = _documents(ge_files)
    untitled = _variant(docs["kos"], tmp_path / "kos.dcm", ConceptNameCodeSequence=None)
    report = _variant(docs["sr"], tmp_path / "sr.dcm")
    store = import_into(home, *ge_files[:2], untitled, report)
    [study_uid] = [s.study_instance_uid for s in store.studies()]
    sr_uid = str(pydicom.dcmread(report).SOPInstanceUID)
    stored = next(Path(str(i.path)) for i in study_instances(store, study_uid)
                  if i.sop_instance_uid == sr_uid)
    stored.write_bytes(stored.read_bytes()[:300])  # a disk error since the import
    result = export_studies(store, [study_uid], tmp_path / "disc")
    assert result.instances == 2 and len(result.failed) == 2
    left = {p.path: p for p in result.failed}
    sr_line = not_done([left[str(stored)]], "written")
    [kos_problem] = [p for path, p in left.items() if path != str(stored)]
    assert sr_line.startswith("1 document NOT written (")
    assert not_done([kos_problem], "written").startswith(
        "1 object NOT written (left off the disc: no DICOMDIR record (KEY OBJECT DOC)")
    assert not_done(result.failed, "written").startswith("2 files NOT written (")
    damaged = import_into(tmp_path / "ct", *ge_files[:2])
    ct = Path(str(study_instances(damaged, study_uid)[1].path))
    ct.write_bytes(ct.read_bytes()[:300])
    cut = export_studies(damaged, [study_uid], tmp_path / "disc2")
    assert not_done(cut.failed, "written").startswith("1 image NOT written (")
