"""Transfer jobs told in plain words: the Transfers panel's rows, without Qt or a hub."""

from __future__ import annotations

from app.net.queue import TransferQueue
from app.net.status import SpeedMeter, explain, format_duration, job_status
from app.tasks import ProgressState


def _job(tmp_path, state: str, message: str = "", next_try: float = 0.0, kind: str = "send"):
    queue = TransferQueue(tmp_path)
    items = [(f"1.2.{i}", "1.2", f"/f{i}", 1000) for i in range(400)]
    job = queue.create(kind, "hub", "1.2.3", [], items)
    queue.mark(job.id, [f"1.2.{i}" for i in range(397)], "verified")
    queue.set_state(job.id, state, message, next_try=next_try)
    return queue.job(job.id)


def test_waiting_job_says_unreachable_and_when_it_retries(tmp_path) -> None:
    job = _job(tmp_path, "waiting", "cannot reach the hub at 127.0.0.1:9: connection refused "
                                    "(is it running? is the URL right?)", next_try=1020.0)
    assert explain(job, now=1000.0) == "Hub unreachable — retrying in 20 s"


def test_wrong_password_points_at_the_hub_settings(tmp_path) -> None:
    job = _job(tmp_path, "stuck", "the hub at 127.0.0.1:8042 refused the credentials (401): "
                                  "check the user name and password or token")
    assert explain(job).startswith("Hub refused the password (401) — check the hub's settings")


def test_failed_send_names_how_many_are_missing(tmp_path) -> None:
    job = _job(tmp_path, "failed", "3 instance(s) refused by the hub: bad file")
    text = explain(job)
    assert text.startswith("3 of 400 instances missing on the hub: ")
    assert "bad file" in text


def test_a_send_not_verified_says_why_in_its_details(tmp_path) -> None:
    words = ("sent, not verified: 400 of 400 sent; the peer offers neither storage commitment "
             "nor image queries; 3 instance(s) decoded to uncompressed (lossless) because the "
             "peer accepts only uncompressed for them")
    job = _job(tmp_path, "sent", words)
    assert explain(job, peer_word="PACS") == "S" + words[1:]
    assert job_status(job, None, peer_word="PACS").explanation == "S" + words[1:]
    (tmp_path / "bare").mkdir()
    bare = _job(tmp_path / "bare", "sent")
    assert explain(bare, peer_word="PACS") == (
        "400 of 400 sent; the PACS cannot be asked whether it keeps them")


def test_running_row_has_speed_and_eta(tmp_path) -> None:
    job = _job(tmp_path, "running")
    meter = SpeedMeter()
    meter.add(100, 0, now=10.0)
    meter.add(300, 50_000_000, now=12.0)
    state = ProgressState("Sending to hub", done=300, total=400, elapsed=2.0, cancelled=False)
    row = job_status(job, state, meter)
    assert (row.direction, row.state, row.done, row.total) == ("Send", "Sending", 397, 400)
    assert row.speed_text == "25.0 MB/s"
    assert row.eta_text == "0 s"  # 3 left at 100 per second


def test_durations_read_naturally() -> None:
    assert format_duration(45) == "45 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"


def test_speed_and_eta_stay_filled_between_two_confirmed_batches(tmp_path) -> None:
    """A send confirms 50 instances at once; on a slow link the next batch takes longer than
    the speed window: the row keeps the run's average instead of going blank (issue 19)."""
    job = _job(tmp_path, "running")
    meter = SpeedMeter(window=5.0)
    meter.add(0, 0, now=0.0)
    meter.add(160, 8_000_000, now=8.0)  # the first batches confirmed after 8 s
    for t in (9.0, 12.0, 15.0, 18.0):  # the next batch is still on its way
        meter.add(160, 8_000_000, now=t)
    state = ProgressState("Sending to hub", done=160, total=400, elapsed=18.0, cancelled=False)
    row = job_status(job, state, meter)
    assert row.speed_text == "0.4 MB/s"  # 8 MB in 18 s
    assert row.eta_text != ""  # 3 left at 160 per 18 s


def test_a_retrieve_from_a_pacs_is_called_a_retrieve_and_a_hub_download_a_fetch(tmp_path):
    """The Q/R dialog's button and the user guide say Retrieve for a PACS: the Transfers row
    says so too, running and waiting ("Waiting for PACS"); a hub's download stays a Fetch."""
    job = _job(tmp_path, "running", kind="fetch")
    state = ProgressState("Retrieving", done=300, total=400, elapsed=2.0, cancelled=False)
    row = job_status(job, state, peer_word="PACS")
    assert (row.direction, row.state, row.explanation) == (
        "Retrieve", "Retrieving", "Retrieving into the local store")
    row = job_status(job, state)
    assert (row.direction, row.state, row.explanation) == (
        "Fetch", "Fetching", "Fetching into the local store")
    (tmp_path / "w").mkdir()
    waiting = _job(tmp_path / "w", "waiting", "the association with ORTHANC@127.0.0.1:4242 was "
                   "lost during C-GET", next_try=1020.0, kind="fetch")
    row = job_status(waiting, None, now=1000.0, peer_word="PACS")
    assert (row.direction, row.state) == ("Retrieve", "Waiting for PACS")
    assert row.explanation == "PACS unreachable — retrying in 20 s"
    assert job_status(waiting, None, now=1000.0).state == "Waiting for hub"
