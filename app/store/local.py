"""The local store: DICOM files kept byte-exact, indexed in SQLite.

Layout under the Relay home::

    index.sqlite            the index (WAL, synchronous=FULL)
    store/objects/ab/<sha256>.dcm   files, named by the SHA-256 of their bytes
    store/tmp/<pid>-<uuid>.part     files being written

A file is written to ``tmp``, fsync'ed, renamed into ``objects`` and its folder fsync'ed before
its row enters the index, so after a crash the index never names a file that is not complete.
Writing is idempotent (the name is the content hash): an import killed after the rename but
before the index commit is completed by importing again. An SOP Instance UID already stored with
the same bytes is a duplicate (nothing written); with different bytes it is a conflict: both
files are kept, the first stays the instance, the other is listed in ``conflicts``.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import mmap
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.errors import StoreError, StoreFull
from app.home import make_private
from app.model import Header, Instance, Patient, Series, Study
from app.store import instances as instance_rows
from app.store import lock
from app.store.db import ThreadConnections, immediate, pid_alive
from app.store.instances import ImageRow

log = logging.getLogger(__name__)

#: 2 added studies.institution_name (filled for older stores at open, see _migrate).
SCHEMA_VERSION = 2
#: Studies whose Institution Name is read back from a stored file when an older index is opened.
MIGRATE_MAX_STUDIES = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    study_instance_uid TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    patient_birth_date TEXT NOT NULL DEFAULT '',
    patient_sex TEXT NOT NULL DEFAULT '',
    issuer_of_patient_id TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL,
    institution_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS series (
    series_instance_uid TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    series_number INTEGER,
    modality TEXT NOT NULL DEFAULT '',
    series_description TEXT NOT NULL DEFAULT '',
    body_part_examined TEXT NOT NULL DEFAULT '',
    frame_of_reference_uid TEXT NOT NULL DEFAULT '',
    series_date TEXT NOT NULL DEFAULT '',
    series_time TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS series_by_study ON series(study_instance_uid);
CREATE INDEX IF NOT EXISTS studies_by_patient ON studies(patient_id);
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    series_instance_uid TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    instance_number INTEGER,
    acquisition_number INTEGER,
    image_type TEXT NOT NULL DEFAULT '',
    image TEXT,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_by_series ON instances(series_instance_uid);
CREATE TABLE IF NOT EXISTS superseded (
    sop_instance_uid TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    superseded_at REAL NOT NULL,
    PRIMARY KEY (sop_instance_uid, sha256)
);
CREATE TABLE IF NOT EXISTS conflicts (
    sop_instance_uid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (sop_instance_uid, sha256)
);
-- files whose index rows are gone and which are being removed (a deletion's journal: the rows
-- and these names change in one transaction; a deletion killed half-way is finished on the next
-- open, so the store never keeps files nobody names)
CREATE TABLE IF NOT EXISTS pending_deletes (
    path TEXT PRIMARY KEY
);
"""


@dataclass(frozen=True)
class StoredFile:
    """A file durably in the store, not yet in the index."""

    header: Header
    sha256: str
    size: int
    relpath: str


class Store:
    """The local store under ``home``; safe to use from several threads and processes."""

    def __init__(self, home: Path, *, read_only: bool = False) -> None:
        """Open (or make) the store under ``home``. ``read_only``: only read an existing store
        (on a read-only disk or folder): nothing is written, not even the index's journal."""
        self.home = Path(home)
        self.read_only = read_only
        self.root = self.home / "store"
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.db_path = self.home / "index.sqlite"
        self._part_token = uuid.uuid4().hex
        self._part_numbers = itertools.count()
        self._db = ThreadConnections(self.db_path, read_only=read_only)
        self._lock: IO[bytes] | None = None
        if read_only:
            if not self.db_path.is_file():
                raise StoreError(f"there is no Relay store at {self.home}")
            self._connect()
            return
        make_private(self.home)
        if not self.writable(self.home):
            raise StoreError(f"the store at {self.home} is read-only: Relay needs to write "
                             f"to its store (check the disk and folder permissions)")
        self._lock = lock.shared(self.home)  # released by close() or with the object
        for folder in (self.objects, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._init_db()
        self._clean_tmp()
        self._finish_deletes()
        if any(self.root.glob("unindexed-*")):  # a receiving process crashed (cheap look)
            from app.store.deferred import recover

            recover(self)

    @functools.cached_property
    def uid_key(self) -> bytes:
        """This home's secret for UIDs made here (the one de-identification uses), made on
        first use; empty for a store opened read-only that has none yet."""
        from app.workflow.uids import KEY_FILE, store_key

        if self.read_only and not (self.home / KEY_FILE).is_file():
            return b""
        return store_key(self.home)

    @staticmethod
    def writable(home: Path) -> bool:
        """Can Relay write under ``home`` (False on a read-only disk or folder)?"""
        return os.access(home, os.W_OK) if Path(home).exists() else True

    @classmethod
    def for_reading(cls, home: Path) -> Store:
        """The store for a command that only reads (``relay ls``): opened as usual, or read-only
        when its disk or folder cannot be written."""
        return cls(home) if cls.writable(home) else cls(home, read_only=True)

    # -- database ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            return self._db.get()
        except sqlite3.DatabaseError as exc:
            raise index_error(self.db_path, exc) from exc

    def _writing(self) -> None:
        if self.read_only:
            raise StoreError(f"the store at {self.home} is opened read-only (its disk or folder "
                             "cannot be written)")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the index (for read queries outside this class)."""
        return self._connect()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._writing()
        try:
            with immediate(self._connect()) as conn:
                yield conn
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise write_error(self.home, exc) from exc
            raise

    def _init_db(self) -> None:
        try:
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            raise index_error(self.db_path, exc) from exc

    def _create_schema(self) -> None:
        conn = self._connect()
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.home} was written by a newer Relay (schema {row[0]})"
            )
        self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring an index written by an older Relay to this schema (once; files untouched)."""
        columns = {r[1] for r in conn.execute("PRAGMA table_info(studies)")}
        if "institution_name" in columns:
            return
        with immediate(conn):
            columns = {r[1] for r in conn.execute("PRAGMA table_info(studies)")}
            if "institution_name" in columns:  # another process got there first
                return
            conn.execute("ALTER TABLE studies ADD COLUMN institution_name TEXT NOT NULL DEFAULT ''")
            rows = conn.execute(
                "SELECT study_instance_uid, MIN(path) AS path FROM instances "
                "GROUP BY study_instance_uid LIMIT ?", (MIGRATE_MAX_STUDIES,)
            ).fetchall()
            for study_uid, relpath in rows:
                name = _institution_name(self.abspath(relpath))
                if name:
                    conn.execute("UPDATE studies SET institution_name=? WHERE study_instance_uid=?",
                                 (name, study_uid))
            conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                         (str(SCHEMA_VERSION),))
        log.info("store index migrated to schema %d (%d studies read)", SCHEMA_VERSION, len(rows))

    def close(self) -> None:
        """Close this thread's index connection and let go of the store's shared lock."""
        self._db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- files -------------------------------------------------------------------------------
    def _clean_tmp(self) -> None:
        """Remove temp files left by writers that are gone (killed imports)."""
        for entry in os.scandir(self.tmp):
            pid_text = entry.name.split("-", 1)[0]
            if pid_text.isdigit() and pid_alive(int(pid_text)):
                continue
            try:
                os.unlink(entry.path)
            except OSError:
                pass

    def put(self, data: Any, sha256: str | None = None) -> tuple[str, str]:
        """Durably place ``data`` (bytes or mmap) in the store; return (sha256, relpath).

        The file is fsync'ed; its folder is *not* (call :meth:`sync_dirs` for a batch).
        """

        digest = sha256 or sha256_of(data)
        rel = f"objects/{digest[:2]}/{digest}.dcm"
        dest = self.root / rel
        if dest.exists() and dest.stat().st_size == len(data) and sha256_file(dest) == digest:
            _fsync_path(str(dest))  # a download may have placed it, not yet synced
            return digest, rel  # already here, complete (a killed import's file is adopted)
        ensure_room(self.root, len(data))
        part = self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}.part"
        try:
            dest.parent.mkdir(exist_ok=True)
            with open(part, "wb") as fp:
                for piece in pieces(data):
                    fp.write(piece)
                fp.flush()
                os.fsync(fp.fileno())
            os.replace(part, dest)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise write_error(self.root, exc) from exc
        return digest, rel

    def new_part(self) -> Path:
        """A fresh temp path in the store's tmp folder (cleaned up if its writer dies)."""
        # A random token per Store and a counter: no system call per name (a download asks
        # for one per instance, on its network thread).
        return self.tmp / f"{os.getpid()}-{self._part_token}-{next(self._part_numbers)}.part"

    def adopt(self, part: Path, sha256: str) -> str:
        """Move a complete, fsync'ed temp file (from :meth:`new_part`) into the store.

        Returns its relpath; call :meth:`commit` to index it. Like :meth:`put`, without a copy.
        """
        rel = f"objects/{sha256[:2]}/{sha256}.dcm"
        dest = self.root / rel
        try:
            if (dest.exists() and dest.stat().st_size == part.stat().st_size
                    and sha256_file(dest) == sha256):
                part.unlink()
                _fsync_path(str(dest))  # a download may have placed it, not yet synced
                return rel  # already here, complete
            try:
                os.replace(part, dest)
            except FileNotFoundError:  # the folder's first file (the temp file is there)
                dest.parent.mkdir(exist_ok=True)
                os.replace(part, dest)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise write_error(self.root, exc) from exc
        return rel

    def sync_dirs(self, relpaths: Iterable[str]) -> None:
        """fsync the folders of freshly renamed files so the renames survive a power cut.

        Several folders are synced side by side (the disk merges the flushes)."""
        folders = sorted({str((self.root / r).parent) for r in relpaths})
        if len(folders) > 2:
            list(_sync_pool().map(_fsync_path, folders))
        else:
            for folder in folders:
                _fsync_path(folder)

    def abspath(self, relpath: str) -> Path:
        return self.root / relpath

    # -- index -------------------------------------------------------------------------------
    def sync_placed(self, fds: Sequence[int], relpaths: Iterable[str]) -> None:
        """fdatasync files already renamed into place and fsync their folders, all side by side
        (one journal commit covers most of them); then :meth:`commit` with ``synced=True``."""
        folders = sorted({str((self.root / r).parent) for r in relpaths})
        jobs = [(_datasync, fd) for fd in fds] + [(_fsync_path, f) for f in folders]
        for _ in _sync_pool().map(lambda job: job[0](job[1]), jobs):
            pass

    def commit(self, files: Sequence[StoredFile], *, synced: bool = False,
               durable: bool = True) -> list[str]:
        """Index files already durably in place; return "imported"/"duplicate"/"conflict" each.

        Their folders are fsync'ed first, unless ``synced`` says :meth:`sync_placed` did it.
        ``durable=False``: the rows are not waited onto the disk (a power cut may lose them,
        never the files); :mod:`app.store.deferred` makes them durable later and recovers them
        after a crash."""
        if not synced:
            self.sync_dirs(f.relpath for f in files)
        now = time.time()
        statuses: list[str] = []
        conn = self._connect() if not durable else None
        if conn is not None:
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync at commit
        try:
            with self.transaction() as tx:
                for f in files:
                    statuses.append(self._index_one(tx, f, now))
        finally:
            if conn is not None:
                conn.execute("PRAGMA synchronous=FULL")
        return statuses

    def sync_index(self) -> None:
        """Make every index row committed so far durable (those of ``commit(durable=False)``):
        the write-ahead log holding them is fsync'ed (SQLite syncs what a checkpoint moved
        out of it)."""
        for path in (f"{self.db_path}-wal", str(self.db_path)):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # checkpointed and gone: the database file holds them
                continue
            except OSError as exc:
                raise write_error(self.home, exc) from exc
            try:
                os.fsync(fd)
            except OSError as exc:
                raise write_error(self.home, exc) from exc
            finally:
                os.close(fd)
            return

    def _index_one(self, conn: sqlite3.Connection, f: StoredFile, now: float) -> str:
        inst = f.header.instance
        row = conn.execute(
            "SELECT sha256 FROM instances WHERE sop_instance_uid=?", (inst.sop_instance_uid,)
        ).fetchone()
        if row is not None:
            if row["sha256"] == f.sha256:
                return "duplicate"
            added = conn.execute(
                "INSERT OR IGNORE INTO conflicts VALUES (?,?,?,?,?)",
                (inst.sop_instance_uid, f.sha256, f.relpath, f.size, now),
            ).rowcount
            return "conflict" if added else "duplicate"
        study, series, patient = f.header.study, f.header.series, f.header.patient
        conn.execute(
            "INSERT OR IGNORE INTO studies VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (study.study_instance_uid, patient.patient_id, patient.patient_name,
             patient.patient_birth_date, patient.patient_sex, patient.issuer_of_patient_id,
             study.study_date, study.study_time, study.study_description,
             study.accession_number, study.study_id, now, study.institution_name),
        )
        conn.execute(
            "INSERT OR IGNORE INTO series VALUES (?,?,?,?,?,?,?,?,?,?)",
            (series.series_instance_uid, series.study_instance_uid, series.series_number,
             series.modality, series.series_description, series.body_part_examined,
             series.frame_of_reference_uid, series.series_date, series.series_time, now),
        )
        conn.execute(
            "INSERT INTO instances VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (inst.sop_instance_uid, inst.series_instance_uid, inst.study_instance_uid,
             inst.sop_class_uid, inst.transfer_syntax_uid, inst.instance_number,
             inst.acquisition_number, inst.image_type,
             inst.image.to_json() if inst.image else None,
             f.relpath, f.sha256, f.size, now),
        )
        return "imported"

    def supersede(self, files: Sequence[StoredFile], reason: str) -> None:
        """Make ``files`` the instances under their SOP Instance UIDs, in one transaction.

        The instances they replace keep their bytes and are listed in :meth:`superseded` (an
        outside original after reconciliation); the study's patient values follow the new files.
        """
        self.sync_dirs(f.relpath for f in files)
        now = time.time()
        with self.transaction() as conn:
            for f in files:
                uid = f.header.instance.sop_instance_uid
                old = conn.execute("SELECT * FROM instances WHERE sop_instance_uid=?",
                                   (uid,)).fetchone()
                if old is not None and old["sha256"] == f.sha256:
                    continue
                if old is not None:
                    conn.execute("INSERT OR IGNORE INTO superseded VALUES (?,?,?,?,?,?,?)",
                                 (uid, old["study_instance_uid"], old["sha256"], old["path"],
                                  old["size"], reason, now))
                    conn.execute("DELETE FROM instances WHERE sop_instance_uid=?", (uid,))
                self._index_one(conn, f, now)
                patient, study = f.header.patient, f.header.study
                conn.execute(
                    "UPDATE studies SET patient_id=?, patient_name=?, patient_birth_date=?, "
                    "patient_sex=?, issuer_of_patient_id=?, accession_number=? "
                    "WHERE study_instance_uid=?",
                    (patient.patient_id, patient.patient_name, patient.patient_birth_date,
                     patient.patient_sex, patient.issuer_of_patient_id,
                     study.accession_number, study.study_instance_uid))

    def superseded(self, study_uid: str) -> list[dict[str, Any]]:
        """Instances of a study replaced by :meth:`supersede` (bytes kept), oldest first."""
        rows = self._connect().execute(
            "SELECT * FROM superseded WHERE study_instance_uid=? ORDER BY superseded_at",
            (study_uid,)).fetchall()
        return [dict(r) | {"path": self.root / r["path"]} for r in rows]

    def has_instance(self, sop_instance_uid: str, sha256: str | None = None) -> bool:
        """Is this SOP Instance UID stored (with exactly these bytes, when ``sha256`` is given)?

        Bytes kept as a conflicting version, or superseded by a reconciled copy, count as
        stored.
        """
        conn = self._connect()
        row = conn.execute(
            "SELECT sha256 FROM instances WHERE sop_instance_uid=?", (sop_instance_uid,)
        ).fetchone()
        if row is None or sha256 is None or row["sha256"] == sha256:
            return row is not None
        return any(conn.execute(
            f"SELECT 1 FROM {table} WHERE sop_instance_uid=? AND sha256=?",
            (sop_instance_uid, sha256),
        ).fetchone() is not None for table in ("conflicts", "superseded"))

    def file_of(self, sop_instance_uid: str, sha256: str) -> Path | None:
        """The stored file holding exactly these bytes of this instance (its own, a conflicting
        version or a superseded copy), or None."""
        conn = self._connect()
        for table in ("instances", "conflicts", "superseded"):
            row = conn.execute(f"SELECT path FROM {table} WHERE sop_instance_uid=? AND sha256=?",
                               (sop_instance_uid, sha256)).fetchone()
            if row is not None:
                return self.root / str(row["path"])
        return None

    # -- queries -----------------------------------------------------------------------------
    def studies(self, study_uids: Iterable[str] | None = None) -> list[Study]:
        """Studies with their series and counts, newest study date first."""
        conn = self._connect()
        if study_uids is None:
            rows = conn.execute("SELECT * FROM studies").fetchall()
        else:
            uids = list(dict.fromkeys(study_uids))
            rows = []
            for chunk in _chunks(uids, 500):
                marks = ",".join("?" * len(chunk))
                rows += conn.execute(
                    f"SELECT * FROM studies WHERE study_instance_uid IN ({marks})", chunk
                ).fetchall()
        series_by_study: dict[str, list[Series]] = {}
        for s in self._series_rows(conn, [r["study_instance_uid"] for r in rows]):
            series_by_study.setdefault(s.study_instance_uid, []).append(s)
        out = [_study_from_row(r, series_by_study.get(r["study_instance_uid"], [])) for r in rows]
        out.sort(key=lambda s: (s.study_date, s.study_time, s.study_instance_uid), reverse=True)
        return out

    def study(self, study_uid: str) -> Study | None:
        found = self.studies([study_uid])
        return found[0] if found else None

    def patient_studies(self, patient_id: str) -> list[Study]:
        """Every study of the patient with this ID (none for an empty ID), newest first."""
        if not patient_id:
            return []
        rows = self._connect().execute(
            "SELECT study_instance_uid FROM studies WHERE patient_id=?", (patient_id,)).fetchall()
        return self.studies(r[0] for r in rows)

    def _series_rows(self, conn: sqlite3.Connection, study_uids: list[str]) -> list[Series]:
        out: list[Series] = []
        for chunk in _chunks(study_uids, 500):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"""SELECT s.*, (SELECT COUNT(*) FROM instances i
                                 WHERE i.series_instance_uid = s.series_instance_uid) AS n
                    FROM series s WHERE s.study_instance_uid IN ({marks})""",
                chunk,
            ).fetchall()
            out += [_series_from_row(r) for r in rows]
        out.sort(key=lambda s: (s.series_number is None, s.series_number or 0,
                                s.series_instance_uid))
        return out

    def series(self, series_uid: str) -> Series | None:
        row = self._connect().execute(
            """SELECT s.*, (SELECT COUNT(*) FROM instances i
                            WHERE i.series_instance_uid = s.series_instance_uid) AS n
               FROM series s WHERE series_instance_uid=?""",
            (series_uid,),
        ).fetchone()
        return _series_from_row(row) if row else None

    def instances(self, series_uid: str) -> list[Instance]:
        """Instances of a series by instance number (geometry sorting is the volume's job)."""
        return self._instances(f"WHERE series_instance_uid=? {_INSTANCE_ORDER}", (series_uid,))

    def slice_positions(self, series_uid: str) -> list[tuple[str, str | None, str | None, int]]:
        """(SOP Instance UID, position JSON, orientation JSON, frames) of each image of a series,
        read by SQLite without building :class:`Instance` objects
        (see :mod:`app.volume.early_slice`)."""
        return self._connect().execute(
            "SELECT sop_instance_uid, json_extract(image, '$.position'), "
            "json_extract(image, '$.orientation'), json_extract(image, '$.frames') "
            "FROM instances WHERE series_instance_uid=? AND image IS NOT NULL",
            (series_uid,),
        ).fetchall()

    def frame_count(self, series_uid: str) -> int:
        """Images of a series as a viewer counts them: each frame of a multi-frame object is
        one (one SQLite sum, no row per image)."""
        (total,) = self._connect().execute(
            "SELECT COALESCE(SUM(COALESCE(json_extract(image, '$.frames'), 1)), 0) "
            "FROM instances WHERE series_instance_uid=? AND image IS NOT NULL",
            (series_uid,)).fetchone()
        return int(total)

    def pixel_formats(self, series_uid: str) -> list[tuple[str, int, int, str, bool]]:
        """Each distinct (transfer syntax, samples per pixel, bits allocated, photometric
        interpretation, pixel data offset known) among a series' images, from the index."""
        rows = self._connect().execute(
            "SELECT DISTINCT transfer_syntax_uid, json_extract(image, '$.samples_per_pixel'), "
            "json_extract(image, '$.bits_allocated'), "
            "json_extract(image, '$.photometric_interpretation'), "
            "json_extract(image, '$.pixel_offset') IS NOT NULL "
            "FROM instances WHERE series_instance_uid=? AND image IS NOT NULL",
            (series_uid,),
        ).fetchall()
        return [(str(r[0]), int(r[1] or 0), int(r[2] or 0), str(r[3] or ""), bool(r[4]))
                for r in rows]

    def delete_series(self, series_uids: Sequence[str]) -> int:
        """Remove series from the store (index rows, then their files); their study goes too
        when it has no series left, with the originals reconciliation kept of it. Returns how
        many instances were removed.

        Atomic: one transaction drops the rows and journals the files' names
        (``pending_deletes``); the files are removed after it and their names then; a process
        killed in between leaves names the next :class:`Store` finishes removing. Never an index
        naming a missing file, never a file nobody names."""
        if not series_uids:
            return 0
        marks = ",".join("?" * len(series_uids))
        with self.transaction() as conn:
            rows = conn.execute(
                f"SELECT sop_instance_uid, path FROM instances "
                f"WHERE series_instance_uid IN ({marks})", tuple(series_uids)).fetchall()
            sops = [r[0] for r in rows]
            paths = [r[1] for r in rows]
            for chunk in _chunks(sops, 500):
                chunk_marks = ",".join("?" * len(chunk))
                paths += [r[0] for r in conn.execute(
                    f"SELECT path FROM conflicts WHERE sop_instance_uid IN ({chunk_marks})",
                    chunk)]
                conn.execute(f"DELETE FROM conflicts WHERE sop_instance_uid IN ({chunk_marks})",
                             chunk)
            studies = [r[0] for r in conn.execute(
                f"SELECT DISTINCT study_instance_uid FROM series "
                f"WHERE series_instance_uid IN ({marks})", tuple(series_uids))]
            conn.execute(f"DELETE FROM instances WHERE series_instance_uid IN ({marks})",
                         tuple(series_uids))
            conn.execute(f"DELETE FROM series WHERE series_instance_uid IN ({marks})",
                         tuple(series_uids))
            for study_uid in studies:
                gone = conn.execute(
                    "DELETE FROM studies WHERE study_instance_uid=? AND NOT EXISTS "
                    "(SELECT 1 FROM series WHERE study_instance_uid=?)",
                    (study_uid, study_uid)).rowcount
                if gone:
                    paths += [r[0] for r in conn.execute(
                        "SELECT path FROM superseded WHERE study_instance_uid=?", (study_uid,))]
                    conn.execute("DELETE FROM superseded WHERE study_instance_uid=?",
                                 (study_uid,))
            conn.executemany("INSERT OR IGNORE INTO pending_deletes (path) VALUES (?)",
                             ((p,) for p in paths))
        self._remove_files(paths)
        log.info("deleted %d series (%d instances)", len(series_uids), len(sops))
        return len(sops)

    def _remove_files(self, relpaths: Sequence[str]) -> None:
        """Remove journalled files, then their names from the journal."""
        for relpath in relpaths:
            try:
                (self.root / relpath).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove a deleted file: %s", exc.strerror)
        with self.transaction() as conn:
            for chunk in _chunks(list(relpaths), 500):
                conn.execute(f"DELETE FROM pending_deletes WHERE path IN "
                             f"({','.join('?' * len(chunk))})", chunk)

    def _finish_deletes(self) -> None:
        """Finish a deletion a killed process left half-done (see :meth:`delete_series`)."""
        paths = [r[0] for r in self._connect().execute("SELECT path FROM pending_deletes")]
        if paths:
            log.info("finishing an interrupted deletion (%d files)", len(paths))
            self._remove_files(paths)

    def delete_study(self, study_uid: str) -> int:
        """Remove a study and every series of it; returns how many instances were removed."""
        rows = self._connect().execute(
            "SELECT series_instance_uid FROM series WHERE study_instance_uid=?",
            (study_uid,)).fetchall()
        removed = self.delete_series([r[0] for r in rows])
        with self.transaction() as conn:  # a study row without series
            conn.execute("DELETE FROM studies WHERE study_instance_uid=?", (study_uid,))
        return removed

    def received_times(self) -> dict[str, float]:
        """When each study first came into the store (epoch seconds), by Study Instance UID."""
        return {r[0]: float(r[1]) for r in self._connect().execute(
            "SELECT study_instance_uid, added_at FROM studies")}

    def instance_counts(self, study_uids: Iterable[str]) -> dict[str, int]:
        """How many instances of each study are here, from the index (through its indexes:
        series by study, instances by series); a study with none is left out."""
        conn = self._connect()
        out: dict[str, int] = {}
        for chunk in _chunks(list(dict.fromkeys(study_uids)), 500):
            marks = ",".join("?" * len(chunk))
            out.update((str(r[0]), int(r[1])) for r in conn.execute(
                f"""SELECT s.study_instance_uid, COUNT(*) FROM series s JOIN instances i
                        ON i.series_instance_uid = s.series_instance_uid
                    WHERE s.study_instance_uid IN ({marks}) GROUP BY s.study_instance_uid""",
                chunk))
        return out

    def image_count(self, series_uid: str) -> int:
        """Instances of a series that hold an image (pixel data), from the index."""
        row = self._connect().execute(
            "SELECT COUNT(*) FROM instances WHERE series_instance_uid=? AND image IS NOT NULL",
            (series_uid,)).fetchone()
        return int(row[0])

    def series_version(self, series_uid: str) -> tuple[int, float]:
        """(instance count, latest addition time): changes whenever the series gains a file."""
        row = self._connect().execute(
            "SELECT COUNT(*), COALESCE(MAX(added_at), 0) FROM instances "
            "WHERE series_instance_uid=?", (series_uid,)).fetchone()
        return int(row[0]), float(row[1])

    def instance(self, sop_uid: str) -> Instance | None:
        found = self._instances("WHERE sop_instance_uid=?", (sop_uid,))
        return found[0] if found else None

    def conflicts(self) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT * FROM conflicts ORDER BY added_at").fetchall()
        return [dict(r) | {"path": str(self.root / r["path"])} for r in rows]

    def counts(self) -> dict[str, int]:
        conn = self._connect()
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("studies", "series", "instances", "conflicts")
        }

    def image_rows(self, series_uid: str) -> list[ImageRow]:
        """The images of a series as :meth:`instances` gives them (same order), with only what
        planning a volume reads (:func:`app.volume.stack.plan_series`)."""
        rows = self._tuples(
            f"SELECT {instance_rows.IMAGE_COLUMNS} FROM instances "
            "WHERE series_instance_uid=? AND image IS NOT NULL "
            f"{_INSTANCE_ORDER}", (series_uid,))
        return instance_rows.image_rows_from_rows(rows, self.root)

    def _instances(self, where: str, args: tuple[Any, ...]) -> list[Instance]:
        rows = self._tuples(f"SELECT {instance_rows.COLUMNS} FROM instances {where}", args)
        return instance_rows.instances_from_rows(rows, self.root)

    def _tuples(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Rows as plain tuples (no :class:`sqlite3.Row` per row)."""
        cursor = self._connect().cursor()
        cursor.row_factory = None
        return cursor.execute(sql, args).fetchall()


_INSTANCE_ORDER = "ORDER BY instance_number IS NULL, instance_number, sop_instance_uid"

#: Bytes kept free on the store's disk: an import or fetch stops as "disk full" before a write
#: would go below it, so the index, the transfer queue and their journals can still record
#: what arrived and why the job stopped (SQLite cannot commit on a disk that is full).
RESERVE_BYTES = 16 << 20


def ensure_room(where: Path, nbytes: int) -> None:
    """Raise :class:`StoreFull` if writing ``nbytes`` under ``where`` would leave less than
    :data:`RESERVE_BYTES` free."""
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # the write itself will say what is wrong
    if free - nbytes < RESERVE_BYTES:
        raise write_error(where, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


#: errno values that mean "no room left" (a full disk, a used-up quota).
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_error(where: Path, exc: OSError | sqlite3.Error) -> StoreError:
    """A plain :class:`StoreError` for a failed write under ``where``: a full disk
    (:class:`StoreFull`) says how much is free and that the same command completes later."""
    full = (isinstance(exc, OSError) and exc.errno in FULL_ERRNOS) or (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL)
    if not full:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return StoreError(f"cannot write to the store at {where}: {reason}")
    try:
        free = f"{shutil.disk_usage(where).free / 1e6:,.1f} MB free"
    except OSError:
        free = "no free space"
    return StoreFull(f"the disk holding the store at {where} is full ({free}; Relay keeps "
                     f"{RESERVE_BYTES >> 20} MB free for its index): what arrived so far is kept; "
                     "free some space and run the same command again to complete")


def index_error(db_path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """A plain StoreError for an index SQLite cannot open or read (damaged: say how to fix)."""
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"the store index {db_path} cannot be opened: {exc}")
    return StoreError(f"the store index {db_path} is damaged ({exc}); `relay reindex` rebuilds "
                      f"it from the stored files")


def _study_from_row(row: sqlite3.Row, series: list[Series]) -> Study:
    patient = Patient(
        patient_id=row["patient_id"],
        patient_name=row["patient_name"],
        patient_birth_date=row["patient_birth_date"],
        patient_sex=row["patient_sex"],
        issuer_of_patient_id=row["issuer_of_patient_id"],
    )
    modalities = tuple(dict.fromkeys(s.modality for s in series if s.modality))
    return Study(
        study_instance_uid=row["study_instance_uid"],
        patient=patient,
        study_date=row["study_date"],
        study_time=row["study_time"],
        study_description=row["study_description"],
        accession_number=row["accession_number"],
        study_id=row["study_id"],
        modalities=modalities,
        series=tuple(series),
        institution_name=row["institution_name"],
    )


def _series_from_row(row: sqlite3.Row) -> Series:
    return Series(
        series_instance_uid=row["series_instance_uid"],
        study_instance_uid=row["study_instance_uid"],
        series_number=row["series_number"],
        modality=row["modality"],
        series_description=row["series_description"],
        body_part_examined=row["body_part_examined"],
        frame_of_reference_uid=row["frame_of_reference_uid"],
        series_date=row["series_date"],
        series_time=row["series_time"],
        instance_count=row["n"],
    )


_SYNC_POOL: ThreadPoolExecutor | None = None
_SYNC_POOL_LOCK = threading.Lock()


def _sync_pool() -> ThreadPoolExecutor:
    """Threads that wait on fsync for the store (shared; fsync releases the GIL)."""
    global _SYNC_POOL
    with _SYNC_POOL_LOCK:
        if _SYNC_POOL is None:
            _SYNC_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")
        return _SYNC_POOL


def _datasync(fd: int) -> None:
    os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _institution_name(path: Path) -> str:
    """The Institution Name in a stored file's header ('' when absent or unreadable)."""
    import pydicom  # only an old index needs it: loading a volume stays free of pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                             specific_tags=["SpecificCharacterSet", "InstitutionName"])
        return str(ds.get("InstitutionName", "") or "").strip()
    except Exception as exc:  # a missing or damaged file leaves the column empty
        log.info("institution name unreadable in %s: %s", path.name, type(exc).__name__)
        return ""


#: Bytes hashed or written at a time from a large mapped file (a multiple of every page size).
MAPPED_CHUNK = 64 << 20


def pieces(data: Any) -> Iterator[memoryview]:
    """``data`` (bytes or an mmap) in pieces of :data:`MAPPED_CHUNK`. The pages of an mmap are
    dropped from this process's memory once their piece is used (``MADV_DONTNEED``: the bytes
    stay in the file), so hashing and copying a 2 GB file costs one piece of memory, not 2 GB."""
    dontneed = getattr(mmap, "MADV_DONTNEED", None)
    with memoryview(data) as view:
        for at in range(0, len(view), MAPPED_CHUNK):
            with view[at : at + MAPPED_CHUNK] as piece:
                yield piece
            if isinstance(data, mmap.mmap) and dontneed is not None:
                data.madvise(dontneed, at, min(MAPPED_CHUNK, len(view) - at))


def sha256_of(data: Any) -> str:
    """SHA-256 of ``data`` (bytes or an mmap), read in :func:`pieces`."""
    import hashlib

    digest = hashlib.sha256()
    for piece in pieces(data):
        digest.update(piece)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fp:
        while chunk := fp.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


