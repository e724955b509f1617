"""A full disk during a fetch: a plain stop, nothing half-indexed, complete once space is freed.

The hub is a real Orthanc; the Relay home sits on a real 20 MB tmpfs (:mod:`tests.small_disk`)
that cannot hold the 25 MB MR study beside the reserve Relay keeps for its index (and, with no
reserve, fills to the last byte).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.net.queue import TransferQueue
from app.store.local import Store
from tests.net.conftest import add_hub, make_hub
from tests.net.test_download import _upload
from tests.small_disk import Ran, need_namespaces, on_small_disk

pytestmark = pytest.mark.orthanc

MR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mr-brain"


@pytest.mark.parametrize("reserve", [None, 0], ids=["reserve-kept", "disk-filled"])
def test_fetch_on_a_full_disk_stops_plainly_and_completes_once_space_is_freed(
        tmp_path, reserve) -> None:
    need_namespaces()
    if not MR.is_dir():
        pytest.skip(f"test data missing: {MR}")
    hub = make_hub(tmp_path).start(timeout=60)
    try:
        study = _upload(hub, tmp_path / "source", sorted(p for p in MR.rglob("*") if p.is_file()))
        source = Store(tmp_path / "source")
        found = source.study(study)
        assert found is not None
        expected = sum(len(source.instances(s.series_instance_uid)) for s in found.series)
        prepared = tmp_path / "prepared"
        prepared.mkdir(mode=0o700)
        assert add_hub(prepared, hub.url).returncode == 0
        runs = _full_then_grown(tmp_path, prepared, ("fetch", "--hub", "hub", study),
                                reserve=reserve)
    finally:
        hub.stop()
    stopped, check_full, listing_full = runs[:3]
    assert "Traceback" not in stopped.stderr
    assert "is full" in stopped.stderr and "run the same command again" in stopped.stderr
    held = _instances(listing_full.stdout)
    assert 0 < held < expected
    if reserve is None:  # the reserve kept room for the index and the queue to say why
        assert stopped.rc == 1, stopped.stderr
        answer = json.loads(stopped.stdout)
        assert answer["state"] == "failed" and "is full" in answer["message"]
        assert answer["instances"] == expected
        assert check_full.rc == 0, check_full.stdout  # every placed file is indexed
    else:  # not a byte left: SQLite itself cannot write; one sentence, no job "verified"
        assert stopped.rc != 0 and stopped.stderr.count("\n") <= 2, stopped.stderr
    _completed_once_grown(runs, expected)


def _full_then_grown(tmp_path: Path, prepared: Path, command: tuple[str, ...], *,
                     reserve: int | None = None) -> list[Ran]:
    """``relay COMMAND --json --retry-for 5`` on a 20 MB disk holding a copy of the home
    ``prepared``, then ``relay check`` and ``relay ls``; the same three again once the disk has
    grown to 128 MB."""
    home = "{disk}/home"
    run = ("relay", "--home", home, *command, "--json", "--retry-for", "5")
    check = ("relay", "--home", home, "check", "--json")
    listing = ("relay", "--home", home, "ls", "--json")
    return on_small_disk(tmp_path, 20, [("copy", str(prepared), "home"), run, check, listing,
                                        ("grow", "128"), run, check, listing], reserve=reserve)


def _completed_once_grown(runs: list[Ran], expected: int) -> None:
    """The command run again on the grown disk verified the study, and the store is sound and
    whole."""
    again, check_after, listing = runs[3:]
    assert again.rc == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "verified"
    assert check_after.rc == 0, check_after.stdout  # no orphan, no missing, nothing altered
    assert _instances(listing.stdout) == expected


def _instances(ls_json: str) -> int:
    return sum(s["instances"] for st in json.loads(ls_json)["studies"] for s in st["series"])


def test_the_stopped_fetch_job_is_stuck_until_space_is_freed(tmp_path) -> None:
    """The queue says why (the window's transfer list shows it): never "running"."""
    from app.errors import StoreFull
    from app.net.retry import stop_on_fault

    queue = TransferQueue(tmp_path)
    job = queue.create("fetch", "hub", "1.2.3", [], [])
    queue.claim(job.id)
    words = stop_on_fault(queue, job.id, StoreFull("the disk holding the store is full"), "fetch")
    assert queue.job(job.id).state == "stuck"
    assert queue.job(job.id).message == words


@pytest.mark.parametrize("method", ["get", "move"])
def test_a_retrieve_from_a_pacs_on_a_full_disk_stops_plainly_and_completes_once_space_is_freed(
        tmp_path, method) -> None:
    """As the WADO-RS fetch: C-GET and C-MOVE hand each received instance to the same ingest
    (its answer goes once the bytes are handed on; the write, fsync and index row follow).
    A write the full disk refuses stops the job with the same sentence, every instance placed
    is indexed, and the same command completes it once there is room."""
    from tests.net.dimse_peers import make_pacs, relay_home_for

    need_namespaces()
    if not MR.is_dir():
        pytest.skip(f"test data missing: {MR}")
    pacs = make_pacs(tmp_path / "pacs").start()
    try:
        study = _upload(pacs.hub, tmp_path / "source",
                        sorted(p for p in MR.rglob("*") if p.is_file()))
        source = Store(tmp_path / "source")
        found = source.study(study)
        assert found is not None
        expected = sum(len(source.instances(s.series_instance_uid)) for s in found.series)
        prepared = relay_home_for(tmp_path / "prepared", pacs.relay_port,
                                  pacs_port=pacs.dicom_port)
        runs = _full_then_grown(tmp_path, prepared,
                                ("retrieve", study, "--pacs", "pacs", "--method", method))
    finally:
        pacs.hub.stop()
    stopped, check_full, listing_full = runs[:3]
    assert "Traceback" not in stopped.stderr
    assert stopped.rc == 1, stopped.stderr
    assert "is full" in stopped.stderr and "run the same command again" in stopped.stderr
    answer = json.loads(stopped.stdout)
    assert answer["state"] == "failed" and answer["stored"] < expected
    # the retrieve was cancelled at the first refused write: one line, not one per instance
    assert stopped.stderr.count("cannot be written") <= 1, stopped.stderr
    assert 0 < _instances(listing_full.stdout) < expected
    assert check_full.rc == 0, check_full.stdout  # every placed file is indexed
    _completed_once_grown(runs, expected)
