"""Reconciliation (IHE IRWF) against real worklist peers: dcmtk wlmscpfs and Orthanc."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pydicom
import pytest

from app.errors import DimseError
from app.imports.importer import import_paths
from app.net.devhub import free_port
from app.tasks import Progress
from app.workflow import audit
from app.workflow.derive import WorkflowError, links, study_instances
from app.workflow.patient import PatientValues, confirmation_needed
from app.workflow.reconcile import disc_values, outside_values, reconcile_study
from app.workflow.worklist import Peer, find_patients, find_worklist
from tests.workflow.conftest import OUTSIDE, import_into, outside_cd
from tests.workflow.peers import (
    Order,
    orthanc_upload,
    orthanc_worklist,
    wlmscpfs,
    worklist_plugin_available,
)

ORDERS = [
    Order("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001"),
    Order("DOE^JOHN", "MRN0043", "LOCAL", "19700101", "M", "ACC1002"),
    Order("MULLER^HANS", "MRN0044", "LOCAL", "19450707", "M", "ACC1003", modality="MR"),
]
LOCAL = PatientValues(patient_name="MULLER^ANNA^M", patient_id="MRN0042",
                      issuer_of_patient_id="LOCAL", patient_birth_date="19480313",
                      patient_sex="F", accession_number="ACC1001")

needs_wlmscpfs = pytest.mark.skipif(shutil.which("wlmscpfs") is None, reason="needs dcmtk")
needs_orthanc_wl = pytest.mark.skipif(not worklist_plugin_available(),
                                      reason="needs Orthanc's ModalityWorklists plugin")


def _check_answers(peer: Peer) -> None:
    found = find_worklist(peer, patient_name="MULLER*")
    assert sorted(e.patient.patient_id for e in found) == ["MRN0042", "MRN0044"]
    anna = next(e for e in found if e.patient.patient_id == "MRN0042")
    assert anna.patient == LOCAL
    assert anna.modality == "CT" and anna.scheduled_start.startswith("20261203")
    assert anna.requested_procedure_description == "CT HEAD STROKE"
    assert [e.patient.patient_id for e in find_worklist(peer, accession_number="ACC1002")] == [
        "MRN0043"]
    assert [e.patient.patient_id for e in find_worklist(peer, modality="MR")] == ["MRN0044"]


@pytest.mark.dcmtk
@needs_wlmscpfs
def test_worklist_cfind_against_dcmtk_wlmscpfs(tmp_path):
    with wlmscpfs(tmp_path, ORDERS) as (port, ae):
        _check_answers(Peer("127.0.0.1", port, ae, timeout=15))


@pytest.mark.orthanc
@needs_orthanc_wl
def test_worklist_cfind_against_orthanc_worklist_plugin(tmp_path):
    with orthanc_worklist(tmp_path, ORDERS) as (_hub, port):
        _check_answers(Peer("127.0.0.1", port, "ORTHANC", timeout=15))


@pytest.mark.orthanc
@needs_orthanc_wl
def test_patient_level_cfind_against_a_pacs(tmp_path, ge_files):
    local_files = outside_cd(tmp_path / "pacs", ge_files, 2)
    with orthanc_worklist(tmp_path, []) as (hub, port):
        orthanc_upload(hub, local_files)
        found = find_patients(Peer("127.0.0.1", port, "ORTHANC", timeout=15),
                              patient_name="MUELLER*")
    assert [p.patient_id for p in found] == [OUTSIDE["PatientID"]]
    assert found[0].patient_birth_date == OUTSIDE["PatientBirthDate"]


def test_a_peer_that_is_not_there_is_a_clear_error():
    with pytest.raises(DimseError, match="cannot connect") as caught:
        find_worklist(Peer("127.0.0.1", free_port(), "NOBODY", timeout=3))
    assert caught.value.kind == "unreachable"


def test_reconcile_coerces_keeps_the_outside_id_and_the_old_values(tmp_path, home, ge_files):
    files = outside_cd(tmp_path / "cd", ge_files)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    before = {i.sop_instance_uid: hashlib.sha256(i.path.read_bytes()).hexdigest()
              for i in study_instances(store, study_uid)}
    result = reconcile_study(store, study_uid, LOCAL)
    assert result.reconciled_study_uid == study_uid and result.instances == len(files)
    assert result.changed == {
        "PatientName": ("MUELLER^ANNA", "MULLER^ANNA^M"), "PatientID": ("OUT-778812", "MRN0042"),
        "IssuerOfPatientID": ("COMMUNITY HOSP", "LOCAL"), "AccessionNumber": ("OUTACC991",
                                                                              "ACC1001")}
    for inst in study_instances(store, study_uid):
        ds = pydicom.dcmread(inst.path)
        assert PatientValues.from_dataset(ds) == LOCAL
        other = ds.OtherPatientIDsSequence[0]
        assert (other.PatientID, other.IssuerOfPatientID) == ("OUT-778812", "COMMUNITY HOSP")
        item = ds.OriginalAttributesSequence[-1]
        assert item.ReasonForTheAttributeModification == "COERCE"
        assert item.ModifyingSystem == "RELAY" and item.SourceOfPreviousValues
        assert len(item.AttributeModificationDateTime) >= 14
        old = item.ModifiedAttributesSequence[0]
        assert (str(old.PatientName), old.PatientID, old.AccessionNumber) == (
            "MUELLER^ANNA", "OUT-778812", "OUTACC991")
        assert ds.SOPInstanceUID == inst.sop_instance_uid  # UIDs kept by default
    study = store.study(study_uid)
    assert study.patient.patient_id == "MRN0042" and study.accession_number == "ACC1001"
    # The outside original is still in the store, byte for byte, and a re-import matches it.
    kept = store.superseded(study_uid)
    assert {k["sop_instance_uid"]: k["sha256"] for k in kept} == before
    for k in kept:
        assert hashlib.sha256(k["path"].read_bytes()).hexdigest() == k["sha256"]
    again = import_paths(store, [str(tmp_path / "cd")], Progress("again"))
    assert again.duplicates == len(files) and again.conflicts == 0 and again.imported == 0
    event = [e for e in audit.read(home) if e["event"] != "import"][-1]
    assert event["event"] == "reconcile" and event["study_uid"] == study_uid
    assert "MRN0042" not in audit.audit_path(home).read_text()


def test_reconciling_again_to_correct_a_wrong_pick_does_not_link_the_wrong_patient(
        tmp_path, home, ge_files):
    """The tech picked the wrong worklist entry and reconciles again: the images carry the
    outside ID as the patient's other ID, never the wrong local patient's MRN (a PACS links
    records through Other Patient IDs)."""
    files = outside_cd(tmp_path / "cd", ge_files, 2)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    wrong = LOCAL.merged(patient_name="MULLER^HANS", patient_id="MRN0044",
                         patient_birth_date="19450707", patient_sex="M",
                         accession_number="ACC1003")
    reconcile_study(store, study_uid, wrong, confirmed=True)
    # checked against the disc (F, 1948), not against the wrong pick: the right patient needs
    # no confirmation, another wrong one does
    assert disc_values(store, study_uid).patient_id == "OUT-778812"
    with pytest.raises(WorkflowError, match="PatientBirthDate and PatientSex disagree"):
        reconcile_study(store, study_uid, wrong.merged(patient_id="MRN0045"))
    again = reconcile_study(store, study_uid, LOCAL)
    assert again.changed["PatientID"] == ("MRN0044", "MRN0042")
    for inst in study_instances(store, study_uid):
        ds = pydicom.dcmread(inst.path)
        assert PatientValues.from_dataset(ds) == LOCAL
        assert [(o.PatientID, o.IssuerOfPatientID) for o in ds.OtherPatientIDsSequence] == [
            ("OUT-778812", "COMMUNITY HOSP")]
        last = ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0]
        assert last.PatientID == "MRN0044"  # the mistake is on record, where it belongs


def test_a_local_name_outside_the_discs_character_set_is_written_whole(tmp_path, home,
                                                                       ge_files):
    """The outside disc is ISO_IR 100 (Latin-1); the local patient is DVOŘÁK (Ř is not in
    Latin-1). The reconciled images carry the name as typed, and the disc's own non-ASCII
    text stays readable, instead of "DVO?ÁK" on the hub."""
    files = outside_cd(tmp_path / "cd", ge_files, 2)
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.SpecificCharacterSet == "ISO_IR 100"
        ds.StudyDescription = "Schädel nativ"
        ds.save_as(f)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    local = LOCAL.merged(patient_name="DVOŘÁK^JAN", accession_number="ACC-Ž1")
    reconcile_study(store, study_uid, local)
    for inst in study_instances(store, study_uid):
        ds = pydicom.dcmread(inst.path)
        assert (str(ds.PatientName), ds.AccessionNumber) == ("DVOŘÁK^JAN", "ACC-Ž1")
        assert ds.StudyDescription == "Schädel nativ"
        assert str(ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0]
                   .PatientName) == "MUELLER^ANNA"
    assert store.study(study_uid).patient.patient_name == "DVOŘÁK^JAN"
    # a name the disc's character set can carry leaves the character set alone
    other = outside_cd(tmp_path / "cd2", ge_files[2:], 1)
    store = import_into(tmp_path / "home2", tmp_path / "cd2")
    uid2 = pydicom.dcmread(other[0]).StudyInstanceUID
    reconcile_study(store, uid2, LOCAL.merged(patient_name="MÜLLER^ANNA"))
    (inst,) = study_instances(store, uid2)
    assert pydicom.dcmread(inst.path).SpecificCharacterSet == "ISO_IR 100"


def test_a_birth_date_or_sex_that_disagrees_needs_confirmation(tmp_path, home, ge_files):
    files = outside_cd(tmp_path / "cd", ge_files, 2)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    other = LOCAL.merged(patient_sex="M", patient_birth_date="19480331")
    assert confirmation_needed(outside_values(store, study_uid), other) == [
        "PatientBirthDate", "PatientSex"]
    with pytest.raises(WorkflowError, match="PatientBirthDate and PatientSex disagree"):
        reconcile_study(store, study_uid, other)
    assert store.superseded(study_uid) == []
    done = reconcile_study(store, study_uid, other, confirmed=True)
    assert done.changed["PatientSex"] == ("F", "M")


def test_new_uids_are_mapped_across_the_study_with_its_references(tmp_path, home, ge_files):
    files = outside_cd(tmp_path / "cd", ge_files, 3)
    target = pydicom.dcmread(files[1])
    kos = pydicom.dcmread(files[0])
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID = target.SOPClassUID
    ref.ReferencedSOPInstanceUID = target.SOPInstanceUID
    foreign = pydicom.Dataset()
    foreign.ReferencedSOPClassUID = target.SOPClassUID
    foreign.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7"  # outside this study: left alone
    kos.ReferencedImageSequence = pydicom.Sequence([ref, foreign])
    kos.save_as(files[0], enforce_file_format=True)
    store = import_into(home, tmp_path / "cd")
    result = reconcile_study(store, kos.StudyInstanceUID, LOCAL, new_uids=True)
    assert result.reconciled_study_uid != kos.StudyInstanceUID
    assert result.changed["StudyInstanceUID"] == (kos.StudyInstanceUID,
                                                  result.reconciled_study_uid)
    outs = {pydicom.dcmread(i.path).InstanceNumber: pydicom.dcmread(i.path)
            for i in study_instances(store, result.reconciled_study_uid)}
    new_target = outs[target.InstanceNumber]
    refs = outs[kos.InstanceNumber].ReferencedImageSequence
    assert refs[0].ReferencedSOPInstanceUID == new_target.SOPInstanceUID
    assert refs[1].ReferencedSOPInstanceUID == "1.2.3.4.5.6.7"
    assert len({d.SeriesInstanceUID for d in outs.values()}) == 1
    assert new_target.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0] \
        .SOPInstanceUID == target.SOPInstanceUID
    # The outside study is still there, as it was; the pair is recorded.
    assert len(study_instances(store, kos.StudyInstanceUID)) == 3
    assert store.study(kos.StudyInstanceUID).patient.patient_id == "OUT-778812"
    assert links(store, kos.StudyInstanceUID)[0].derived_study_uid == (
        result.reconciled_study_uid)


@pytest.mark.dcmtk
@needs_wlmscpfs
def test_relay_worklist_then_reconcile_from_the_worklist(tmp_path, home, ge_files):
    files = outside_cd(tmp_path / "cd", ge_files, 3)
    import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    relay = [sys.executable, "-m", "app", "--home", str(home)]
    with wlmscpfs(tmp_path, ORDERS) as (port, ae):
        found = subprocess.run(relay + ["worklist", "--host", "127.0.0.1", "--port", str(port),
                                        "--called-ae", ae, "--name", "MULLER^ANNA*", "--json"],
                               capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    entries = json.loads(found.stdout)["entries"]
    assert [e["patient_id"] for e in entries] == ["MRN0042"]
    run = subprocess.run(relay + ["reconcile", study_uid, "--from-worklist", "1",
                                  "--name", "MUELLER^ANNA^M", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["study_instance_uid"] == study_uid == out["reconciled_study_uid"]
    assert out["instances"] == 3
    assert out["changed"]["PatientID"] == ["OUT-778812", "MRN0042"]
    assert out["changed"]["PatientName"] == ["MUELLER^ANNA", "MUELLER^ANNA^M"]
    trail = [e for e in audit.read(home) if e["event"] != "import"]
    assert [e["event"] for e in trail] == ["login", "query", "reconcile"]
    login, query = trail[0], trail[1]
    assert login["outcome"] == 0 and login["detail"]["service"] == "C-FIND"
    # the kinds of keys of the worklist search, never their values
    assert query["detail"]["level"] == "worklist" and "PatientName" in query["detail"]["keys"]
    assert "MULLER" not in json.dumps(query) and "MUELLER" not in json.dumps(login)


def test_relay_reconcile_names_an_image_it_could_not_reconcile(tmp_path, home, ge_files):
    files = outside_cd(tmp_path / "cd", ge_files, 3)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    damaged = study_instances(store, study_uid)[1].path
    damaged.write_bytes(damaged.read_bytes()[:300])  # a disk error since the import
    from tests.conftest import relay_cmd, relay_env

    proc = subprocess.run(relay_cmd("--home", str(home), "reconcile", study_uid,
                                    "--patient-id", "MRN0042"),
                          capture_output=True, text=True, env=relay_env(), timeout=120)
    assert proc.returncode == 1
    assert proc.stdout.startswith("2 instances reconciled")
    assert f"  failed {damaged}: cannot be read" in proc.stdout, proc.stdout


def test_files_without_study_or_series_uids_are_reconciled_into_a_sendable_copy(
        tmp_path, home, data):
    """JPEG-LS test images that carry neither UID: import groups them under UIDs it derives
    (and names them not sendable); reconcile writes those UIDs into the copy."""
    from app.dicom.header import read_header
    from app.imports.media import Problem
    from app.net.queue import TransferQueue
    from app.net.send import guard_job, send_job
    from app.store.ingest import check_buffer
    from app.store.local import Store

    lacking = [data / "compressed" / "jpeg-ls" / n for n in
               ("JLSL_08_07_0_1F.dcm", "JLSL_16_15_1_1F.dcm", "JPEGLSNearLossless_16.dcm")]
    originals = {p: p.read_bytes() for p in lacking}
    store = Store(home)
    report = import_paths(store, [str(p) for p in lacking], Progress("test"))
    assert report.imported == 3 and len(report.unsendable) == 3
    assert all("reconcile the study to make a copy that carries them" in p.reason
               for p in report.unsendable)
    for study in store.studies():
        result = reconcile_study(store, study.study_instance_uid, LOCAL)
        assert result.instances == len(study_instances(store, study.study_instance_uid))
        assert not result.failed and result.reconciled_study_uid == study.study_instance_uid
        for inst in study_instances(store, study.study_instance_uid):
            raw = inst.path.read_bytes()
            header = read_header(raw, str(inst.path))
            assert header.missing_uids == ()
            ds = pydicom.dcmread(inst.path)
            assert ds.StudyInstanceUID == inst.study_instance_uid == study.study_instance_uid
            assert ds.SeriesInstanceUID == inst.series_instance_uid
            assert PatientValues.from_dataset(ds) == LOCAL
            assert not isinstance(check_buffer(raw, len(raw), str(inst.path), store.uid_key),
                                  Problem)
        queue = TransferQueue(home)
        job = send_job(store, queue, "hub", study.study_instance_uid)
        assert guard_job(store, queue, job) == ""
        sent = {i.path for i in queue.items(job.id)}
        copies = {str(i.path.relative_to(store.root))
                  for i in study_instances(store, study.study_instance_uid)}
        assert sent == copies  # the reconciled copies go out, not the originals
    assert {p: p.read_bytes() for p in lacking} == originals


@pytest.mark.parametrize("new_uids", [False, True])
def test_the_uids_reconcile_adds_are_recorded_as_added_in_original_attributes(
        tmp_path, home, data, new_uids):
    """PS3.3 C.12.1: a file that had no Study or Series Instance UID gets them in the copy;
    its Original Attributes item records them with an empty value (they were absent), beside
    the patient values that changed, modifying system RELAY, reason COERCE. With new UIDs the
    item still says they were absent, not the UIDs Relay derived at import."""
    lacking = data / "compressed" / "jpeg-ls" / "JLSL_08_07_0_1F.dcm"
    store = import_into(home, lacking, *sorted(
        (data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))[:1])
    plain = pydicom.dcmread(lacking)
    (study,) = [s for s in store.studies()
                if any(i.sop_instance_uid == plain.SOPInstanceUID
                       for i in study_instances(store, s.study_instance_uid))]
    others = {s.study_instance_uid for s in store.studies()} - {study.study_instance_uid}
    result = reconcile_study(store, study.study_instance_uid, LOCAL, new_uids=new_uids,
                             confirmed=True)
    assert not result.failed
    (copy,) = study_instances(store, result.reconciled_study_uid)
    ds = pydicom.dcmread(copy.path)
    (item,) = ds.OriginalAttributesSequence
    (modified,) = item.ModifiedAttributesSequence
    assert (item.ModifyingSystem, item.ReasonForTheAttributeModification) == ("RELAY", "COERCE")
    assert modified.StudyInstanceUID == "" and modified.SeriesInstanceUID == ""
    assert ds.StudyInstanceUID == result.reconciled_study_uid and ds.SeriesInstanceUID
    assert modified.PatientID == str(plain.get("PatientID", ""))  # the patient values too
    if new_uids:
        assert modified.SOPInstanceUID == plain.SOPInstanceUID != ds.SOPInstanceUID
    else:
        assert "SOPInstanceUID" not in modified
    # a file that carried its UIDs records only the patient values
    (other,) = others
    reconcile_study(store, other, LOCAL, confirmed=True)
    (inst,) = study_instances(store, other)
    (modified,) = pydicom.dcmread(inst.path).OriginalAttributesSequence[0]\
        .ModifiedAttributesSequence
    assert "PatientID" in modified and "StudyInstanceUID" not in modified
    assert "SeriesInstanceUID" not in modified


@pytest.mark.parametrize("new_uids", [False, True])
def test_the_uids_reconcile_adds_are_listed_as_changed_and_in_the_audit(
        tmp_path, home, data, new_uids):
    """The result's ``changed`` (what ``relay reconcile`` prints) and the audit event's
    attributes list the Study and Series Instance UIDs the copy of a file that lacked them
    carries, as the copy's Original Attributes Sequence does: absent before, the copy's
    after."""
    from app.workflow import audit

    lacking = data / "compressed" / "jpeg-ls" / "JLSL_08_07_0_1F.dcm"
    store = import_into(home, lacking)
    (study,) = store.studies()
    result = reconcile_study(store, study.study_instance_uid, LOCAL, new_uids=new_uids,
                             confirmed=True)
    assert not result.failed
    (copy,) = study_instances(store, result.reconciled_study_uid)
    ds = pydicom.dcmread(copy.path)
    assert result.changed["StudyInstanceUID"] == ("", ds.StudyInstanceUID)
    assert result.changed["SeriesInstanceUID"] == ("", ds.SeriesInstanceUID)
    assert "PatientID" in result.changed  # the patient values as before
    (event,) = [e for e in audit.read(home) if e["event"] == "reconcile"]
    assert {"StudyInstanceUID", "SeriesInstanceUID", "PatientID"} <= set(
        event["detail"]["attributes"])
