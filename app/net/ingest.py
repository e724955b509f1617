"""Downloaded parts into the local store, off the network thread.

The network thread writes each WADO-RS part to a temp file in the store (hashing as it goes) and
hands it to :class:`PartIngest`, whose workers fsync it, check its header and move it into the
store (:func:`app.ingest.stage_part`, the path every import takes); indexing happens in batches,
at once for an instance someone is waiting for (the slice in view).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import mmap
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from app.ingest import Duplicate, check_part, place_part
from app.media import Problem
from app.model import Header
from app.store import Store, StoredFile

log = logging.getLogger(__name__)

#: Called with (sop_instance_uid, series_instance_uid) once an instance is in the store's index.
StoredCallback = Callable[[str, str], None]


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return fn


_SYNC_FILE_RANGE = _libc_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int) -> None:
    """Ask Linux to start writing the file to disk now, without waiting (no-op elsewhere)."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


class PartFile:
    """A part being written: temp file + byte count (a multipart sink)."""

    def __init__(self, store: Store, headers: dict[str, str]) -> None:
        self.path: Path = store.new_part()
        self.headers = headers
        self.size = 0
        self._fp: IO[bytes] = open(self.path, "wb")  # noqa: SIM115  (closed in close())

    def write(self, data: bytes | memoryview) -> int:
        self.size += len(data)
        return self._fp.write(data)

    def close(self) -> None:
        """Close the file, starting its write-back now (the fsync later then waits less)."""
        _start_writeback(self._fp.fileno())
        self._fp.close()

    def discard(self) -> None:
        self._fp.close()
        self.path.unlink(missing_ok=True)


class PartIngest:
    """Workers that fsync, check, store and (in batches) index downloaded parts."""

    def __init__(self, store: Store, on_stored: StoredCallback | None = None, *,
                 workers: int = 2, batch: int = 32, batch_seconds: float = 0.25) -> None:
        self.store = store
        self.on_stored = on_stored
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        self.batch = batch
        self.batch_seconds = batch_seconds
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pending: list[StoredFile] = []
        self._last = time.monotonic()
        self._futures: set[Future[None]] = set()
        self.problems: list[Problem] = []
        self.stored = 0

    def submit(self, part: PartFile, urgent: bool = False) -> None:
        """Take a complete part: its header is checked here (on the caller's thread, so the
        pure-Python parsing never fights the network thread for the GIL); syncing, moving
        and indexing happen on the workers."""
        part.close()
        header = check_part(part.path, "downloaded instance")
        if isinstance(header, Problem):
            part.path.unlink(missing_ok=True)
            log.warning("a downloaded instance could not be stored: %s", header.reason)
            with self._lock:
                self.problems.append(header)
            return
        future = self.pool.submit(self._work, part.path, header, urgent)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _work(self, path: Path, header: Header, urgent: bool) -> None:
        # Hashing here (hashlib releases the GIL) keeps it off the network thread.
        with open(path, "rb") as fp:
            with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                sha256 = hashlib.sha256(buf).hexdigest()
            os.fdatasync(fp.fileno()) if hasattr(os, "fdatasync") else os.fsync(fp.fileno())
        staged = place_part(self.store, path, sha256, header)
        if isinstance(staged, Duplicate):
            self._notify([(header.instance.sop_instance_uid,
                           header.instance.series_instance_uid)])
            return
        with self._lock:
            self._pending.append(staged)
            due = (urgent or len(self._pending) >= self.batch
                   or time.monotonic() - self._last > self.batch_seconds)
        if due:
            self.flush()

    def flush(self) -> None:
        """Index what is stored but not indexed yet."""
        with self._commit_lock:  # commits in order, without holding up the network thread
            with self._lock:
                files, self._pending = self._pending, []
                self._last = time.monotonic()
            if files:
                self.store.commit(files)
                self.stored += len(files)
        self._notify([(f.header.instance.sop_instance_uid, f.header.instance.series_instance_uid)
                      for f in files])

    def _notify(self, uids: list[tuple[str, str]]) -> None:
        if self.on_stored is not None:
            for sop, series in uids:
                self.on_stored(sop, series)

    def drain(self) -> None:
        """Wait for every submitted part, then index the rest."""
        while True:
            with self._lock:
                futures = list(self._futures)
            if not futures:
                break
            for future in futures:
                future.result()
        self.flush()

    def close(self) -> None:
        self.drain()
        self.pool.shutdown(wait=True)
