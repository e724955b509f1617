"""SQLite as Relay's indexes use it: WAL, ``synchronous=FULL``, one connection per thread.

The store index (:mod:`app.store.local`) and the transfer queue (:mod:`app.net.queue`) both need the
same durable settings, explicit ``BEGIN IMMEDIATE`` transactions and per-thread connections.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: How long a write waits for another connection's (SQLite's busy timeout).
BUSY_SECONDS = 60.0


def _wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode. Two first connections to a new file at once (the window's
    queue is prepared on a thread while a click opens it) race to switch it, and SQLite answers
    the loser "database is locked" at once, without its busy timeout (7 of 300 tries with three
    threads here): it waits and tries again, as the busy timeout would."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, fully synchronous.

    Another process writing holds the database for at most 60 s before this one's write gives
    up (the busy timeout): two Relays on one home take turns."""
    conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
    _wal(conn)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


def connect_read_only(path: Path | str) -> sqlite3.Connection:
    """A connection that never writes, for a database on a read-only disk or folder.

    SQLite opens a WAL database read-only only when its ``-shm`` file exists (or can be made);
    on a read-only mount after a clean close it does not, and the file is opened as immutable
    (nothing can change it there)."""
    uri = Path(path).resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=60, isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            if mode == "immutable=1":
                raise
            continue
        conn.row_factory = sqlite3.Row
        return conn
    raise AssertionError("unreachable")


class ThreadConnections:
    """One :func:`connect`-ed connection per thread for one database file (read-only ones
    with ``read_only``)."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            opener = connect_read_only if self.read_only else connect
            conn = self._local.conn = opener(self.path)
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``), rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors (disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (this process included; one of another
    user counts as running)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
