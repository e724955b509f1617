"""Index rows of received instances made durable by batch (app/store/deferred.py): a marker is
on the disk while rows may wait; a store opened after the writer died indexes the files no row
names; a live writer's marker is left alone; a flush makes the rows durable and drops it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.dicom.synth import SeriesSpec, generate_series
from app.store.deferred import DeferredIndex
from app.store.ingest import stage_bytes
from app.store.local import Store, StoredFile


def _ct(tmp_path: Path, n: int) -> list[Path]:
    return generate_series(tmp_path / "ct", SeriesSpec(slices=n, rows=32, columns=32, seed=9))


def _staged(store: Store, path: Path) -> StoredFile:
    staged = stage_bytes(store, path.read_bytes(), path.name)
    assert isinstance(staged, StoredFile)
    store.sync_dirs([staged.relpath])
    return staged


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_rows_wait_under_a_marker_until_the_batch_is_flushed(home: Path, tmp_path: Path):
    store = Store(home)
    index = DeferredIndex(store, batch=3)
    files = [_staged(store, p) for p in _ct(tmp_path, 4)]
    assert index.commit(files[:1]) == ["imported"]
    assert index.marker.exists()  # durable before the first answer of the batch
    assert index.commit(files[1:2]) == ["imported"]
    assert index.commit(files[:1]) == ["duplicate"]  # seen at once, before any flush
    assert not index.marker.exists()  # three rows: flushed
    assert index.commit(files[2:3]) == ["imported"]
    assert index.marker.exists()
    index.flush()
    assert not index.marker.exists()
    assert store.counts()["instances"] == 3


def test_files_whose_rows_a_power_cut_lost_are_indexed_when_the_store_opens(home, tmp_path):
    store = Store(home)
    files = [_staged(store, p) for p in _ct(tmp_path, 3)]  # durably in place, no rows
    store.commit(files[:1])
    store.close()
    (home / "store" / f"unindexed-{_dead_pid()}").touch()
    reopened = Store(home)
    assert reopened.counts()["instances"] == 3
    for f in files:
        assert reopened.instance(f.header.instance.sop_instance_uid) is not None
    assert not list((home / "store").glob("unindexed-*"))


def test_a_live_writers_marker_is_left_alone(home, tmp_path):
    store = Store(home)
    index = DeferredIndex(store)
    staged = _staged(store, _ct(tmp_path, 1)[0])  # placed, its row about to be committed
    index._raise_marker()
    other = Store(home)  # another process or thread opening the store meanwhile
    assert other.counts()["instances"] == 0
    assert index.commit([staged]) == ["imported"]  # not a duplicate of a recovery's row
    index.flush()
