"""Relay's port held by ``relay listen`` in another process on the same home: a C-MOVE
retrieve and a send's storage commitment of a second ``relay`` process still work, handed over
through the home. The PACS is a real Orthanc; both Relays are real processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from app.net.devhub import free_port
from app.net.dimse.handover import DB_NAME
from app.store.local import Store
from tests.conftest import relay_cmd, relay_env
from tests.net import dimse_peers
from tests.net.conftest import hub_sop_uids, import_study, relay
from tests.net.dimse_node import sha256, start_listen, stop_listen
from tests.net.dimse_peers import Pacs, make_pacs, relay_home_for
from tests.proxies import SlowLink

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


# -- a crash of either side ---------------------------------------------------------------------
#: Bytes per second from the PACS to Relay's node: the 120-instance study takes ~10 s.
RATE = 400_000


@pytest.fixture
def slow_pacs(tmp_path: Path, ct_files) -> Iterator[tuple[Pacs, int, str]]:
    """An Orthanc holding the study whose C-MOVE sub-operations reach Relay's port through a
    slow link: (the PACS, Relay's port, the study)."""
    port = free_port()
    link = SlowLink(port, RATE)
    p = make_pacs(tmp_path / "slow-pacs", Port=link.port).start()
    try:
        sender = relay_home_for(tmp_path / "sender", port, pacs_port=p.dicom_port)
        _, study = import_study(sender, ct_files)
        assert _json(relay(sender, "send", study, "--pacs", "pacs", "--json"))["state"] \
            == "verified"
        yield p, port, study
    finally:
        p.hub.stop()
        link.close()


def _retrieving(home: Path, study: str) -> subprocess.Popen:
    return subprocess.Popen(relay_cmd("--home", str(home), "retrieve", study, "--pacs", "pacs",
                                      "--method", "move", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=relay_env())


def _handed_over(home: Path, at_least: int, proc: subprocess.Popen) -> int:
    """Wait (60 s at most) until the node recorded ``at_least`` instances for the retrieve."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(home / DB_NAME) as conn:
                n = conn.execute("SELECT COUNT(*) FROM arrivals").fetchone()[0]
        except sqlite3.Error:
            n = 0
        if n >= at_least:
            return int(n)
        time.sleep(0.05)
    raise AssertionError("the node did not hand over what the PACS sent")


def _stored_once(home: Path) -> None:
    store = Store(home)
    assert store.counts()["instances"] == 120 and not store.conflicts()
    assert len(list((home / "store" / "objects").rglob("*.dcm"))) == 120


def test_node_killed_mid_move_the_retrieve_ends_verified(tmp_path: Path, slow_pacs):
    pacs, port, study = slow_pacs
    home = relay_home_for(tmp_path / "relay", port, pacs_port=pacs.dicom_port)
    node = start_listen(home, port)
    proc = _retrieving(home, study)
    try:
        assert _handed_over(home, 5, proc) < 120
        node.kill()  # kill -9: the port is free again, the lock in the home dropped
        node.wait(timeout=30)
        out, err = proc.communicate(timeout=300)
    finally:
        for p in (node, proc):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    # asked again at once, now holding the port itself: the same run ends verified
    result = json.loads(out)
    assert (result["state"], result["instances"], result["stored"]) == ("verified", 120, 120), \
        err
    assert b"Relay's node in another program stopped during the C-MOVE" in err
    _stored_once(home)


def test_retrieve_killed_mid_move_resumes_with_nothing_stored_twice(tmp_path: Path,
                                                                    slow_pacs):
    pacs, port, study = slow_pacs
    home = relay_home_for(tmp_path / "relay", port, pacs_port=pacs.dicom_port)
    node = start_listen(home, port)
    try:
        proc = _retrieving(home, study)
        try:
            assert _handed_over(home, 5, proc) < 120
        finally:
            proc.kill()
            proc.wait(timeout=30)
        result = _json(relay(home, "retrieve", study, "--pacs", "pacs", "--method", "move",
                             "--json"))
        assert (result["state"], result["instances"], result["stored"]) == (
            "verified", 120, 120)
    finally:
        counts, log = stop_listen(node)
    _stored_once(home)
    # the killed job's registration is forgotten when its lease runs out; the second one's went
    assert _left_over(home)["moves"] <= 1, log
