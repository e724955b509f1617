"""A memory buffer that worker processes can write into by name.

The buffer is a file on a RAM-backed file system (``/dev/shm`` on Linux, the temp folder
elsewhere), mapped into this process. Codec workers open the same file and ``pwrite`` decoded
frames at their offsets, so decoded pixels are never pickled back through a pipe. The file is
removed by :meth:`SharedBuffer.unlink` (the mapping stays valid) or when the object is collected;
files left by a killed Relay are removed the next time a buffer is created.
"""

from __future__ import annotations

import contextlib
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
