"""Fixtures for exchange tests: a real Orthanc on loopback (basic auth on), Relay homes, studies.

Every server here is started by the test itself on 127.0.0.1 with a free port and a temp storage
folder, and stopped by PID. What the hub holds is checked with Orthanc's own REST API.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from app.dicom.synth import SeriesSpec, generate_series
from app.errors import ToolMissingError
from app.imports.importer import import_paths
from app.net.devhub import (
    HubConfig,
    OrthancHub,
    PostgresIndex,
    find_postgresql_index,
    free_port,
    is_available,
)
from app.store.local import Store
from tests.conftest import run_relay
from tests.postgres import postgres_bin
from tests.proxies import GarbageServer, SlowLink, TlsProxy  # noqa: F401  (used by tests)

HUB_USER = "relay"
HUB_PASSWORD = "s3cret-Hub-pw"
PASSPHRASE = "test-passphrase-not-secret"


def _postgresql_missing() -> str:
    try:
        find_postgresql_index()
    except ToolMissingError as exc:
        return str(exc)
    return "" if postgres_bin() else "needs the Debian package postgresql"


def pytest_collection_modifyitems(config, items):
    if not is_available():
        skip = pytest.mark.skip(reason="needs the Debian packages orthanc and orthanc-dicomweb")
        for item in items:
            if "orthanc" in item.keywords:
                item.add_marker(skip)
    missing = _postgresql_missing()
    if missing:
        for item in items:
            if "postgresql" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture(autouse=True)
def no_system_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """No keyring service (as in CI); the encrypted-file fallback chosen explicitly."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("RELAY_KEYRING", "encrypted-file")
    monkeypatch.setenv("RELAY_KEYRING_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("TCP_NODELAY", "1")
    monkeypatch.delenv("RELAY_HOME", raising=False)


def make_hub(tmp_path: Path, name: str = "hub", port: int | None = None,
             tls_pem: Path | None = None, index: PostgresIndex | None = None) -> OrthancHub:
    return OrthancHub(HubConfig(storage=tmp_path / name, http_port=port or free_port(),
                                users={HUB_USER: HUB_PASSWORD}, tls_pem=tls_pem,
                                postgresql=index))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrthancHub]:
    """A running Orthanc with basic auth, stopped after the test; its index in SQLite (as
    Orthanc ships) and, for every test again, in PostgreSQL (as a busy hub runs it)."""
    index = request.getfixturevalue("postgres").database() if request.param == "postgresql" \
        else None
    h = make_hub(tmp_path, index=index).start(timeout=60)
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


@pytest.fixture
def filled_home(home: Path, data: Path) -> Path:
    """A store holding the 28-slice GE head CT and the nine-syntax image study (what Relay's
    node answers queries and retrievals from in the DIMSE tests)."""
    report = import_paths(Store(home), [str(data / "ct-head/ge-hispeed-human-gantry-tilt"),
                                        str(data / "compressed/same-image-9-syntaxes")])
    assert report.imported == 28 + 9, report
    return home
