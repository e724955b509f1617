"""A PACS behind the seam: every :class:`~app.net.peer.Peer` operation of a ``dimse`` profile
against a real Orthanc (DICOM port, storage commitment, C-MOVE to Relay), made through
``hubs.connect`` as every mover makes its peer."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pydicom
import pytest

from app.errors import Cancelled, HubError
from app.net import hubs
from app.net.devhub import free_port
from app.net.dimse.listener import Listener
from app.net.dimse.peer import DimsePeer
from app.net.metadata import headers_of, plan_of
from app.net.peer import SERIES_INSTANCES, SERIES_UID, SOP_UID, STUDY_UID, Peer, value
from app.net.queue import TransferQueue
from app.net.runner import QueueRunner
from app.settings import load_settings
from app.store.local import Store
from app.tasks import Progress
from tests.net import dimse_peers
from tests.net.conftest import hub_sop_uids, import_study, relay
from tests.net.dimse_peers import Pacs, SlowFindPacs, relay_home_for

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

pytestmark = pytest.mark.orthanc


class Sink(io.BytesIO):
    """A part kept in memory (the movers write to files in the store)."""


def _open(headers: dict[str, str]) -> Sink:
    assert headers["Content-Type"] == "application/dicom"
    return Sink()


def _close(sink: Sink) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(sink.getvalue()))


def test_a_pacs_answers_every_peer_operation(tmp_path: Path, pacs: Pacs, ct_files):
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    store, study = import_study(home, ct_files[:6])
    series_uid = store.study(study).series[0].series_instance_uid
    stored = {i.sop_instance_uid: i for i in store.instances(series_uid)}
    uids = set(stored)
    peer = hubs.connect(home, "pacs")
    assert isinstance(peer, Peer) and isinstance(peer, DimsePeer)
    assert "answers C-ECHO and queries from 'RELAY'" in peer.check()
    assert peer.where == f"ORTHANC@127.0.0.1:{pacs.dicom_port}"
    assert peer.study_instance_count(study) is None

    result = peer.store([(Path(i.path), i.size) for i in stored.values()], study)
    assert result.stored == uids and not result.failed and not result.decoded
    assert sorted(hub_sop_uids(pacs.hub)) == sorted(uids)
    confirmation = peer.confirm(study, sorted(uids))
    assert (confirmation.found, confirmation.evidence) == (uids, "storage commitment")

    patient = str(pydicom.dcmread(next(iter(stored.values())).path).PatientID)
    [found] = list(peer.studies(PatientID=patient))
    assert value(found, STUDY_UID) == study
    [series] = list(peer.series(study))
    assert (value(series, SERIES_UID), int(value(series, SERIES_INSTANCES))) == (series_uid, 6)
    assert peer.study_instance_count(study) == 6
    assert peer.present(study, [*sorted(uids), "1.2.3.4"]) == uids
    assert peer.instance_uids(study) == peer.instance_uids(study, series_uid) == uids
    first = [value(d, SOP_UID) for d in peer.instances(study, series_uid, limit=2)]
    rest = [value(d, SOP_UID) for d in peer.instances(study, series_uid, offset=2)]
    assert len(first) == 2 and len(rest) == 4 and set(first + rest) == uids

    plan = plan_of(headers_of(peer.metadata(study, series_uid)))
    assert plan.main is not None and len(plan.main.slices) == 6  # positions from C-FIND

    got = list(peer.retrieve(study, series_uid, open_part=_open, close_part=_close))
    assert {str(d.SOPInstanceUID) for d in got} == uids
    for ds in got:  # the pixels as stored
        assert ds.PixelData == pydicom.dcmread(stored[str(ds.SOPInstanceUID)].path).PixelData

    assert isinstance(peer, DimsePeer)
    peer.method = "move"  # to Relay's own port, where a listener runs for the duration
    one = sorted(uids)[0]
    [moved] = list(peer.retrieve(study, series_uid, one, open_part=_open, close_part=_close))
    assert str(moved.SOPInstanceUID) == one
    with pytest.raises(HubError) as gone:
        list(peer.retrieve(study, series_uid, "1.2.3.4", open_part=_open, close_part=_close))
    assert gone.value.status == 404
    peer.close()


def _wait_for(check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("method", ["get", "move"])
def test_a_pacs_study_is_read_while_it_arrives_slice_in_view_first(tmp_path: Path, pacs: Pacs,
                                                                   ct_files, method: str):
    """Open from a PACS as from a hub: the plan from C-FIND, the slice in view by C-GET (or
    C-MOVE) of that instance first, the rest nearest first, several requests side by side (the
    C-MOVEs share one listener on Relay's port); every instance stored once, job verified."""
    sender = relay_home_for(tmp_path / "spoke", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study = import_study(sender, ct_files)
    assert relay(sender, "send", study, "--pacs", "pacs", "--json").returncode == 0
    home = relay_home_for(tmp_path / "reader", pacs.relay_port, pacs_port=pacs.dicom_port)
    assert relay(home, "pacs", "add", "pacs", "--host", "127.0.0.1", "--port",
                 str(pacs.dicom_port), "--ae", "ORTHANC", "--retrieve", method).returncode == 0
    runner = QueueRunner(home, poll_seconds=0.05).start()
    order: list[str] = []
    try:
        remote = runner.open_remote("pacs", study)
        remote.download.on_stored(lambda sop, _series: order.append(sop))
        series = remote.open_series()
        k = len(series.sops) // 2
        assert series.loader.volume.shape[0] == len(ct_files)  # placed before any pixel
        _wait_for(lambda: bool(series.loader.volume.ready[k]))
        result = remote.wait(120)
        assert result is not None and result.state == "verified", result
        assert order.index(series.sops[k]) < 0.25 * len(ct_files), order.index(series.sops[k])
        assert series.loader.join(30) and not series.loader.volume.failed_slices
        job = TransferQueue(home).job(result.job)
        assert (job.kind, job.hub, job.state) == ("fetch", "pacs", "verified")
    finally:
        runner.stop()
    local = Store(home).instances(series.uid)
    assert sorted(i.sop_instance_uid for i in local) == sorted(hub_sop_uids(pacs.hub))
    assert len(order) == len(set(order)) == len(ct_files)


def test_a_queued_retrieve_keeps_its_method_and_moves_only_the_series_asked_for(
        tmp_path: Path, pacs: Pacs, ct_files):
    sender = relay_home_for(tmp_path / "spoke", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study = import_study(sender, ct_files[:8])
    assert relay(sender, "send", study, "--pacs", "pacs", "--json").returncode == 0
    series_uid = Store(sender).study(study).series[0].series_instance_uid
    home = relay_home_for(tmp_path / "reader", pacs.relay_port, pacs_port=pacs.dicom_port)
    runner = QueueRunner(home, poll_seconds=0.05).start()
    try:
        job_id = runner.fetch("pacs", study, [series_uid], method="move")
        assert TransferQueue(home).job(job_id).method == "move"
        _wait_for(lambda: TransferQueue(home).job(job_id).state in ("verified", "failed",
                                                                    "stuck"), 120)
        job = TransferQueue(home).job(job_id)
        assert (job.state, job.method, job.series_uids) == ("verified", "move", (series_uid,))
    finally:
        runner.stop()
    assert Store(home).counts()["instances"] == 8
    # the runner connects with the job's method, not the profile's (get)
    assert hubs.connect(home, "pacs", retrieve="move").method == "move"  # type: ignore[attr-defined]
    assert hubs.connect(home, "pacs").method == "get"  # type: ignore[attr-defined]


def test_with_relays_node_running_c_move_and_commitment_are_handed_to_the_job(
        tmp_path: Path, pacs: Pacs, ct_files):
    """The window's node listens on Relay's port: a C-MOVE retrieve and a send's storage
    commitment cannot listen there themselves; the node routes what the PACS sends back to the
    job (the move's C-STOREs into its ingest, not into Incoming; the report to the send)."""
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study = import_study(home, ct_files[:8])
    node = Listener(Store(home), load_settings(home).node)
    announced: list[object] = []
    node.subscribe(announced.append)
    node.start()
    runner = QueueRunner(home, poll_seconds=0.05).start()
    try:
        sent = runner.send("pacs", study)
        _wait_for(lambda: TransferQueue(home).job(sent).state not in ("queued", "running"), 120)
        job = TransferQueue(home).job(sent)
        assert (job.state, job.message) == ("verified", "8 of 8 verified by storage commitment")
        Store(home).delete_study(study)
        fetched = runner.fetch("pacs", study, method="move")
        _wait_for(lambda: TransferQueue(home).job(fetched).state not in ("queued", "running"),
                  120)
        job = TransferQueue(home).job(fetched)
        assert job.state == "verified", job.message
    finally:
        runner.stop()
        node.stop()
    assert Store(home).counts()["instances"] == 8
    assert node.tally.snapshot().get("received", 0) == 0 and announced == []  # not Incoming


def test_a_search_stopped_early_sends_c_cancel_and_the_pacs_stops(tmp_path: Path):
    """A search that has what it needs (``limit``) or that the user stops cancels the query on
    the PACS (C-CANCEL), without waiting for the PACS's next answer; this peer holds its query
    open 30 s after the first match unless it is cancelled."""
    slow = SlowFindPacs()
    try:
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=slow.port, ae="SLOW")
        peer = hubs.connect(home, "pacs")
        [first] = list(peer.instances("1.2.826.0.1.3680043.10.1", limit=1))
        assert value(first, SOP_UID) == "1.2.826.0.1.3680043.10.1.1"
        _wait_for(lambda: slow.cancelled, 10)  # the PACS saw the C-CANCEL and stopped
        slow.cancelled = False
        progress = Progress("search")
        rows: list[object] = []

        def stopped_after_the_first_row() -> None:
            for row in peer.find("STUDY", ("PatientName",),  # type: ignore[attr-defined]
                                 progress=progress):
                rows.append(row)
                progress.cancel()  # the user pressed Stop

        with pytest.raises(Cancelled):
            stopped_after_the_first_row()
        assert len(rows) == 1
        _wait_for(lambda: slow.cancelled, 10)
    finally:
        slow.stop()


def test_a_search_stopped_early_leaves_orthanc_ready_for_the_next(tmp_path: Path, pacs: Pacs,
                                                                  ct_files):
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study = import_study(home, ct_files[:12])
    assert relay(home, "send", study, "--pacs", "pacs", "--json").returncode == 0
    peer = hubs.connect(home, "pacs")
    for limit in (1, 3, 5):  # each ends with C-CANCEL on one association
        assert len(list(peer.instances(study, limit=limit))) == limit
    assert len(peer.instance_uids(study)) == 12
    assert "answers C-ECHO" in peer.check()
