"""The technologist's station in the window: the reconcile view against a real worklist SCP
(dcmtk wlmscpfs), de-identify and export dialogs, sends that go to the reconciled copy.

Screenshots for the user guide are taken here: set RELAY_SCREENSHOTS=docs/screenshots."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pydicom
import pytest

from app.settings import load_settings, save_settings
from app.workflow.patient import PatientValues
from app.workflow.reconcile import reconcile_study
from tests.ui.conftest import shown_window
from tests.workflow.conftest import import_into, outside_cd
from tests.workflow.peers import (
    Order,
    orthanc_upload,
    orthanc_worklist,
    wlmscpfs,
    worklist_plugin_available,
)

ORDERS = [Order("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001"),
          Order("MULLER^HANS", "MRN0044", "LOCAL", "19450707", "M", "ACC1003")]


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("RELAY_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _ge(data: Path) -> list[Path]:
    return sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))


def _wait_task(qtbot, dialog, timeout=30_000) -> None:
    qtbot.waitUntil(lambda: dialog.task is None, timeout=timeout)


@pytest.mark.dcmtk
@pytest.mark.skipif(shutil.which("wlmscpfs") is None, reason="needs dcmtk")
def test_reconcile_view_from_a_worklist_entry(qtbot, tmp_path, home, data):
    files = outside_cd(tmp_path / "cd", _ge(data), 8)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    with wlmscpfs(tmp_path, ORDERS) as (port, ae):
        settings = load_settings(home)
        settings.worklist.host, settings.worklist.port = "127.0.0.1", port
        settings.worklist.called_ae, settings.worklist.timeout_seconds = ae, 15
        save_settings(home, settings)
        window = shown_window(qtbot, home, 1400, 900)
        shots = _shots(tmp_path)
        window.grab().save(str(shots / "technologist-outside-cd.png"))
        dialog = window.station.reconcile(study_uid)
        qtbot.waitExposed(dialog)
        assert all(dialog.row_state(n) == "same" for n in dialog.local_edits)
        assert not dialog.ok.isEnabled() or dialog.local().patient_id == "OUT-778812"
        dialog.find_name.setText("MULLER*")
        dialog.search()
        _wait_task(qtbot, dialog)
        assert dialog.table.rowCount() == 2, dialog.status.text()
    row = next(r for r in range(2) if dialog.table.item(r, 1).text() == "MRN0042")
    dialog.choose_entry(row)
    assert dialog.local().patient_id == "MRN0042"
    assert dialog.row_state("patient_name") == "differs"  # MUELLER vs MULLER
    assert dialog.row_state("patient_id") == "differs"
    assert dialog.row_state("patient_birth_date") == "same"
    assert dialog.row_state("patient_sex") == "same"
    assert dialog.ok.isEnabled() and not dialog.confirm.isVisible()
    dialog.local_edits["patient_sex"].setText("M")
    assert dialog.row_state("patient_sex") == "confirm"
    assert dialog.confirm.isVisible() and not dialog.ok.isEnabled()
    dialog.resize(900, dialog.sizeHint().height())
    qtbot.wait(100)
    dialog.grab().save(str(shots / "technologist-reconcile-confirm.png"))
    dialog.local_edits["patient_sex"].setText("F")
    assert not dialog.confirm.isVisible() and dialog.ok.isEnabled()
    qtbot.wait(100)
    dialog.grab().save(str(shots / "technologist-reconcile.png"))
    with qtbot.waitSignal(dialog.reconciled, timeout=30_000):
        dialog.ok.click()
    study = store.study(study_uid)
    assert study.patient.patient_id == "MRN0042" and study.accession_number == "ACC1001"
    assert len(store.superseded(study_uid)) == len(files)
    qtbot.waitUntil(lambda: "outside original kept" in _browser_text(window), timeout=10_000)
    window.browser.tree.expandAll()
    qtbot.wait(100)
    window.grab().save(str(shots / "technologist-reconciled-browser.png"))


def _browser_text(window) -> str:
    model = window.browser.model
    texts = []
    for r in range(model.rowCount()):
        patient = model.item(r, 0)
        texts += [patient.child(c, 0).text() for c in range(patient.rowCount())]
    return "\n".join(texts)


def test_export_dialog_writes_the_disc_and_says_there_is_no_drive(qtbot, tmp_path, home, data):
    store = import_into(home, *_ge(data)[:4])
    study_uid = store.studies()[0].study_instance_uid
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.station.export(study_uid)
    dialog.folder.setText(str(tmp_path / "disc"))
    dialog.deidentify.setChecked(True)
    dialog.opts.boxes["retain-dates"].setChecked(True)
    with qtbot.waitSignal(dialog.completed, timeout=60_000) as done:
        dialog.run()
    result = done.args[0]
    assert result.instances == 4 and (tmp_path / "disc" / "DICOMDIR").is_file()
    assert result.iso == tmp_path / "disc.iso" and result.iso.is_file()
    assert dialog.burn_button.isEnabled()
    if not list(Path("/dev").glob("sr[0-9]*")):
        assert "no optical drive" in dialog.burn()
    qtbot.wait(100)
    dialog.grab().save(str(_shots(tmp_path) / "technologist-export.png"))
    # an empty stick's root is the disc: its ISO goes to Documents on this computer
    dialog.documents = tmp_path / "Documents"
    assert dialog._iso(Path("/"), Path("/")) == \
        tmp_path / "Documents" / f"DICOM_{date.today():%Y%m%d}_1.iso"
    # the same dialog writes a plain folder (no DICOMDIR, no ISO) through the same export
    dialog.as_folder.setChecked(True)
    assert not dialog.make_iso.isEnabled()
    dialog.folder.setText(str(tmp_path / "plain"))
    with qtbot.waitSignal(dialog.completed, timeout=60_000) as done:
        dialog.run()
    plain = done.args[0]
    assert plain.layout == "folder" and plain.iso is None and plain.instances == 4
    assert not (tmp_path / "plain" / "DICOMDIR").exists()
    assert len(list((tmp_path / "plain").rglob("*.dcm"))) == 4


def test_export_dialog_says_a_disc_for_a_stick_goes_into_a_new_folder_before_writing(
        qtbot, tmp_path, home, data):
    store = import_into(home, *_ge(data)[:2])
    study_uid = store.studies()[0].study_instance_uid
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.station.export(study_uid)
    stick = tmp_path / "stick"
    (stick / "System Volume Information").mkdir(parents=True)
    (stick / "thesis.doc").write_bytes(b"x")
    new = stick / f"DICOM_{date.today():%Y%m%d}_1"
    dialog.folder.setText(str(stick))
    assert dialog.run() is None  # typed, then Export: the first press only says where
    assert not new.exists() and sorted(p.name for p in stick.iterdir()) == [
        "System Volume Information", "thesis.doc"]
    assert f"not empty: the disc will be written into a new folder in it, {new.name}" in \
        dialog.note.text()
    assert dialog.ok.text() == f"Export into {new.name}"
    qtbot.wait(50)
    dialog.grab().save(str(_shots(tmp_path) / "technologist-export-stick.png"))
    with qtbot.waitSignal(dialog.completed, timeout=60_000) as done:
        assert dialog.run() is not None
    result = done.args[0]
    assert result.to == new and (new / "DICOMDIR").is_file() and result.instances == 2
    assert result.iso == stick / f"{new.name}.iso" and result.iso.is_file()
    assert (stick / "thesis.doc").read_bytes() == b"x"
    assert f"written to {new}" in dialog.status.text()
    _wait_task(qtbot, dialog)
    # chosen with Choose… the note is there before Export is pressed
    dialog.folder.setText("")
    dialog.folder.setText(str(stick))
    dialog._on_folder_chosen()
    assert new.name[:-1] + "2" in dialog.note.text()
    # a folder that already holds a disc is refused, and says why
    dialog.folder.setText(str(new))
    dialog._on_folder_chosen()
    assert "already holds a disc (a DICOMDIR)" in dialog.note.text()
    assert dialog.run() is None and "Not exported" in dialog.status.text()


def test_deidentify_dialog_lists_what_it_left_out(qtbot, tmp_path, home, data):
    burned = pydicom.dcmread(_ge(data)[0])
    burned.BurnedInAnnotation = "YES"
    burned.save_as(tmp_path / "burned.dcm", enforce_file_format=True)
    store = import_into(home, tmp_path / "burned.dcm", *_ge(data)[1:3])
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.station.deidentify(burned.StudyInstanceUID)
    with qtbot.waitSignal(dialog.completed, timeout=60_000) as done:
        dialog.run()
    assert done.args[0].instances == 2
    assert "BurnedInAnnotation is YES" in dialog.status.text()
    qtbot.waitUntil(lambda: "de-identified copy" in _browser_text(window), timeout=10_000)
    assert len(store.studies()) == 2


def test_a_send_of_the_outside_original_goes_to_the_reconciled_copy(qtbot, tmp_path, home,
                                                                     data):
    files = outside_cd(tmp_path / "cd", _ge(data), 3)
    store = import_into(home, tmp_path / "cd")
    original = pydicom.dcmread(files[0]).StudyInstanceUID
    local = PatientValues("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001")
    copy = reconcile_study(store, original, local, new_uids=True).reconciled_study_uid
    window = shown_window(qtbot, home, 1200, 800)
    asked = []
    window.station.ask_which = lambda uid: asked.append(uid) or "copy"
    assert window.station.send_target(original) == copy and asked == [original]
    window.station.ask_which = lambda uid: "original"
    assert window.station.send_target(original) == original
    window.station.ask_which = lambda uid: ""
    assert window.station.send_target(original) is None
    assert window.station.send_target(copy) == copy  # the copy itself: no question
    marks = window.station.marks()
    assert marks[original].startswith("outside original") and marks[copy] == "reconciled copy"


def test_a_series_of_the_outside_original_is_refused_in_the_window_as_in_the_cli(
        qtbot, tmp_path, home, data):
    files = outside_cd(tmp_path / "cd", _ge(data), 2)
    store = import_into(home, tmp_path / "cd")
    original = pydicom.dcmread(files[0])
    local = PatientValues("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001")
    copy = reconcile_study(store, original.StudyInstanceUID, local,
                           new_uids=True).reconciled_study_uid
    window = shown_window(qtbot, home, 1200, 800)
    window.station.ask_which = lambda uid: "copy"
    with qtbot.waitSignal(window.station.message) as said:
        assert window.send_to_hub(original.StudyInstanceUID,
                                  original.SeriesInstanceUID) is None
    assert f"its reconciled copy is study {copy}" in said.args[0]
    window.station.ask_which = lambda uid: "original"  # the tech's explicit choice
    dialog = window.send_to_hub(original.StudyInstanceUID, original.SeriesInstanceUID)
    assert dialog is not None
    dialog.close()


@pytest.mark.orthanc
@pytest.mark.skipif(not worklist_plugin_available(), reason="needs Orthanc's DICOM port setup")
def test_reconcile_view_finds_the_patient_in_a_pacs(qtbot, tmp_path, home, data):
    from app.settings import HubProfile

    files = outside_cd(tmp_path / "cd", _ge(data), 2)
    import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    known = pydicom.dcmread(_ge(data)[5])  # the PACS knows the local patient already
    known.PatientName, known.PatientID, known.IssuerOfPatientID = "MULLER^ANNA^M", "MRN0042", \
        "LOCAL"
    known.PatientBirthDate, known.PatientSex = "19480313", "F"
    known.save_as(tmp_path / "known.dcm", enforce_file_format=True)
    with orthanc_worklist(tmp_path, []) as (hub, port):
        orthanc_upload(hub, [tmp_path / "known.dcm"])
        settings = load_settings(home)
        settings.hubs.append(HubProfile("pacs", kind="dimse", host="127.0.0.1", port=port,
                                        ae_title="ORTHANC"))
        save_settings(home, settings)
        window = shown_window(qtbot, home, 1200, 800)
        dialog = window.station.reconcile(study_uid)
        assert [dialog.source.itemText(i) for i in range(dialog.source.count())] == [
            "Patients in PACS pacs"]  # no worklist configured: the PACS only
        dialog.find_name.setText("MULLER*")
        dialog.search()
        _wait_task(qtbot, dialog)
    assert dialog.table.rowCount() == 1, dialog.status.text()
    assert "1 patient found" in dialog.status.text()
    dialog.choose_entry(0)
    local = dialog.local()
    assert (local.patient_id, local.issuer_of_patient_id) == ("MRN0042", "LOCAL")
    assert dialog.row_state("patient_id") == "differs" and dialog.ok.isEnabled()
    # the patient-level search is one audit event (the kind of key, not the name), and its
    # association another
    from app.workflow import audit

    trail = [e for e in audit.read(home) if e["event"] in ("login", "query")]
    assert [(e["event"], e["outcome"]) for e in trail] == [("login", 0), ("query", 0)]
    assert trail[0]["peer"].startswith("pacs@ORTHANC@127.0.0.1:")
    assert trail[1]["detail"]["level"] == "patient"
    assert trail[1]["detail"]["keys"] == ["PatientName"] and trail[1]["detail"]["answers"] == 1
    assert "MULLER" not in audit.audit_path(home).read_text(encoding="utf-8")


def _damage_one_stored_file(store, study_uid: str) -> None:
    """One stored file of the study cut short (a disk error since the import)."""
    from app.workflow.derive import study_instances

    path = Path(str(study_instances(store, study_uid)[1].path))
    path.write_bytes(path.read_bytes()[:300])


def _damaged_study_window(qtbot, home, data):
    """Four GE slices imported, one of them truncated in the store; the window on them."""
    store = import_into(home, *_ge(data)[:4])
    study_uid = store.studies()[0].study_instance_uid
    _damage_one_stored_file(store, study_uid)
    return study_uid, shown_window(qtbot, home, 1200, 800)


def test_export_dialog_says_when_the_disc_is_incomplete(qtbot, tmp_path, home, data):
    study_uid, window = _damaged_study_window(qtbot, home, data)
    dialog = window.station.export(study_uid)
    dialog.folder.setText(str(tmp_path / "disc"))
    dialog.make_iso.setChecked(False)
    with qtbot.waitSignal(dialog.completed, timeout=60_000) as done:
        dialog.run()
    assert done.args[0].instances == 3
    text = dialog.status.text()
    assert "1 image NOT written: the disc is incomplete (file ends inside the dataset" in text


def test_deidentify_dialog_says_when_the_copy_is_incomplete(qtbot, tmp_path, home, data):
    study_uid, window = _damaged_study_window(qtbot, home, data)
    dialog = window.station.deidentify(study_uid)
    with qtbot.waitSignal(dialog.completed, timeout=60_000):
        dialog.run()
    assert "1 image NOT de-identified: the copy is incomplete (cannot be read" in \
        dialog.status.text()


def test_reconcile_that_could_not_file_every_image_says_so_and_stays_open(qtbot, tmp_path,
                                                                         home, data):
    files = outside_cd(tmp_path / "cd", _ge(data), 4)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    _damage_one_stored_file(store, study_uid)
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.station.reconcile(study_uid)
    qtbot.waitExposed(dialog)
    for name, text in (("patient_id", "MRN0042"), ("issuer_of_patient_id", "LOCAL"),
                       ("patient_name", "MULLER^ANNA^M"), ("accession_number", "ACC1001")):
        dialog.local_edits[name].setText(text)
    with qtbot.waitSignal(dialog.reconciled, timeout=30_000):
        dialog.ok.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=10_000)
    text = dialog.status.text()
    assert text.startswith("3 of 4 instances filed under the local patient; 1 image NOT "
                           "reconciled, still with the outside patient's values"), text
    assert dialog.isVisible() and not dialog.ok.isEnabled()
    assert dialog.cancel.text() == "Close"  # what was filed stays filed
    assert "3 of 4 instances" in window.statusBar().currentMessage()


def test_reconcile_view_of_a_reconciled_study_shows_the_discs_values(qtbot, tmp_path, home,
                                                                      data):
    """Reconciling again to correct a wrong pick: the "Outside (on the disc)" column shows the
    disc, and the right patient is not flagged as a different person."""
    files = outside_cd(tmp_path / "cd", _ge(data), 2)
    store = import_into(home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    hans = PatientValues("MULLER^HANS", "MRN0044", "LOCAL", "19450707", "M", "ACC1003")
    reconcile_study(store, study_uid, hans, confirmed=True)
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.station.reconcile(study_uid)
    qtbot.waitExposed(dialog)
    assert dialog.outside_labels["patient_id"].text() == "OUT-778812"
    assert dialog.outside_labels["patient_sex"].text() == "F"
    for name, text in (("patient_name", "MULLER^ANNA^M"), ("patient_id", "MRN0042"),
                       ("issuer_of_patient_id", "LOCAL"), ("patient_birth_date", "19480313"),
                       ("patient_sex", "F"), ("accession_number", "ACC1001")):
        dialog.local_edits[name].setText(text)
    assert dialog.row_state("patient_sex") == "same" and not dialog.confirm.isVisible()
    assert dialog.ok.isEnabled()


def test_deidentify_dialog_sums_up_many_left_out_images(qtbot, tmp_path, home, data):
    """A study with 30 screenshots: one line saying 30 images of which series and why, not 30
    lines of UIDs pushing the dialog's text past its edges."""
    from pydicom.uid import generate_uid

    folder = tmp_path / "sc"
    folder.mkdir()
    for n in range(30):
        ds = pydicom.dcmread(_ge(data)[n % 3])
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID, ds.SeriesNumber = ds.StudyInstanceUID + ".77", 77
        ds.SeriesDescription = "Screen save"
        ds.save_as(folder / f"{n}.dcm")
    store = import_into(home, folder, *_ge(data)[:3])
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.station.deidentify(store.studies()[0].study_instance_uid)
    with qtbot.waitSignal(dialog.completed, timeout=60_000):
        dialog.run()
    lines = dialog.status.text().splitlines()
    assert lines[0] == "3 instances de-identified into a new study."
    assert lines[1].startswith("Left out 30 images (series #77 Screen save): a secondary "
                               "capture")
    assert len(lines) == 3
