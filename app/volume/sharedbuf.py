"""A memory buffer that worker processes can write into by name.

The buffer is a file on a RAM-backed file system (``/dev/shm`` on Linux, the temp folder
elsewhere), mapped into this process. Codec workers open the same file and ``pwrite`` decoded
frames at their offsets, so decoded pixels are never pickled back through a pipe. The file is
removed by :meth:`SharedBuffer.unlink` (the mapping stays valid) or when the object is collected;
files left by a killed Relay are removed the next time a buffer is created.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import mmap
import os
import tempfile
import uuid
import weakref
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_PREFIX = "relay-"
_SUFFIX = ".vol"


def _folder() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


class SharedBuffer:
    """``nbytes`` of zeroed memory shared with worker processes through a file path."""

    def __init__(self, nbytes: int) -> None:
        folder = _folder()
        _remove_stale(folder)
        self.path = folder / f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{_SUFFIX}"
        self.nbytes = max(1, int(nbytes))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, self.nbytes)
            self._map = mmap.mmap(fd, self.nbytes)
        finally:
            os.close(fd)
        self._finalizer = weakref.finalize(self, _unlink, str(self.path))

    def array(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A numpy view of the buffer."""
        return np.frombuffer(self._map, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def unlink(self) -> None:
        """Remove the file; this process keeps its mapping, workers can no longer open it."""
        self._finalizer()

    #: :meth:`populate` is worth a thread beside the writers.
    needs_populate = True

    def populate(self, chunk: int = 8 << 20) -> None:
        """Commit the buffer's pages now (see :func:`populate`)."""
        populate(self._map, chunk)


class LocalBuffer:
    """``nbytes`` of zeroed private memory (an anonymous mapping), for volumes no worker
    process writes into. Unlike ``np.empty`` it is always zero until written, so slices still
    loading show as background, never as a previous volume's pixels.

    The mapping asks for transparent huge pages, as numpy does for its big arrays: a 200 MB
    volume then faults in 2 MB at a time instead of 4 kB (~25 ms instead of ~120 ms here,
    ``bench/bench_load.py``), and needs no :meth:`populate` ahead of the readers."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = max(1, int(nbytes))
        self._map = mmap.mmap(-1, self.nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.huge_pages = _huge_pages(self._map)

    def array(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.frombuffer(self._map, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    @property
    def needs_populate(self) -> bool:
        """:meth:`populate` is worth a thread beside the writers (it does nothing with huge
        pages; starting a thread waits until it runs, milliseconds on a busy machine)."""
        return not self.huge_pages

    def populate(self, chunk: int = 8 << 20) -> None:
        """Commit the pages now, unless they come as huge pages: then populating beside the
        readers made loads 3-5x slower (both fault the same pages)."""
        if not self.huge_pages:
            populate(self._map, chunk)


#: Linux 5.14+: fault pages in, writable, in one kernel call (no trap per 4 kB page).
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


def populate(buffer: mmap.mmap, chunk: int = 8 << 20) -> None:
    """Commit every page of ``buffer`` ahead of the writers, chunk by chunk.

    Fresh memory costs a page fault per 4 kB on first write; on the machines measured here that
    made the first load of a 200 MB volume 3–5× slower than later ones. Populating the mapping
    in the kernel is ~6× cheaper than faulting it page by page. Where the kernel does not know
    the advice, nothing happens (the pages fault in as they are written).
    """
    madvise = _libc_madvise()
    if madvise is None:
        return
    size = len(buffer)
    anchor = ctypes.c_char.from_buffer(buffer)  # the mapping's address (pins it while we work)
    base = ctypes.addressof(anchor)
    try:
        for start in range(0, size, chunk):
            # through ctypes the call releases the GIL: the window keeps painting meanwhile
            if madvise(ctypes.c_void_p(base + start), ctypes.c_size_t(min(chunk, size - start)),
                       _MADV_POPULATE_WRITE) != 0:
                return
    finally:
        del anchor


_madvise: Any = None


def _libc_madvise() -> Any:
    global _madvise
    if _madvise is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _madvise = libc.madvise
            _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _madvise.restype = ctypes.c_int
        except (OSError, AttributeError):
            _madvise = False
    return _madvise or None


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _remove_stale(folder: Path) -> None:
    for entry in folder.glob(f"{_PREFIX}*{_SUFFIX}"):
        pid = entry.name[len(_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _unlink(str(entry))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# -- worker side -----------------------------------------------------------------------------
_fds: dict[str, int] = {}


def write_at(path: str, offset: int, data: np.ndarray) -> None:
    """Write ``data``'s bytes at ``offset`` of the shared buffer file ``path`` (in a worker)."""
    fd = _fds.get(path)
    if fd is None:
        for old in list(_fds):  # one load at a time per worker: keep one descriptor
            os.close(_fds.pop(old))
        fd = _fds[path] = os.open(path, os.O_WRONLY)
    view = memoryview(np.ascontiguousarray(data)).cast("B")  # type: ignore[arg-type]
    written = 0
    while written < len(view):
        written += os.pwrite(fd, view[written:], offset + written)


_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _huge_pages(buffer: mmap.mmap) -> bool:
    """Ask for transparent huge pages on ``buffer``; True if the kernel will give them."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or len(buffer) < (4 << 20):
        return False
    try:
        if "[never]" in _THP.read_text():
            return False
        buffer.madvise(advice)
    except (OSError, ValueError):
        return False
    return True
