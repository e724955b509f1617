"""Relay's port held by ``relay listen`` in another process on the same home: a C-MOVE
retrieve and a send's storage commitment of a second ``relay`` process still work, handed over
through the home. The PACS is a real Orthanc; both Relays are real processes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pydicom
import pytest

from app.net.dimse.handover import DB_NAME
from app.store.local import Store
from tests.net import dimse_peers
from tests.net.conftest import hub_sop_uids, import_study, relay
from tests.net.dimse_node import sha256, start_listen, stop_listen
from tests.net.dimse_peers import Pacs, relay_home_for

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

pytestmark = pytest.mark.orthanc


def _json(proc) -> dict:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def _left_over(home: Path) -> dict[str, int]:
    """Registrations and arrivals still in the home's handover table."""
    with sqlite3.connect(home / DB_NAME) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("moves", "arrivals", "commitments")}


def test_retrieve_by_move_while_relay_listen_holds_the_port(tmp_path: Path, pacs: Pacs,
                                                            ct_files):
    sender = relay_home_for(tmp_path / "sender", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study = import_study(sender, ct_files)
    assert _json(relay(sender, "send", study, "--pacs", "pacs", "--json"))["verified"] == 120
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    node = start_listen(home, pacs.relay_port)
    try:
        out = relay(home, "retrieve", study, "--pacs", "pacs", "--method", "move", "--json")
        result = _json(out)
        assert out.returncode == 0, out.stderr
        assert (result["state"], result["instances"], result["stored"], result["failed"]) == (
            "verified", 120, 120, 0)
        again = _json(relay(home, "retrieve", study, "--pacs", "pacs", "--method", "move",
                            "--json"))
        assert again["state"] == "verified" and again["bytes"] == 0
    finally:
        counts, log = stop_listen(node)
    # the node stored each once, as the PACS sent it; none went to Incoming as a new arrival
    store = Store(home)
    assert store.counts()["instances"] == 120 and not store.conflicts()
    assert len(list((home / "store" / "objects").rglob("*.dcm"))) == 120
    assert counts["received"] == 0, log
    for path in ct_files[:5]:
        sent = pydicom.dcmread(path)
        got = store.instance(str(sent.SOPInstanceUID))
        assert got is not None and got.path is not None
        assert sha256(got.path) == got.sha256
        assert pydicom.dcmread(got.path).PixelData == sent.PixelData
    assert _left_over(home) == {"moves": 0, "arrivals": 0, "commitments": 0}


def test_send_is_verified_by_storage_commitment_while_relay_listen_holds_the_port(
        tmp_path: Path, pacs: Pacs, ct_files):
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study = import_study(home, ct_files)
    node = start_listen(home, pacs.relay_port)
    try:
        out = relay(home, "send", study, "--pacs", "pacs", "--json")
        result = _json(out)
        assert out.returncode == 0, out.stderr
    finally:
        _, log = stop_listen(node)
    assert {k: result[k] for k in ("state", "instances", "verified", "missing")} == {
        "state": "verified", "instances": 120, "verified": 120, "missing": []}, log
    assert "verified by storage commitment" in result["message"], log
    assert len(hub_sop_uids(pacs.hub)) == 120
    assert _left_over(home) == {"moves": 0, "arrivals": 0, "commitments": 0}
