"""``relay check [--repair]``: stored files verified against the index (issue 14, finding 10).

The real CLI runs in a subprocess on a real store (files imported from ../shared/data)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.imports.importer import import_paths
from app.store.local import Store
from tests.conftest import run_relay

pytestmark = pytest.mark.usefixtures("data")


def _relay(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)


def _check(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    run = _relay(home, "check", "--json", *args)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def _store(home: Path, data: Path) -> Store:
    store = Store(home)
    assert import_paths(store, [str(data / "cd" / "pydicom-dicomdirtests")]).imported == 31
    return store


def test_a_sound_store_checks_clean_with_exit_0(home, data) -> None:
    _store(home, data).close()
    code, found = _check(home)
    assert code == 0
    assert found["sound"] is True and found["checked"] == 31
    assert found["missing"] == found["altered"] == found["orphans"] == []


def test_check_finds_altered_missing_and_orphan_files_and_repair_fixes_them(home, data) -> None:
    store = _store(home, data)
    instances = [i for s in store.studies() for se in s.series
                 for i in store.instances(se.series_instance_uid)]
    altered, gone = instances[0], instances[1]
    raw = bytearray(altered.path.read_bytes())
    raw[-1] ^= 0xFF  # one flipped byte in the pixel data
    altered.path.write_bytes(bytes(raw))
    gone.path.unlink()
    # An object written before a disk-full, never indexed: a real DICOM under its hash name.
    outside = next((data / "ct-head").rglob("*.dcm"))
    body = outside.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    dicom_orphan = store.objects / digest[:2] / f"{digest}.dcm"
    dicom_orphan.parent.mkdir(exist_ok=True)
    shutil.copyfile(outside, dicom_orphan)
    junk = store.objects / "zz" / "junk.dcm"
    junk.parent.mkdir()
    junk.write_bytes(b"not a DICOM file at all" * 10)
    store.close()
    rel = lambda p: p.relative_to(home / "store").as_posix()  # noqa: E731

    code, found = _check(home)
    assert code == 1 and found["sound"] is False
    assert found["altered"] == [rel(altered.path)]
    assert found["missing"] == [rel(gone.path)]
    assert found["orphans"] == sorted([rel(dicom_orphan), rel(junk)])
    assert dicom_orphan.exists() and junk.exists()  # without --repair nothing changes

    code, found = _check(home, "--repair")
    assert code == 1
    assert found["indexed"] == [rel(dicom_orphan)] and found["removed"] == [rel(junk)]
    assert found["dropped_rows"] == 1
    assert not junk.exists() and dicom_orphan.exists()

    store = Store(home)
    assert store.instance(gone.sop_instance_uid) is None
    assert store.has_instance(_sop_uid(dicom_orphan), digest)
    assert store.instance(altered.sop_instance_uid) is not None  # altered: reported, kept
    store.close()

    code, found = _check(home)
    assert code == 1  # the altered file is still there: only the user can decide
    assert found["altered"] == [rel(altered.path)]
    assert found["missing"] == found["orphans"] == []
    altered.path.write_bytes(bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF])))
    assert _check(home)[0] == 0


def _sop_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _ls(home: Path) -> dict[str, Any]:
    run = _relay(home, "ls", "--json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_reindex_rebuilds_a_lost_or_corrupted_index_from_the_files(home, data, damage) -> None:
    store = _store(home, data)
    before = _ls(home)
    store.close()
    index = home / "index.sqlite"
    for side in (home / "index.sqlite-wal", home / "index.sqlite-shm"):
        side.unlink(missing_ok=True)
    garbage = b"\x00garbage, not an SQLite file\xff" * 300
    if damage == "deleted":
        index.unlink()
    else:
        index.write_bytes(garbage)
    junk = home / "store" / "objects" / "zz" / "junk.bin"
    junk.parent.mkdir()
    junk.write_bytes(b"no DICOM here" * 20)

    run = _relay(home, "reindex", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["indexed"] == 31 and report["conflicts"] == 0
    assert len(report["problems"]) == 1 and "junk.bin" in report["problems"][0]
    assert junk.exists()  # reindex never deletes a stored file
    if damage == "garbage":
        assert report["kept_aside"] == str(home / "index.sqlite.corrupt")
        assert (home / "index.sqlite.corrupt").read_bytes() == garbage
    else:
        assert report["kept_aside"] is None
    after = _ls(home)
    strip = lambda studies: sorted(  # noqa: E731
        json.dumps({k: v for k, v in s.items() if k not in ("added_at", "received_at")},
                   sort_keys=True) for s in studies["studies"])
    assert strip(after) == strip(before)
    junk.unlink()
    assert _check(home)[0] == 0


def _plain_failure(run: subprocess.CompletedProcess[str], *words: str) -> None:
    """A non-zero exit with one plain sentence on stderr, never a traceback."""
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("relay: ") and "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _damaged_index(home: Path, data: Path, damage: str) -> None:
    _store(home, data).close()
    index = home / "index.sqlite"
    with sqlite3.connect(index) as conn:  # every row into the main file, then damage it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for side in (home / "index.sqlite-wal", home / "index.sqlite-shm"):
        side.unlink(missing_ok=True)
    assert index.stat().st_size > 4096
    if damage == "garbage":
        index.write_bytes(b"\xde\xad\xbe\xef garbage" * 2000)
    else:  # a valid header, then garbage pages: found only when a query reads them
        raw = bytearray(index.read_bytes())
        raw[4096:] = b"\xa5" * (len(raw) - 4096)
        index.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["garbage", "pages"])
@pytest.mark.parametrize("command", ["ls", "import"])
def test_a_damaged_index_gives_one_plain_sentence(home, data, damage, command) -> None:
    _damaged_index(home, data, damage)
    args = ["ls"] if command == "ls" else ["import", str(data / "ct-head")]
    _plain_failure(_relay(home, *args), "damaged", "relay reindex")


def _read_only(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run relay with ``home`` bind-mounted read-only in a private mount namespace."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no user/mount namespaces here (unshare -rm) to make a read-only mount")
    script = ('mount --bind -o ro "$1" "$1" && shift && exec "$@"')
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(home), sys.executable, "-m", "app",
         "--home", str(home), *args], capture_output=True, text=True, timeout=120)


def test_a_read_only_store_refuses_an_import_in_one_plain_sentence(home, data) -> None:
    _store(home, data).close()
    _plain_failure(_read_only(home, "import", str(data / "ct-head")), "read-only", str(home))


def test_a_read_only_store_is_listed_from_its_index_as_it_is(home, data) -> None:
    _store(home, data).close()
    expected = json.loads(run_relay("--home", str(home), "ls", "--json").stdout)
    listed = _read_only(home, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == expected
    assert "cannot be written" in listed.stderr and "Traceback" not in listed.stderr
