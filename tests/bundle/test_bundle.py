"""The bundle as a user gets it: ``./setup.sh bundle`` builds dist/relay/ and the .deb, and the
bundled ``relay`` runs with no Python on the path (its own runtime only): version, import of a CD,
every transfer syntax decoded, a PNG rendered, a send to and a fetch from ``relay dev-hub``, the
window opened offscreen on the demo study and closed with exit 0. The .deb installs with
``dpkg -i``, runs from /usr/bin/relay and is removed without leaving files behind.

From a clean checkout (rm -rf build dist) ``./setup.sh bundle`` took 7 min 46 s on the loaded
2-core machine (PyInstaller about 3 min, the .deb 1.5 min, lintian 3.5 min), these tests then
1 min; ``./setup.sh bundle`` reuses a bundle built from the same inputs (dist/.stamp-bundle) and
runs lintian again only when the package layout can have changed (dist/.stamp-lintian).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import __version__
from app.net.devhub import free_port, is_available
from tests.conftest import DATA, REPO, StderrLines

pytestmark = [pytest.mark.bundle, pytest.mark.slow, pytest.mark.timeout(2400)]

BUILD_TIMEOUT = 1800  # seconds; the build from clean takes about 8 min here
RUN_TIMEOUT = 180
DIST = REPO / "dist" / "relay"


@pytest.fixture(scope="module")
def bundle() -> Path:
    """dist/relay/, built (or found up to date) by ``./setup.sh bundle``."""
    result = subprocess.run(["./setup.sh", "bundle"], cwd=REPO, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, f"./setup.sh bundle failed:\n{result.stdout}\n{result.stderr}"
    assert (DIST / "relay").is_file()
    return DIST


@pytest.fixture(scope="module")
def user_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with no Python on it: only the tools a user's machine has that Relay calls."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for tool in ("Orthanc",):
        found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if found:
            (bin_dir / tool).symlink_to(found)
    assert shutil.which("python3", path=str(bin_dir)) is None
    return str(bin_dir)


def user_env(home: Path, path: str, **extra: str) -> dict[str, str]:
    """A user's environment: no PYTHONPATH/PYTHONHOME/venv, no Python on PATH."""
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8",
           "QT_QPA_PLATFORM": "offscreen",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
           "RELAY_KEYRING": "encrypted-file", "RELAY_KEYRING_PASSPHRASE": "not-a-secret"}
    for name in ("DISPLAY", "XAUTHORITY", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra)
    return env


def run(exe: Path | str, *args: str, env: dict[str, str],
        timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True,
                            timeout=timeout, cwd=env["HOME"])
    assert result.returncode == 0, f"relay {' '.join(args)}: exit {result.returncode}\n" \
                                   f"{result.stdout}\n{result.stderr}"
    return result


def run_json(exe: Path | str, *args: str, env: dict[str, str]) -> dict:
    return json.loads(run(exe, *args, "--json", env=env).stdout)


def one_file_per_transfer_syntax() -> dict[str, Path]:
    """The first file of each transfer syntax in ../shared/data/compressed (MANIFEST.tsv)."""
    chosen: dict[str, Path] = {}
    with (DATA / "MANIFEST.tsv").open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["file"].startswith("compressed/") and row["pydicom_pixels"] == "pixels-ok":
                chosen.setdefault(row["transfer_syntax_uid"], DATA / row["file"])
    return chosen


def test_bundled_relay_prints_the_version_with_no_python_on_the_path(
        bundle: Path, tmp_path: Path, user_path: str) -> None:
    result = run(bundle / "relay", "--version", env=user_env(tmp_path, user_path))
    assert result.stdout.strip() == f"relay {__version__}"


def test_every_bundled_library_finds_what_it_links(bundle: Path) -> None:
    """A library left out by build.spec's trimming (libQt6Gui links libQt6DBus) would only fail
    when the window opens; ldd finds it at once (LD_LIBRARY_PATH as the bootloader sets it)."""
    inner = bundle / "_internal"
    libs = [p for p in inner.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    missing = {}
    for chunk in (libs[i:i + 50] for i in range(0, len(libs), 50)):
        out = subprocess.run(["ldd", *map(str, chunk)], capture_output=True, text=True,
                             env={"LD_LIBRARY_PATH": str(inner), "PATH": "/usr/bin:/bin"}).stdout
        current = ""
        for line in out.splitlines():
            if not line.startswith(("\t", " ")):
                current = line.rstrip(":")
            elif "not found" in line:
                missing.setdefault(Path(current).relative_to(inner).as_posix(), []).append(
                    line.split()[0])
    assert missing == {}


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_bundled_relay_imports_a_cd_and_decodes_every_transfer_syntax(
        bundle: Path, tmp_path: Path, user_path: str) -> None:
    env = user_env(tmp_path, user_path)
    exe = bundle / "relay"
    report = run_json(exe, "--home", str(tmp_path / "cd"), "import", str(DATA / "cd"), env=env)
    assert report["imported"] > 0 and report["failed"] == []

    syntaxes = one_file_per_transfer_syntax()
    assert len(syntaxes) >= 10, syntaxes  # deflate, big endian, JPEG x4, JPEG-LS x2, J2K x2, RLE
    home = str(tmp_path / "codecs")
    for syntax, path in sorted(syntaxes.items()):
        imported = run_json(exe, "--home", home, "import", str(path), env=env)
        assert imported["failed"] == [], (syntax, imported["failed"])
        series = imported["studies"][0]["series"][0]["series_instance_uid"]
        png = tmp_path / f"{syntax}.png"
        run(exe, "--home", home, "render", series, "--out", str(png), env=env)
        pixels = np.asarray(Image.open(png))
        assert pixels.size > 0 and pixels.std() > 0, f"{syntax}: {path.name} rendered blank"


@pytest.mark.orthanc
@pytest.mark.skipif(not is_available(), reason="needs Debian orthanc, orthanc-dicomweb")
def test_bundled_relay_sends_to_and_fetches_from_its_dev_hub(
        bundle: Path, tmp_path: Path, user_path: str) -> None:
    env = user_env(tmp_path, user_path)
    exe = bundle / "relay"
    port = free_port()
    hub = subprocess.Popen([str(exe), "--home", str(tmp_path / "hubhome"), "dev-hub",
                            "--port", str(port)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert hub.stdout is not None
        line = hub.stdout.readline()  # "local hub running at URL ..." once Orthanc answers
        assert "local hub running at" in line, line + (hub.stderr.read() if hub.stderr else "")
        url = line.split(" at ", 1)[1].split()[0]
        spoke, reader = str(tmp_path / "spoke"), str(tmp_path / "reader")
        demo = run_json(exe, "--home", spoke, "demo", "--slices", "24", env=env)
        study = demo["studies"][0]["study_instance_uid"]
        for home in (spoke, reader):
            run(exe, "--home", home, "hub", "add", "local", "--url", url, env=env)
        sent = run_json(exe, "--home", spoke, "send", study, "--hub", "local", env=env)
        assert sent["state"] == "verified", sent
        assert sent["verified"] == sent["instances"] == demo["imported"], sent
        fetched = run_json(exe, "--home", reader, "fetch", study, "--hub", "local", env=env)
        assert fetched["state"] == "verified", fetched
        assert fetched["verified"] == fetched["instances"] == demo["imported"], fetched
        listed = run_json(exe, "--home", reader, "ls", env=env)
        assert [s["study_instance_uid"] for s in listed["studies"]] == [study]
    finally:
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(timeout=60) == 0


def test_bundled_window_opens_the_demo_study_offscreen_and_quits_with_exit_0(
        bundle: Path, tmp_path: Path, user_path: str) -> None:
    env = user_env(tmp_path, user_path)
    exe = bundle / "relay"
    home = tmp_path / "home"
    demo = run_json(exe, "--home", str(home), "demo", "--slices", "24", env=env)
    # MPR as the window reformats (VTK's reslice in the bundle): a coronal 10 mm MIP slab
    series = demo["studies"][0]["series"][0]["series_instance_uid"]
    png = tmp_path / "mpr.png"
    run(exe, "--home", str(home), "render", series, "--plane", "coronal", "--slab", "10",
        "--out", str(png), env=env)
    assert np.asarray(Image.open(png)).std() > 0, "the coronal MPR slab rendered blank"
    # `relay PATH` as a double-click does: the demo's own files, already in the store
    window = subprocess.Popen([str(exe), "--home", str(home), "-v", str(home / "store")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    try:
        log = StderrLines(window).wait_for(["window shown", "study opened"], RUN_TIMEOUT)
        assert "Traceback" not in log, log
        window.send_signal(signal.SIGTERM)  # as a desktop session ending does
        assert window.wait(timeout=60) == 0
    finally:
        if window.poll() is None:
            window.kill()
            window.wait()


@pytest.fixture
def installed_deb(bundle: Path) -> Iterator[Path]:
    """The .deb installed with dpkg -i (root only; never over a relay the machine already has)."""
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root")
    if subprocess.run(["dpkg-query", "-W", "relay"], capture_output=True).returncode == 0:
        pytest.skip("a relay package is already installed on this machine; not touching it")
    debs = sorted(bundle.parent.glob("relay_*.deb"))
    assert len(debs) == 1, debs
    result = subprocess.run(["dpkg", "-i", str(debs[0])], capture_output=True, text=True,
                            timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield debs[0]
    finally:
        subprocess.run(["dpkg", "--purge", "relay"], capture_output=True, timeout=600)


def test_deb_installs_runs_from_usr_bin_and_removes_cleanly(
        installed_deb: Path, tmp_path: Path, user_path: str) -> None:
    files = subprocess.run(["dpkg-query", "-L", "relay"], capture_output=True, text=True,
                           check=True).stdout.split()
    for wanted in ("/opt/relay/relay", "/usr/bin/relay", "/usr/share/applications/relay.desktop",
                   "/usr/share/mime/packages/relay.xml",
                   "/usr/share/icons/hicolor/scalable/apps/relay.svg",
                   "/usr/share/icons/hicolor/48x48/apps/relay.png"):
        assert wanted in files
    env = user_env(tmp_path, user_path)
    assert run("/usr/bin/relay", "--version", env=env).stdout.strip() == f"relay {__version__}"
    home = str(tmp_path / "home")
    assert run_json("/usr/bin/relay", "--home", home, "ls", env=env) == {"studies": []}

    removed = subprocess.run(["dpkg", "--purge", "relay"], capture_output=True, text=True,
                             timeout=600)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not Path("/opt/relay").exists()
    assert not Path("/usr/bin/relay").exists() and not Path("/usr/bin/relay").is_symlink()
    assert [f for f in files if Path(f).is_file()] == []
