"""Worker processes for codecs: compressed frames decode in parallel, one per core.

Codec libraries hold the GIL, so threads do not scale; processes do. The pool is created on first
use and kept for the life of the program (a viewer loads many series). Workers start from a
fork server that has already imported pydicom and the codec plugins, so a new worker is ready in
milliseconds. Each task decodes one frame and writes it straight into the volume's shared buffer
(:mod:`app.volume.sharedbuf`); only a short error string comes back.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from app.dicom.pixels import read_frame
from app.errors import DecodeError
from app.model import ImageInfo
from app.volume.sharedbuf import write_at

log = logging.getLogger(__name__)

#: Imported once in the fork server so each worker starts warm.
PRELOAD = ["app.dicom.decodepool", "pydicom.pixels.decoders.pylibjpeg",
           "pydicom.pixels.decoders.pyjpegls", "libjpeg", "openjpeg", "rle", "jpeg_ls"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_workers = 0


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def get_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """The shared codec pool (created on first use)."""
    global _pool, _pool_workers
    workers = workers or default_workers()
    with _lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(),
                                        initializer=_warm)
            _pool_workers = workers
        return _pool


def reset_pool() -> None:
    """Drop the pool (after a worker crashed); the next :func:`get_pool` makes a new one."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def preload() -> None:
    """Import the codec plugins now (a program calls this at start, not at its first load)."""
    for name in PRELOAD[1:]:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


_warm = preload


def start(workers: int | None = None) -> bool:
    """Start the pool's workers now and wait until each is ready (program start-up: the first
    compressed slice then waits only for its own decoding). False when no worker process can
    run here (a loader then decodes in threads)."""
    n = workers or default_workers()
    try:
        pool = get_pool(n)
        # A forkserver pool adds a worker per task while none is idle: n tasks start n workers.
        for future in [pool.submit(os.getpid) for _ in range(n)]:
            future.result(timeout=120)
    except Exception as exc:  # no processes here (frozen app, sandbox)
        log.warning("codec processes unavailable (%s)", type(exc).__name__)
        reset_pool()
        return False
    return True


def slim(info: ImageInfo) -> ImageInfo:
    """``info`` without per-frame values (workers do not need them; less to pickle)."""
    return replace(info, frame_info=()) if info.frame_info else info


def decode_to_buffer(buffer_path: str, offset: int, path: str, transfer_syntax: str,
                     info: ImageInfo, frame: int) -> str | None:
    """Worker task: decode one frame into the shared buffer; return None or the error text."""
    try:
        arr = read_frame(Path(path), transfer_syntax, info, frame)
        write_at(buffer_path, offset, arr)
        return None
    except DecodeError as exc:
        return str(exc)
    except MemoryError:
        return f"{path}: not enough memory to decode frame {frame + 1}"
    except Exception as exc:  # a codec on hostile data: report, never take the load down
        return f"{path}: unexpected {type(exc).__name__} while decoding"


@atexit.register
def _shutdown() -> None:
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
