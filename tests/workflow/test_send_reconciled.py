"""The outside original of a reconciled study is never sent by accident: ``relay send``, a job
queued before the reconcile and the window follow one rule (app.workflow.sendable), checked end
to end against a real Orthanc through its own REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from app.errors import TransferError
from app.net.queue import TransferQueue
from app.net.send import HOLDS_OUTSIDE, send_job
from app.store.local import Store
from app.workflow.patient import PatientValues
from app.workflow.reconcile import reconcile_study
from app.workflow.sendable import send_target
from tests.net import conftest as net
from tests.net.conftest import add_hub, hub_rest, make_hub, relay
from tests.workflow.conftest import OUTSIDE, import_into, outside_cd

no_system_keyring = net.no_system_keyring
LOCAL = PatientValues("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[net.OrthancHub]:
    h = make_hub(tmp_path).start(timeout=60)
    try:
        yield h
    finally:
        h.stop()


def _cd(tmp_path: Path, home: Path, ge_files: list[Path], count: int = 4) -> tuple[Store, str]:
    files = outside_cd(tmp_path / "cd", ge_files, count)
    return import_into(home, tmp_path / "cd"), str(pydicom.dcmread(files[0]).StudyInstanceUID)


def _hub_patients(hub: net.OrthancHub) -> dict[str, str]:
    """SOP Instance UID -> PatientID of every instance the hub holds (Orthanc's own view)."""
    out = {}
    for instance in hub_rest(hub, "/instances"):
        tags = hub_rest(hub, f"/instances/{instance}/simplified-tags")
        out[tags["SOPInstanceUID"]] = tags["PatientID"]
    return out


def _send(home: Path, study: str, *extra: str):
    return relay(home, "send", study, "--hub", "hub", "--retry-for", "30", *extra)


@pytest.mark.orthanc
def test_a_send_queued_before_a_uid_keeping_reconcile_delivers_the_reconciled_copy_only(
        tmp_path, home, ge_files, hub):
    store, study = _cd(tmp_path, home, ge_files)
    assert add_hub(home, hub.url).returncode == 0
    queued = send_job(store, TransferQueue(home), "hub", study)  # queued, not yet run
    reconcile_study(store, study, LOCAL)
    run = _send(home, study, "--json")  # resumes the queued job
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["job"] == queued.id and out["verified"] == 4
    assert set(_hub_patients(hub).values()) == {"MRN0042"}
    assert len(_hub_patients(hub)) == 4
    outside = {str(Path(r["path"]).relative_to(store.root)) for r in store.superseded(study)}
    assert len(outside) == 4
    assert not outside & {i.path for i in TransferQueue(home).items(queued.id)}


@pytest.mark.orthanc
def test_relay_send_of_a_new_uids_original_sends_its_reconciled_copy(tmp_path, home,
                                                                     ge_files, hub):
    store, study = _cd(tmp_path, home, ge_files, 3)
    assert add_hub(home, hub.url).returncode == 0
    copy = reconcile_study(store, study, LOCAL, new_uids=True).reconciled_study_uid
    run = _send(home, study, "--json")
    assert run.returncode == 0, run.stderr
    assert f"its reconciled copy, study {copy}, is sent instead" in run.stderr
    out = json.loads(run.stdout)
    assert out["study_instance_uid"] == copy and out["redirected_from"] == study
    studies = hub_rest(hub, "/studies?expand")
    assert [s["MainDicomTags"]["StudyInstanceUID"] for s in studies] == [copy]
    assert set(_hub_patients(hub).values()) == {"MRN0042"}
    # the tech may still choose the outside study as it came
    run = _send(home, study, "--original", "--json")
    assert run.returncode == 0, run.stderr
    assert sorted(_hub_patients(hub).values()) == ["MRN0042"] * 3 + [OUTSIDE["PatientID"]] * 3


@pytest.mark.orthanc
def test_a_job_queued_for_the_original_before_a_new_uids_reconcile_is_refused(
        tmp_path, home, ge_files, hub):
    store, study = _cd(tmp_path, home, ge_files, 3)
    assert add_hub(home, hub.url).returncode == 0
    queue = TransferQueue(home)
    queued = send_job(store, queue, "hub", study)
    copy = reconcile_study(store, study, LOCAL, new_uids=True).reconciled_study_uid
    from app.net import hubs
    from app.net.send import run_send
    from app.settings import load_settings

    settings = load_settings(home)
    result = run_send(store, queue, hubs.connect(home, "hub", settings), queued.id,
                      settings.transfer)
    assert result.state == "failed"
    assert f"its reconciled copy, study {copy}, is the one to send" in result.message
    assert queue.job(queued.id).state == "failed"
    assert hub_rest(hub, "/instances") == []
    # asked for explicitly afterwards, the original goes (a new job, not the refused one)
    run = _send(home, study, "--original", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["job"] != queued.id
    assert set(_hub_patients(hub).values()) == {OUTSIDE["PatientID"]}


@pytest.mark.orthanc
def test_an_instance_the_hub_holds_in_its_outside_version_is_not_counted_as_delivered(
        tmp_path, home, ge_files, hub):
    store, study = _cd(tmp_path, home, ge_files, 3)
    assert add_hub(home, hub.url).returncode == 0
    assert _send(home, study).returncode == 0  # sent before anyone reconciled it
    reconcile_study(store, study, LOCAL)
    run = _send(home, study, "--json")
    assert run.returncode == 1
    out = json.loads(run.stdout)
    assert out["verified"] == 0 and len(out["missing"]) == 3
    assert "holds this instance's outside original" in run.stderr
    items = TransferQueue(home).items(out["job"])
    assert {i.reason for i in items} == {HOLDS_OUTSIDE}


def test_asking_for_the_outside_original_of_a_uid_keeping_reconcile_is_refused(
        tmp_path, home, ge_files):
    store, study = _cd(tmp_path, home, ge_files, 2)
    reconcile_study(store, study, LOCAL)
    with pytest.raises(TransferError, match="reconciled with its UIDs kept"):
        send_target(store, study, original=True)
    assert send_target(store, study).study_uid == study  # the copy, under the same UIDs
    run = _send(home, study, "--original")
    assert run.returncode != 0
    assert f"the reconciled copy (study {study}, same UIDs) replaced it" in run.stderr


def test_a_series_of_a_new_uids_original_is_refused_naming_the_copy(tmp_path, home, ge_files):
    store, study = _cd(tmp_path, home, ge_files, 2)
    copy = reconcile_study(store, study, LOCAL, new_uids=True).reconciled_study_uid
    with pytest.raises(TransferError, match=f"its reconciled copy is study {copy}"):
        send_target(store, study, series=True)
    assert send_target(store, study, series=True, original=True).study_uid == study
    assert send_target(store, copy).study_uid == copy and not send_target(store, copy).note


@pytest.mark.orthanc
def test_a_queued_instance_whose_reconciled_copy_was_deleted_is_not_sent_as_the_original(
        tmp_path, home, ge_files, hub):
    from app.net import hubs
    from app.net.send import COPY_GONE, run_send
    from app.settings import load_settings

    store, study = _cd(tmp_path, home, ge_files, 2)
    assert add_hub(home, hub.url).returncode == 0
    queue = TransferQueue(home)
    queued = send_job(store, queue, "hub", study)
    reconcile_study(store, study, LOCAL)
    store.delete_study(study)  # the copy goes, and with it the outside originals it superseded
    assert store.superseded(study) == []
    settings = load_settings(home)
    result = run_send(store, queue, hubs.connect(home, "hub", settings), queued.id,
                      settings.transfer)
    assert result.state == "failed" and result.verified == 0
    # the outside bytes left with the study: nothing of it can be sent any more
    assert {i.reason for i in queue.items(queued.id)} <= {COPY_GONE,
                                                         "the local file is missing or changed"}
    assert hub_rest(hub, "/instances") == []


@pytest.mark.orthanc
def test_a_pacs_send_queued_before_a_uid_keeping_reconcile_stores_the_reconciled_copy(
        tmp_path, home, ge_files):
    from tests.workflow.peers import orthanc_worklist, worklist_plugin_available

    if not worklist_plugin_available():
        pytest.skip("needs Orthanc's DICOM port setup (tests.workflow.peers)")
    store, study = _cd(tmp_path, home, ge_files, 3)
    with orthanc_worklist(tmp_path, []) as (pacs, port):
        added = relay(home, "pacs", "add", "pacs", "--host", "127.0.0.1", "--port", str(port),
                      "--ae", "ORTHANC")
        assert added.returncode == 0, added.stderr
        queued = send_job(store, TransferQueue(home), "pacs", study)
        reconcile_study(store, study, LOCAL)
        run = relay(home, "send", study, "--pacs", "pacs", "--retry-for", "30", "--json")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["job"] == queued.id
        held = {}
        for instance in hub_rest(pacs, "/instances"):
            tags = hub_rest(pacs, f"/instances/{instance}/simplified-tags")
            held[tags["SOPInstanceUID"]] = tags["PatientID"]
    assert len(held) == 3 and set(held.values()) == {"MRN0042"}
