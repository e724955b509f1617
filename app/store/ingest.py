"""Adding DICOM bytes to the local store: the steps every source ends in.

The header is read and checked with :func:`app.dicom.header.read_header`, the bytes are placed
durably with :meth:`Store.put` (or :meth:`Store.adopt` for a file already written to the store's
tmp folder), and the caller indexes batches of the results with :meth:`Store.commit`. Everything
that comes in from outside (an import's media, a WADO-RS fetch, a C-GET or C-MOVE, a C-STORE to
Relay's node) goes through these steps in the one ingest pipeline,
:class:`app.store.part_ingest.PartIngest`; :func:`stage_bytes` stores a whole object made here
(a reconciled or de-identified copy, a Secondary Capture, a file ``relay check`` puts back).
"""

from __future__ import annotations

import logging
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.dicom.header import read_header
from app.errors import DicomReadError, NotDicomError
from app.imports.media import Problem
from app.model import Header
from app.store.local import Store, StoredFile, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Duplicate:
    """These exact bytes are already in the store under this SOP Instance UID."""

    header: Header
    sha256: str


Staged = StoredFile | Duplicate | Problem


def stage_bytes(store: Store, buf: Any, name: str, sha256: str | None = None) -> Staged:
    """Check ``buf`` (bytes or mmap of a whole file) and place it durably in the store."""
    try:
        header = read_header(buf, name, uid_key=store.uid_key)
    except NotDicomError as exc:
        return Problem(name, exc.reason, "skipped")
    except DicomReadError as exc:
        return Problem(name, exc.reason, "failed")
    digest = sha256 or sha256_of(buf)
    if store.has_instance(header.instance.sop_instance_uid, digest):
        return Duplicate(header, digest)
    digest, rel = store.put(buf, digest)
    return StoredFile(header=header, sha256=digest, size=len(buf), relpath=rel)


def check_part(part: Path, name: str, uid_key: bytes = b"") -> Header | Problem:
    """Read and check the header of a complete file in the store's tmp folder (``uid_key``:
    the store's, see :func:`app.dicom.header.read_header`)."""
    try:
        if part.stat().st_size == 0:
            return Problem(name, "empty part", "failed")
        with open(part, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return read_header(buf, name, uid_key=uid_key)
    except NotDicomError as exc:
        return Problem(name, exc.reason, "skipped")
    except DicomReadError as exc:
        return Problem(name, exc.reason, "failed")


def check_buffer(buf: bytearray | bytes, size: int, name: str,
                 uid_key: bytes = b"") -> Header | Problem:
    """Read and check the header of a complete file held in memory (its first ``size`` bytes;
    ``uid_key`` as for :func:`check_part`)."""
    if size == 0:
        return Problem(name, "empty part", "failed")
    try:
        return read_header(memoryview(buf)[:size], name, uid_key=uid_key)
    except NotDicomError as exc:
        return Problem(name, exc.reason, "skipped")
    except DicomReadError as exc:
        return Problem(name, exc.reason, "failed")


def place_part(store: Store, part: Path, sha256: str, header: Header) -> StoredFile | Duplicate:
    """Move a checked, fsync'ed temp file into the store (or drop it as a duplicate)."""
    try:
        if store.has_instance(header.instance.sop_instance_uid, sha256):
            return Duplicate(header, sha256)
        size = part.stat().st_size
        rel = store.adopt(part, sha256)
        return StoredFile(header=header, sha256=sha256, size=size, relpath=rel)
    finally:
        part.unlink(missing_ok=True)


def store_instance(store: Store, data: bytes, name: str) -> StoredFile:
    """Add one DICOM object made here (e.g. a Secondary Capture) to the store and index it.

    Raises DicomReadError when the bytes do not read back as a valid instance."""
    staged = stage_bytes(store, data, name)
    if isinstance(staged, Problem):
        raise DicomReadError(f"{name}: {staged.reason}")
    if isinstance(staged, Duplicate):
        raise DicomReadError(f"{name}: already in the store")
    store.commit([staged])
    return staged
