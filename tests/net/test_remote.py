"""Reading a study that is only on the hub while it downloads, over a slow link (real Orthanc)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.errors import RelayError
from app.net.dicomweb import DicomWebClient
from app.net.fetch import READ_WORKERS, Download
from app.net.http import HubSession
from app.net.preview import Preview
from app.net.queue import TransferQueue
from app.net.remote import RemoteSeries, RemoteStudy, _first_slice
from app.net.runner import QueueRunner
from app.net.send import run_send, send_job
from app.settings import HubProfile, TransferSettings
from app.store.local import Store
from app.volume.early_slice import read_slice
from app.volume.loader import load_stack
from app.volume.plans import series_plan
from app.volume.stack import slices_of
from tests.net.conftest import (
    HUB_PASSWORD,
    HUB_USER,
    SlowLink,
    add_hub,
    hub_sop_uids,
    import_study,
)
from tests.proxies import HoldLink

pytestmark = pytest.mark.orthanc

#: Bytes per second, all connections together (one WAN line): the 120-slice CT (4.5 MB)
#: takes about 3 s.
RATE = 1_500_000


def _client(url: str) -> DicomWebClient:
    return DicomWebClient(HubSession(HubProfile("h", url, "basic", HUB_USER), HUB_PASSWORD,
                                     pool_size=8))


def _upload(hub, home: Path, files) -> str:
    store, study = import_study(home, files)
    queue = TransferQueue(home)
    client = _client(hub.url)
    result = run_send(store, queue, client, send_job(store, queue, "hub", study).id,
                      TransferSettings())
    assert result.state == "verified"
    return study


@pytest.fixture
def slow(hub):
    link = SlowLink(hub.config.http_port, RATE, shared=True)
    try:
        yield link
    finally:
        link.close()


def _remote(home: Path, url: str, study: str) -> tuple[Store, RemoteStudy]:
    store = Store(home)
    client = _client(url)
    download = Download(store, TransferQueue(home), client, "hub", study, TransferSettings())
    return store, RemoteStudy(store, download, client)


def _wait_for(predicate, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
    return time.monotonic()


def test_slice_in_view_long_before_the_download_ends(hub, slow, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    store, remote = _remote(tmp_path / "reader", slow.url, study)
    order: list[str] = []  # instances in the order they entered the store
    remote.download.on_stored(lambda sop, _series: order.append(sop))
    series = remote.open_series()
    volume = series.loader.volume
    k = len(series.sops) // 2
    assert volume.shape[0] == len(ct_files)  # allocated and placed before any pixel came
    assert remote.state(series.uid, 0) == "coming"
    _wait_for(lambda: bool(volume.ready[k]))
    running = not remote.finished
    result = remote.wait(120)
    assert running, "the download had ended before the slice in view was shown"
    assert result is not None and result.state == "verified", result
    # "Long before": counted in instances that came first, not in seconds, so a busy machine
    # (which slows the first request as much as the rest) cannot make it pass or fail.
    assert len(order) == len(ct_files)
    assert order.index(series.sops[k]) < 0.25 * len(ct_files), order.index(series.sops[k])
    assert series.loader.join(30) and volume.finished and not volume.failed_slices
    assert all(remote.state(series.uid, i) == "ready" for i in range(volume.shape[0]))
    assert remote.arrival(series.uid) == (len(ct_files), len(ct_files))

    # Every instance in the local store exactly once, as the hub has them; the job verified.
    on_hub = hub_sop_uids(hub)
    local = store.instances(series.uid)
    assert sorted(i.sop_instance_uid for i in local) == sorted(on_hub)
    assert len({i.path for i in local}) == len(local) == len(ct_files)
    job = TransferQueue(tmp_path / "reader").job(result.job)
    assert job.state == "verified"

    # Geometry from metadata == geometry from the stored files; pixels == a local load.
    plan = series_plan(store, series.uid).main
    assert plan is not None
    assert np.allclose(plan.geometry.affine, series.stack.geometry.affine)
    assert np.allclose(plan.positions, series.stack.positions)
    assert plan.geometry.shape == series.stack.geometry.shape
    assert [s.sop_instance_uid for s in plan.slices] == series.sops
    assert [s.window for s in plan.slices] == [s.window for s in series.stack.slices]
    assert (plan.slices[0].rescale_slope, plan.slices[0].rescale_intercept) == (
        series.stack.slices[0].rescale_slope, series.stack.slices[0].rescale_intercept)
    local_volume, _ = load_stack(plan, workers=1)
    assert np.array_equal(local_volume.array, volume.array)


def test_scrolling_far_ahead_fetches_that_slice_next(hub, slow, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    _, remote = _remote(tmp_path / "reader", slow.url, study)
    order: list[str] = []
    remote.download.on_stored(lambda sop, series: order.append(sop))
    series = remote.open_series()
    volume = series.loader.volume
    _wait_for(lambda: bool(volume.ready[len(series.sops) // 2]))
    arrived = remote.download.arrived(series.uid)
    # The far slice: not here yet, and the last of the series in the hub's streaming order
    # among those still coming (the bulk would bring it last).
    far = max((i for i, sop in enumerate(series.sops) if sop not in arrived),
              key=lambda i: abs(i - len(series.sops) // 2))
    assert remote.state(series.uid, far) == "coming"
    remote.focus(series.uid, far)
    before = len(order)
    asked = time.monotonic()
    _wait_for(lambda: bool(volume.ready[far]))
    waited = time.monotonic() - asked
    came_at = order.index(series.sops[far])
    result = remote.wait(120)
    assert result is not None and result.state == "verified"
    left_then = len(series.sops) - before
    assert came_at - before < max(4, left_then // 4), (came_at, before, left_then)
    assert waited < 1.0, waited
    # The window around it came early too.
    near = [series.sops[i] for i in range(max(0, far - 2), min(len(series.sops), far + 3))]
    assert all(order.index(s) - before < left_then // 2 for s in near)


def test_a_series_being_read_comes_once_each_nearest_the_slice_in_view_first(hub, slow,
                                                                              tmp_path,
                                                                              ct_files):
    """Reading and scrolling while the series downloads: each instance is asked for and sent
    once (a series stream would bring again what was fetched one by one around the slice in
    view), and after a jump the slices arrive outward from the new position."""
    study = _upload(hub, tmp_path / "spoke", ct_files)
    store, remote = _remote(tmp_path / "reader", slow.url, study)
    order: list[str] = []
    remote.download.on_stored(lambda sop, series: order.append(sop))
    series = remote.open_series()
    n = len(series.sops)
    index = {sop: i for i, sop in enumerate(series.sops)}
    _wait_for(lambda: bool(series.loader.volume.ready[n // 2]))
    asked = remote.download.singles  # SOP Instance UIDs in the order they were requested
    for k in (n - 20, 15, n - 6):  # the reader jumps about
        _wait_for(lambda: len(order) >= 8 or remote.finished)
        order.clear()
        here = remote.download.arrived(series.uid) | set(asked)
        remote.focus(series.uid, k)
        before = len(asked)
        _wait_for(lambda b=before: len(asked) >= b + 16 or remote.finished)
        # Past the requests claimed before the jump (one per reader and the lane), the slices
        # are asked for outward from k: none farther than the 16 nearest still to ask for.
        missing = sorted(abs(i - k) for i, sop in enumerate(series.sops) if sop not in here)
        assert missing, f"at the jump to {k} every slice was here or asked for already"
        reach = missing[min(len(missing) - 1, 16)]
        after = [index[sop] for sop in asked[before + READ_WORKERS + 1:before + 16]]
        assert after and all(abs(i - k) <= reach for i in after), (k, reach, after)
    result = remote.wait(120)
    assert result is not None and result.state == "verified", result
    singles = remote.download.singles
    assert len(singles) == len(set(singles)) == n, (len(singles), len(set(singles)))
    stored = sum(i.size for i in store.instances(series.uid))
    assert remote.download.bytes == stored  # no byte came twice
    assert sorted(hub_sop_uids(hub)) == sorted(i.sop_instance_uid
                                               for i in store.instances(series.uid))


def test_turning_to_another_series_brings_that_one_first(hub, slow, tmp_path, ct_files):
    """A neurologist reading the plain CT opens the CTA of the same study while the CT is
    still coming: the CTA comes next, whole, and the CT goes on after it."""
    study_uid = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    cta = generate_series(tmp_path / "cta", SeriesSpec(
        slices=60, rows=128, columns=128, slice_step=1.0, seed=9, series_number=5,
        series_description="CTA", study_instance_uid=study_uid))
    study = _upload(hub, tmp_path / "spoke", [*ct_files, *cta])
    store, remote = _remote(tmp_path / "reader", slow.url, study)
    ct = remote.open_series()  # the biggest series: the plain CT
    assert len(ct.sops) == len(ct_files)
    arrived = remote.download.arrived
    _wait_for(lambda: len(arrived(ct.uid)) >= 20)
    cta_uid = pydicom.dcmread(cta[0], stop_before_pixels=True).SeriesInstanceUID
    angio = remote.open_series(cta_uid)
    _wait_for(lambda: len(arrived(cta_uid)) == len(cta) or remote.finished)
    ct_then = len(arrived(ct.uid))
    assert ct_then < len(ct_files) - 20, ct_then  # the CT was still coming: it waited
    result = remote.wait(120)
    assert result is not None and result.state == "verified", result
    assert result.verified == len(ct_files) + len(cta)
    for series in (ct, angio):
        assert series.loader.join(30) and not series.loader.volume.failed_slices
    singles = remote.download.singles
    assert len(singles) == len(set(singles)) == len(ct_files) + len(cta)


def test_superseded_priorities_are_dropped(hub, slow, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    _, remote = _remote(tmp_path / "reader", slow.url, study)
    series = remote.open_series(focus=0)
    for k in range(0, len(series.sops), 7):  # a fast scroll through the series
        remote.focus(series.uid, k)
    last = len(series.sops) - 1
    remote.focus(series.uid, last)
    with remote.download._lock:
        urgent = remote.download.schedule.urgent()
    wanted = {series.sops[i] for i in range(last - remote.window, last + 1)}
    assert set(urgent) <= wanted  # only the last request's slices are still asked for
    _wait_for(lambda: bool(series.loader.volume.ready[last]))
    assert remote.wait(120).state == "verified"


def test_queue_runner_reads_a_remote_study_as_a_durable_job(hub, slow, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    home = tmp_path / "reader"
    home.mkdir()
    assert add_hub(home, slow.url).returncode == 0
    runner = QueueRunner(home, poll_seconds=0.05).start()
    try:
        remote = runner.open_remote("hub", study)
        series = remote.open_series()
        job_id = remote.download.job_id
        assert runner.progress(job_id) is not None
        _wait_for(lambda: bool(series.loader.volume.ready[len(series.sops) // 2]))
        result = remote.wait(120)
        assert result is not None and result.state == "verified"
        _wait_for(lambda: runner.progress(job_id) is None, 10)
        time.sleep(0.3)  # the worker had a chance to (wrongly) run the job again
        job = next(j for j in runner.jobs() if j.id == job_id)
        assert job.state == "verified", job.message
        assert len([j for j in runner.jobs() if j.kind == "fetch"]) == 1
    finally:
        runner.stop()
    local = Store(home).instances(series.uid)
    assert sorted(i.sop_instance_uid for i in local) == sorted(hub_sop_uids(hub))


def test_opening_a_study_the_hub_does_not_have(hub, tmp_path):
    home = tmp_path / "reader"
    home.mkdir()
    assert add_hub(home, hub.url).returncode == 0
    runner = QueueRunner(home, poll_seconds=0.05).start()
    try:
        for _ in range(2):  # asking again says the same, not "already being read"
            remote = runner.open_remote("hub", "1.2.3.404")
            with pytest.raises(RelayError, match="not on hub"):
                remote.open_series()
            assert remote.finished and remote.wait(1) is None
        assert runner.progress(remote.download.job_id) is None
        assert {j.state for j in runner.jobs()} == {"failed"}
    finally:
        runner.stop()


def test_a_missing_study_ends_failed_even_when_the_worker_polls_at_that_moment(hub, tmp_path):
    """The race seen under load: the remote open gives up, and the queue worker polls between
    the job leaving the foreground and its "failed" mark. It must not run the job again."""
    home = tmp_path / "reader"
    home.mkdir()
    assert add_hub(home, hub.url).returncode == 0
    runner = QueueRunner(home, poll_seconds=0.01)
    polled, armed = threading.Event(), threading.Event()
    next_job, job = runner._next_job, runner._queue.job

    def polling():
        found = next_job()
        polled.set()
        return found

    def looking(job_id):
        if armed.is_set() and threading.current_thread().name != "transfer-queue":
            polled.clear()
            polled.wait(2)  # let the worker poll here (it cannot when the runner holds it off)
        return job(job_id)

    runner._next_job, runner._queue.job = polling, looking
    runner.start()
    try:
        remote = runner.open_remote("hub", "1.2.3.405")
        armed.set()
        with pytest.raises(RelayError, match="not on hub"):
            remote.open_series()
        armed.clear()
        time.sleep(0.5)  # the worker would have run it by now
        assert [(j.state, j.message) for j in runner.jobs()] == [
            ("failed", "study 1.2.3.405 is not on hub 'hub'")]
    finally:
        runner.stop()


def test_whoever_sees_the_remote_finished_sees_what_its_listeners_did(hub, tmp_path):
    """The runner's bookkeeping is a finished-listener; a waiter released before it ran saw
    the job still in the foreground (under load). Listeners first, then the waiters."""
    home = tmp_path / "reader"
    store = Store(home)
    profile = HubProfile(name="hub", url=hub.url, auth="basic", user=HUB_USER)
    client = DicomWebClient(HubSession(profile, HUB_PASSWORD))
    download = Download(store, TransferQueue(home), client, "hub", "1.2.3.406",
                        TransferSettings())
    remote = RemoteStudy(store, download, client)
    told: list[object] = []
    remote.on_finished(lambda result: (time.sleep(0.3), told.append(result)))

    def opening() -> None:
        with pytest.raises(RelayError, match="not on hub"):
            remote.open_series()

    opener = threading.Thread(target=opening)
    opener.start()
    deadline = time.monotonic() + 60
    while not remote.finished and time.monotonic() < deadline:
        time.sleep(0.001)
    assert remote.finished and told == [None]  # seen from another thread
    opener.join(30)
    late: list[object] = []
    remote.on_finished(late.append)  # after the end: at once
    assert late == [None]


# -- the preview: one image before the series is planned ------------------------------------
def _numbered(store: Store, study: str, number: int):
    """The spoke's instance with this InstanceNumber (what the hub holds, read locally)."""
    local = store.study(study)
    assert local is not None
    instances = store.instances(local.series[0].series_instance_uid)
    return next(i for i in instances if i.instance_number == number)


def test_preview_comes_before_the_metadata_is_answered(hub, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    spoke = Store(tmp_path / "spoke")
    link = HoldLink(hub.config.http_port, hold="/metadata")
    try:
        store, remote = _remote(tmp_path / "reader", link.url, study)
        previews: list[Preview] = []
        opened: list[RemoteSeries] = []
        opening = threading.Thread(target=lambda: opened.append(
            remote.open_series(preview=previews.append)), daemon=True)
        opening.start()
        _wait_for(lambda: bool(previews), 30)
        # The metadata was asked for and is not answered yet: the plan cannot exist.
        assert link.held.is_set() and opening.is_alive() and not opened
        preview = previews[0]
        expected = _numbered(spoke, study, len(ct_files) // 2 + 1)
        assert preview.sop_instance_uid == expected.sop_instance_uid
        assert preview.instance_number == expected.instance_number
        assert preview.count == len(ct_files)
        # Its own geometry and pixels, from the file that entered the reader's store.
        stored = store.instance(preview.sop_instance_uid)
        assert stored is not None and stored.path is not None
        assert preview.sop_instance_uid in remote.download.arrived(preview.series_uid)
        ref = preview.stack.slices[0]
        assert len(preview.stack.slices) == 1 and ref.position == expected.image.position
        local = read_slice(slices_of([expected])[0])
        assert local is not None and np.array_equal(preview.pixels.pixels, local.pixels)

        link.release()
        opening.join(60)
        series = opened[0]
        # The plan starts where the preview is, with its pixels (ready at once).
        assert series.sops[series.first] == preview.sop_instance_uid
        assert abs(series.first - len(series.sops) // 2) <= 1
        assert series.loader.volume.ready[series.first]
        assert np.array_equal(series.loader.volume.array[series.first], preview.pixels.pixels)
        result = remote.wait(120)
        assert result is not None and result.state == "verified", result
    finally:
        link.release()
        link.close()
    # Fetched on its own once: not asked for again by the slice-in-view lane.
    sop = preview.sop_instance_uid
    assert remote.download.singles.count(sop) == 1
    assert len([r for r in link.requests if f"/instances/{sop}" in r]) == 1
    assert series.loader.join(30) and not series.loader.volume.failed_slices
    assert series.loader.volume.slices[series.first].path is not None  # its file was noted


def test_a_series_without_instance_numbers_still_previews_and_opens(hub, tmp_path):
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=40, rows=64, columns=64,
                                                         seed=3))
    for path in files:  # no InstanceNumber at all: the guess is the listing's middle
        ds = pydicom.dcmread(path)
        del ds.InstanceNumber
        ds.save_as(path)
    study = _upload(hub, tmp_path / "spoke", files)
    _, remote = _remote(tmp_path / "reader", hub.url, study)
    previews: list[Preview] = []
    series = remote.open_series(preview=previews.append)
    volume = series.loader.volume
    _wait_for(lambda: bool(volume.ready[series.first]))
    assert volume.shape[0] == len(files)
    assert remote.wait(120).state == "verified"
    assert series.loader.join(30) and volume.finished and not volume.failed_slices
    found = remote.preview(series.uid)  # made (maybe after the plan, then not announced)
    assert found is not None and found.instance_number is None
    assert found.sop_instance_uid in series.sops
    assert previews in ([], [found])


def test_the_plan_starts_at_the_preview_only_near_the_middle():
    sops = [f"1.2.{i}" for i in range(100)]
    assert _first_slice(sops, None, "1.2.49") == 49  # the image on screen stays
    assert _first_slice(sops, None, "1.2.5") == 50  # a bad guess: the middle after all
    assert _first_slice(sops, None, "9.9.9") == 50  # not in the main stack
    assert _first_slice(sops, None, None) == 50
    assert _first_slice(sops, 7, "1.2.49") == 7  # where the reader asked to be
