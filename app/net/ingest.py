"""Downloaded parts into the local store, off the network thread.

The network thread receives each WADO-RS part into memory (:class:`MemoryPart`; a part too large
for that, or of unknown length, goes to a temp file in the store: :class:`PartFile`) and
hands it to :class:`PartIngest`, whose workers check its header (:func:`app.ingest.check_buffer`,
the fast reader for plain files), write it to a temp file, hash it and move it into the store
(:func:`app.ingest.place_part`, as every import does). Indexing happens in batches (one SQLite
transaction after the batch's files and folders are fsync'ed), at once for an instance someone
is waiting for (the slice in view); listeners hear of an instance only once it is indexed.
Parts held in memory are bounded (:data:`MEMORY_BUDGET`): the network thread waits when the
disk falls behind.
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

from app.ingest import Duplicate, check_buffer, check_part, place_part
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
#: Bytes of part buffers kept for the next parts.
RECYCLE_BYTES = 32 << 20


class MemoryPart:
    """A part of known length received into memory (a multipart sink)."""

    def __init__(self, headers: dict[str, str], length: int,
                 buffer: bytearray | None = None) -> None:
        self.headers = headers
        self.data = buffer if buffer is not None and len(buffer) == length else bytearray(length)
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


@dataclass
class _Placed:
    """A part written, hashed and moved into the store, not yet synced: its file stays open."""

    fd: int
    staged: StoredFile | Duplicate


class PartIngest:
    """Workers that check, write, hash, store, sync and (in batches) index downloaded parts.

    Each worker checks a part's header, writes it to a temp file (starting its write-back),
    hashes it and renames it into the store at once. At the batch's end every file of the batch
    and every store folder it went to are fsync'ed side by side (one file system journal commit
    covers most of them), and only then are the instances indexed in one transaction and
    reported stored. A kill at any point leaves temp files (removed at the next start) or store
    files without an index row (verified by hash before anyone trusts them: :meth:`Store.adopt`),
    never an index row without its file, and nothing reported stored is lost.
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
        self._pending: list[_Placed] = []
        self._last = time.monotonic()
        self._futures: set[Future[None]] = set()
        self._room = threading.Condition()
        self._held = 0  # bytes of memory parts not yet on disk
        self._free: dict[int, list[bytearray]] = {}  # size -> buffers to use again
        self._free_bytes = 0
        self.problems: list[Problem] = []
        self.stored = 0

    def memory_part(self, headers: dict[str, str], length: int) -> MemoryPart:
        """A :class:`MemoryPart`, in a buffer of a part already on disk when one fits (slices of
        a series have one size: no fresh memory to fault in for each)."""
        with self._room:
            free = self._free.get(length)
            buffer = free.pop() if free else None
            if buffer is not None:
                self._free_bytes -= length
        return MemoryPart(headers, length, buffer)

    def _recycle(self, data: bytearray) -> None:
        with self._room:
            if self._free_bytes + len(data) <= RECYCLE_BYTES:
                self._free.setdefault(len(data), []).append(data)
                self._free_bytes += len(data)

    def submit(self, part: MemoryPart | PartFile, urgent: bool = False) -> None:
        """Take a complete part; checking its header, writing, syncing, moving and indexing
        happen on the workers (the network thread only waits when too much is in memory)."""
        if isinstance(part, MemoryPart):
            data = part.data
            with self._room:
                while self._held and self._held + len(data) > MEMORY_BUDGET:
                    self._room.wait()
                self._held += len(data)
            future = self.pool.submit(self._write_memory, data, urgent)
        else:
            part.close()
            future = self.pool.submit(self._hash_file, part.path, urgent)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _refused(self, header: Header | Problem) -> bool:
        if not isinstance(header, Problem):
            return False
        log.warning("a downloaded instance could not be stored: %s", header.reason)
        with self._lock:
            self.problems.append(header)
        return True

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _write_memory(self, data: bytearray, urgent: bool) -> None:
        try:
            header = check_buffer(data, len(data), "downloaded instance")
            if self._refused(header):
                return
            assert not isinstance(header, Problem)
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
            self._recycle(data)
        self._place(fd, path, sha256, header, urgent)

    def _hash_file(self, path: Path, urgent: bool) -> None:
        header = check_part(path, "downloaded instance")
        if self._refused(header):
            path.unlink(missing_ok=True)
            return
        assert not isinstance(header, Problem)
        fd = os.open(path, os.O_RDONLY)
        try:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
                sha256 = hashlib.sha256(buf).hexdigest()  # releases the GIL
        except BaseException:
            os.close(fd)
            raise
        self._place(fd, path, sha256, header, urgent)

    def _place(self, fd: int, path: Path, sha256: str, header: Header, urgent: bool) -> None:
        """Move the (unsynced) temp file into the store at once: until the batch is synced and
        indexed it is an unindexed store file, which a later writer verifies by hash before
        trusting it."""
        try:
            staged = place_part(self.store, path, sha256, header)
            if isinstance(staged, StoredFile):
                dest = self.store.abspath(staged.relpath)
                if os.fstat(fd).st_ino != os.stat(dest).st_ino:  # it was there already
                    other = os.open(dest, os.O_RDONLY)  # sync that one
                    os.close(fd)
                    fd = other
        except BaseException:
            os.close(fd)
            raise
        with self._lock:
            self._pending.append(_Placed(fd, staged))
            due = (urgent or len(self._pending) >= self.batch
                   or time.monotonic() - self._last > self.batch_seconds)
        if due:
            self.flush()

    def flush(self) -> None:
        """Make what is placed durable, index it, report it."""
        with self._commit_lock:  # batches in order, without holding up the network thread
            with self._lock:
                batch, self._pending = self._pending, []
                self._last = time.monotonic()
            if not batch:
                return
            files = [p.staged for p in batch if isinstance(p.staged, StoredFile)]
            try:
                self.store.sync_placed([p.fd for p in batch if isinstance(p.staged, StoredFile)],
                                       [f.relpath for f in files])
            finally:
                for p in batch:
                    os.close(p.fd)
            if files:
                self.store.commit(files, synced=True)
                self.stored += len(files)
        self._notify([(p.staged.header.instance.sop_instance_uid,
                       p.staged.header.instance.series_instance_uid) for p in batch])

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
