"""A send on ``transfer.in_flight`` associations side by side to a PACS that takes only one at
a time (it rejects the second as busy, as pynetdicom and many PACS do past their limit): the
batches take turns on the association it accepted, at once, instead of backing off for
minutes; every instance is stored once and the job is verified."""

from __future__ import annotations

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
