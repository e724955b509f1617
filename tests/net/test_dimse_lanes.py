"""A send on ``transfer.in_flight`` associations side by side to a PACS that takes only one at
a time (it rejects the second as busy, as pynetdicom and many PACS do past their limit): the
batches take turns on the association it accepted, at once, instead of backing off for
minutes; every instance is stored once and the job is verified."""

from __future__ import annotations

import threading
from pathlib import Path

from app.dicom.synth import SeriesSpec, generate_series
from app.net.dimse.association import Endpoint
from app.net.dimse.client import DimseClient
from app.net.dimse.peer import DimsePeer
from app.net.queue import TransferQueue
from app.net.send import Sender, send_job
from app.settings import TransferSettings
from tests.net.conftest import import_study
from tests.net.dimse_peers import RecordingPacs


def test_a_pacs_taking_one_association_at_a_time_gets_the_batches_in_turn(tmp_path: Path):
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=96, rows=64, columns=64, seed=3))
    store, study = import_study(tmp_path / "relay", files)
    peer = RecordingPacs()
    peer.ae.maximum_associations = 1
    try:
        queue = TransferQueue(store.home)
        job = send_job(store, queue, "pacs", study)
        client = DimseClient(Endpoint("127.0.0.1", peer.port, "PACS"), "RELAY")
        result = Sender(store, queue, DimsePeer(client),
                        TransferSettings(in_flight=3, batch_instances=8)).run(job.id)
        assert result.state == "verified", result
        assert peer.total == 96 and set(peer.received.values()) == {1}
        # one round, or two when the first two batches were both turned away at once
        assert queue.job(job.id).attempts <= 2
    finally:
        peer.stop()


def test_a_pacs_still_freeing_its_only_association_is_asked_again_at_once(tmp_path: Path):
    """A PACS that serves one association at a time and has not yet let go of the last one
    (Relay's own search before the send, often) rejects the next as busy: the C-STORE batch
    asks again after a moment instead of failing the round (which then backed off 1-4 s)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    files = generate_series(tmp_path / "ct", SeriesSpec(slices=4, rows=32, columns=32, seed=4))
    peer = RecordingPacs(find=False)
    peer.ae.maximum_associations = 1
    other = AE("SOMEONE")
    other.add_requested_context(Verification)
    held = other.associate("127.0.0.1", peer.port, ae_title="PACS")
    try:
        assert held.is_established
        letting_go = threading.Timer(0.4, held.release)
        letting_go.start()
        client = DimseClient(Endpoint("127.0.0.1", peer.port, "PACS"), "RELAY")
        result = DimsePeer(client).store([(f, f.stat().st_size) for f in files], "1.2.3")
        letting_go.join()
        assert len(result.stored) == 4 and not result.failed, result
        assert peer.total == 4
    finally:
        if held.is_established:
            held.abort()
        peer.stop()
