"""CD -> reconcile -> send -> verified, in the window, against a real Orthanc hub: the hub gets
the reconciled copy, never the outside identity. Screenshot for the user guide
(RELAY_SCREENSHOTS=docs/screenshots)."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest

from app.store.local import Store
from app.ui.main_window import MainWindow
from app.ui.transfers import COL, JOB_ROLE
from app.workflow.patient import PatientValues
from app.workflow.reconcile import reconcile_study
from tests.net import conftest as net
from tests.net.conftest import add_hub, hub_rest, hub_sop_uids
from tests.ui.conftest import shown_window
from tests.workflow.conftest import OUTSIDE, import_into, outside_cd

hub, relay_home = net.hub, net.relay_home
no_system_keyring = net.no_system_keyring
pytestmark = pytest.mark.orthanc

LOCAL = PatientValues("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001")


def _state(window: MainWindow, job_id: str) -> str:
    table = window.transfers.table
    for r in range(table.rowCount()):
        if table.item(r, 0).data(JOB_ROLE) == job_id:
            return table.item(r, COL["State"]).text()
    return ""


def test_a_reconciled_study_reaches_the_hub_under_the_local_patient(qtbot, hub, relay_home,
                                                                    tmp_path, data):
    ge = sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))
    files = outside_cd(tmp_path / "cd", ge, 10)
    store = import_into(relay_home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    reconcile_study(store, study_uid, LOCAL)
    assert add_hub(relay_home, hub.url).returncode == 0
    window = MainWindow(Store(relay_home))
    window.resize(1400, 900)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    job_id = window.queue_send("hub", study_uid, None)
    window.transfers_dock.show()
    qtbot.waitUntil(lambda: _state(window, job_id) == "Verified", timeout=120_000)
    assert len(hub_sop_uids(hub)) == len(files)
    patients = hub_rest(hub, "/patients?expand")
    assert [p["MainDicomTags"]["PatientID"] for p in patients] == ["MRN0042"]
    studies = hub_rest(hub, "/studies?expand")
    assert studies[0]["MainDicomTags"]["AccessionNumber"] == "ACC1001"
    for instance in hub_rest(hub, "/instances"):
        tags = hub_rest(hub, f"/instances/{instance}/simplified-tags")
        assert tags["PatientID"] == "MRN0042" and tags["PatientName"] == "MULLER^ANNA^M"
        assert tags["OtherPatientIDsSequence"][0]["PatientID"] == OUTSIDE["PatientID"]
    qtbot.wait(200)
    out = Path(os.environ.get("RELAY_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out / "technologist-sent-verified.png"))


def test_transfers_shows_the_whole_hub_name(qtbot, hub, relay_home, tmp_path, data):
    ge = sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))
    outside_cd(tmp_path / "cd", ge, 2)
    store = import_into(relay_home, tmp_path / "cd")
    study_uid = store.studies()[0].study_instance_uid
    assert add_hub(relay_home, hub.url, name="regional-stroke-hub").returncode == 0
    window = MainWindow(Store(relay_home))
    window.resize(1400, 900)
    qtbot.addWidget(window)
    window.show()
    job_id = window.queue_send("regional-stroke-hub", study_uid, None)
    window.transfers_dock.show()
    qtbot.waitUntil(lambda: _state(window, job_id) == "Verified", timeout=120_000)
    table = window.transfers.table
    item = table.item(0, COL["Hub / PACS"])
    assert item.text() == "regional-stroke-hub (Hub)"
    shown = table.columnWidth(COL["Hub / PACS"])
    assert shown >= table.fontMetrics().horizontalAdvance(item.text()) + 12  # not "regional-s…"
    assert item.toolTip()


def test_a_study_sent_while_it_is_still_importing_goes_whole_once_the_import_ends(
        qtbot, hub, relay_home, tmp_path, monkeypatch):
    """The tech presses Send while the CD is still being read: a job would list only the
    images imported so far (and could end "N of N verified"); the send waits for the import
    and then sends every image."""
    import threading

    from app.dicom.synth import SeriesSpec, generate_series
    from app.imports import importer

    files = generate_series(tmp_path / "cd", SeriesSpec(slices=150, rows=64, columns=64, seed=7))
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    gate, calls = threading.Event(), iter(range(10**6))
    read = importer._pipe

    def held(ingest, item):  # the drive pauses after a while, as a scratched CD does
        if next(calls) == 100:
            gate.wait(60)
        return read(ingest, item)

    monkeypatch.setattr(importer, "_pipe", held)
    assert add_hub(relay_home, hub.url).returncode == 0
    window = shown_window(qtbot, relay_home, 1400, 900)
    messages: list[str] = []
    window.transfer.message.connect(lambda text, _ms: messages.append(text))
    try:
        window.importer.import_paths([str(tmp_path / "cd")])
        qtbot.waitUntil(lambda: window.store.study(study_uid) is not None, timeout=60_000)
        assert window.importer.is_running()
        assert window.queue_send("hub", study_uid, None) is None  # not yet
        assert messages[-1].startswith("This study is still being imported")
    finally:
        gate.set()
    with qtbot.waitSignal(window.importer.ended, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(hub_sop_uids(hub)) == len(files), timeout=120_000)
    window.transfers_dock.show()
    jobs = [window.transfers.table.item(r, 0).data(JOB_ROLE)
            for r in range(window.transfers.table.rowCount())]
    assert len(jobs) == 1
    qtbot.waitUntil(lambda: _state(window, jobs[0]) == "Verified", timeout=120_000)


def test_a_send_waiting_for_an_import_that_was_cancelled_is_not_queued(qtbot, relay_home,
                                                                        tmp_path):
    """The import was cancelled (or the disk filled): the study is not complete here, so the
    send that waited for it is not queued, and the tech is told."""
    window = MainWindow(Store(relay_home))
    qtbot.addWidget(window)
    messages: list[str] = []
    window.transfer.message.connect(lambda text, _ms: messages.append(text))
    window.transfer._after_import.append(("hub", "1.2.3", None, False))
    assert window.transfer.after_import(False) == []
    assert messages[-1].startswith("Not sent: the import did not finish")
    assert window.transfer.after_import(True) == []  # nothing waits any more


def _study_cells(window: MainWindow) -> dict[str, str]:
    table = window.transfers.table
    return {table.item(r, 0).data(JOB_ROLE): table.item(r, COL["Study"]).text()
            for r in range(table.rowCount())}


def test_transfers_names_a_study_as_it_is_after_a_reconcile(qtbot, hub, relay_home, tmp_path,
                                                            data):
    """A study is sent under the outside name, then reconciled (UIDs kept) and sent again:
    the Transfers panel names the study by its local patient, not the name it showed first."""
    ge = sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))
    files = outside_cd(tmp_path / "cd", ge, 3)
    store = import_into(relay_home, tmp_path / "cd")
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    assert add_hub(relay_home, hub.url).returncode == 0
    window = shown_window(qtbot, relay_home, 1400, 900)
    first = window.queue_send("hub", study_uid, None)
    window.transfers_dock.show()
    qtbot.waitUntil(lambda: _state(window, first) == "Verified", timeout=120_000)
    assert "MULLER" not in _study_cells(window)[first]  # the outside name, as it was then
    reconcile_study(store, study_uid, LOCAL)
    window.station.changed.emit()  # as the reconcile dialog's end does
    again = window.queue_send("hub", study_uid, None)
    qtbot.waitUntil(lambda: again in _study_cells(window), timeout=30_000)
    assert _study_cells(window)[again].startswith("MULLER, ANNA")
