"""Find the files on outside media: folders, CDs (DICOMDIR), zip archives, single files.

:func:`walk` turns the paths a user gave into :class:`MediaItem` objects (one per candidate file)
and :class:`Problem` lines (things on the media that are wrong: a DICOMDIR pointing at a missing
file, an unreadable folder, a damaged zip). Nothing on the media is ever executed; only regular
files are opened, and only for reading.

A DICOMDIR is read when present and cross-checked with the folder it describes: files it lists
are resolved even with lowercase names or ``;1`` version suffixes, files it lists that are missing
are reported, and files it does not list are still found by scanning (stale or partial
DICOMDIRs are common on vendor CDs). A DICOMDIR that cannot be read is reported as skipped and
the folder is scanned.
"""

from __future__ import annotations

import gzip
import mmap
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom

from app.dicom.header import BufferReader

#: Largest single file taken out of a zip or gzip archive.
MAX_MEMBER_BYTES = 4 << 30
#: A compression ratio beyond this on a big member is a zip bomb, not a DICOM file.
MAX_RATIO = 200
_IN_MEMORY = 256 << 20  # members up to this size are unpacked in memory, bigger ones to a temp file


@dataclass(frozen=True)
class Problem:
    """A line for the import report: ``path`` as the user would recognise it, and why."""

    path: str
    reason: str
    #: "failed" (DICOM, or DICOM that should be there, that could not be taken) or "skipped".
    kind: str = "failed"


@dataclass
class MediaItem:
    """One candidate file; :meth:`open` yields its bytes (an mmap or bytes)."""

    display: str
    size: int
    _path: Path | None = None
    _zip: Path | None = None
    _member: str | None = None
    _gz: bool = False
    tmp_dir: Path | None = field(default=None, repr=False)

    @contextmanager
    def open(self) -> Iterator[Any]:
        if self._zip is not None:
            with zipfile.ZipFile(self._zip) as zf, zf.open(self._member or "") as fp:
                with _spool(fp, self.size, self.tmp_dir) as buf:
                    yield buf
            return
        assert self._path is not None
        with open(self._path, "rb") as fp:
            if self.size == 0:
                yield b""
                return
            if self._gz or _is_gzip(fp):
                with gzip.GzipFile(fileobj=fp) as gz, _spool(gz, None, self.tmp_dir) as buf:
                    yield buf
                return
            mm = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                yield mm
            finally:
                mm.close()


def _is_gzip(fp: Any) -> bool:
    head = fp.read(2)
    fp.seek(0)
    return bool(head == b"\x1f\x8b")


@contextmanager
def _spool(fp: Any, size: int | None, tmp_dir: Path | None) -> Iterator[Any]:
    """Read an archive member, in memory when small, through a temp file when big."""
    if size is not None and size <= _IN_MEMORY:
        data = fp.read(size + 1)
        yield data[:size] if len(data) > size else data
        return
    import tempfile

    with tempfile.TemporaryFile(dir=tmp_dir) as tmp:
        total = 0
        while chunk := fp.read(1 << 20):
            total += len(chunk)
            if total > MAX_MEMBER_BYTES:
                raise OSError(f"unpacks to more than {MAX_MEMBER_BYTES >> 30} GB")
            tmp.write(chunk)
        tmp.flush()
        if total == 0:
            yield b""
            return
        mm = mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mm
        finally:
            mm.close()


@dataclass
class WalkResult:
    items: list[MediaItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    dicomdirs: int = 0


def walk(paths: list[str], tmp_dir: Path | None = None) -> WalkResult:
    """List every candidate file under ``paths`` (folders, DICOMDIR media, zips, files)."""
    result = WalkResult()
    seen_dirs: set[tuple[int, int]] = set()
    for given in paths:
        try:
            st = os.stat(given)
        except OSError as exc:
            result.problems.append(Problem(given, _os_reason(exc), "failed"))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk_dir(Path(given), given, result, seen_dirs, tmp_dir)
        else:
            _add_file(Path(given), given, st, result, tmp_dir)
    return result


def _walk_dir(
    root: Path, display: str, result: WalkResult, seen: set[tuple[int, int]], tmp: Path | None
) -> None:
    stack = [(root, display)]
    while stack:
        folder, shown = stack.pop()
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen:  # a symlink loop or the same folder given twice
                continue
            seen.add(key)
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            result.problems.append(Problem(shown, _os_reason(exc), "failed"))
            continue
        dicomdir = next((e for e in entries if _is_dicomdir_name(e.name)), None)
        if dicomdir is not None:
            _check_dicomdir(Path(dicomdir.path), shown, result)
        subdirs = []
        for entry in entries:
            entry_shown = os.path.join(shown, entry.name)
            try:
                est = entry.stat()  # follows symlinks
            except OSError as exc:
                result.problems.append(Problem(entry_shown, _os_reason(exc), "failed"))
                continue
            if stat.S_ISDIR(est.st_mode):
                subdirs.append((Path(entry.path), entry_shown))
            elif entry is dicomdir:
                result.dicomdirs += 1
                result.problems.append(
                    Problem(entry_shown, "DICOMDIR (media index), checked against the files",
                            "skipped")
                )
            else:
                _add_file(Path(entry.path), entry_shown, est, result, tmp)
        stack.extend(reversed(subdirs))


def _add_file(path: Path, shown: str, st: os.stat_result, result: WalkResult,
              tmp: Path | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        result.problems.append(Problem(shown, "not a regular file", "skipped"))
        return
    if st.st_size >= 22 and _looks_zip(path):
        _walk_zip(path, shown, result, tmp)
        return
    result.items.append(MediaItem(display=shown, size=st.st_size, _path=path, tmp_dir=tmp))


def _looks_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fp:
            return fp.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _walk_zip(path: Path, shown: str, result: WalkResult, tmp: Path | None) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, zlib.error, NotImplementedError) as exc:
        result.problems.append(Problem(shown, f"damaged zip archive ({exc})", "failed"))
        return
    for info in infos:
        if info.is_dir():
            continue
        member_shown = f"{shown}!/{info.filename}"
        name = info.filename.rsplit("/", 1)[-1]
        if info.flag_bits & 0x1:
            result.problems.append(Problem(member_shown, "encrypted in the zip (needs a password)"))
            continue
        if info.file_size > MAX_MEMBER_BYTES or (
            info.file_size > (64 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1)
        ):
            result.problems.append(
                Problem(member_shown, "implausibly large when unpacked (zip bomb?)", "failed")
            )
            continue
        if _is_dicomdir_name(name):
            result.problems.append(Problem(member_shown, "DICOMDIR (media index)", "skipped"))
            continue
        result.items.append(
            MediaItem(display=member_shown, size=info.file_size, _zip=path, _member=info.filename,
                      tmp_dir=tmp)
        )


# -- DICOMDIR --------------------------------------------------------------------------------
def _is_dicomdir_name(name: str) -> bool:
    return _iso_name(name) == "DICOMDIR"


def _iso_name(name: str) -> str:
    """Upper-case a CD file name and drop ISO 9660 decorations ("img.;1" -> "IMG")."""
    base = name.split(";", 1)[0]
    return base.rstrip(".").upper()


def referenced_files(dicomdir: Path) -> list[tuple[str, ...]]:
    """The Referenced File IDs of every record in a DICOMDIR, in record order.

    Only the records are used, not the offsets between them, so DICOMDIRs with missing offsets,
    reordered records or odd record types still give their file list.
    """
    data = dicomdir.read_bytes()
    ds = pydicom.dcmread(BufferReader(data, str(dicomdir)), force=True, defer_size=None)
    out: list[tuple[str, ...]] = []
    for record in ds.get("DirectoryRecordSequence") or []:
        ref = record.get("ReferencedFileID")
        if ref is None:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        parts = [str(p).strip() for p in parts if str(p).strip()]
        if parts:
            out.append(tuple(parts))
    return out


def resolve_file_id(base: Path, parts: tuple[str, ...]) -> Path | None:
    """Find a DICOMDIR file ID under ``base`` despite case changes and ``;1`` suffixes."""
    current = base
    for part in parts:
        want = _iso_name(part)
        exact = current / part
        if exact.exists():
            current = exact
            continue
        try:
            match = next((e for e in os.scandir(current) if _iso_name(e.name) == want), None)
        except OSError:
            return None
        if match is None:
            return None
        current = Path(match.path)
    return current if current.is_file() else None


def _check_dicomdir(dicomdir: Path, shown_dir: str, result: WalkResult) -> None:
    try:
        refs = referenced_files(dicomdir)
    except Exception as exc:  # a broken DICOMDIR must never stop the scan
        result.problems.append(
            Problem(os.path.join(shown_dir, dicomdir.name),
                    f"DICOMDIR unreadable ({type(exc).__name__}); the folder was scanned instead",
                    "skipped")
        )
        return
    base = dicomdir.parent
    for parts in refs:
        if resolve_file_id(base, parts) is None:
            result.problems.append(
                Problem(os.path.join(shown_dir, *parts),
                        "listed in the DICOMDIR but missing from the media", "failed")
            )


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file or folder"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
