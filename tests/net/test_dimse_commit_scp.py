"""Relay's node as Storage Commitment SCP: an N-ACTION is answered with an N-EVENT-REPORT that
commits only what the store holds intact (index row, SOP class, size and SHA-256), on the
request's association or, for a known destination, on a new one. The callers are Relay's own
client and Orthanc (its storage commitment SCU, driven through its REST API)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pydicom
import pytest
import urllib3

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.net.devhub import free_port
from app.net.dimse.association import Endpoint
from app.net.dimse.client import DimseClient
from app.store.local import Store
from tests.net.conftest import HUB_PASSWORD, HUB_USER
from tests.net.dimse_node import destination, running_node
from tests.net.dimse_peers import PACS_AE, make_pacs

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def stored(home: Path, tmp_path: Path) -> list[tuple[str, str]]:
    """Four CT slices in the store: (SOP Class UID, SOP Instance UID); the last one damaged
    on disk after it was stored (same size, one byte changed)."""
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=4, rows=32, columns=32, seed=5))
    store = Store(home)
    assert import_paths(store, [str(f) for f in files]).imported == 4
    refs = []
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        refs.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    inst = store.instance(refs[-1][1])
    assert inst is not None and inst.path is not None
    raw = bytearray(inst.path.read_bytes())
    raw[-1] ^= 0xFF
    inst.path.write_bytes(bytes(raw))
    return refs


def test_commitment_on_the_same_association_commits_only_what_is_intact(home, stored):
    unknown = (CT, "1.2.3.4.5.6.7.8.9")
    with running_node(home) as node:
        host, port = node.address or ("", 0)
        client = DimseClient(Endpoint(host, port, node.node.ae_title), "SCU")  # no port: same
        committed = client.commit([*stored, unknown], wait=30)
    assert committed == {uid for _, uid in stored[:3]}


def test_commitment_report_goes_to_a_known_destination_on_a_new_association(home, stored):
    scu_port = free_port()
    with running_node(home, move_destinations=[destination("SCU", scu_port)]) as node:
        host, port = node.address or ("", 0)
        client = DimseClient(Endpoint(host, port, node.node.ae_title), "SCU",
                             listen_port=scu_port)
        assert client.commit(stored, wait=30) == {uid for _, uid in stored[:3]}


def test_a_wrong_sop_class_is_not_committed(home, stored):
    with running_node(home) as node:
        host, port = node.address or ("", 0)
        client = DimseClient(Endpoint(host, port, node.node.ae_title), "SCU")
        mr = "1.2.840.10008.5.1.4.1.1.4"
        assert client.commit([(mr, stored[0][1]), stored[1]], wait=30) == {stored[1][1]}


@pytest.mark.orthanc
def test_orthanc_asks_relays_node_for_commitment_and_gets_the_report(home, stored, tmp_path):
    pacs = make_pacs(tmp_path / "pacs").start()  # knows Relay (AE RELAY) at pacs.relay_port
    try:
        orthanc = destination(PACS_AE, pacs.dicom_port)
        with running_node(home, port=pacs.relay_port, move_destinations=[orthanc]):
            unknown = (CT, "1.2.3.4.5.6.7.8.9")
            asked = [*stored, unknown]
            job = _rest(pacs, "POST", "/modalities/relay/storage-commitment", {
                "DicomInstances": [{"SOPClassUID": c, "SOPInstanceUID": i} for c, i in asked],
                "Timeout": 30})
            report = _wait_report(pacs, str(job["Path"]))
    finally:
        pacs.hub.stop()
    assert report["Status"] == "Failure"  # Orthanc's word when some instance failed
    assert sorted(r["SOPInstanceUID"] for r in report["Success"]) == \
        sorted(uid for _, uid in stored[:3])
    failures = {r["SOPInstanceUID"]: r["FailureReason"] for r in report["Failures"]}
    assert failures == {stored[3][1]: 0x0110, unknown[1]: 0x0112}


def _rest(pacs, method: str, path: str, body: object | None = None) -> dict:
    token = base64.b64encode(f"{HUB_USER}:{HUB_PASSWORD}".encode()).decode()
    resp = urllib3.request(method, pacs.hub.config.rest_url + path, timeout=30, retries=False,
                           headers={"Authorization": f"Basic {token}"},
                           body=json.dumps(body).encode() if body is not None else None)
    assert resp.status == 200, (path, resp.status, resp.data[:300])
    return json.loads(resp.data)


def _wait_report(pacs, path: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        report = _rest(pacs, "GET", path)
        if report.get("Status") != "Pending" or time.monotonic() > deadline:
            return report
        time.sleep(0.1)
