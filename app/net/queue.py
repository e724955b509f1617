"""The durable transfer queue: jobs and per-instance state in SQLite (``transfers.sqlite``).

A job is one study (or some of its series) to send to or fetch from one hub. Each instance of a
job has a state: ``pending`` (not confirmed yet; also while in flight), ``sent`` (the hub
confirmed it in a STOW-RS answer, or already had it), ``verified`` (found by QIDO after sending;
for a fetch: in the local store), ``failed`` (refused after every attempt; the reason is kept).
Every change is committed with ``synchronous=FULL`` before the next step relies on it, so a job
killed at any point (SIGKILL, power cut) resumes from what is recorded; an instance in flight at
the kill is still ``pending`` and is checked on the hub before it is sent again.

Job states: ``queued``, ``running`` (with the owner's PID; a dead owner means resumable),
``waiting`` (hub unreachable; retried at ``next_try``), ``stuck`` (needs the user: credentials,
TLS, URL; ``message`` says what), ``paused``, ``cancelled``, ``verified``, ``failed``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.errors import TransferError
from app.store.db import ThreadConnections, immediate, pid_alive

SCHEMA_VERSION = 3
"""2: a job records how it asks a PACS (``method``), and PACS jobs are ``send``/``fetch`` jobs
(``pacs-send``/``pacs-retrieve`` before). 3: a job has a ``priority`` (forwarding rules)."""
FILE_NAME = "transfers.sqlite"
ACTIVE = ("queued", "running", "waiting", "stuck", "paused")
FINAL = ("verified", "failed", "cancelled", "sent")  # sent: to a PACS that cannot verify
#: Job priority of stroke transfers (forwarding rules with priority ``stroke``); others 0.
STROKE_PRIORITY = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,             -- send | fetch
    method TEXT NOT NULL DEFAULT '', -- fetch from a PACS: get | move (empty: the profile's)
    hub TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uids TEXT NOT NULL,      -- JSON list; empty: the whole study
    state TEXT NOT NULL,
    owner_pid INTEGER,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0  -- higher first (STROKE_PRIORITY)
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    sop_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',   -- store file (send)
    size INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, sop_uid)
);
CREATE INDEX IF NOT EXISTS items_by_state ON items(job_id, state);
"""


@dataclass(frozen=True)
class Item:
    """One instance of a job."""

    sop_uid: str
    series_uid: str
    path: str
    size: int
    state: str
    attempts: int
    reason: str


@dataclass(frozen=True)
class Job:
    """A job as recorded, with its instance counts per state."""

    id: str
    kind: str
    hub: str
    study_uid: str
    series_uids: tuple[str, ...]
    state: str
    owner_pid: int | None
    message: str
    attempts: int
    next_try: float
    bytes: int
    seconds: float
    created: float
    updated: float
    counts: dict[str, int]
    method: str = ""
    """A fetch from a PACS: ``get`` (C-GET) or ``move`` (C-MOVE); empty: the profile's."""
    priority: int = 0
    """Higher goes first: :data:`STROKE_PRIORITY` for a forwarding rule's stroke transfers."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, *states: str) -> int:
        return sum(self.counts.get(s, 0) for s in states)


class TransferQueue:
    """The queue in ``home/transfers.sqlite``; one connection per thread."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILE_NAME
        self._db = ThreadConnections(self.path)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            # OR IGNORE: another thread or process may be creating the same queue right now
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise TransferError(f"{self.path} was written by a newer Relay (schema {row[0]})")
        elif int(row[0]) < SCHEMA_VERSION:
            self._migrate(int(row[0]))

    def _migrate(self, version: int) -> None:
        """Bring a queue written by an older Relay to :data:`SCHEMA_VERSION`, once."""
        with self._tx() as conn:
            columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
            if version < 2:
                if "method" not in columns:
                    conn.execute("ALTER TABLE jobs ADD COLUMN method TEXT NOT NULL DEFAULT ''")
                conn.execute("UPDATE jobs SET kind='send' WHERE kind='pacs-send'")
                conn.execute("UPDATE jobs SET kind='fetch' WHERE kind='pacs-retrieve'")
            if version < 3 and "priority" not in columns:
                conn.execute("ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
            conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                         (str(SCHEMA_VERSION),))

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with immediate(self._conn()) as conn:
            yield conn

    # -- jobs ----------------------------------------------------------------------------
    def create(self, kind: str, hub: str, study_uid: str, series_uids: Sequence[str],
               items: Iterable[tuple[str, str, str, int]], *, method: str = "",
               priority: int = 0) -> Job:
        """Record a new job with its ``(sop_uid, series_uid, path, size)`` items (``method``:
        how a fetch asks a PACS, see :attr:`Job.method`; ``priority``: :attr:`Job.priority`)."""
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO jobs (id, kind, hub, study_uid, series_uids, state, created, updated,"
                " method, priority) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, hub, study_uid, json.dumps(sorted(series_uids)), "queued", now, now,
                 method, priority),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO items (job_id, sop_uid, series_uid, path, size) "
                "VALUES (?,?,?,?,?)",
                ((job_id, *item) for item in items),
            )
        return self.job(job_id)

    def add_items(self, job_id: str, items: Iterable[tuple[str, str, str, int]]) -> int:
        """Add instances found later (a fetch learns them from the hub); return how many."""
        with self._tx() as conn:
            cur = conn.executemany(
                "INSERT OR IGNORE INTO items (job_id, sop_uid, series_uid, path, size) "
                "VALUES (?,?,?,?,?)",
                ((job_id, *item) for item in items),
            )
            return cur.rowcount

    def find_open(self, kind: str, hub: str, study_uid: str,
                  series_uids: Sequence[str]) -> Job | None:
        """The unfinished job for exactly this transfer, if any (so a rerun resumes it)."""
        marks = ",".join("?" * len(ACTIVE))
        row = self._conn().execute(
            f"SELECT id FROM jobs WHERE kind=? AND hub=? AND study_uid=? AND series_uids=? "
            f"AND state IN ({marks}) ORDER BY created DESC LIMIT 1",
            (kind, hub, study_uid, json.dumps(sorted(series_uids)), *ACTIVE),
        ).fetchone()
        return self.job(row["id"]) if row else None

    def job(self, job_id: str) -> Job:
        conn = self._conn()
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise TransferError(f"no transfer job {job_id}")
        counts = {r[0]: r[1] for r in conn.execute(
            "SELECT state, COUNT(*) FROM items WHERE job_id=? GROUP BY state", (job_id,))}
        return _job(row, counts)

    def raise_priority(self, job_id: str, priority: int) -> None:
        """At least ``priority`` from now on (a stroke rule matched a running job's study)."""
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET priority=MAX(priority, ?) WHERE id=?",
                         (priority, job_id))

    def jobs(self, states: Sequence[str] | None = None) -> list[Job]:
        """Jobs, newest first (all, or those in ``states``): two queries on one snapshot, not
        two per job (the transfers list asks up to ten times a second, on the GUI thread)."""
        conn = self._conn()
        where, args = "", tuple(states or ())
        if states:
            where = f" WHERE state IN ({','.join('?' * len(states))})"
        outer = conn.in_transaction
        if not outer:
            conn.execute("BEGIN")
        try:
            rows = conn.execute(f"SELECT * FROM jobs{where} ORDER BY created DESC",
                                args).fetchall()
            counts: dict[str, dict[str, int]] = {}
            for job_id, state, n in conn.execute(
                    f"SELECT job_id, state, COUNT(*) FROM items WHERE job_id IN "
                    f"(SELECT id FROM jobs{where}) GROUP BY job_id, state", args):
                counts.setdefault(job_id, {})[state] = n
        finally:
            if not outer:
                conn.execute("COMMIT")
        return [_job(row, counts.get(row["id"], {})) for row in rows]

    def claim(self, job_id: str) -> Job:
        """Mark the job running in this process; refuse if another live process runs it."""
        me = os.getpid()
        with self._tx() as conn:
            row = conn.execute("SELECT state, owner_pid FROM jobs WHERE id=?",
                               (job_id,)).fetchone()
            if row is None:
                raise TransferError(f"no transfer job {job_id}")
            pid = row["owner_pid"]
            if row["state"] == "running" and pid and pid != me and pid_alive(pid):
                raise TransferError(f"job {job_id} is being run by another Relay (process {pid})")
            conn.execute("UPDATE jobs SET state='running', owner_pid=?, updated=? WHERE id=?",
                         (me, time.time(), job_id))
        return self.job(job_id)

    def set_method(self, job_id: str, method: str) -> None:
        """How a fetch job asks its PACS from now on (``get``/``move``)."""
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET method=? WHERE id=?", (method, job_id))

    def set_state(self, job_id: str, state: str, message: str = "", *,
                  next_try: float = 0.0) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE jobs SET state=?, message=?, next_try=?, updated=?, "
                "owner_pid=CASE WHEN ?='running' THEN owner_pid ELSE NULL END WHERE id=?",
                (state, message, next_try, time.time(), state, job_id),
            )

    def note_attempt(self, job_id: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET attempts=attempts+1, updated=? WHERE id=?",
                         (time.time(), job_id))

    def add_totals(self, job_id: str, nbytes: int, seconds: float) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET bytes=bytes+?, seconds=seconds+?, updated=? "
                         "WHERE id=?", (nbytes, seconds, time.time(), job_id))

    def delete(self, job_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    # -- items ---------------------------------------------------------------------------
    def items(self, job_id: str, states: Sequence[str] | None = None) -> list[Item]:
        conn = self._conn()
        sql = "SELECT * FROM items WHERE job_id=?"
        args: tuple[object, ...] = (job_id,)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += tuple(states)
        rows = conn.execute(sql + " ORDER BY series_uid, rowid", args).fetchall()
        return [Item(r["sop_uid"], r["series_uid"], r["path"], r["size"], r["state"],
                     r["attempts"], r["reason"]) for r in rows]

    def mark(self, job_id: str, sop_uids: Iterable[str], state: str, reason: str = "",
             *, attempt: bool = False) -> None:
        """Set the state of some items (and count an attempt) in one transaction."""
        sql = ("UPDATE items SET state=?, reason=?" + (", attempts=attempts+1" if attempt else "")
               + " WHERE job_id=? AND sop_uid=?")
        with self._tx() as conn:
            conn.executemany(sql, ((state, reason, job_id, u) for u in sop_uids))

    def mark_many(self, job_id: str, changes: Iterable[tuple[str, str, str]],
                  *, attempt: bool = False) -> None:
        """Set ``(sop_uid, state, reason)`` for several items in one transaction."""
        sql = ("UPDATE items SET state=?, reason=?" + (", attempts=attempts+1" if attempt else "")
               + " WHERE job_id=? AND sop_uid=?")
        with self._tx() as conn:
            conn.executemany(sql, ((s, r, job_id, u) for u, s, r in changes))

    def verified_on_hub(self, hub: str | None = None) -> set[str]:
        """SOP Instance UIDs that a send job found on the hub afterwards (QIDO): the only
        instances a retention rule may purge locally."""
        sql = ("SELECT DISTINCT i.sop_uid FROM items i JOIN jobs j ON j.id = i.job_id "
               "WHERE j.kind='send' AND i.state='verified'")
        args: tuple[str, ...] = ()
        if hub is not None:
            sql += " AND j.hub=?"
            args = (hub,)
        return {r[0] for r in self._conn().execute(sql, args)}

    def repoint(self, job_id: str, changes: Iterable[tuple[str, str, int, str, str]]) -> None:
        """Give items another file: ``(sop_uid, path, size, state, reason)`` in one
        transaction (a queued instance whose stored file was replaced)."""
        with self._tx() as conn:
            conn.executemany("UPDATE items SET path=?, size=?, state=?, reason=? "
                             "WHERE job_id=? AND sop_uid=?",
                             ((p, n, s, r, job_id, u) for u, p, n, s, r in changes))

    def delivered(self, kind: str, hub: str, sop_uids: Iterable[str]) -> set[tuple[str, str]]:
        """``(sop_uid, path)`` of these instances that any ``kind`` job delivered to ``hub``
        (sent or verified), whichever file it was."""
        wanted = list(sop_uids)
        out: set[tuple[str, str]] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            out.update((r[0], r[1]) for r in self._conn().execute(
                "SELECT i.sop_uid, i.path FROM items i JOIN jobs j ON j.id = i.job_id "
                "WHERE j.kind=? AND j.hub=? AND i.state IN ('sent', 'verified') "
                f"AND i.sop_uid IN ({','.join('?' * len(chunk))})", (kind, hub, *chunk)))
        return out

    def reset_failed(self, job_id: str) -> None:
        """Give failed items fresh attempts (the user pressed Retry)."""
        with self._tx() as conn:
            conn.execute("UPDATE items SET state='pending', attempts=0, reason='' "
                         "WHERE job_id=? AND state='failed'", (job_id,))

    def close(self) -> None:
        self._db.close()


def _job(row: sqlite3.Row, counts: dict[str, int]) -> Job:
    return Job(
        id=row["id"], kind=row["kind"], hub=row["hub"], study_uid=row["study_uid"],
        series_uids=tuple(json.loads(row["series_uids"])), state=row["state"],
        owner_pid=row["owner_pid"], message=row["message"], attempts=row["attempts"],
        next_try=row["next_try"], bytes=row["bytes"], seconds=row["seconds"],
        created=row["created"], updated=row["updated"], counts=counts,
        method=row["method"], priority=row["priority"],
    )
