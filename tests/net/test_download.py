"""Reading while it downloads: priorities, listeners, outages; and the incoming poller."""

from __future__ import annotations

import threading
import time

import pytest

from app.net.dicomweb import DicomWebClient
from app.net.fetch import Download
from app.net.http import HubSession
from app.net.incoming import IncomingPoller
from app.net.queue import TransferQueue
from app.net.send import run_send, send_job
from app.settings import HubProfile, IncomingSettings, TransferSettings
from app.store.local import Store
from tests.net.conftest import HUB_PASSWORD, HUB_USER, import_study, make_hub

pytestmark = pytest.mark.orthanc


def _client(hub) -> DicomWebClient:
    return DicomWebClient(HubSession(HubProfile("h", hub.url, "basic", HUB_USER), HUB_PASSWORD))


def _upload(hub, home, files) -> str:
    store, study = import_study(home, files)
    queue = TransferQueue(home)
    result = run_send(store, queue, _client(hub), send_job(store, queue, "hub", study).id,
                      TransferSettings())
    assert result.state == "verified"
    return study


def test_prioritised_instance_arrives_first(hub, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    home = tmp_path / "reader"
    store = Store(home)
    download = Download(store, TransferQueue(home), _client(hub), "hub", study,
                        TransferSettings())
    order: list[str] = []
    download.on_stored(lambda sop, series: order.append(sop))
    spoke = Store(tmp_path / "spoke")
    series = spoke.study(study).series[0].series_instance_uid
    sops = [i.sop_instance_uid for i in spoke.instances(series)]
    in_view = sops[len(sops) * 3 // 4]  # the slice in view, far down the series
    download.prioritise(series, [in_view])
    started = time.monotonic()
    download.start()
    result = download.wait(120)
    assert result is not None and result.state == "verified"
    assert result.verified == len(ct_files)
    assert order[0] == in_view, order.index(in_view)  # stored before the bulk starts
    assert download.first_stored_at is not None
    assert download.first_stored_at - started < result.seconds
    assert download.remaining(series) == set()
    assert download.arrived(series) == set(sops) and download.expected() == len(sops)
    assert len(order) == len(ct_files) and len(set(order)) == len(order)


def test_prioritise_while_running_and_remaining(hub, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    home = tmp_path / "reader"
    download = Download(Store(home), TransferQueue(home), _client(hub), "hub", study,
                        TransferSettings())
    seen = threading.Event()
    asked: list[str] = []

    def on_stored(sop: str, series: str) -> None:
        if not asked:
            left = sorted(download.remaining(series))
            asked.append(left[-1])
            download.prioritise(series, [left[-1]])
        elif sop == asked[0]:
            seen.set()

    download.on_stored(on_stored)
    download.start()
    result = download.wait(120)
    assert result is not None and result.state == "verified"
    assert seen.is_set()


def test_fetch_survives_hub_restart(tmp_path, ct_files):
    hub = make_hub(tmp_path).start()
    try:
        study = _upload(hub, tmp_path / "spoke", ct_files)
        home = tmp_path / "reader"
        settings = TransferSettings(retry_initial_seconds=0.2, retry_max_seconds=1.0)
        download = Download(Store(home), TransferQueue(home), _client(hub), "hub", study,
                            settings, give_up=60)
        fired = threading.Event()

        def on_stored(sop: str, series: str) -> None:
            if not fired.is_set():
                fired.set()
                hub.kill()
                threading.Timer(1.0, hub.start).start()

        download.on_stored(on_stored)
        result = download.run()
        assert fired.is_set()
        assert result.state == "verified" and result.verified == len(ct_files)
        assert not list((home / "store" / "tmp").iterdir())  # no half parts left behind
    finally:
        time.sleep(1.5)
        hub.stop()


def test_incoming_poller(hub, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    home = tmp_path / "reader"
    store = Store(home)
    poller = IncomingPoller(store, _client(hub), "hub", IncomingSettings(lookback_days=0))
    first = poller.poll()
    assert [s.study_uid for s in first.new] == [study]
    s = first.studies[0]
    assert s.local == "remote" and s.instances == len(ct_files)
    assert s.patient_name == "DEMO^STROKE" and "CT" in s.modalities
    second = poller.poll()
    assert second.new == [] and second.studies[0].received == s.received
    Download(store, TransferQueue(home), _client(hub), "hub", study, TransferSettings()).run()
    assert poller.poll().studies[0].local == "local"
    # A restart does not announce the study again.
    again = IncomingPoller(store, _client(hub), "hub", IncomingSettings(lookback_days=0))
    assert again.poll().new == []

    updates = []
    loop = IncomingPoller(store, _client(hub), "hub", IncomingSettings(interval_seconds=1))
    t = threading.Thread(target=loop.run, args=(updates.append,), daemon=True)
    t.start()
    time.sleep(0.5)
    loop.stop()
    t.join(10)
    assert updates and not updates[0].error


def test_incoming_prefetch_hands_new_studies_over(hub, tmp_path, ct_files):
    study = _upload(hub, tmp_path / "spoke", ct_files)
    store = Store(tmp_path / "reader")
    asked: list[tuple[str, str]] = []
    settings = IncomingSettings(interval_seconds=1, lookback_days=0, prefetch=True)
    poller = IncomingPoller(store, _client(hub), "hub", settings)
    done = threading.Event()

    def on_update(update) -> None:
        poller.stop()
        done.set()

    t = threading.Thread(target=poller.run, args=(on_update, lambda h, s: asked.append((h, s))),
                         daemon=True)
    t.start()
    assert done.wait(30)
    t.join(10)
    assert asked == [("hub", study)]
