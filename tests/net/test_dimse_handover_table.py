"""The handover table and the node's announcement (:mod:`app.net.dimse.handover`) on a real
home: leases, Message IDs unique across processes, what a dead job leaves behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.net.dimse import handover
from app.net.dimse.handover import HANDED_IDS, Beacon, Handover, node_elsewhere


def test_a_move_is_found_by_its_message_id_or_by_the_only_move_from_the_pacs(tmp_path: Path):
    table = Handover(tmp_path)
    assert not table.exists()
    row, message_id = table.open_move("ORTHANC", "RELAY")
    other, other_id = table.open_move("PACS2", "RELAY")
    assert message_id in HANDED_IDS and other_id in HANDED_IDS and message_id != other_id
    assert table.move_for(message_id, "RELAY", "ORTHANC") == row
    assert table.move_for(message_id, "", "ORTHANC") == row
    assert table.move_for(message_id, "SOMEONE", "ORTHANC") is None  # another originator
    assert table.move_for(1, "RELAY", "ORTHANC") is None  # a process's own IDs stay below
    assert table.move_for(None, "", "ORTHANC") == row  # no originator: the only move asked
    table.open_move("ORTHANC", "RELAY")
    assert table.move_for(None, "", "ORTHANC") is None  # two: whose it is cannot be told
    table.record_arrival(row, "1.2.3", tmp_path / "a.dcm")
    table.record_arrival(row, "1.2.4", tmp_path / "b.dcm")
    first = table.arrivals(row)
    assert [uid for _, uid, _ in first] == ["1.2.3", "1.2.4"]
    assert table.arrivals(row, first[0][0]) == first[1:]
    table.close_move(row)
    assert table.arrivals(row) == [] and table.move_for(message_id, "", "ORTHANC") is None
    assert table.move_for(other_id, "", "PACS2") == other


def test_a_dead_job_is_forgotten_when_its_lease_runs_out(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(handover, "LEASE", 0.2)
    monkeypatch.setattr(handover, "KEEP_DEAD", 0.0)
    table = Handover(tmp_path)
    row, message_id = table.open_move("ORTHANC", "RELAY")
    table.open_commitment("1.2.840.99.1")
    assert table.record_report("1.2.840.99.1", ["1.2.3"], [])
    assert table.reports(["1.2.840.99.1"]) == {"1.2.840.99.1": ({"1.2.3"}, set())}
    time.sleep(0.3)  # nobody renewed them
    assert table.move_for(message_id, "RELAY", "ORTHANC") is None
    assert not table.record_report("1.2.840.99.1", ["1.2.3"], [])  # refused: nobody waits
    assert not table.record_report("1.2.840.99.2", ["1.2.3"], [])  # never asked for
    table.record_arrival(row, "1.2.3", tmp_path / "a.dcm")
    table.open_commitment("1.2.840.99.3")  # a registration sweeps out the dead ones
    assert table.arrivals(row) == [] and table.reports(["1.2.840.99.1"]) == {}


def test_a_running_node_is_seen_from_another_process_and_forgotten_when_it_ends(
        tmp_path: Path):
    assert not node_elsewhere(tmp_path, 11112)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from app.net.dimse.handover import Beacon; "
         "b = Beacon(Path(sys.argv[1])); assert b.raise_('RELAY', 11112); print('up', flush=True); "
         "time.sleep(60)", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        assert node_elsewhere(tmp_path, 11112)
        assert not node_elsewhere(tmp_path, 11113)  # another port: not Relay's node there
        assert not Beacon(tmp_path).raise_("RELAY", 11112)  # one node announced per home
    finally:
        holder.kill()  # kill -9: the kernel drops the lock
        holder.wait(timeout=30)
    assert not node_elsewhere(tmp_path, 11112)
    beacon = Beacon(tmp_path)
    assert beacon.raise_("RELAY", 11112)
    beacon.lower()
    assert not node_elsewhere(tmp_path, 11112)
