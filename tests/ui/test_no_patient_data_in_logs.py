"""No patient identifier in any log, stderr, settings or queue file (issue 14).

A study whose patient name, ID and birth date are unique markers is imported, sent, fetched
(command line, most verbose logging, stderr kept) and opened in the window, locally and from the
hub (in this process, every logger at DEBUG into a file). Then every log, every stderr and every
file of the three homes outside the store itself (settings, secrets, queue, audit, temp) is
searched for the markers, in the encodings they could take (as given, DICOM PN components,
upper case, JSON-escaped, ISO date).
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.store.local import Store
from tests.conftest import relay_cmd, relay_env
from tests.net.conftest import add_hub, hub, no_system_keyring  # noqa: F401
from tests.ui.conftest import shown_window

pytestmark = pytest.mark.orthanc

NAME = "Qzmarkfamily^Qzmarkgiven"
PATIENT_ID = "PIDQZ7731MARK"
BIRTH = "19030417"
MARKERS = ("Qzmarkfamily", "Qzmarkgiven", PATIENT_ID, BIRTH, "1903-04-17", "17.04.1903")


def _relay(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI at its most verbose (-vv: DEBUG, pydicom's messages included)."""
    return subprocess.run(relay_cmd("-vv", "--home", str(home), *args), capture_output=True,
                          text=True, timeout=600, env=relay_env())


def _found(blob: bytes) -> list[str]:
    text = blob.decode("latin-1").lower()
    return [m for m in MARKERS if m.lower() in text]


def _home_files(home: Path) -> list[Path]:
    """Every file of a home except the stored objects and their index (which hold the study by
    design): settings, secrets, queue, audit log, temp and part files, caches."""
    store = home / "store"
    index = {p for p in home.rglob("*") if p.name.startswith("index.")}
    return sorted(p for p in home.rglob("*") if p.is_file() and p not in index
                  and store not in p.parents)


def test_no_patient_identifier_in_any_log_stderr_settings_or_queue(
        qtbot, hub, tmp_path: Path) -> None:  # noqa: F811
    files = generate_series(tmp_path / "src", SeriesSpec(
        slices=24, rows=64, columns=64, seed=31, patient_name=NAME, patient_id=PATIENT_ID,
        patient_birth_date=BIRTH))
    log_file = tmp_path / "window.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    homes = [tmp_path / n for n in ("spoke", "hub-reader", "remote-reader")]
    for h in homes:
        h.mkdir()
    stderr: list[tuple[str, str]] = []
    try:
        spoke, reader, remote = homes
        steps = [
            (spoke, ("import", str(tmp_path / "src"), "--json")),
            (spoke, ("ls", "--json")),
        ]
        for home, args in steps:
            proc = _relay(home, *args)
            assert proc.returncode == 0, proc.stderr
            stderr.append((args[0], proc.stderr))
        study = json.loads(_relay(spoke, "ls", "--json").stdout)["studies"][0]
        uid = study["study_instance_uid"]
        assert study["patient_id"] == PATIENT_ID  # the markers are really in the study
        for home in homes:
            assert add_hub(home, hub.url).returncode == 0
        for home, args in [(spoke, ("send", uid, "--hub", "hub", "--json")),
                           (reader, ("fetch", uid, "--hub", "hub", "--json")),
                           (spoke, ("queue", "--json"))]:
            proc = _relay(home, *args)
            assert proc.returncode == 0, proc.stderr
            stderr.append((args[0], proc.stderr))

        window = shown_window(qtbot, reader, 1000, 700)
        viewer = window.open_study(uid)
        vp = viewer.viewports[0]
        qtbot.waitUntil(lambda: vp.volume is not None and vp.volume.finished, timeout=60_000)
        window.close()

        window = shown_window(qtbot, remote, 1000, 700)
        viewer = window.open_remote_study("hub", uid)
        vp = viewer.viewports[0]
        qtbot.waitUntil(lambda: vp.volume is not None and vp.image.image is not None,
                        timeout=60_000)
        qtbot.waitUntil(lambda: not window._openers, timeout=60_000)
        assert len(Store(remote).instances(vp.session.series.series_instance_uid)) == len(files)
        window.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()

    assert log_file.stat().st_size > 0 and any(e for _, e in stderr)  # logging was on
    leaks = {f"stderr of relay {what}": _found(err.encode()) for what, err in stderr}
    leaks["window log"] = _found(log_file.read_bytes())
    scanned = [p for h in homes for p in _home_files(h)]
    assert any(p.name.startswith("settings") for p in scanned), scanned
    assert any(p.name.startswith("transfers.") for p in scanned), scanned  # the queue
    leaks.update({str(p.relative_to(tmp_path)): _found(p.read_bytes()) for p in scanned})
    assert {k: v for k, v in leaks.items() if v} == {}
