"""A hub whose WADO-RS answer is hostile: every fetch ends "failed" with a plain reason.

The hub is a loopback server (:class:`tests.proxies.HostileHub`) whose searches are sound and
whose retrievals break the rules: a part with no length and no boundary (written until the
disk is full, before the cap), a terabyte Content-Length, no boundary, not multipart, parts
that are not DICOM. None may leave the job "running" or a temp file behind.
"""

from __future__ import annotations

import json

import pytest

from app.net import multipart
from app.net.dicomweb import DicomWebClient
from app.net.fetch import Download
from app.net.http import HubSession
from app.net.queue import TransferQueue
from app.settings import HubProfile, TransferSettings
from app.store.local import Store
from tests.conftest import run_relay
from tests.proxies import HostileHub

CAP = 4 << 20
QUICK = TransferSettings(max_attempts=2, retry_initial_seconds=0.05, retry_max_seconds=0.1)


@pytest.fixture
def hostile():
    servers: list[HostileHub] = []

    def start(mode: str, **kw) -> HostileHub:
        servers.append(HostileHub(mode, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _fetch(home, server: HostileHub):
    store = Store(home)
    queue = TransferQueue(home)
    peer = DicomWebClient(HubSession(HubProfile(name="hostile", url=server.url,
                                                read_timeout=5.0)))
    result = Download(store, queue, peer, "hostile", server.STUDY, QUICK, give_up=2.0).run()
    return result, queue.job(result.job), store


@pytest.mark.parametrize(("mode", "words"), [
    ("endless", "boundary did not come within 4 MB"),
    ("huge", "announced a part of 1,048,576 MB"),
    ("no-boundary", "without a boundary"),
    ("not-multipart", "expected a multipart answer"),
    ("garbage", "did not deliver every instance"),
])
def test_a_hostile_retrieval_ends_the_job_failed_with_a_plain_reason(
        hostile, tmp_path, monkeypatch, mode, words) -> None:
    monkeypatch.setattr(multipart, "MAX_PART_BYTES", CAP)
    server = hostile(mode)
    result, job, store = _fetch(tmp_path / "home", server)
    assert result.state == "failed"
    assert job.state == "failed", job
    assert words in job.message and words in result.message
    assert server.sent < 64 << 20  # stopped near the cap, not at the server's limit
    assert not any(store.tmp.iterdir())  # no part left behind
    assert store.instances(server.SERIES) == []


@pytest.mark.parametrize("mode", ["over-2gib", "part-over-2gib"])
def test_an_object_the_hubs_web_server_cannot_send_fails_at_once_in_one_sentence(
        hostile, tmp_path, mode) -> None:
    """Orthanc 1.10 announces an answer over 2 GiB and closes before its first byte, at every
    try (docs/hub-limits.md): the fetch fails at the first answer, saying why, not retried
    for its whole retry window as a lost connection would be."""
    server = hostile(mode)
    result, job, store = _fetch(tmp_path / "home", server)
    assert result.state == "failed" and job.state == "failed", job
    assert "cannot send this 2.15 GB object" in job.message, job.message
    assert "over 2 GiB" in job.message and "trying again will not help" in job.message
    assert server.retrievals == 1
    assert not any(store.tmp.iterdir())


def test_the_command_line_says_why_a_hostile_fetch_failed(hostile, tmp_path) -> None:
    server = hostile("no-boundary")
    home = str(tmp_path / "home")
    run_relay("--home", home, "hub", "add", "hostile", "--url", server.url)
    proc = run_relay("--home", home, "fetch", "--hub", "hostile", server.STUDY, "--json",
                     "--retry-for", "1", check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "run the same command again" not in proc.stderr  # a failed job is over
    answer = json.loads(proc.stdout)
    assert answer["state"] == "failed"
    assert "without a boundary" in answer["message"]
