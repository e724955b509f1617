"""De-identification (PS3.15 Annex E Basic profile + options) on real files, checked by reading
the output back."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from app.workflow import audit
from app.workflow.deid_profile import (
    DUMMY,
    EMPTY,
    REMOVE,
    SEQUENCE_UIDS,
    UID,
    build_profile,
)
from app.workflow.deidentify import deidentify_study
from app.workflow.derive import WorkflowError, links, study_instances
from app.workflow.uids import KeyedUids, store_key
from tests.workflow.conftest import SECRET, every_attribute_file, import_into


def _edited_study(tmp_path: Path, ge_files: list[Path]) -> tuple[Path, Path]:
    """The GE head CT with its first slice replaced by one carrying every table attribute."""
    folder = tmp_path / "cd"
    folder.mkdir()
    for f in ge_files[1:]:
        shutil.copy(f, folder / f.name)
    edited = every_attribute_file(ge_files[0], folder / "edited.dcm")
    return folder, edited


def _outputs(store, study_uid: str) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(i.path) for i in study_instances(store, study_uid)]


def test_every_action_of_the_basic_profile_on_an_edited_real_file(tmp_path, home, ge_files):
    folder, edited = _edited_study(tmp_path, ge_files)
    store = import_into(home, folder)
    original = pydicom.dcmread(edited)
    result = deidentify_study(store, original.StudyInstanceUID)
    assert result.instances == len(ge_files) and not result.excluded
    out = next(ds for ds in _outputs(store, result.deidentified_study_uid)
               if ds.SOPInstanceUID == KeyedUids(store_key(home), "deid::").new(
                   original.SOPInstanceUID))
    profile = build_profile()
    checked = {REMOVE: 0, EMPTY: 0, DUMMY: 0, UID: 0, SEQUENCE_UIDS: 0}
    for (group, element), action in profile.actions.items():
        tag = (group << 16) | element
        if group == 0x0002 or tag not in original or tag in (0x00100010, 0x00100020):
            continue
        before = original[tag]
        if action == REMOVE:
            assert tag not in out, f"{before.keyword} should be removed"
        elif action == EMPTY:
            assert tag in out and not out[tag].value, f"{before.keyword} should be empty"
        elif action == DUMMY:
            assert tag in out, f"{before.keyword} should be replaced by a dummy"
            if before.VR != "SQ":
                assert out[tag].value not in (None, "") and out[tag].value != before.value
        elif action == UID:
            assert str(out[tag].value).startswith("2.25."), before.keyword
            assert out[tag].value != before.value
        elif action == SEQUENCE_UIDS:
            item = out[tag].value[0]
            assert item.ReferencedSOPInstanceUID.startswith("2.25.")
        checked[action] += 1
    assert all(checked.values()), checked  # every kind of action met on this file
    assert out.PatientIdentityRemoved == "YES"
    codes = [c.CodeValue for c in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100"]
    assert out.LongitudinalTemporalInformationModified == "REMOVED"


def test_no_original_identifier_survives_anywhere(tmp_path, home, ge_files):
    folder, edited = _edited_study(tmp_path, ge_files)
    store = import_into(home, folder)
    original = pydicom.dcmread(edited)
    real_ids = [str(original[k].value) for k in ("InstitutionName",) if k in original]
    result = deidentify_study(store, original.StudyInstanceUID)
    for inst in study_instances(store, result.deidentified_study_uid):
        raw = inst.path.read_bytes()
        assert SECRET.encode() not in raw, inst.path  # sequences and private tags included
        assert original.StudyInstanceUID.encode() not in raw
        for value in real_ids:
            assert value.encode() not in raw
        ds = pydicom.dcmread(inst.path)
        assert not any(e.tag.is_private for e in ds.iterall())
        assert "OtherPatientIDsSequence" not in ds


def test_uids_are_consistent_across_the_study_and_keyed_per_store(tmp_path, home, ge_files):
    store = import_into(home, *ge_files)
    study_uid = pydicom.dcmread(ge_files[0]).StudyInstanceUID
    first = deidentify_study(store, study_uid)
    outs = _outputs(store, first.deidentified_study_uid)
    assert len({ds.StudyInstanceUID for ds in outs}) == 1
    assert len({ds.SOPInstanceUID for ds in outs}) == len(ge_files)
    assert {ds.SeriesInstanceUID for ds in outs} == {
        KeyedUids(store_key(home), "deid::").new(pydicom.dcmread(f).SeriesInstanceUID)
        for f in ge_files}
    frames = {ds.FrameOfReferenceUID for ds in outs}
    assert len(frames) == 1 and next(iter(frames)).startswith("2.25.")
    # The same run again: the same UIDs, nothing new stored.
    count = store.counts()["instances"]
    again = deidentify_study(store, study_uid)
    assert again.deidentified_study_uid == first.deidentified_study_uid
    assert store.counts()["instances"] == count
    # Another store (another key): other UIDs, so a guessed original cannot be checked.
    other = import_into(tmp_path / "other", *ge_files)
    assert deidentify_study(other, study_uid).deidentified_study_uid != (
        first.deidentified_study_uid)
    assert links(store, study_uid)[0].kind == "deidentified"


def test_pixels_and_the_original_are_untouched(home, ge_files):
    store = import_into(home, *ge_files)
    study_uid = pydicom.dcmread(ge_files[0]).StudyInstanceUID
    before = {i.sop_instance_uid: hashlib.sha256(i.path.read_bytes()).hexdigest()
              for i in study_instances(store, study_uid)}
    result = deidentify_study(store, study_uid)
    after = {i.sop_instance_uid: hashlib.sha256(i.path.read_bytes()).hexdigest()
             for i in study_instances(store, study_uid)}
    assert after == before
    originals = {pydicom.dcmread(f).InstanceNumber: pydicom.dcmread(f) for f in ge_files}
    for ds in _outputs(store, result.deidentified_study_uid):
        assert ds.PixelData == originals[ds.InstanceNumber].PixelData
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_options_retain_what_they_name(tmp_path, home, ge_files):
    folder, edited = _edited_study(tmp_path, ge_files)
    store = import_into(home, folder)
    original = pydicom.dcmread(edited)
    options = ("retain-dates", "retain-device", "retain-patient-characteristics",
               "clean-descriptors")
    result = deidentify_study(store, original.StudyInstanceUID, options=options,
                              pseudonym="TRIAL-007")
    out = next(ds for ds in _outputs(store, result.deidentified_study_uid)
               if ds.InstanceNumber == original.InstanceNumber)
    assert out.StudyDate == original.StudyDate and out.ContentDate == original.ContentDate
    assert "PatientBirthDate" not in out or not out.PatientBirthDate
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert out.DeviceSerialNumber == original.DeviceSerialNumber
    assert out.StationName == original.StationName
    assert out.PatientSex == original.PatientSex and out.PatientAge == original.PatientAge
    assert out.SeriesDescription == original.SeriesDescription.replace(SECRET, "") or (
        SECRET not in out.SeriesDescription)
    assert str(out.PatientName) == "TRIAL-007" and out.PatientID == "TRIAL-007"
    assert sorted(c.CodeValue for c in out.DeidentificationMethodCodeSequence) == [
        "113100", "113105", "113106", "113108", "113109"]


def test_clean_descriptors_keeps_the_words_and_drops_the_name(home, ge_files, tmp_path):
    source = pydicom.dcmread(ge_files[0])
    source.PatientName = "JONES^MARGARET"
    source.SeriesDescription = "HEAD jones margaret STROKE"
    source.save_as(tmp_path / "one.dcm", enforce_file_format=True)
    store = import_into(home, tmp_path / "one.dcm")
    result = deidentify_study(store, source.StudyInstanceUID, options=("clean-descriptors",))
    out = _outputs(store, result.deidentified_study_uid)[0]
    assert "HEAD" in out.SeriesDescription and "STROKE" in out.SeriesDescription
    assert "jones" not in out.SeriesDescription.lower()
    assert "margaret" not in out.SeriesDescription.lower()


def test_burned_in_and_secondary_captures_are_excluded_with_the_reason(home, data, ge_files,
                                                                     tmp_path):
    burned = pydicom.dcmread(ge_files[0])
    burned.BurnedInAnnotation = "YES"
    burned.save_as(tmp_path / "burned.dcm", enforce_file_format=True)
    for f in ge_files[1:3]:
        shutil.copy(f, tmp_path / f.name)
    store = import_into(home, tmp_path / "burned.dcm", *(tmp_path / f.name for f in ge_files[1:3]),
                        data / "malformed" / "OT-PAL-8-face.dcm")
    result = deidentify_study(store, burned.StudyInstanceUID)
    assert result.instances == 2
    assert [e.sop_instance_uid for e in result.excluded] == [burned.SOPInstanceUID]
    assert "BurnedInAnnotation is YES" in result.excluded[0].reason
    face = pydicom.dcmread(data / "malformed" / "OT-PAL-8-face.dcm", force=True)
    sc = deidentify_study(store, face.StudyInstanceUID)
    assert sc.instances == 0 and sc.deidentified_study_uid == ""
    assert "secondary capture" in sc.excluded[0].reason
    forced = deidentify_study(store, burned.StudyInstanceUID, include_burned_in=True)
    assert forced.instances == 3 and not forced.excluded


def test_retain_uids_is_refused_for_a_copy_in_the_same_store(home, ge_files):
    store = import_into(home, *ge_files[:2])
    with pytest.raises(WorkflowError, match="retain-uids"):
        deidentify_study(store, pydicom.dcmread(ge_files[0]).StudyInstanceUID,
                         options=("retain-uids",))


def test_relay_deidentify_json_and_the_audit_record(home, ge_files):
    store = import_into(home, *ge_files)
    study_uid = pydicom.dcmread(ge_files[0]).StudyInstanceUID
    run = subprocess.run(
        [sys.executable, "-m", "app", "--home", str(home), "deidentify", study_uid,
         "--option", "retain-dates", "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert set(out) >= {"study_instance_uid", "deidentified_study_uid", "instances", "excluded"}
    assert out["instances"] == len(ge_files) and out["excluded"] == []
    assert store.study(out["deidentified_study_uid"]) is not None
    events = list(audit.read(home))
    assert events[-1]["event"] == "deidentify" and events[-1]["event_id"]["code"] == "110103"
    assert events[-1]["study_uid"] == study_uid
    patient = pydicom.dcmread(ge_files[0])
    text = audit.audit_path(home).read_text()
    assert str(patient.PatientName) not in text and f'"{patient.PatientID}"' not in text
    assert audit.verify(home).ok
    verify = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "audit",
                             "--verify", "--json"], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and json.loads(verify.stdout)["verified"]["ok"]


def test_a_damaged_stored_file_is_one_line_and_the_rest_goes_on(home, ge_files):
    from app.workflow.export import export_studies
    from app.workflow.patient import PatientValues
    from app.workflow.reconcile import reconcile_study

    store = import_into(home, *ge_files[:5])
    study_uid = pydicom.dcmread(ge_files[0]).StudyInstanceUID
    victim = study_instances(store, study_uid)[2]
    data = victim.path.read_bytes()
    victim.path.chmod(0o644)
    victim.path.write_bytes(data[: len(data) // 3])  # a disk that lost the end of a file
    result = deidentify_study(store, study_uid)
    assert result.instances == 4 and len(result.failed) == 1
    assert result.failed[0].path == str(victim.path)
    assert "pixel data is shorter" in result.failed[0].reason
    exported = export_studies(store, [study_uid], home.parent / "disc")
    assert exported.instances == 4 and [p.path for p in exported.failed] == [str(victim.path)]
    done = reconcile_study(store, study_uid, PatientValues(patient_id="MRN1"))
    assert done.instances == 4 and len(done.failed) == 1


def test_safe_private_attributes_stay_and_every_other_private_goes(tmp_path, home, ge_files):
    ds = pydicom.dcmread(ge_files[0])
    safe = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    safe.add_new(0x0C, "IS", "1000")  # B_value: on the safe list
    safe.add_new(0x10, "LO", f"{SECRET} operator")  # same creator, not on the list
    ds.private_block(0x0033, "ACME", create=True).add_new(0x01, "LO", SECRET)
    ds.save_as(tmp_path / "p.dcm", enforce_file_format=True)
    store = import_into(home, tmp_path / "p.dcm")
    out = _outputs(store, deidentify_study(store, ds.StudyInstanceUID).deidentified_study_uid)[0]
    kept = [e for e in out if e.tag.is_private]
    assert [(e.tag.group, str(e.value)) for e in kept] == [
        (0x0019, "SIEMENS MR HEADER"), (0x0019, "1000")]
    codes = [(c.CodeValue, c.CodeMeaning) for c in out.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "Basic Application Confidentiality Profile"),
                     ("113111", "Retain Safe Private Option")]
    assert SECRET.encode() not in (study_instances(store, out.StudyInstanceUID)[0].path
                                   .read_bytes())


def test_the_action_table_is_the_current_edition_and_every_category_is_handled():
    from app.workflow.deid_profile import CATEGORIES, TABLE_EDITION, _table

    assert TABLE_EDITION == "dicomfields_2026c"
    assert set(_table()) == set(CATEGORIES)
    profile = build_profile()
    assert profile.action(0x0010, 0x0010) == EMPTY  # Patient's Name: Z
    assert profile.action(0x0020, 0x000D) == UID  # Study Instance UID: U
    assert profile.action(0x6002, 0x3000) == REMOVE  # Overlay Data, a repeating group: X


def test_the_cli_offers_exactly_the_profile_options():
    from app.cli.workflow import OPTIONS as CLI_OPTIONS
    from app.workflow.deid_profile import OPTIONS

    assert CLI_OPTIONS == OPTIONS
    from app.cli.workflow import LAYOUTS as CLI_LAYOUTS
    from app.workflow.export import LAYOUTS

    assert CLI_LAYOUTS == LAYOUTS


def test_a_pseudonym_outside_the_character_set_is_written_whole(tmp_path, home, ge_files):
    """A pseudonym with a letter the study's ISO_IR 100 cannot carry: the copy says it as
    typed (UTF-8), not "STUDIE-?ÁK"."""
    store = import_into(home, *ge_files[:2])
    study_uid = pydicom.dcmread(ge_files[0]).StudyInstanceUID
    assert pydicom.dcmread(ge_files[0]).SpecificCharacterSet == "ISO_IR 100"
    result = deidentify_study(store, study_uid, pseudonym="STUDIE-ŽÁK")
    for inst in study_instances(store, result.deidentified_study_uid):
        ds = pydicom.dcmread(inst.path)
        assert (str(ds.PatientName), ds.PatientID) == ("STUDIE-ŽÁK", "STUDIE-ŽÁK")
