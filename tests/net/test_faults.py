"""Every fault the hub issue lists: a clear message, nothing lost, and the job completes after.

Unreachable hub, wrong password, TLS failure, a server answering garbage (HTML; not HTTP at
all), hub killed mid-upload, hub restarted mid-upload, Relay killed (SIGKILL) mid-send. After
each, the hub's instance set is checked with Orthanc's REST API: every instance exactly once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.net.devhub import free_port
from app.net.dicomweb import DicomWebClient
from app.net.fetch import Download
from app.net.http import HubSession
from app.net.queue import TransferQueue
from app.net.remote import RemoteStudy
from app.net.send import run_send, send_job
from app.settings import HubProfile, TransferSettings, load_settings, save_settings
from app.store.local import Store
from app.tasks import Progress
from tests.conftest import relay_cmd, relay_env
from tests.net.conftest import (
    HUB_PASSWORD,
    HUB_USER,
    GarbageServer,
    SlowLink,
    TlsProxy,
    add_hub,
    hub_sop_uids,
    import_study,
    make_hub,
    relay,
)
from tests.proxies import self_signed

pytestmark = pytest.mark.orthanc


def _send_json(home: Path, study: str, *extra: str) -> tuple[int, dict, str]:
    proc = relay(home, "send", study, "--hub", "hub", "--json", *extra)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _assert_all_once(hub, n: int) -> None:
    uids = hub_sop_uids(hub)
    assert len(uids) == n and len(set(uids)) == n


def test_unreachable_then_hub_comes_up(tmp_path, relay_home, ct_files):
    port = free_port()
    _, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, f"http://127.0.0.1:{port}/dicom-web").returncode == 0

    test = relay(relay_home, "hub", "test", "hub")
    assert test.returncode == 1
    assert "UNREACHABLE" in test.stdout and "connection refused" in test.stdout

    started = time.monotonic()
    code, result, err = _send_json(relay_home, study, "--retry-for", "1")
    assert time.monotonic() - started < 60
    assert code == 1 and result["state"] == "failed"
    assert result["verified"] == 0 and len(result["missing"]) == len(ct_files)
    assert "cannot reach the hub" in err and "run the same command again" in err

    hub = make_hub(tmp_path, port=port).start()
    try:
        code, again, _ = _send_json(relay_home, study)
        assert code == 0 and again["state"] == "verified"
        assert again["job"] == result["job"]  # the same job, resumed
        _assert_all_once(hub, len(ct_files))
    finally:
        hub.stop()


def test_wrong_password_then_fixed(hub, relay_home, ct_files):
    _, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url, password="wrong").returncode == 0
    test = relay(relay_home, "hub", "test", "hub", "--json")
    assert test.returncode == 1
    check = json.loads(test.stdout)
    assert check["problem"] == "auth" and "401" in check["message"]

    started = time.monotonic()
    code, result, err = _send_json(relay_home, study)
    assert time.monotonic() - started < 30  # no pointless retrying of a refused password
    assert code == 1 and result["state"] == "failed" and "refused the credentials" in err
    assert hub_sop_uids(hub) == []

    assert add_hub(relay_home, hub.url).returncode == 0  # the right password
    code, again, _ = _send_json(relay_home, study)
    assert code == 0 and again["job"] == result["job"] and again["verified"] == len(ct_files)
    _assert_all_once(hub, len(ct_files))


def test_tls_untrusted_then_ca_file(tmp_path, hub, relay_home, ct_files):
    ca, both = self_signed(tmp_path)
    proxy = TlsProxy(both, hub.config.http_port)
    try:
        url = proxy.url
        _, study = import_study(relay_home, ct_files)
        assert add_hub(relay_home, url).returncode == 0
        test = relay(relay_home, "hub", "test", "hub")
        assert test.returncode == 1
        assert "TLS" in test.stdout and "not trusted" in test.stdout and "--ca-file" in test.stdout
        code, result, err = _send_json(relay_home, study)
        assert code == 1 and "not trusted" in err
        assert hub_sop_uids(hub) == []

        # http:// to the TLS port: told plainly too.
        assert add_hub(relay_home, url.replace("https:", "http:")).returncode == 0
        test = relay(relay_home, "hub", "test", "hub")
        assert test.returncode == 1

        assert add_hub(relay_home, url, "--ca-file", str(ca)).returncode == 0
        test = relay(relay_home, "hub", "test", "hub")
        assert test.returncode == 0, test.stdout
        code, again, _ = _send_json(relay_home, study)
        assert code == 0 and again["job"] == result["job"] and again["state"] == "verified"
        _assert_all_once(hub, len(ct_files))
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", ["html", "not-http"])
def test_garbage_server_then_real_hub(tmp_path, relay_home, ct_files, mode):
    port = free_port()
    _, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, f"http://127.0.0.1:{port}/dicom-web").returncode == 0
    garbage = GarbageServer(port, mode)
    try:
        test = relay(relay_home, "hub", "test", "hub", "--json")
        check = json.loads(test.stdout)
        assert test.returncode == 1 and check["problem"] == "not-dicomweb", check
        code, result, err = _send_json(relay_home, study, "--retry-for", "2")
        assert code == 1 and result["state"] == "failed" and result["verified"] == 0
        assert "DICOM" in err or "HTTP" in err
    finally:
        garbage.close()
    hub = make_hub(tmp_path, port=port).start()
    try:
        code, again, _ = _send_json(relay_home, study)
        assert code == 0 and again["job"] == result["job"] and again["state"] == "verified"
        _assert_all_once(hub, len(ct_files))
    finally:
        hub.stop()


def _client(hub) -> DicomWebClient:
    profile = HubProfile(name="hub", url=hub.url, auth="basic", user=HUB_USER)
    return DicomWebClient(HubSession(profile, HUB_PASSWORD))


@pytest.mark.parametrize("how", ["killed", "restarted"])
def test_hub_down_mid_upload(tmp_path, relay_home, ct_files, how):
    """The hub dies (SIGKILL) or restarts (SIGTERM) mid-upload; the send waits and completes."""
    hub = make_hub(tmp_path).start()
    store, study = import_study(relay_home, ct_files)
    queue = TransferQueue(relay_home)
    job = send_job(store, queue, "hub", study)
    settings = TransferSettings(batch_instances=5, in_flight=2, retry_initial_seconds=0.2,
                                retry_max_seconds=1.0)
    progress = Progress("Sending")
    fired = threading.Event()
    restarted = threading.Event()

    def restart_later() -> None:
        time.sleep(1.5)
        hub.start()
        restarted.set()

    def on_progress(state) -> None:
        if state.done >= 30 and not fired.is_set():
            fired.set()
            hub.kill() if how == "killed" else hub.stop()
            threading.Thread(target=restart_later, daemon=True).start()

    progress.subscribe(on_progress)
    try:
        result = run_send(store, queue, _client(hub), job.id, settings, progress, give_up=60)
        assert fired.is_set() and restarted.is_set()
        assert result.state == "verified", result
        assert result.verified == result.instances == len(ct_files)
        _assert_all_once(hub, len(ct_files))
    finally:
        hub.stop()


def test_hub_killed_while_a_study_is_read_from_it(tmp_path, relay_home, ct_files):
    """Reading a study from the hub (instances one per request, nearest the slice in view
    first) when the hub dies (SIGKILL) and comes back: the reading waits, then completes with
    every instance in the store once and every slice decoded."""
    hub = make_hub(tmp_path).start()
    link = SlowLink(hub.config.http_port, 1_500_000, shared=True)  # ~3 s for the study
    try:
        spoke, study = import_study(tmp_path / "spoke", ct_files)
        queue = TransferQueue(tmp_path / "spoke")
        assert run_send(spoke, queue, _client(hub), send_job(spoke, queue, "hub", study).id,
                        TransferSettings()).state == "verified"
        profile = HubProfile(name="hub", url=link.url, auth="basic", user=HUB_USER)
        client = DicomWebClient(HubSession(profile, HUB_PASSWORD, pool_size=12))
        store = Store(relay_home)
        settings = TransferSettings(retry_initial_seconds=0.2, retry_max_seconds=1.0)
        download = Download(store, TransferQueue(relay_home), client, "hub", study, settings,
                            give_up=60)
        remote = RemoteStudy(store, download, client)
        fired, restarted = threading.Event(), threading.Event()

        def restart_later() -> None:
            time.sleep(1.5)
            hub.start()
            restarted.set()

        def on_stored(sop: str, series: str) -> None:
            if len(download.arrived()) >= 30 and not fired.is_set():
                fired.set()
                hub.kill()
                threading.Thread(target=restart_later, daemon=True).start()

        download.on_stored(on_stored)
        series = remote.open_series()
        result = remote.wait(120)
        assert fired.is_set() and restarted.is_set()
        assert result is not None and result.state == "verified", result
        assert result.verified == result.instances == len(ct_files)
        local = store.instances(series.uid)
        assert sorted(i.sop_instance_uid for i in local) == sorted(hub_sop_uids(hub))
        assert len(local) == len(ct_files)
        assert series.loader.join(30) and series.loader.volume.finished
        assert not series.loader.volume.failed_slices
    finally:
        link.close()
        hub.stop()


def test_relay_killed_mid_send_resumes(hub, relay_home, ct_files):
    store, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url).returncode == 0
    settings = load_settings(relay_home)
    settings.transfer.batch_instances = 4
    settings.transfer.in_flight = 1
    save_settings(relay_home, settings)

    proc = subprocess.Popen(relay_cmd("--home", str(relay_home), "send", study, "--hub", "hub"),
                            env=relay_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = relay_home / "transfers.sqlite"
    deadline = time.monotonic() + 60
    sent = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                with sqlite3.connect(db, timeout=5) as conn:
                    try:
                        sent = conn.execute(
                            "SELECT COUNT(*) FROM items WHERE state IN ('sent', 'verified')"
                        ).fetchone()[0]
                    except sqlite3.OperationalError:
                        sent = 0
                if sent >= 20:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "the send finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    job = TransferQueue(relay_home).jobs()[0]
    assert job.state == "running"  # as the killed process left it
    assert 20 <= job.count("sent", "verified") < len(ct_files)
    time.sleep(1.0)  # a batch fully sent before the kill may still be being stored
    on_hub_before = set(hub_sop_uids(hub))

    code, result, _ = _send_json(relay_home, study)
    assert code == 0 and result["state"] == "verified" and result["job"] == job.id
    assert result["verified"] == len(ct_files)
    # Only what the hub did not have was sent again.
    sizes = {i.sop_instance_uid: i.size for s in store.study(study).series
             for i in store.instances(s.series_instance_uid)}
    assert result["bytes"] == sum(n for uid, n in sizes.items() if uid not in on_hub_before)
    _assert_all_once(hub, len(ct_files))


def test_two_relays_do_not_run_one_job(hub, relay_home, ct_files):
    store, study = import_study(relay_home, ct_files)
    queue = TransferQueue(relay_home)
    job = send_job(store, queue, "hub", study)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with sqlite3.connect(relay_home / "transfers.sqlite") as conn:
            conn.execute("UPDATE jobs SET state='running', owner_pid=? WHERE id=?",
                         (sleeper.pid, job.id))
        from app.errors import TransferError

        with pytest.raises(TransferError, match="another Relay"):
            queue.claim(job.id)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert queue.claim(job.id).state == "running"  # its owner is gone: resumable


def test_relay_killed_mid_fetch_resumes(hub, relay_home, tmp_path, ct_files):
    spoke = tmp_path / "spoke"
    _, study = import_study(spoke, ct_files)
    assert add_hub(spoke, hub.url).returncode == 0
    assert _send_json(spoke, study)[0] == 0
    link = SlowLink(hub.config.http_port, rate=1_500_000)  # ~3 s for the study
    try:
        assert add_hub(relay_home, link.url).returncode == 0
        proc = subprocess.Popen(relay_cmd("--home", str(relay_home), "fetch", study, "--hub",
                                          "hub"), env=relay_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        db = relay_home / "index.sqlite"
        deadline = time.monotonic() + 60
        stored = 0
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if db.exists():
                    with contextlib.suppress(sqlite3.OperationalError), \
                            sqlite3.connect(db, timeout=5) as conn:
                        stored = conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
                if stored >= 20:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the fetch finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        # every instance the killed run indexed has its bytes in place
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT path, sha256 FROM instances").fetchall()
        assert rows
        for path, sha256 in rows:
            data = (relay_home / "store" / path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha256
        job = TransferQueue(relay_home).jobs()[0]
        assert job.kind == "fetch" and job.state == "running"
        proc = relay(relay_home, "fetch", study, "--hub", "hub", "--json")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["job"] == job.id and result["state"] == "verified"
        assert result["verified"] == result["instances"] == len(ct_files)
        assert len(Store(relay_home).instances(
            Store(relay_home).study(study).series[0].series_instance_uid)) == len(ct_files)
        assert not list((relay_home / "store" / "tmp").iterdir())  # the killed run's part: gone
    finally:
        link.close()
