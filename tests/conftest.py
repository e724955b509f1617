"""Shared fixtures: where the shared data lives, temporary Relay homes, running the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RELAY_TEST_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    if not DATA.is_dir():
        skip = pytest.mark.skip(reason=f"shared test data not found at {DATA}")
        for item in items:
            if "data" in item.fixturenames:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def data() -> Path:
    """The shared real-DICOM folder (../shared/data)."""
    return DATA


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server on loopback for every hub with a PostgreSQL index (the ``hub``
    fixture of tests/net/conftest.py), stopped at the end of the session."""
    from tests.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty Relay home."""
    h = tmp_path / "home"
    h.mkdir()
    return h


def relay_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def relay_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_relay(*args: str, check: bool = True, timeout: float = 300, cwd: Path | None = None):
    """Run the ``relay`` CLI in a subprocess; return the CompletedProcess."""
    proc = subprocess.run(relay_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=relay_env(), cwd=cwd or REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"relay {' '.join(args)} exited {proc.returncode}\n{proc.stderr}")
    return proc


def relay_json(*args: str, **kw) -> dict:
    proc = run_relay(*args, "--json", **kw)
    return json.loads(proc.stdout)


class StderrLines:
    """The stderr lines of a running process, gathered by a thread (never blocks the test)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        import threading

        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.append(line)

    def wait_for(self, words: list[str], timeout: float) -> str:
        """All stderr so far once every one of ``words`` appeared; AssertionError when the
        process exits or ``timeout`` seconds pass first."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if all(w in text for w in words):
                return text
            if self._proc.poll() is not None:
                self._thread.join(5)
                break
            time.sleep(0.1)
        raise AssertionError(f"never saw {words} (exit {self._proc.poll()}):\n"
                             + "".join(self.lines))


@pytest.fixture(autouse=True)
def _umask_restored():
    """Opening a home sets this process's umask to 077 (app.home.make_private); each test gets
    the umask the run started with back, so a later test (or a program it starts, such as the
    bundle build) does not inherit it from whichever test ran before it."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)
