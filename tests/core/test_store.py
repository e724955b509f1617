"""The store: byte-exact files, conflicts, cancel, and an import killed half-way (SIGKILL)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.store.local import Store
from app.tasks import Progress
from tests.conftest import relay_cmd, relay_env


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ct"
    generate_series(out, SeriesSpec(slices=300, rows=128, columns=128, pixel_spacing=1.8,
                                    slice_step=0.6, noise_hu=0))
    return out


def _indexed(home: Path) -> int:
    db = home / "index.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _check_consistent(store: Store) -> None:
    """Every indexed file exists with its recorded hash; nothing half-written remains."""
    conn = sqlite3.connect(store.db_path)
    rows = conn.execute("SELECT path, sha256, size FROM instances").fetchall()
    for rel, sha, size in rows:
        data = (store.root / rel).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha
    assert list(store.tmp.iterdir()) == []
    dup = conn.execute(
        "SELECT COUNT(*) - COUNT(DISTINCT sop_instance_uid) FROM instances").fetchone()[0]
    assert dup == 0


def test_files_are_kept_byte_exact(series_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    import_paths(store, [str(series_dir)])
    for src in sorted(series_dir.iterdir())[:20]:
        uid = pydicom.dcmread(src, stop_before_pixels=True).SOPInstanceUID
        inst = store.instance(uid)
        assert inst is not None and inst.path is not None
        assert inst.path.read_bytes() == src.read_bytes()
        assert inst.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()


def test_conflict_keeps_both_files(series_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    src = sorted(series_dir.iterdir())[0]
    first = import_paths(store, [str(src)])
    changed = pydicom.dcmread(src)
    changed.SeriesDescription = "edited elsewhere"
    other = tmp_path / "changed.dcm"
    changed.save_as(other)
    second = import_paths(store, [str(other)])
    assert (first.imported, second.imported, second.conflicts) == (1, 0, 1)
    conflicts = store.conflicts()
    assert len(conflicts) == 1 and Path(conflicts[0]["path"]).read_bytes() == other.read_bytes()
    assert store.instance(changed.SOPInstanceUID).path.read_bytes() == src.read_bytes()
    again = import_paths(store, [str(other), str(src)])
    assert (again.duplicates, again.conflicts) == (2, 0)


def test_cancel_leaves_a_consistent_store(series_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    progress = Progress()
    progress.subscribe(lambda s: progress.cancel() if s.done >= 40 else None)
    report = import_paths(store, [str(series_dir)], progress)
    assert report.cancelled
    assert 40 <= report.imported < 300
    assert store.counts()["instances"] == report.imported
    _check_consistent(store)
    rest = import_paths(store, [str(series_dir)])
    assert rest.imported + report.imported == 300


def test_import_killed_with_sigkill_then_completed(series_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen(relay_cmd("import", str(series_dir), "--home", str(home), "--json"),
                            env=relay_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _indexed(home) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = _indexed(home)
    assert 0 < done_before < 300, "the kill should land in the middle of the import"

    store = Store(home)  # opening cleans what the killed writer left in tmp/
    _check_consistent(store)
    report = import_paths(store, [str(series_dir)])
    assert report.failed == []
    assert report.imported == 300 - done_before
    assert report.duplicates == done_before
    assert store.counts()["instances"] == 300
    _check_consistent(store)
    # every stored object is indexed: files renamed into place before the kill were adopted
    on_disk = {p.name for p in store.objects.rglob("*.dcm")}
    indexed = {os.path.basename(r[0]) for r in sqlite3.connect(store.db_path).execute(
        "SELECT path FROM instances")}
    assert on_disk == indexed


def test_patient_studies_are_found_by_patient_id(tmp_path: Path) -> None:
    for n, (patient, study) in enumerate([("P1", "1.2.826.0.1.3680043.8.498.1"),
                                          ("P1", "1.2.826.0.1.3680043.8.498.2"),
                                          ("P2", "1.2.826.0.1.3680043.8.498.3")]):
        generate_series(tmp_path / f"s{n}", SeriesSpec(
            slices=2, rows=16, columns=16, patient_id=patient, study_instance_uid=study, seed=n))
    store = Store(tmp_path / "home")
    import_paths(store, [str(tmp_path / f"s{n}") for n in range(3)])
    assert sorted(s.study_instance_uid for s in store.patient_studies("P1")) == [
        "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"]
    assert [s.patient.patient_id for s in store.patient_studies("P2")] == ["P2"]
    assert store.patient_studies("") == [] and store.patient_studies("nobody") == []


def _institutions(store: Store) -> dict[str, str]:
    return {s.study_instance_uid: s.institution_name for s in store.studies()}


def test_institution_name_is_indexed_and_migrated_into_an_old_index(data: Path,
                                                                     tmp_path: Path) -> None:
    head = data / "ct-head" / "philips-ingenuity-headphantom-std-1mm"
    bigendian = data / "compressed" / "big-endian" / "MR_small_bigendian.dcm"  # read by pydicom
    home = tmp_path / "home"
    store = Store(home)
    import_paths(store, [str(head), str(bigendian)])
    want = {pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID:
            pydicom.dcmread(p, stop_before_pixels=True).InstitutionName
            for p in (head / "I10", bigendian)}
    assert want and all(want.values())
    assert _institutions(store) == want
    store.close()

    # The index as schema 1 wrote it: no institution column, schema_version 1.
    conn = sqlite3.connect(home / "index.sqlite")
    conn.execute("ALTER TABLE studies DROP COLUMN institution_name")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    old = Store(home)
    assert _institutions(old) == want  # filled from the stored files, once, at open
    assert old._connect().execute(
        "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    import_paths(old, [str(data / "mr-brain" / "philips-elition-3dpcasl-perfusion")])
    assert len(old.studies()) > len(want)  # the migrated index takes new imports
    old.close()
    assert _institutions(Store(home)) == _institutions(old)
