"""Fixtures for exchange tests: a real Orthanc on loopback (basic auth on), Relay homes, studies.

Every server here is started by the test itself on 127.0.0.1 with a free port and a temp storage
folder, and stopped by PID. What the hub holds is checked with Orthanc's own REST API.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from app.importer import import_paths
from app.net.devhub import HubConfig, OrthancHub, free_port, is_available
from app.store import Store
from app.synth import SeriesSpec, generate_series
from tests.conftest import run_relay

HUB_USER = "relay"
HUB_PASSWORD = "s3cret-Hub-pw"
PASSPHRASE = "test-passphrase-not-secret"


def pytest_collection_modifyitems(config, items):
    if not is_available():
        skip = pytest.mark.skip(reason="needs the Debian packages orthanc and orthanc-dicomweb")
        for item in items:
            if "orthanc" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_system_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """No keyring service (as in CI); the encrypted-file fallback chosen explicitly."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("RELAY_KEYRING", "encrypted-file")
    monkeypatch.setenv("RELAY_KEYRING_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("TCP_NODELAY", "1")
    monkeypatch.delenv("RELAY_HOME", raising=False)


def make_hub(tmp_path: Path, name: str = "hub", port: int | None = None,
             tls_pem: Path | None = None) -> OrthancHub:
    return OrthancHub(HubConfig(storage=tmp_path / name, http_port=port or free_port(),
                                users={HUB_USER: HUB_PASSWORD}, tls_pem=tls_pem))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[OrthancHub]:
    """A running Orthanc with basic auth, stopped after the test."""
    h = make_hub(tmp_path).start()
    try:
        yield h
    finally:
        h.stop()


def hub_rest(hub: OrthancHub, path: str) -> object:
    """GET from Orthanc's own REST API (not DICOMweb): the test's independent view."""
    token = base64.b64encode(f"{HUB_USER}:{HUB_PASSWORD}".encode()).decode()
    resp = urllib3.request("GET", hub.config.rest_url + path, timeout=30, retries=False,
                        headers={"Authorization": f"Basic {token}"})
    assert resp.status == 200, (path, resp.status)
    return json.loads(resp.data)


def hub_sop_uids(hub: OrthancHub) -> list[str]:
    """SOP Instance UIDs of every instance Orthanc holds (a list: duplicates would show)."""
    rows = hub_rest(hub, "/instances?expand")
    assert isinstance(rows, list)
    return [r["MainDicomTags"]["SOPInstanceUID"] for r in rows]


def add_hub(home: Path, url: str, *extra: str, password: str = HUB_PASSWORD, name: str = "hub"):
    """``relay hub add`` with the password on stdin."""
    import subprocess

    from tests.conftest import relay_cmd, relay_env

    return subprocess.run(
        relay_cmd("--home", str(home), "hub", "add", name, "--url", url, "--user", HUB_USER,
                  "--password-stdin", *extra),
        input=password + "\n", capture_output=True, text=True, timeout=60, env=relay_env(),
    )


@pytest.fixture
def relay_home(tmp_path: Path) -> Path:
    h = tmp_path / "relay"
    h.mkdir()
    return h


@pytest.fixture(scope="session")
def ct_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A generated 120-slice CT series (128x128), files on disk."""
    out = tmp_path_factory.mktemp("ct")
    spec = SeriesSpec(slices=120, rows=128, columns=128, slice_step=1.0, seed=7)
    return generate_series(out, spec)


def import_study(home: Path, files: list[Path]) -> tuple[Store, str]:
    store = Store(home)
    report = import_paths(store, [str(p) for p in files])
    assert report.imported + report.duplicates == len(files)
    return store, report.study_uids[0]


def relay(home: Path, *args: str, check: bool = False, timeout: float = 300):
    return run_relay("--home", str(home), *args, check=check, timeout=timeout)


class GarbageServer:
    """A loopback server answering every request with garbage: HTML, or bytes that are not HTTP."""

    def __init__(self, port: int, mode: str = "html") -> None:
        import socket

        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    if self.mode == "html":
                        body = b"<html><body>Welcome to the intranet</body></html>"
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                     b"Connection: close\r\nContent-Length: "
                                     + str(len(body)).encode() + b"\r\n\r\n" + body)
                    else:
                        conn.sendall(os.urandom(64).replace(b"H", b"x") + b"\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


class TlsProxy:
    """A TLS front for a plain-HTTP hub on loopback (real TLS, the hub behind it real too).

    Orthanc 1.10 as packaged in Debian 12 crashes (SIGSEGV, civetweb with OpenSSL 3) on its
    first HTTPS connection, so TLS tests terminate TLS here with Python's ssl module.
    """

    def __init__(self, cert_and_key: Path, backend_port: int) -> None:
        import socket
        import ssl

        self.backend_port = backend_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert_and_key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dicom-web"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        import socket
        import ssl

        try:
            conn.settimeout(30)
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=30)
        except OSError:
            tls.close()
            return

        def pump(src, dst) -> None:
            try:
                while True:
                    data = src.recv(1 << 16)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=pump, args=(backend, tls), daemon=True)
        t.start()
        pump(tls, backend)
        t.join(30)
        tls.close()
        backend.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


class SlowLink:
    """A loopback TCP relay to a hub that passes at most ``rate`` bytes per second each way:
    a slow WAN link, so a transfer can be interrupted part way at a chosen point."""

    def __init__(self, backend_port: int, rate: int) -> None:
        import socket

        self.backend_port = backend_port
        self.rate = rate
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        import socket
        import time

        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=30)
        except OSError:
            conn.close()
            return

        def pump(src, dst) -> None:
            try:
                while not self._stop.is_set():
                    data = src.recv(16384)
                    if not data:
                        break
                    dst.sendall(data)
                    time.sleep(len(data) / self.rate)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=pump, args=(backend, conn), daemon=True)
        t.start()
        pump(conn, backend)
        t.join(60)
        conn.close()
        backend.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()
