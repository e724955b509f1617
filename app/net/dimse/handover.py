"""Relay's port held by Relay's node in another process on the same home: what that node
receives for a job of this process is handed over through the home.

Relay's node (the window's, or ``relay listen``) announces itself while it listens: it holds an
exclusive lock on ``node.lock`` in the home, which names its AE title and port; the kernel drops
the lock when the process ends, even when it is killed (:class:`Beacon`,
:func:`node_elsewhere`). A job of another process that needs Relay's port then does not listen:
it registers what it waits for in ``handover.sqlite`` in the home (SQLite, WAL,
:class:`Handover`):

- a C-MOVE: its Message ID, unique across the processes of the home (:data:`HANDED_IDS`; IDs
  within one process stay below them) and the PACS's AE title. The node stores each C-STORE of
  that move in the store (the one ingest path: byte-exact, SHA-256, deduplicated) and records,
  before it answers success, which file holds those bytes; the job reads these rows while the
  C-MOVE runs and once more after its final response, which the PACS sends only after every
  sub-operation was answered, so none is missed;
- a Storage Commitment request: its Transaction UID. The node records the report (committed and
  failed SOP Instance UIDs) before it answers 0x0000; the job polls for it while it waits.

Each registration holds a lease the waiting job renews (:data:`LEASE`): a job that died is
forgotten when its lease runs out (its C-STOREs are then received as any other, its reports
refused) and its rows go at the next registration. A node that dies makes the PACS's
sub-operations fail: the job sees them failed and its retry asks again later, when it may hold
the port itself. Without ``fcntl`` (Windows) no node is announced: one Relay at a time there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from app.errors import DimseError
from app.store.db import ThreadConnections, immediate

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = "node.lock"
DB_NAME = "handover.sqlite"
#: Seconds a registration lives without being renewed (a waiting job renews it every
#: :data:`RENEW` s, so only a dead job's runs out).
LEASE = 120.0
RENEW = 10.0
#: Seconds between two looks at the table while a job waits.
POLL = 0.1
#: C-MOVE Message IDs handed over (unique among the live registrations of the home); a
#: process's own moves use the IDs below (:func:`app.net.dimse.routes.next_message_id`).
HANDED_IDS = range(32768, 65536)
#: Rows of registrations whose lease ran out this long ago are removed.
KEEP_DEAD = 3600.0
#: Seconds a job waits, after the C-MOVE's final response, for rows the PACS counted as
#: stored and the table does not hold yet (none, as the PACS answers last: a safety margin).
LATE = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL,
    peer_ae TEXT NOT NULL,
    own_ae TEXT NOT NULL,
    lease REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS arrivals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    move INTEGER NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS arrivals_by_move ON arrivals(move, seq);
CREATE TABLE IF NOT EXISTS commitments (
    transaction_uid TEXT PRIMARY KEY,
    lease REAL NOT NULL,
    committed TEXT,
    failed TEXT
);
"""


# -- the node's announcement -------------------------------------------------------------------
class Beacon:
    """Held by a running node: its AE title and port, under an exclusive lock in the home."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / LOCK_NAME
        self._fp: IO[bytes] | None = None

    def raise_(self, ae_title: str, port: int) -> bool:
        """Announce the node (False when another node of this home already does, or when
        this system has no advisory locks)."""
        if fcntl is None or self._fp is not None:
            return False
        try:
            fp = open(self.path, "a+b")  # noqa: SIM115 - held open while the node runs
        except OSError as exc:
            log.warning("the node cannot announce itself in the home: %s", exc)
            return False
        try:
            fcntl.flock(fp.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fp.close()
            return False
        fp.seek(0)
        fp.truncate()
        fp.write(json.dumps({"ae_title": ae_title, "port": port, "pid": os.getpid()}).encode())
        fp.flush()
        self._fp = fp
        return True

    def lower(self) -> None:
        fp, self._fp = self._fp, None
        if fp is not None:
            with contextlib.suppress(OSError):
                fp.truncate(0)
            fp.close()  # drops the lock


def node_elsewhere(home: Path | None, port: int) -> bool:
    """Does Relay's node of ``home`` listen on ``port`` in another process? (False when this
    process holds the announcement, or cannot tell.)"""
    if fcntl is None or home is None or not port:
        return False
    path = Path(home) / LOCK_NAME
    deadline = time.monotonic() + 1.0
    while True:
        try:
            with open(path, "rb") as fp:
                try:
                    fcntl.flock(fp.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:
                    text = fp.read()
                else:
                    return False  # nobody holds it: no node runs
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.info("the node's announcement cannot be read: %s", exc)
            return False
        try:
            said = json.loads(text)
            return int(said["port"]) == port
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:  # held, but it never says what: not ours
                return False
            time.sleep(0.02)  # the node is writing it


# -- the table ---------------------------------------------------------------------------------
class Handover:
    """``handover.sqlite`` of one home, for the node and for the jobs (thread-safe)."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / DB_NAME
        self._conns = ThreadConnections(self.path)
        self._ready = False
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        conn = self._conns.get()
        # what a row says is also in the store (durable there): a row lost to a power cut
        # only makes the job ask again for what it then finds in the store, so a commit need
        # not wait for the disk (still seen at once by the other process)
        conn.execute("PRAGMA synchronous=NORMAL")
        if not self._ready:
            with self._lock:
                conn.executescript(_SCHEMA)
                self._ready = True
        return conn

    def exists(self) -> bool:
        """Has any job of this home ever registered something (the node looks only then)?"""
        return self._ready or self.path.exists()

    # -- a job's C-MOVE ------------------------------------------------------------------------
    def open_move(self, peer_ae: str, own_ae: str) -> tuple[int, int]:
        """Register a C-MOVE: (its row, the Message ID to send it with)."""
        now = time.time()
        with immediate(self._db()) as conn:
            self._forget_dead(conn, now)
            live = {r[0] for r in conn.execute("SELECT message_id FROM moves WHERE lease>=?",
                                               (now,))}
            row = conn.execute("INSERT INTO moves (message_id, peer_ae, own_ae, lease) "
                               "VALUES (0,?,?,?)", (peer_ae.strip(), own_ae.strip(),
                                                    now + LEASE)).lastrowid
            assert row is not None
            span = len(HANDED_IDS)
            message_id = next(HANDED_IDS[(row + k) % span] for k in range(span)
                              if HANDED_IDS[(row + k) % span] not in live)
            conn.execute("UPDATE moves SET message_id=? WHERE id=?", (message_id, row))
        return row, message_id

    def renew_move(self, row: int) -> None:
        with immediate(self._db()) as conn:
            conn.execute("UPDATE moves SET lease=? WHERE id=?", (time.time() + LEASE, row))

    def arrivals(self, row: int, after: int = 0) -> list[tuple[int, str, str]]:
        """(seq, SOP Instance UID, file) the node recorded for the move, after ``after``."""
        return [(int(r[0]), str(r[1]), str(r[2])) for r in self._db().execute(
            "SELECT seq, sop_instance_uid, path FROM arrivals WHERE move=? AND seq>? "
            "ORDER BY seq", (row, after))]

    def close_move(self, row: int) -> None:
        with immediate(self._db()) as conn:
            conn.execute("DELETE FROM arrivals WHERE move=?", (row,))
            conn.execute("DELETE FROM moves WHERE id=?", (row,))

    # -- the node's side of a C-MOVE -----------------------------------------------------------
    def move_for(self, message_id: int | None, origin_ae: str, calling_ae: str) -> int | None:
        """The live registration a C-STORE belongs to: by its Move Originator Message ID (and
        AE title, when given), or without one, the only move asked of the storing AE title."""
        now = time.time()
        conn = self._db()
        if message_id is not None:
            found = conn.execute("SELECT id, own_ae FROM moves WHERE message_id=? AND lease>=?",
                                 (message_id, now)).fetchone()
            if found is None or origin_ae.strip() not in ("", found[1]):
                return None
            return int(found[0])
        rows = conn.execute("SELECT id FROM moves WHERE peer_ae=? AND lease>=?",
                            (calling_ae.strip(), now)).fetchall()
        return int(rows[0][0]) if len(rows) == 1 else None

    def record_arrival(self, row: int, sop_uid: str, path: Path) -> None:
        with immediate(self._db()) as conn:
            conn.execute("INSERT INTO arrivals (move, sop_instance_uid, path) VALUES (?,?,?)",
                         (row, sop_uid, str(path)))

    # -- a job's Storage Commitment ------------------------------------------------------------
    def open_commitment(self, transaction_uid: str) -> None:
        now = time.time()
        with immediate(self._db()) as conn:
            self._forget_dead(conn, now)
            conn.execute("INSERT OR REPLACE INTO commitments VALUES (?,?,NULL,NULL)",
                         (transaction_uid, now + LEASE))

    def renew_commitments(self, transaction_uids: list[str]) -> None:
        with immediate(self._db()) as conn:
            conn.executemany("UPDATE commitments SET lease=? WHERE transaction_uid=?",
                             [(time.time() + LEASE, u) for u in transaction_uids])

    def reports(self, transaction_uids: list[str]) -> dict[str, tuple[set[str], set[str]]]:
        """The reports recorded for these transactions: uid -> (committed, failed)."""
        found: dict[str, tuple[set[str], set[str]]] = {}
        conn = self._db()
        for uid in transaction_uids:
            row = conn.execute("SELECT committed, failed FROM commitments WHERE "
                               "transaction_uid=? AND committed IS NOT NULL", (uid,)).fetchone()
            if row is not None:
                found[uid] = (set(json.loads(row[0])), set(json.loads(row[1] or "[]")))
        return found

    def close_commitment(self, transaction_uid: str) -> None:
        with immediate(self._db()) as conn:
            conn.execute("DELETE FROM commitments WHERE transaction_uid=?", (transaction_uid,))

    def record_report(self, transaction_uid: str, committed: list[str],
                      failed: list[str]) -> bool:
        """The node received this report: kept for the job that waits for it (False: no live
        job of this home asked for it)."""
        with immediate(self._db()) as conn:
            return conn.execute(
                "UPDATE commitments SET committed=?, failed=? WHERE transaction_uid=? "
                "AND lease>=?", (json.dumps(committed), json.dumps(failed), transaction_uid,
                                 time.time())).rowcount == 1

    # -- housekeeping --------------------------------------------------------------------------
    @staticmethod
    def _forget_dead(conn: sqlite3.Connection, now: float) -> None:
        old = now - KEEP_DEAD
        conn.execute("DELETE FROM arrivals WHERE move IN (SELECT id FROM moves WHERE lease<?)",
                     (old,))
        conn.execute("DELETE FROM moves WHERE lease<?", (old,))
        conn.execute("DELETE FROM commitments WHERE lease<?", (old,))


class Renewal:
    """Renews a job's registrations every :data:`RENEW` s when :meth:`due` says so."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < RENEW:
            return False
        self._last = now
        return True



# -- a job's C-MOVE, handed over ----------------------------------------------------------------
class Counted(Protocol):
    """The C-MOVE's final answer (:class:`~app.net.dimse.client.RetrieveOutcome`)."""

    @property
    def completed(self) -> int: ...

    @property
    def warning(self) -> int: ...


class StoredInstance:
    """An instance the node of another process stored for this job, as a C-STORE handler
    reads it (:meth:`encoded_dataset`: the bytes exactly as the PACS sent them)."""

    def __init__(self, sop_uid: str, path: Path) -> None:
        self.sop_uid = sop_uid
        self.path = path

    def encoded_dataset(self, include_meta: bool = True) -> bytes:
        del include_meta  # the stored file is the Part-10 file the node wrote
        return self.path.read_bytes()


C = TypeVar("C", bound=Counted)


def handed_move(handover: Handover, peer_ae: str, own_ae: str, run: Callable[[int], C],
                on_store: Callable[[Any], int], node_there: Callable[[], bool]) -> C:
    """Run a C-MOVE (``run(message_id)``, on a thread of its own) whose C-STOREs the node of
    another process receives: each instance it records is given to ``on_store`` (as a
    :class:`StoredInstance`) while the move runs; ``run``'s result, or its exception, after
    the last one. A move the PACS failed because that node stopped (``node_there()`` is False
    by then) is a retryable ``aborted``: asked again, this process may hold the port."""
    row, message_id = handover.open_move(peer_ae, own_ae)
    result: list[Any] = []

    def work() -> None:
        try:
            result.append(run(message_id))
        except BaseException as exc:  # handed to the waiting thread
            result.append(_Raised(exc))

    worker = threading.Thread(target=work, name="c-move-handed", daemon=True)
    renewal = Renewal()
    seen = [0, 0]  # last seq read, instances given

    def take() -> None:
        for seq, sop_uid, path in handover.arrivals(row, seen[0]):
            seen[0] = seq
            try:
                on_store(StoredInstance(sop_uid, Path(path)))
                seen[1] += 1
            except OSError as exc:  # gone since (retention): the retry asks for it again
                log.warning("an instance Relay's node stored cannot be read: %s", exc)

    try:
        worker.start()
        while worker.is_alive():
            worker.join(POLL)
            take()
            if renewal.due():
                handover.renew_move(row)
        take()
        outcome = result[0]
        if isinstance(outcome, _Raised):
            exc = outcome.exc
            if isinstance(exc, DimseError) and exc.kind == "failed" and not node_there():
                raise DimseError("aborted", f"Relay's node in another program stopped during "
                                            f"the C-MOVE ({exc})") from exc
            raise exc
        counted: C = outcome
        deadline = time.monotonic() + LATE
        while seen[1] < counted.completed + counted.warning and time.monotonic() < deadline:
            time.sleep(POLL)
            take()
        return counted
    finally:
        try:
            handover.close_move(row)
        except sqlite3.Error as exc:  # its lease runs out instead
            log.info("a handed-over C-MOVE could not be closed: %s", exc)


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
