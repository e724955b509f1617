"""Downloaded parts into the local store, off the network thread.

The network thread receives each WADO-RS part into memory (:class:`MemoryPart`; a part too large
for that, or of unknown length, goes to a temp file in the store: :class:`PartFile`), checks its
header (:func:`app.ingest.check_buffer`, the fast reader for plain files) and hands it to
:class:`PartIngest`, whose workers write it to a temp file, hash it, fsync it and move it into
the store (:func:`app.ingest.place_part`, as every import does). Indexing happens in batches
(one SQLite transaction after the batch's files and folders are fsync'ed), at once for an
instance someone is waiting for (the slice in view); listeners hear of an instance only once it
is indexed. Parts held in memory are bounded (:data:`MEMORY_BUDGET`): the network thread waits
when the disk falls behind.
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.ingest import check_buffer, check_part, place_part
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


#: A part with a Content-Length up to this size is received into memory.
MEMORY_PART_LIMIT = 64 << 20
#: Bytes of received parts waiting in memory for the workers, at most (one part may exceed it).
MEMORY_BUDGET = 128 << 20


class MemoryPart:
    """A part of known length received into memory (a multipart sink)."""

    def __init__(self, headers: dict[str, str], length: int) -> None:
        self.headers = headers
        self.data = bytearray(length)
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        end = self.size + n
        if end > len(self.data):
            raise OSError("a part longer than its Content-Length")
        self.data[self.size : end] = data
        self.size = end
        return n

    def free(self) -> memoryview:
        return memoryview(self.data)[self.size :]

    def filled(self, n: int) -> None:
        self.size += n

    def discard(self) -> None:
        self.data = bytearray()


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


def _sync(fd: int) -> None:
    os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)


@dataclass
class _Written:
    """A part written to its temp file and hashed, not yet synced: its file stays open."""

    fd: int
    path: Path
    sha256: str
    header: Header


class PartIngest:
    """Workers that write, hash, fsync, store and (in batches) index downloaded parts.

    A batch is made durable in order: the temp files are written and their write-back started
    by the workers; at the batch's end each is fsync'ed (the first fsync commits the file system
    journal for all of them, so the rest cost little), moved into the store, the store folders
    fsync'ed, and only then are the instances indexed in one transaction and reported stored.
    A kill at any point leaves temp files (cleaned at the next start) or store files without an
    index row (adopted by the next download or import), never an index row without its file.
    """

    def __init__(self, store: Store, on_stored: StoredCallback | None = None, *,
                 workers: int = 2, batch: int = 32, batch_seconds: float = 0.25) -> None:
        self.store = store
        self.on_stored = on_stored
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        self.batch = batch
        self.batch_seconds = batch_seconds
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pending: list[_Written] = []
        self._last = time.monotonic()
        self._futures: set[Future[None]] = set()
        self._room = threading.Condition()
        self._held = 0  # bytes of memory parts not yet on disk
        self.problems: list[Problem] = []
        self.stored = 0

    def submit(self, part: MemoryPart | PartFile, urgent: bool = False) -> None:
        """Take a complete part: its header is checked here (on the caller's thread, so the
        pure-Python parsing never fights the network thread for the GIL); writing, syncing,
        moving and indexing happen on the workers."""
        if isinstance(part, MemoryPart):
            data = part.data
            header = check_buffer(data, part.size, "downloaded instance")
        else:
            part.close()
            header = check_part(part.path, "downloaded instance")
        if isinstance(header, Problem):
            part.discard()
            log.warning("a downloaded instance could not be stored: %s", header.reason)
            with self._lock:
                self.problems.append(header)
            return
        if isinstance(part, MemoryPart):
            with self._room:
                while self._held and self._held + len(data) > MEMORY_BUDGET:
                    self._room.wait()
                self._held += len(data)
            future = self.pool.submit(self._write_memory, data, header, urgent)
        else:
            future = self.pool.submit(self._hash_file, part.path, header, urgent)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _write_memory(self, data: bytearray, header: Header, urgent: bool) -> None:
        try:
            path = self.store.new_part()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with memoryview(data) as view:
                    written = 0
                    while written < len(view):
                        written += os.write(fd, view[written:])
                _start_writeback(fd)
                sha256 = hashlib.sha256(data).hexdigest()  # releases the GIL
            except BaseException:
                os.close(fd)
                path.unlink(missing_ok=True)
                raise
        finally:
            with self._room:
                self._held -= len(data)
                self._room.notify_all()
        self._add(_Written(fd, path, sha256, header), urgent)

    def _hash_file(self, path: Path, header: Header, urgent: bool) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
                sha256 = hashlib.sha256(buf).hexdigest()  # releases the GIL
        except BaseException:
            os.close(fd)
            raise
        self._add(_Written(fd, path, sha256, header), urgent)

    def _add(self, written: _Written, urgent: bool) -> None:
        with self._lock:
            self._pending.append(written)
            due = (urgent or len(self._pending) >= self.batch
                   or time.monotonic() - self._last > self.batch_seconds)
        if due:
            self.flush()

    def flush(self) -> None:
        """Make what is written durable, move it into the store, index it, report it."""
        with self._commit_lock:  # batches in order, without holding up the network thread
            with self._lock:
                batch, self._pending = self._pending, []
                self._last = time.monotonic()
            if not batch:
                return
            try:
                for w in batch:
                    _sync(w.fd)
            finally:
                for w in batch:
                    os.close(w.fd)
            files: list[StoredFile] = []
            reported: list[tuple[str, str]] = []
            for w in batch:
                staged = place_part(self.store, w.path, w.sha256, w.header)
                if isinstance(staged, StoredFile):
                    files.append(staged)
                inst = w.header.instance
                reported.append((inst.sop_instance_uid, inst.series_instance_uid))
            if files:
                self.store.commit(files)
                self.stored += len(files)
        self._notify(reported)

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
