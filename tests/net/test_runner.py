"""The background queue runner the window's queue panel drives: run, pause, resume, retry."""

from __future__ import annotations

import time

import pytest

from app.net.runner import QueueRunner
from app.settings import load_settings, save_settings
from tests.net.conftest import add_hub, hub_sop_uids, import_study
from tests.proxies import SlowLink

pytestmark = pytest.mark.orthanc


def _wait_state(runner: QueueRunner, job_id: str, states: tuple[str, ...], timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = next(j for j in runner.jobs() if j.id == job_id)
        if job.state in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {job.state}: {job.message}")


def test_runner_sends_pauses_resumes_and_fetches(hub, relay_home, tmp_path, ct_files):
    _, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url).returncode == 0
    settings = load_settings(relay_home)
    settings.transfer.batch_instances = 2
    settings.transfer.in_flight = 1
    save_settings(relay_home, settings)

    runner = QueueRunner(relay_home, poll_seconds=0.1).start()
    changes: list[str] = []
    runner.subscribe(changes.append)
    try:
        job_id = runner.send("hub", study)
        deadline = time.monotonic() + 30
        while runner.progress(job_id) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        progress = runner.progress(job_id)
        assert progress is not None and progress.snapshot().total == len(ct_files)
        runner.pause(job_id)
        paused = _wait_state(runner, job_id, ("paused", "verified"))
        if paused.state == "paused":
            # the job is recorded paused a moment before its worker lets go of it
            deadline = time.monotonic() + 10
            while runner.progress(job_id) is not None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert runner.progress(job_id) is None
            runner.resume(job_id)
        done = _wait_state(runner, job_id, ("verified",))
        assert done.count("verified") == len(ct_files) and job_id in changes
        assert len(hub_sop_uids(hub)) == len(ct_files)

        # The same runner fetches into another home's store? No: one runner per home.
        reader = tmp_path / "reader"
        reader.mkdir()
        assert add_hub(reader, hub.url).returncode == 0
        other = QueueRunner(reader, poll_seconds=0.1).start()
        try:
            fetch_id = other.fetch("hub", study)
            fetched = _wait_state(other, fetch_id, ("verified",))
            assert fetched.count("verified") == len(ct_files)
        finally:
            other.stop()
    finally:
        runner.stop()


def test_resume_pressed_while_the_pause_is_landing_is_not_lost(hub, relay_home, ct_files):
    """The job shows paused a moment before its worker lets go of it (longer on a busy
    machine): a Resume pressed then resumes it; the pause landing afterwards used to leave it
    paused for good (seen as a flake of the window's pause/resume test under load)."""
    _, study = import_study(relay_home, ct_files)
    link = SlowLink(hub.config.http_port, rate=300_000)
    try:
        assert add_hub(relay_home, link.url).returncode == 0
        runner = QueueRunner(relay_home, poll_seconds=0.1).start()
        try:
            job_id = runner.send("hub", study)
            deadline = time.monotonic() + 30
            while runner.progress(job_id) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)  # requests on the wire
            runner.pause(job_id)  # and Resume pressed before the worker has let go
            assert runner.progress(job_id) is not None, "the worker let go at once: no race"
            runner.resume(job_id)
            done = _wait_state(runner, job_id, ("verified",), timeout=120)
            assert done.count("verified") == len(ct_files)
        finally:
            runner.stop()
    finally:
        link.close()


def test_runner_marks_stuck_with_a_plain_reason(relay_home, ct_files):
    _, study = import_study(relay_home, ct_files[:3])
    assert add_hub(relay_home, "http://127.0.0.1:9/dicom-web", password="x").returncode == 0
    settings = load_settings(relay_home)
    settings.transfer.give_up_seconds = 0.5
    settings.transfer.retry_initial_seconds = 0.1
    save_settings(relay_home, settings)
    runner = QueueRunner(relay_home, poll_seconds=0.1).start()
    try:
        job_id = runner.send("hub", study)
        job = _wait_state(runner, job_id, ("waiting", "stuck"))
        assert "cannot reach the hub" in job.message
        runner.cancel(job_id)
        assert _wait_state(runner, job_id, ("cancelled",)).state == "cancelled"
    finally:
        runner.stop()


def test_a_hub_that_is_down_does_not_hold_up_the_others(hub, relay_home, ct_files):
    _, study = import_study(relay_home, ct_files[:10])
    assert add_hub(relay_home, "http://127.0.0.1:9/dicom-web", name="down").returncode == 0
    assert add_hub(relay_home, hub.url).returncode == 0
    settings = load_settings(relay_home)
    settings.transfer.retry_initial_seconds = 0.2
    settings.transfer.retry_max_seconds = 30
    save_settings(relay_home, settings)
    runner = QueueRunner(relay_home, poll_seconds=0.1, yield_seconds=1.0).start()
    try:
        blocked = runner.send("down", study)
        _wait_state(runner, blocked, ("running", "waiting"))
        live = runner.send("hub", study)
        _wait_state(runner, live, ("verified",), timeout=60)
        assert next(j for j in runner.jobs() if j.id == blocked).state == "waiting"
    finally:
        runner.stop()


def test_stopping_the_runner_leaves_the_job_queued_for_next_time(hub, relay_home, ct_files):
    from tests.proxies import SlowLink

    _, study = import_study(relay_home, ct_files)
    link = SlowLink(hub.config.http_port, rate=300_000)
    try:
        assert add_hub(relay_home, link.url).returncode == 0
        runner = QueueRunner(relay_home, poll_seconds=0.1).start()
        job_id = runner.send("hub", study)
        _wait_state(runner, job_id, ("running",))
        runner.stop()
        job = next(j for j in runner.jobs() if j.id == job_id)
        assert job.state == "queued" and job.message == ""
    finally:
        link.close()
