"""A remote open of a study the worker is fetching: one download per job, always.

The worker's fetch is blocked on a silent hub (it asked, nothing comes back: a cancel cannot
interrupt the read). The remote open asks the worker to let go and waits; when it does not let go
in time the open says so plainly and never starts a second download of the same job. Once the
hub stops being silent the worker lets go and the open takes the job over.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from app.errors import RelayError
from app.net.runner import QueueRunner
from tests.net.conftest import add_hub
from tests.proxies import LoopbackServer

STUDY = "1.2.826.0.1.3680043.8.498.77"


class SilentHub(LoopbackServer):
    """Takes each request and answers nothing until :meth:`speak` (then closes it: a fault)."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self._speak = threading.Event()
        super().__init__(0)

    def speak(self) -> None:
        self._speak.set()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            self.asked.set()
            self._speak.wait(60)


def test_a_remote_open_never_runs_a_second_download_of_the_workers_job(relay_home) -> None:
    silent = SilentHub()
    runner = QueueRunner(relay_home, poll_seconds=0.05)
    runner.handover_seconds = 1.0
    try:
        url = f"http://127.0.0.1:{silent.port}/dicom-web"
        assert add_hub(relay_home, url, password="x").returncode == 0
        runner.start()
        job_id = runner.fetch("hub", STUDY)
        assert silent.asked.wait(30)  # the worker's fetch is in its first request
        assert runner.progress(job_id) is not None
        started = time.monotonic()
        with pytest.raises(RelayError, match="being fetched in the background"):
            runner.open_remote("hub", STUDY)
        assert time.monotonic() - started < 10
        assert runner.progress(job_id) is not None  # still the worker's, and only the worker's
        silent.speak()  # the worker's request fails: it lets go of the job
        deadline = time.monotonic() + 30
        while runner.progress(job_id) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        remote = runner.open_remote("hub", STUDY)  # now the open takes the job over
        assert remote.download.job_id == job_id
    finally:
        silent.speak()
        runner.stop()
        silent.close()
