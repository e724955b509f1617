"""DIMSE faults against real peers on loopback: Relay killed (SIGKILL) mid-send and mid-retrieve,
the PACS killed and restarted mid-send and mid-retrieve, a peer aborting mid-transfer. Each job
resumes and every instance ends up stored exactly once (counted by the receiving peer, through
Orthanc's REST API, or in the receiving store). The queue runner drives DIMSE jobs as any other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.net.devhub import free_port
from app.net.queue import TransferQueue
from app.net.runner import QueueRunner
from app.store.local import Store
from tests.conftest import relay_cmd, relay_env
from tests.net.conftest import hub_sop_uids, import_study, relay
from tests.net.dimse_peers import RecordingPacs, make_pacs, relay_home_for
from tests.proxies import SlowLink

pytestmark = pytest.mark.orthanc


def _until(what: Callable[[], bool], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def _start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(relay_cmd("--home", str(home), *args, "--json"), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=relay_env())


def _stored(home: Path) -> int:
    try:
        return Store(home).counts()["instances"]
    except Exception:
        return 0


def test_relay_killed_mid_send_resumes_without_sending_twice(tmp_path: Path, ct_files):
    peer = RecordingPacs(delay=0.03)
    try:
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, ct_files)
        proc = _start(home, "send", study, "--pacs", "pacs")
        _until(lambda: peer.total >= 40 or proc.poll() is not None)
        assert proc.poll() is None, "the send finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        before = peer.total
        out = relay(home, "send", study, "--pacs", "pacs", "--json")
        result = json.loads(out.stdout)
        assert result["state"] == "verified" and result["verified"] == 120, out.stderr
        assert len(peer.received) == 120
        assert set(peer.received.values()) == {1}, "an instance was sent twice"
        assert before < 120
    finally:
        peer.stop()


def test_peer_aborting_mid_send_is_waited_out_and_nothing_sent_twice(tmp_path: Path, ct_files):
    peer = RecordingPacs(abort_after=25)
    try:
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, ct_files)
        result = json.loads(relay(home, "send", study, "--pacs", "pacs", "--json").stdout)
        assert result["state"] == "verified" and result["verified"] == 120
        assert len(peer.received) == 120 and set(peer.received.values()) == {1}
    finally:
        peer.stop()


def test_pacs_restarted_mid_send_resumes_every_instance_once(tmp_path: Path, ct_files):
    pacs = make_pacs(tmp_path / "pacs").start()
    link = SlowLink(pacs.dicom_port, rate=400_000)
    try:
        home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=link.port)
        _, study = import_study(home, ct_files)
        proc = _start(home, "send", study, "--pacs", "pacs", "--retry-for", "120")
        _until(lambda: len(hub_sop_uids(pacs.hub)) >= 20)
        pacs.hub.kill()
        time.sleep(1.5)
        pacs.hub.start()
        out, err = proc.communicate(timeout=240)
        result = json.loads(out)
        assert result["state"] == "verified" and result["verified"] == 120, err
        uids = hub_sop_uids(pacs.hub)
        assert len(uids) == 120 and len(set(uids)) == 120
    finally:
        link.close()
        pacs.hub.stop()


@pytest.mark.parametrize("fault", ["relay-killed", "pacs-restarted"])
def test_retrieve_interrupted_resumes_with_every_instance_stored_once(tmp_path: Path, ct_files,
                                                                      fault: str):
    pacs = make_pacs(tmp_path / "pacs").start()
    link = SlowLink(pacs.dicom_port, rate=400_000)
    try:
        sender = relay_home_for(tmp_path / "sender", pacs.relay_port, pacs_port=pacs.dicom_port)
        _, study = import_study(sender, ct_files)
        assert relay(sender, "send", study, "--pacs", "pacs").returncode == 0
        home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=link.port)
        proc = _start(home, "retrieve", study, "--pacs", "pacs", "--retry-for", "120")
        _until(lambda: _stored(home) >= 20 or proc.poll() is not None)
        assert proc.poll() is None, "the retrieve finished before the fault"
        if fault == "relay-killed":
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            out = relay(home, "retrieve", study, "--pacs", "pacs", "--json").stdout
        else:
            pacs.hub.kill()
            time.sleep(1.5)
            pacs.hub.start()
            out, _ = proc.communicate(timeout=240)
        result = json.loads(out)
        assert (result["state"], result["stored"], result["instances"]) == ("verified", 120, 120)
        store = Store(home)
        assert store.counts()["instances"] == 120 and not store.conflicts()
        assert len(list((home / "store" / "objects").rglob("*.dcm"))) == 120
        assert not list((home / "store" / "tmp").iterdir())
    finally:
        link.close()
        pacs.hub.stop()


def test_queue_runner_runs_pacs_send_and_retrieve_jobs(tmp_path: Path, ct_files):
    pacs = make_pacs(tmp_path / "pacs").start()
    try:
        home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
        _, study = import_study(home, ct_files[:20])
        other = relay_home_for(tmp_path / "other", pacs.relay_port, pacs_port=pacs.dicom_port)
        runner = QueueRunner(home, poll_seconds=0.1).start()
        try:
            job = runner.send("pacs", study)
            _until(lambda: TransferQueue(home).job(job).state in ("verified", "failed",
                                                                  "stuck", "sent"))
            assert TransferQueue(home).job(job).state == "verified"
        finally:
            runner.stop()
        assert len(hub_sop_uids(pacs.hub)) == 20
        runner = QueueRunner(other, poll_seconds=0.1).start()
        try:
            job = runner.fetch("pacs", study)
            _until(lambda: TransferQueue(other).job(job).state in ("verified", "failed",
                                                                   "stuck"))
            assert TransferQueue(other).job(job).state == "verified"
        finally:
            runner.stop()
        assert Store(other).counts()["instances"] == 20
    finally:
        pacs.hub.stop()


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_cancelled_mid_way_stops_promptly_and_resumes_later(tmp_path: Path, ct_files,
                                                                     method: str):
    """Ctrl-C during a C-GET or C-MOVE from Orthanc: C-CANCEL goes out, the command ends within
    seconds with its job paused, and the next retrieve brings the rest, each instance once."""
    relay_port = free_port()
    # the instances come over a slow link: through the C-GET association, or (C-MOVE) on the
    # association Orthanc opens to Relay's port
    link = SlowLink(relay_port, rate=200_000) if method == "move" else None
    pacs = make_pacs(tmp_path / "pacs", **({"Port": link.port} if link else {})).start()
    get_link = SlowLink(pacs.dicom_port, rate=200_000) if method == "get" else None
    try:
        sender = relay_home_for(tmp_path / "sender", relay_port, pacs_port=pacs.dicom_port)
        _, study = import_study(sender, ct_files)
        assert relay(sender, "send", study, "--pacs", "pacs").returncode == 0
        home = relay_home_for(tmp_path / "relay", relay_port,
                              pacs_port=get_link.port if get_link else pacs.dicom_port)
        proc = _start(home, "retrieve", study, "--pacs", "pacs", "--method", method)
        _until(lambda: _stored(home) >= 10 or proc.poll() is not None)
        assert proc.poll() is None, "the retrieve finished before it was cancelled"
        proc.send_signal(signal.SIGINT)
        asked = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped = time.monotonic() - asked
        # the rest would take ~20 s more over the link: the PACS stopped on the C-CANCEL
        # (measured: 1.0 s for C-GET, 1.5 s for C-MOVE, end to end)
        assert stopped < 8, f"took {stopped:.1f} s to stop: {err}"
        result = json.loads(out)
        assert result["stored"] < 120, "cancelled too late to tell"
        assert TransferQueue(home).job(result["job"]).state == "paused"
        held = _stored(home)
        time.sleep(1.0)
        assert _stored(home) == held  # nothing more arrives once it stopped
        resumed = json.loads(relay(home, "retrieve", study, "--pacs", "pacs", "--method",
                                   method, "--json").stdout)
        assert (resumed["job"], resumed["state"], resumed["stored"]) == (
            result["job"], "verified", 120)
        store = Store(home)
        assert store.counts()["instances"] == 120 and not store.conflicts()
        assert len(list((home / "store" / "objects").rglob("*.dcm"))) == 120
        assert not list((home / "store" / "tmp").iterdir())
    finally:
        for one in (link, get_link):
            if one is not None:
                one.close()
        pacs.hub.stop()


def test_the_command_line_says_resume_only_for_a_job_it_keeps(tmp_path: Path):
    """A PACS that is down leaves the retrieve waiting: the same command resumes it, and the
    command says so. A study the PACS does not hold fails the job: it is over, and the command
    does not promise that running it again would help."""
    study = "1.2.826.0.1.3680043.8.498.1"
    home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=free_port())
    down = relay(home, "retrieve", study, "--pacs", "pacs", "--retry-for", "1", "--json")
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert "run the same command again" in down.stderr, down.stderr
    kept = TransferQueue(home).jobs()
    assert [j.state for j in kept] == ["waiting"]

    pacs = make_pacs(tmp_path / "pacs").start()
    try:
        home = relay_home_for(tmp_path / "relay2", pacs.relay_port, pacs_port=pacs.dicom_port)
        empty = relay(home, "retrieve", study, "--pacs", "pacs", "--json")
        assert empty.returncode == 1 and "Traceback" not in empty.stderr
        assert json.loads(empty.stdout)["state"] == "failed"
        assert "run the same command again" not in empty.stderr, empty.stderr
        assert [j.state for j in TransferQueue(home).jobs()] == ["failed"]
    finally:
        pacs.hub.stop()
