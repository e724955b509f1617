"""Rebuilding a lost or corrupted store index from the stored files (``relay reindex``).

The old index (and its WAL and shared-memory files) is kept aside as ``index.sqlite.corrupt``
(``index.sqlite.N.corrupt`` when that name is taken), never deleted. A fresh index is then filled
by passing every file under ``store/objects`` through the one ingest path
(:func:`app.store.check.stage_file` + :meth:`Store.commit`), oldest file first so the instance
stored first stays the instance and a later file with the same SOP Instance UID and other bytes
is listed as a conflict again. Files that are not DICOM are left in place and reported.
What the files cannot tell is lost: which instance an outside original superseded (both files
come back, the older one as the instance) and when each study was first received (the rebuild's time
is recorded).

Run it with no other Relay process using the same home.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import StoreError
from app.imports.media import Problem
from app.store import lock
from app.store.check import object_files, stage_file
from app.store.ingest import Duplicate
from app.store.local import Store, StoredFile

log = logging.getLogger(__name__)

#: Files indexed per transaction.
BATCH = 200
INDEX_NAME = "index.sqlite"


@dataclass(frozen=True)
class ReindexReport:
    """What a rebuild did: files indexed, conflicts, files that are not DICOM, the old index."""

    indexed: int
    duplicates: int
    conflicts: int
    problems: tuple[str, ...]
    kept_aside: str | None

    def to_json(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "duplicates": self.duplicates,
                "conflicts": self.conflicts, "problems": list(self.problems),
                "kept_aside": self.kept_aside}


def set_aside(home: Path) -> Path | None:
    """Rename the index and its -wal/-shm files to ``*.corrupt``; return the new index path."""
    index = home / INDEX_NAME
    if not index.exists():
        for suffix in ("-wal", "-shm"):  # a WAL without its database is of no use
            (home / f"{INDEX_NAME}{suffix}").unlink(missing_ok=True)
        return None
    target = home / f"{INDEX_NAME}.corrupt"
    n = 1
    while target.exists():
        target = home / f"{INDEX_NAME}.{n}.corrupt"
        n += 1
    try:
        for suffix in ("-wal", "-shm"):
            side = home / f"{INDEX_NAME}{suffix}"
            if side.exists():
                os.replace(side, f"{target}{suffix}")
        os.replace(index, target)
    except OSError as exc:
        raise StoreError(f"cannot set the old index aside in {home}: "
                         f"{exc.strerror or exc}") from exc
    log.info("old store index kept as %s", target.name)
    return target


def rebuild_index(home: Path) -> ReindexReport:
    """Set the old index aside and index every stored file again, holding the store alone
    (:func:`app.store.lock.exclusive`: refused plainly while another Relay has it open)."""
    with lock.exclusive(home, "relay reindex"):
        return _rebuild(home)


def _rebuild(home: Path) -> ReindexReport:
    kept = set_aside(home)
    store = Store(home)
    try:
        paths = sorted((store.abspath(rel) for rel in object_files(store)), key=_mtime)
        indexed = duplicates = conflicts = 0
        problems: list[str] = []
        batch: list[StoredFile] = []

        def flush() -> None:
            nonlocal indexed, duplicates, conflicts
            statuses = store.commit(batch)
            indexed += statuses.count("imported")
            duplicates += statuses.count("duplicate")
            conflicts += statuses.count("conflict")
            batch.clear()

        for path in paths:
            try:
                staged = stage_file(store, path)
            except OSError as exc:
                problems.append(f"{path.name}: {exc.strerror or exc}")
                continue
            if isinstance(staged, Problem):
                problems.append(f"{path.name}: {staged.reason}")
            elif isinstance(staged, Duplicate):
                duplicates += 1
            else:
                batch.append(staged)
                if len(batch) >= BATCH:
                    flush()
        if batch:
            flush()
    finally:
        store.close()
    log.info("store index rebuilt: %d indexed, %d conflicts, %d not DICOM",
             indexed, conflicts, len(problems))
    return ReindexReport(indexed, duplicates, conflicts, tuple(problems),
                         str(kept) if kept else None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
