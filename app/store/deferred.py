"""Index rows of received instances made durable in batches, and recovered after a crash.

A C-STORE's success is a promise that the instance is safe: its file is fsync'ed and renamed
into place, and its folder fsync'ed, before the answer goes back. Its index row is committed
then too (duplicates and conflicts are known at once), but without waiting for the disk: the
rows of a batch are made durable together (:meth:`DeferredIndex.flush`, one fsync of the
index's write-ahead log instead of one per instance). While rows may be missing after a power
cut, a marker ``store/unindexed-<pid>`` is on the disk; a store opened after such a cut (its
writer gone) indexes the files no row names, through the one ingest path
(:func:`app.store.check.index_orphans`), and removes the marker.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from app.store.db import pid_alive
from app.store.local import Store, StoredFile

log = logging.getLogger(__name__)

#: Instances whose index rows may wait for the disk together (a flush every so many).
BATCH = 64
_PREFIX = "unindexed-"


class DeferredIndex:
    """Commits index rows for one store without waiting for the disk; thread-safe."""

    def __init__(self, store: Store, batch: int = BATCH) -> None:
        self.store = store
        self.batch = batch
        self.marker = store.root / f"{_PREFIX}{os.getpid()}"
        self._lock = threading.Lock()
        self._pending = 0

    def commit(self, files: Sequence[StoredFile], synced: bool = False) -> list[str]:
        """:meth:`Store.commit` of files already durably in place, the rows made durable with
        the batch (a marker on the disk until then); ``synced``: their folders are too."""
        with self._lock:  # a flush covers every row committed before it
            if not self._pending:
                self._raise_marker()
            statuses = self.store.commit(files, synced=synced, durable=False)
            self._pending += len(files)
            if self._pending >= self.batch:
                self._flush()
        return statuses

    def flush(self) -> None:
        """Make the rows committed so far durable (an association ended, the node stops)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        self.store.sync_index()
        self._pending = 0
        self.marker.unlink(missing_ok=True)  # lost in a crash: one needless recovery

    def _raise_marker(self) -> None:
        fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.store.sync_dirs([self.marker.name])  # its folder: the store's root


def recover(store: Store) -> int:
    """After a crash of a process that left index rows waiting: index the files no row names;
    the number indexed. Markers of live processes are theirs."""
    left = [m for m in store.root.glob(f"{_PREFIX}*")
            if not (m.name[len(_PREFIX):].isdigit() and pid_alive(int(m.name[len(_PREFIX):])))]
    if not left:
        return 0
    from app.store.check import index_orphans

    indexed = index_orphans(store)
    for marker in left:
        marker.unlink(missing_ok=True)
    log.info("store: %d received instance(s) indexed again after a crash", len(indexed))
    return len(indexed)
