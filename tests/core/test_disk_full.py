"""A full disk during import: a plain stop, nothing half-indexed, complete once space is freed.

On a real 20 MB tmpfs (:mod:`tests.small_disk`): the 25 MB MR study does not fit beside the
reserve Relay keeps for its index, and, with no reserve, the disk fills to the last byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.small_disk import on_small_disk

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MR = DATA / "mr-brain"


def _files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("reserve", [None, 0], ids=["reserve-kept", "disk-filled"])
def test_import_on_a_full_disk_stops_plainly_and_completes_once_space_is_freed(
        tmp_path, reserve) -> None:
    if not MR.is_dir():
        pytest.skip(f"test data missing: {MR}")
    home = "{disk}/home"
    runs = on_small_disk(tmp_path, 20, [
        ("relay", "--home", home, "import", str(MR), "--json"),
        ("relay", "--home", home, "check", "--json"),
        ("grow", 128),
        ("relay", "--home", home, "import", str(MR), "--json"),
        ("relay", "--home", home, "check", "--json"),
        ("relay", "--home", home, "ls", "--json"),
        ("relay", "--home", home, "audit", "--verify", "--json"),
    ], reserve=reserve)
    stopped, check_full, again, check_after, listing, trail = runs
    assert stopped.rc == 1, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "is full" in stopped.stderr and "run the same command again" in stopped.stderr
    report = json.loads(stopped.stdout)
    assert "is full" in report["stopped"]
    assert 0 < report["imported"] < _files(MR)
    if reserve is None:  # the reserve kept room for the index: every placed file is indexed
        assert check_full.rc == 0, check_full.stdout
    assert again.rc == 0, again.stderr
    assert json.loads(again.stdout)["imported"] + report["imported"] >= _files(MR) - \
        json.loads(again.stdout)["duplicates"]
    assert check_after.rc == 0, check_after.stdout  # no orphan, no missing, nothing altered
    instances = sum(s["instances"] for st in json.loads(listing.stdout)["studies"]
                    for s in st["series"])
    assert instances == _files(MR)
    # an audit event the full disk could not take left no half line: the chain is whole
    assert trail.rc == 0, trail.stdout + trail.stderr
