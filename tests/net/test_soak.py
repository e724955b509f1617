"""Soak: 20 studies sent and 20 fetched through a link that breaks connections at random.

Sends run with ``verify_bytes``: the product itself fetches every instance back and compares
its SHA-256 before it calls a send verified. Between Relay and a real Orthanc sits
:class:`tests.proxies.FaultyLink` (drop, reset, truncate, stall, slow; seeded, so a failure can
be replayed). Each send and fetch is run again, as the queue would, until it ends verified
(bounded). At the end the hub holds every instance exactly
once, byte-identical to the spoke's file (SHA-256 of Orthanc's own copy, through its REST API
``/instances/{id}/file``), and the reader's store holds every instance once with the same bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.net.dicomweb import DicomWebClient
from app.net.fetch import Download
from app.net.http import HubSession
from app.net.queue import TransferQueue
from app.net.send import run_send, send_job
from app.settings import HubProfile, TransferSettings
from app.store.local import Store
from tests.net.conftest import HUB_PASSWORD, HUB_USER, hub_rest, import_study, make_hub
from tests.proxies import FaultyLink

pytestmark = [pytest.mark.orthanc, pytest.mark.slow]

STUDIES = 20
SLICES = 3
ATTEMPTS = 15  # runs of one job before the soak calls it lost
SETTINGS = TransferSettings(batch_instances=2, in_flight=2, max_attempts=4,
                            retry_initial_seconds=0.05, retry_max_seconds=0.3,
                            verify_bytes=True)  # the product compares the hub's copies too


def _client(url: str) -> DicomWebClient:
    profile = HubProfile(name="hub", url=url, auth="basic", user=HUB_USER, read_timeout=1.0,
                         connect_timeout=2.0)
    return DicomWebClient(HubSession(profile, HUB_PASSWORD))


def _studies(root: Path) -> list[list[Path]]:
    return [generate_series(root / f"s{i}", SeriesSpec(
        slices=SLICES, rows=48, columns=48, seed=100 + i, patient_id=f"SOAK-{i}", noise_hu=0))
        for i in range(STUDIES)]


def _until_verified(run) -> object:
    for _ in range(ATTEMPTS):
        result = run()
        if result.state == "verified":
            return result
    raise AssertionError(f"not verified after {ATTEMPTS} runs: {result}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_twenty_studies_each_way_through_random_faults_arrive_once_and_byte_identical(
        tmp_path: Path) -> None:
    hub = make_hub(tmp_path).start(timeout=60)
    link = FaultyLink(hub.config.http_port, rate=0.35, seed=14, stall=1.5, max_cut=48 * 1024)
    try:
        spoke_home, reader_home = tmp_path / "spoke", tmp_path / "reader"
        files = _studies(tmp_path / "src")
        originals = {}
        studies = []
        for series in files:
            store, uid = import_study(spoke_home, series)
            studies.append(uid)
        store = Store(spoke_home)
        for uid in studies:
            for s in store.study(uid).series:
                originals.update({i.sop_instance_uid: i.sha256
                                  for i in store.instances(s.series_instance_uid)})
        assert len(originals) == STUDIES * SLICES

        queue, client = TransferQueue(spoke_home), _client(link.url)
        for uid in studies:
            job = send_job(store, queue, "hub", uid)
            _until_verified(lambda j=job: run_send(store, queue, client, j.id, SETTINGS,
                                                   give_up=30))

        rows = hub_rest(hub, "/instances?expand")
        assert isinstance(rows, list)
        on_hub = [r["MainDicomTags"]["SOPInstanceUID"] for r in rows]
        assert sorted(on_hub) == sorted(originals)  # every instance, exactly once
        for row in rows:
            data = _hub_file(hub, row["ID"])
            assert _sha(data) == originals[row["MainDicomTags"]["SOPInstanceUID"]]

        reader = Store(reader_home)
        rqueue = TransferQueue(reader_home)
        for uid in studies:
            _until_verified(lambda u=uid: Download(reader, rqueue, client, "hub", u, SETTINGS,
                                                   give_up=30).run())
        got = [(i.sop_instance_uid, i.sha256, i.path) for u in studies
               for s in reader.study(u).series for i in reader.instances(s.series_instance_uid)]
        assert sorted(g[0] for g in got) == sorted(originals)
        for sop, sha, path in got:
            assert sha == originals[sop] and _sha(path.read_bytes()) == sha
        faults = {k: v for k, v in link.counts.items() if k != "none"}
        assert len(faults) == len(FaultyLink.FAULTS), link.counts  # every kind was dealt
    finally:
        link.close()
        hub.stop()


def _hub_file(hub, orthanc_id: str) -> bytes:
    """Orthanc's stored copy of one instance (REST, not DICOMweb)."""
    import base64

    import urllib3

    token = base64.b64encode(f"{HUB_USER}:{HUB_PASSWORD}".encode()).decode()
    resp = urllib3.request("GET", f"{hub.config.rest_url}/instances/{orthanc_id}/file",
                           timeout=30, retries=False, headers={"Authorization": f"Basic {token}"})
    assert resp.status == 200
    return resp.data
