"""Who may use a store at the same time: many writers, or one maintenance command alone.

Every process with a store open for writing (the window, an import, a transfer) holds a shared
lock on ``store.lock`` in the home for as long as the store is open: any number of them work side
by side (SQLite's busy timeout orders their index writes, the transfer queue's claims keep two of
them off one job). The commands that rebuild or repair the index, ``relay reindex`` and
``relay check --repair``, hold it exclusively: they start only when no other Relay has the store
open, nothing else opens it while they run, and whoever is refused is told plainly who holds it
(``maintenance.json`` names the command, its PID and when it started).

Advisory locks (``flock``): released by the kernel when a process ends, even when killed. On a
system without ``fcntl`` (Windows) there is no lock: one Relay at a time is the rule there.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from app.errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "store.lock"
HOLDER_NAME = "maintenance.json"

#: Homes this process holds exclusively (its own Store objects need no shared lock then).
_EXCLUSIVE: set[Path] = set()
_GUARD = threading.Lock()


def shared(home: Path) -> IO[bytes] | None:
    """Take the shared lock of ``home`` for an open store; the returned file holds it until it is
    closed (or collected). Raises :class:`StoreError` naming the maintenance command holding the
    store exclusively."""
    key = Path(home).resolve()
    with _GUARD:
        if fcntl is None or key in _EXCLUSIVE:
            return None
    fp = _open(key)
    try:
        fcntl.flock(fp.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        fp.close()
        raise StoreError(f"the store at {home} is being worked on by {_holder(key)}: try again "
                         "when it has finished") from None
    return fp


@contextlib.contextmanager
def exclusive(home: Path, command: str) -> Iterator[None]:
    """Hold ``home``'s store alone while ``command`` (e.g. ``relay reindex``) runs; raise
    :class:`StoreError` at once, saying who holds it, if another Relay has the store open."""
    key = Path(home).resolve()
    if fcntl is None:
        yield
        return
    key.mkdir(parents=True, exist_ok=True)
    with _open(key) as fp:
        try:
            fcntl.flock(fp.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(key, "another Relay (the window, an import or a transfer)")
            raise StoreError(f"the store at {home} is in use by {who}: `{command}` needs it "
                             "alone; close the other Relay or wait for it to finish, then run "
                             "it again") from None
        holder = key / HOLDER_NAME
        fd = os.open(holder, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as note:
            json.dump({"pid": os.getpid(), "command": command, "since": time.time()}, note)
        with _GUARD:
            _EXCLUSIVE.add(key)
        try:
            yield
        finally:
            with _GUARD:
                _EXCLUSIVE.discard(key)
            holder.unlink(missing_ok=True)


def _open(home: Path) -> IO[bytes]:
    """The lock file, made private (0600) whatever the process's umask."""
    fd = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    return os.fdopen(fd, "r+b")


def _holder(home: Path, otherwise: str = "another Relay") -> str:
    """Words for the maintenance command holding ``home`` (from ``maintenance.json``)."""
    try:
        found = json.loads((home / HOLDER_NAME).read_text(encoding="utf-8"))
        pid, command, since = int(found["pid"]), str(found["command"]), float(found["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return otherwise
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return otherwise  # a stale note: its command has ended
    except PermissionError:
        pass
    started = time.strftime("%H:%M:%S", time.localtime(since))
    return f"`{command}` (Relay process {pid}, since {started})"
