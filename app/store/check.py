"""Verifying the local store against its index (``relay check``).

Every file the index names (instances, conflicts, superseded) is hashed and compared with its
recorded SHA-256: a file that is gone is *missing*, one whose bytes changed is *altered*. Files
under ``store/objects`` that no row names are *orphans* (left by a disk-full or a crash between
the rename and the index commit). With ``repair``, orphans that read as valid DICOM are indexed
through the store's one ingest path (:func:`app.store.ingest.stage_bytes` + :meth:`Store.commit`),
the others are removed, and rows whose file is missing are dropped (with the series and studies
left empty). Altered files are reported, never touched: only the user can say which copy is
right.
"""

from __future__ import annotations

import logging
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.imports.media import Problem
from app.store.ingest import Duplicate, Staged, stage_bytes
from app.store.local import Store, sha256_file

log = logging.getLogger(__name__)

#: Tables whose rows name a stored file (``path`` relative to ``store/``).
_FILE_TABLES = ("instances", "conflicts", "superseded")


@dataclass(frozen=True)
class CheckReport:
    """What ``relay check`` found (relpaths under ``store/``) and, with repair, what it did."""

    checked: int
    missing: tuple[str, ...]
    altered: tuple[str, ...]
    orphans: tuple[str, ...]
    indexed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    dropped_rows: int = 0
    errors: tuple[str, ...] = field(default=())

    @property
    def sound(self) -> bool:
        return not (self.missing or self.altered or self.orphans or self.errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "sound": self.sound, "checked": self.checked, "missing": list(self.missing),
            "altered": list(self.altered), "orphans": list(self.orphans),
            "indexed": list(self.indexed), "removed": list(self.removed),
            "dropped_rows": self.dropped_rows, "errors": list(self.errors),
        }


def check_store(store: Store, *, repair: bool = False) -> CheckReport:
    """Hash every indexed file, list orphans; with ``repair``, fix what can be fixed."""
    rows = _indexed_files(store)
    missing: list[str] = []
    altered: list[str] = []
    errors: list[str] = []
    for relpath, sha256 in sorted(rows.items()):
        path = store.abspath(relpath)
        try:
            if sha256_file(path) != sha256:
                altered.append(relpath)
        except FileNotFoundError:
            missing.append(relpath)
        except OSError as exc:
            errors.append(f"{relpath}: {exc.strerror or exc}")
    orphans = [rel for rel in object_files(store) if rel not in rows]
    log.info("store check: %d files, %d missing, %d altered, %d orphans",
             len(rows), len(missing), len(altered), len(orphans))
    report = CheckReport(len(rows), tuple(missing), tuple(altered), tuple(orphans),
                         errors=tuple(errors))
    if not repair:
        return report
    indexed, removed = _adopt_orphans(store, orphans)
    dropped = _drop_rows(store, missing)
    return CheckReport(len(rows), tuple(missing), tuple(altered), tuple(orphans),
                       tuple(indexed), tuple(removed), dropped, tuple(errors))


def index_orphans(store: Store) -> list[str]:
    """Index the files under ``store/objects`` that no row names (after a crash between
    their rename and their index row), without hashing the indexed ones; the ones indexed."""
    rows = _indexed_files(store)
    indexed, _removed = _adopt_orphans(store, [r for r in object_files(store) if r not in rows])
    return indexed


def stage_file(store: Store, path: Path) -> Staged:
    """A file already under ``store/objects`` through the ingest path (mapped, not copied)."""
    if path.stat().st_size == 0:
        return Problem(path.name, "empty file", "skipped")
    with open(path, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return stage_bytes(store, buf, path.name)


def _indexed_files(store: Store) -> dict[str, str]:
    conn = store.connection()
    files: dict[str, str] = {}
    for table in _FILE_TABLES:
        for path, sha256 in conn.execute(f"SELECT path, sha256 FROM {table}"):
            files[str(path)] = str(sha256)
    return files


def object_files(store: Store) -> list[str]:
    found: list[str] = []
    for dirpath, _dirs, names in os.walk(store.objects):
        for name in names:
            found.append(Path(dirpath, name).relative_to(store.root).as_posix())
    return sorted(found)


def _adopt_orphans(store: Store, orphans: list[str]) -> tuple[list[str], list[str]]:
    """Index the orphans that are DICOM (through the ingest path); remove the rest."""
    indexed: list[str] = []
    removed: list[str] = []
    for relpath in orphans:
        path = store.abspath(relpath)
        try:
            staged = stage_file(store, path)
        except OSError as exc:
            log.warning("orphan %s unreadable: %s", path.name, exc.strerror)
            continue
        if isinstance(staged, Problem):
            log.info("orphan %s is not a valid DICOM file (%s): removed", path.name, staged.reason)
            path.unlink(missing_ok=True)
            removed.append(relpath)
            continue
        if isinstance(staged, Duplicate):  # the same bytes are indexed under their own name
            path.unlink(missing_ok=True)
            removed.append(relpath)
            continue
        store.commit([staged])
        indexed.append(staged.relpath)
        if staged.relpath != relpath:  # placed under its content-hash name: drop this copy
            path.unlink(missing_ok=True)
    return indexed, removed


def _drop_rows(store: Store, missing: list[str]) -> int:
    """Remove the rows naming missing files, then series and studies left empty."""
    if not missing:
        return 0
    dropped = 0
    with store.transaction() as conn:
        for relpath in missing:
            for table in _FILE_TABLES:
                dropped += conn.execute(f"DELETE FROM {table} WHERE path=?", (relpath,)).rowcount
        conn.execute("DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM instances i "
                     "WHERE i.series_instance_uid=series.series_instance_uid)")
        conn.execute("DELETE FROM studies WHERE NOT EXISTS (SELECT 1 FROM series s "
                     "WHERE s.study_instance_uid=studies.study_instance_uid)")
    log.info("store check: %d index rows naming missing files removed", dropped)
    return dropped
