"""Downloaded parts into the local store.

Every part a fetch receives (WADO-RS multipart, and the C-STOREs of a C-GET or C-MOVE it asked
for) comes through a :class:`PipedPart` from :meth:`PartIngest.open_part`: the network thread
only fills buffers (of :data:`PART_BUFFER` bytes, from a pool of at most :data:`MAX_BUFFERS`)
straight from the socket and hands each on. :class:`PartIngest`'s writer thread creates the
part's temp file in the store, writes each buffer and hashes it right after (the very bytes
written; both release the GIL, so they overlap the next reads). The workers check the header
of a part that fitted in one buffer from that buffer (:func:`app.store.ingest.check_buffer`,
the fast reader for plain files; a larger part from its file), start the file's write-back and
move it into the store (:func:`app.store.ingest.place_part`, as every import does). Indexing
happens in batches (one SQLite transaction after the batch's files and folders are fsync'ed),
at once for an instance someone is waiting for (the slice in view); listeners hear of an
instance only once it is indexed. Parts waiting for the workers are bounded
(:data:`MAX_WAITING`), and so are the buffers: the network thread waits when the writer or the
workers fall behind. A write that fails on the writer thread (a full disk) is raised on the
network thread at its next call and by :meth:`PartIngest.drain`.

A caller that must answer for each part once it is safe (Relay's node answers a C-STORE only
then) gives the part a :class:`Ticket`: its outcome (the instance stored and indexed, a
duplicate, or why it was refused) is set once the part's batch is durable and indexed, and a
worker refuses a part whose header names another instance than the ticket expects, before it
goes into the store.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app.errors import Cancelled
from app.imports.media import Problem
from app.model import Header
from app.store.ingest import Duplicate, check_buffer, check_part, place_part
from app.store.local import Store, StoredFile, ensure_room, write_error

log = logging.getLogger(__name__)

#: Called with (sop_instance_uid, series_instance_uid) once an instance is in the store's index.
StoredCallback = Callable[[str, str], None]
#: Indexes files durably placed (synced) and says "imported"/"duplicate"/"conflict" for each.
Committer = Callable[[list[StoredFile]], list[str]]


@dataclass(frozen=True)
class Mismatch:
    """A part whose header names another SOP Instance UID than its ticket expected."""

    header: Header


class Ticket:
    """The outcome of one piped part, for a caller that answers for it (see the module's
    docstring). :attr:`future`'s result is ``(staged, status)``: a :class:`StoredFile` or
    :class:`Duplicate` with the index's "imported"/"duplicate"/"conflict", or a
    :class:`Problem` or :class:`Mismatch` with None; or the error that stopped it (a full
    disk: :class:`app.errors.StoreError`)."""

    def __init__(self, sop_instance_uid: str = "") -> None:
        self.sop_instance_uid = sop_instance_uid.strip()
        self.future: Future[tuple[StoredFile | Duplicate | Problem | Mismatch, str | None]] \
            = Future()

    def settle(self, outcome: StoredFile | Duplicate | Problem | Mismatch,
               status: str | None = None) -> None:
        if not self.future.done():
            self.future.set_result((outcome, status))

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


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


#: Bytes a part goes through on the network thread at a time (small enough to stay in a core's
#: L2 cache between the socket read, the hash and the write).
PART_BUFFER = 1 << 20
#: Received parts waiting for the workers, at most (each holds an open file).
MAX_WAITING = 256
#: A part's name in problem reports (its UIDs are unknown until its header is read).
PART_NAME = "downloaded instance"
#: Buffers of :data:`PART_BUFFER` bytes between the network threads and the writer, at most.
MAX_BUFFERS = 16


def _write_all(fd: int, data: memoryview, root: Path) -> None:
    """Write all of ``data`` (a full disk is said plainly: :func:`write_error`)."""
    n = len(data)
    ensure_room(root, n)
    written = os.write(fd, data)
    while written < n:
        written += os.write(fd, data[written:])


class PipedPart:
    """A part being received, its bytes handed to its :class:`PartIngest`'s writer thread
    buffer by buffer (a multipart sink): the network thread only fills
    buffers from the socket; creating the temp file, writing, hashing and checking the header
    (from the buffer, when the part fitted in one) happen on the writer, side by side with the
    next reads. Every byte is hashed from the buffer it was written from, after the write.
    A write that failed there stops the network thread at its next call (the error the
    writer met) and at :meth:`PartIngest.drain`."""

    def __init__(self, ingest: PartIngest, headers: dict[str, str],
                 name: str = PART_NAME) -> None:
        self.ingest = ingest
        self.path: Path = ingest.store.new_part()
        self.headers = headers
        #: what a problem with the part is reported under (a file's name on the media)
        self.name = name
        self.ticket: Ticket | None = None  # set by a caller that answers for the part
        self.size = 0
        self.sha256 = ""  # set by the writer
        self._buf: bytearray | None = None
        self._held = 0
        self._bytes: bytes | None = None  # a piece handed in as bytes, not yet handed on
        # the writer's side (touched by the writer thread only)
        self.fd = -1
        self.pieces = 0
        self.hash = hashlib.sha256()
        self.error: BaseException | None = None

    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        if type(data) is bytes and n >= PART_BUFFER // 4:  # immutable: handed on as it is
            self._handoff()
            self._bytes = data  # handed on with the next piece, or as the last
            self.size += n
            return n
        at = 0
        while at < n:
            with self.free() as free:
                k = min(len(free), n - at)
                free[:k] = data[at : at + k]
            self.filled(k)
            at += k
        if self._held >= self.ingest.handoff:  # written and hashed while the rest comes
            self._handoff()
        return n

    def free(self) -> memoryview:
        self.ingest._raise_failure()
        if self._bytes is not None or self._buf is not None and self._held == len(self._buf):
            self._handoff()
        if self._buf is None:
            self._buf = self.ingest._take_buffer()
        return memoryview(self._buf)[self._held :]

    def filled(self, n: int) -> None:
        self._held += n
        self.size += n

    def finish(self, urgent: bool = False) -> None:
        """All bytes are in: the writer completes the part and hands it to the ingest."""
        try:
            self.ingest._raise_failure()
        except BaseException:
            self.discard()
            raise
        self._handoff(last=True, urgent=urgent)

    def discard(self) -> None:
        if self._buf is not None:
            self.ingest._give_buffer(self._buf)
            self._buf, self._held = None, 0
        self._bytes = None
        self.ingest._jobs.put((self, None, 0, None, False))  # the writer removes the file

    def _handoff(self, last: bool = False, urgent: bool = False) -> None:
        """Hand what is held on to the writer (``last``: the part is complete)."""
        pending = self._bytes
        if pending is not None:
            self._bytes = None
            only = last and self._buf is None
            self.ingest._put(self, pending, len(pending), only, urgent)
            if only:
                return
        if self._buf is not None or last:
            buf, held = self._buf, self._held
            self._buf, self._held = None, 0
            self.ingest._put(self, buf, held, last, urgent)


@dataclass
class _Placed:
    """A part written, hashed and moved into the store, not yet synced: its file stays open."""

    fd: int
    staged: StoredFile | Duplicate
    ticket: Ticket | None = None
    #: the order the part was completed in: a batch is indexed in that order, so of two
    #: files with the same SOP Instance UID and other bytes the later one is the conflict
    seq: int = 0


class PartIngest:
    """Workers that check, store, sync and (in batches) index downloaded parts.

    Each worker starts the write-back of a received part's temp file, checks its header and
    renames it into the store at once. At the batch's end every file of the batch and every
    store folder it went to are fsync'ed side by side (one file system journal commit
    covers most of them), and only then are the instances indexed in one transaction and
    reported stored. A kill at any point leaves temp files (removed at the next start) or store
    files without an index row (verified by hash before anyone trusts them: :meth:`Store.adopt`),
    never an index row without its file, and nothing reported stored is lost.
    """

    def __init__(self, store: Store, on_stored: StoredCallback | None = None, *,
                 workers: int = 2, batch: int = 32, batch_seconds: float = 0.25,
                 commit: Committer | None = None, max_buffers: int = MAX_BUFFERS,
                 handoff: int = PART_BUFFER, shared: bool = False,
                 report_problems: bool = True) -> None:
        self.store = store
        self.on_stored = on_stored
        #: indexes a synced batch (default: durably, at once)
        self.commit = commit or (lambda files: store.commit(files, synced=True))
        self.max_buffers = max_buffers
        #: bytes :meth:`PipedPart.write` gathers before handing them to the writer (a part
        #: that fits in one piece has its header checked from memory, a larger one from its
        #: file; smaller pieces are written and hashed sooner, while the rest still comes)
        self.handoff = handoff
        #: serving many callers at once for long (Relay's node): a write that fails fails its
        #: own part (its ticket) only, not every part after it
        self.shared = shared
        #: log each refused part and keep it in :attr:`problems` (off for a caller that reports
        #: each part's outcome from its ticket: an import's report)
        self.report_problems = report_problems
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        self.batch = batch
        self.batch_seconds = batch_seconds
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pending: list[_Placed] = []
        self._last = time.monotonic()
        self._futures: set[Future[None]] = set()
        self._room = threading.Condition()
        self._waiting = 0  # parts submitted, not yet checked
        self.problems: list[Problem] = []
        self.stored = 0
        # the writer thread of piped parts (:meth:`open_part`), started with the first
        self._jobs: queue.SimpleQueue[tuple[PipedPart | None, object, int, bool | None, bool]] \
            = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._buffers: list[bytearray] = []
        self._made = 0  # buffers made (free or in use)
        self._free = threading.Condition()
        self._failure: BaseException | None = None
        self._seq = itertools.count()  # parts in the order the writer completes them

    def open_part(self, headers: dict[str, str], name: str = PART_NAME) -> PipedPart:
        """A new part whose bytes this ingest's writer thread writes, hashes and checks
        (``name``: what a problem with it is reported under)."""
        with self._free:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_parts, name="ingest-writer",
                                                daemon=True)
                self._writer.start()
        return PipedPart(self, headers, name)

    def submit(self, part: PipedPart, urgent: bool = False) -> None:
        """Take a complete part (its file is then the workers'); checking its header, moving,
        syncing and indexing happen on the workers (the network thread only waits when too
        many parts are waiting)."""
        self._wait_for_room()
        try:
            part.finish(urgent)  # the writer submits it
        except BaseException:
            self._left_room()
            raise

    def _wait_for_room(self) -> None:
        with self._room:
            while self._waiting >= MAX_WAITING:
                self._room.wait()
            self._waiting += 1

    def _left_room(self) -> None:
        with self._room:
            self._waiting -= 1
            self._room.notify_all()

    def _submit(self, fd: int, path: Path, sha256: str, header: Header | Problem | None,
                urgent: bool, whole: bytes | bytearray | None = None, size: int = 0,
                ticket: Ticket | None = None, name: str = PART_NAME) -> None:
        future = self.pool.submit(self._ingest, fd, path, sha256, header, urgent, whole, size,
                                  ticket, name, next(self._seq))
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    # -- the writer of piped parts ------------------------------------------------------------
    def _take_buffer(self) -> bytearray:
        with self._free:
            while not self._buffers and self._made >= self.max_buffers:
                self._free.wait()
            if self._buffers:
                return self._buffers.pop()
            self._made += 1
        return bytearray(PART_BUFFER)

    def _give_buffer(self, buf: bytearray) -> None:
        with self._free:
            self._buffers.append(buf)
            self._free.notify()

    def _put(self, part: PipedPart, data: object, n: int, last: bool,
             urgent: bool = False) -> None:
        self._jobs.put((part, data, n, last, urgent))

    def _raise_failure(self) -> None:
        failure = self._failure
        if failure is not None:
            raise failure

    def _write_parts(self) -> None:
        while True:
            part, data, n, last, urgent = self._jobs.get()
            if part is None:  # a barrier (an event to set) or the end (None)
                if data is None:
                    return
                assert isinstance(data, threading.Event)
                data.set()
                continue
            kept = False
            try:
                kept = self._write_piece(part, data, n, last, urgent)
            except BaseException as exc:  # not a write's failure: a bug; the part goes
                log.exception("a downloaded instance could not be handled")
                if self._failure is None and not self.shared:
                    self._failure = exc
                self._drop(part)
                if last:
                    self._left_room()
                if part.ticket is not None:
                    part.ticket.fail(exc)
            finally:
                if isinstance(data, bytearray) and not kept:
                    self._give_buffer(data)

    def _write_piece(self, part: PipedPart, data: object, n: int, last: bool | None,
                     urgent: bool) -> bool:
        """Write and hash one piece of a part (the last: hand the part to the workers); True
        when ``data`` went on with it (the worker checks the header from it, then frees it)."""
        if last is None:  # discarded by its reader
            self._drop(part)
            if part.ticket is not None:
                part.ticket.fail(Cancelled())
            return False
        if part.error is None:
            try:
                if part.fd < 0:
                    part.fd = os.open(part.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                if n:
                    with memoryview(data) as view, view[:n] as piece:  # type: ignore[arg-type]
                        _write_all(part.fd, piece, self.store.root)
                        part.hash.update(piece)  # the bytes just written; releases the GIL
                part.pieces += 1
            except BaseException as exc:
                part.error = write_error(self.store.root, exc) if isinstance(exc, OSError) else exc
                self._drop(part)
                if self._failure is None and not self.shared:
                    self._failure = part.error  # raised on the network thread (said there)
        if not last:
            return False
        if part.error is not None:
            self._left_room()
            if part.ticket is not None:
                part.ticket.fail(part.error)
            return False
        part.sha256 = part.hash.hexdigest()
        whole = part.pieces == 1 and n == part.size  # the whole part is in this buffer
        self._submit(part.fd, part.path, part.sha256, None, urgent,
                     data if whole else None, n, part.ticket, part.name)  # type: ignore[arg-type]
        part.fd = -1
        return whole

    @staticmethod
    def _drop(part: PipedPart) -> None:
        if part.fd >= 0:
            os.close(part.fd)
            part.fd = -1
        part.path.unlink(missing_ok=True)
        if part.error is None:
            part.error = Cancelled()

    def writer_idle(self) -> None:
        """Wait until the writer has handled every piece handed to it so far."""
        writer = self._writer
        if writer is None or not writer.is_alive():
            return
        done = threading.Event()
        self._jobs.put((None, done, 0, None, False))
        done.wait()

    def _refused(self, header: Header | Problem) -> bool:
        if not isinstance(header, Problem):
            return False
        if self.report_problems:
            log.warning("a downloaded instance could not be stored: %s", header.reason)
            with self._lock:
                self.problems.append(header)
        return True

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _ingest(self, fd: int, path: Path, sha256: str, header: Header | Problem | None,
                urgent: bool, whole: bytes | bytearray | None = None, size: int = 0,
                ticket: Ticket | None = None, name: str = PART_NAME, seq: int = 0) -> None:
        """``whole``: the part's ``size`` bytes in memory (a piped part that fitted in one
        buffer, given back to the pool here), its header checked from there."""
        accepted = False
        try:
            _start_writeback(fd)
            if header is None and whole is not None:
                try:
                    header = check_buffer(whole, size, name, self.store.uid_key)
                finally:
                    if isinstance(whole, bytearray):
                        self._give_buffer(whole)
            if header is None:
                header = check_part(path, name, self.store.uid_key)
            if ticket is not None and not isinstance(header, Problem) and ticket.sop_instance_uid \
                    and header.instance.sop_instance_uid != ticket.sop_instance_uid:
                ticket.settle(Mismatch(header))  # never stored under another identity
            else:
                accepted = not self._refused(header)
                if not accepted and ticket is not None:
                    assert isinstance(header, Problem)
                    ticket.settle(header)
        except BaseException as exc:
            if ticket is not None:
                ticket.fail(exc)
            raise
        finally:
            if not accepted:  # refused, or the check itself failed: the temp file goes
                os.close(fd)
                path.unlink(missing_ok=True)
            with self._room:
                self._waiting -= 1
                self._room.notify_all()
        if accepted:
            assert not isinstance(header, Problem)
            try:
                self._place(fd, path, sha256, header, urgent, ticket, seq)
            except BaseException as exc:
                if ticket is not None:
                    ticket.fail(exc)
                raise

    def _place(self, fd: int, path: Path, sha256: str, header: Header, urgent: bool,
               ticket: Ticket | None = None, seq: int = 0) -> None:
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
            self._pending.append(_Placed(fd, staged, ticket, seq))
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
            batch.sort(key=lambda p: p.seq)  # the workers place them in any order
            files = [p.staged for p in batch if isinstance(p.staged, StoredFile)]
            try:
                try:
                    self.store.sync_placed(
                        [p.fd for p in batch if isinstance(p.staged, StoredFile)],
                        [f.relpath for f in files])
                finally:
                    for p in batch:
                        os.close(p.fd)
                statuses = iter(self.commit(files) if files else [])
            except BaseException as exc:
                for p in batch:
                    if p.ticket is not None:
                        p.ticket.fail(exc)
                raise
            self.stored += len(files)
            for p in batch:
                if p.ticket is not None:
                    p.ticket.settle(p.staged, next(statuses) if isinstance(p.staged, StoredFile)
                                    else "duplicate")
        self._notify([(p.staged.header.instance.sop_instance_uid,
                       p.staged.header.instance.series_instance_uid) for p in batch])

    def _notify(self, uids: list[tuple[str, str]]) -> None:
        if self.on_stored is not None:
            for sop, series in uids:
                self.on_stored(sop, series)

    def drain(self) -> None:
        """Wait for every submitted part, then index the rest (a write the writer thread
        failed is raised here, once)."""
        self.writer_idle()
        failure, self._failure = self._failure, None
        while True:
            with self._lock:
                futures = list(self._futures)
            if not futures:
                break
            for future in futures:
                future.result()
        self.flush()
        if failure is not None:
            raise failure

    def close(self) -> None:
        try:
            self.drain()
        finally:
            writer = self._writer
            if writer is not None and writer.is_alive():
                self._jobs.put((None, None, 0, None, False))
                writer.join()
            self.pool.shutdown(wait=True)
