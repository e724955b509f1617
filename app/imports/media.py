"""Find the files on outside media: folders, CDs (DICOMDIR), zip archives, single files.

:func:`walk` turns the paths a user gave into :class:`MediaItem` objects (one per candidate file)
and :class:`Problem` lines (things on the media that are wrong: a DICOMDIR pointing at a missing
file, an unreadable folder, a damaged zip). Nothing on the media is ever executed; only regular
files are opened, only for reading, and with plain reads (never a mapping that a shrinking file
turns into SIGBUS). Links are followed only inside the folder given. Archives are opened once
and capped: per member, per archive, by compression ratio, and overlapping or duplicate zip
members are refused.

A DICOMDIR is read when present and cross-checked with the folder it describes: files it lists
are resolved even with lowercase names or ``;1`` version suffixes, files it lists that are missing
are reported, and files it does not list are still found by scanning (stale or partial
DICOMDIRs are common on vendor CDs). A DICOMDIR that cannot be read is reported as skipped and
the folder is scanned.
"""

from __future__ import annotations

import gzip
import os
import stat
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import pydicom

from app.dicom.header import BufferReader

#: Largest single file taken out of a zip or gzip archive.
MAX_MEMBER_BYTES = 4 << 30
#: Largest total of all members of one zip archive.
MAX_ARCHIVE_BYTES = 64 << 30
#: A compression ratio beyond this (per member, per gzip file, per archive) is a bomb, not DICOM.
MAX_RATIO = 200
#: Below this unpacked size the ratio is not checked (tiny blank files compress very well).
RATIO_FLOOR = 4 << 20
#: Largest DICOMDIR read (a DICOMDIR of a full DVD is a few MB).
MAX_DICOMDIR_BYTES = 64 << 20


@dataclass(frozen=True)
class Problem:
    """A line for the import report: ``path`` as the user would recognise it, and why."""

    path: str
    reason: str
    #: "failed" (DICOM, or DICOM that should be there, that could not be taken) or "skipped".
    kind: str = "failed"
    #: What the file holds, when known (a stored instance a workflow could not do): the
    #: report says "image", "document" or "object" (:func:`app.dicom.sop.object_noun`).
    sop_class_uid: str = ""


class NotRegularFile(OSError):
    """A media entry is a FIFO, a device, a socket...: never read."""


def open_regular(path: Path | str) -> IO[bytes]:
    """Open a file on the media for reading, refusing anything but a regular file.

    The check is made on the opened descriptor (``fstat``), and the open itself never blocks
    (``O_NONBLOCK``), so a FIFO, a device or a link to ``/dev/zero`` is refused at once.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(0, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _Archive:
    """One zip archive on the media, opened once and shared by all of its members."""

    def __init__(self, fp: IO[bytes], zf: zipfile.ZipFile) -> None:
        self._fp = fp
        self.zf = zf
        self._lock = threading.Lock()

    def open(self, info: zipfile.ZipInfo) -> IO[bytes]:
        with self._lock:  # ZipFile reads are locked; opening a member touches shared state
            return self.zf.open(info)

    def close(self) -> None:
        self.zf.close()
        self._fp.close()


@dataclass
class MediaItem:
    """One candidate file; :meth:`pour` copies its bytes into the ingest pipeline.

    Files on the media are read with plain reads, never mapped: a file that shrinks or fails
    to read (a pulled USB stick, a scratched CD) raises :class:`OSError`, never SIGBUS.
    """

    display: str
    size: int
    _path: Path | None = None
    _archive: _Archive | None = None
    _member: zipfile.ZipInfo | None = None
    _gz: bool = False

    def pour(self, sink: Sink) -> int:
        """Copy the file's bytes into ``sink`` (a part of the ingest pipeline) with plain reads,
        a buffer at a time, straight into the sink's buffers: never mapped, never held whole.
        A file that changes size while it is read (media removed) or unpacks beyond its bounds
        (a compression bomb) raises :class:`OSError`; returns the bytes copied."""
        if self._archive is not None and self._member is not None:
            with self._archive.open(self._member) as fp:
                if self.size and _is_gzip(fp):  # a .dcm.gz in a zip, as in a folder
                    with gzip.GzipFile(fileobj=fp) as gz:
                        return _pour(gz, sink, None, limit=max(RATIO_FLOOR,
                                                                MAX_RATIO * self.size))
                return _pour(fp, sink, self.size)
        assert self._path is not None
        with open_regular(self._path) as fp:
            if self.size == 0:
                return 0
            if self._gz or _is_gzip(fp):
                with gzip.GzipFile(fileobj=fp) as gz:
                    return _pour(gz, sink, None, limit=max(RATIO_FLOOR, MAX_RATIO * self.size))
            return _pour(fp, sink, self.size, exact=True)


class Sink(Protocol):
    """Where :meth:`MediaItem.pour` puts a file's bytes (a piped part of the ingest)."""

    def free(self) -> memoryview: ...

    def filled(self, n: int) -> None: ...


def _is_gzip(fp: Any) -> bool:
    head = fp.read(2)
    fp.seek(0)
    return bool(head == b"\x1f\x8b")


def _changed(size: int, got: int) -> OSError:
    return OSError(0, f"the file changed while it was read ({got} of {size} bytes; media removed?)")


def _pour(fp: Any, sink: Sink, size: int | None, *, exact: bool = False,
          limit: int = MAX_MEMBER_BYTES) -> int:
    """Read a file or an archive member into ``sink`` with plain reads. ``size`` is the
    expected size when known: with ``exact`` a file of another size is an error (it changed
    while it was read), else no more than ``size`` bytes are taken (an archive member never
    gives more; be sure). An unknown size is bounded by ``limit``."""
    cap = min(limit, MAX_MEMBER_BYTES) if size is None else size
    total = 0
    while True:
        free = sink.free()
        if size is not None and not exact:
            if total >= size:
                break
            free = free[: size - total]
        n = fp.readinto(free)
        if not n:
            break
        sink.filled(n)
        total += n
        if total > cap:
            if exact:
                raise _changed(cap, total)
            raise OSError(0, f"unpacks to more than {cap >> 20} MB (compression bomb?)")
    if exact and total != size:
        raise _changed(size or 0, total)
    return total


@dataclass
class WalkResult:
    items: list[MediaItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    dicomdirs: int = 0
    archives: list[_Archive] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the zip archives the items read from."""
        for archive in self.archives:
            archive.close()
        self.archives.clear()


def walk(paths: list[str]) -> WalkResult:
    """List every candidate file under ``paths`` (folders, DICOMDIR media, zips, files). A
    DICOMDIR file given by itself means its media: the folder it is the index of.

    Symbolic links are followed only while they stay inside the folder that was given.
    """
    result = WalkResult()
    seen_dirs: set[tuple[int, int]] = set()
    for given in paths:
        try:
            st = os.stat(given)
        except OSError as exc:
            result.problems.append(Problem(given, _os_reason(exc), "failed"))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk_dir(Path(given), given, result, seen_dirs)
        elif stat.S_ISREG(st.st_mode) and _is_dicomdir_name(os.path.basename(given)):
            # a DICOMDIR opened, dropped or given by itself stands for the media it indexes
            media = os.path.dirname(given) or os.curdir
            _walk_dir(Path(media), media, result, seen_dirs)
        else:
            _add_file(Path(given), given, st, result)
    return result


def _inside(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _walk_dir(
    root: Path, display: str, result: WalkResult, seen: set[tuple[int, int]]
) -> None:
    root_real = os.path.realpath(root)
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
        subdirs = []
        files: list[tuple[os.DirEntry[str], str, os.stat_result]] = []
        for entry in entries:
            entry_shown = os.path.join(shown, entry.name)
            try:
                if entry.is_symlink() and not _inside(entry.path, root_real):
                    result.problems.append(
                        Problem(entry_shown, "link pointing outside the media, not followed",
                                "skipped"))
                    continue
                est = entry.stat()  # follows symlinks (inside the media only)
            except OSError as exc:
                result.problems.append(Problem(entry_shown, _os_reason(exc), "failed"))
                continue
            if stat.S_ISDIR(est.st_mode):
                if entry.name.lower() not in SYSTEM_FOLDERS:
                    subdirs.append((Path(entry.path), entry_shown))
            elif not is_system_file(entry.name):
                files.append((entry, entry_shown, est))
        dicomdir = next((f for f in files if _is_dicomdir_name(f[0].name)
                         and stat.S_ISREG(f[2].st_mode)), None)
        if dicomdir is not None:
            _check_dicomdir(Path(dicomdir[0].path), shown, result)
        for entry, entry_shown, est in files:
            if dicomdir is not None and entry is dicomdir[0]:
                result.dicomdirs += 1
                result.problems.append(
                    Problem(entry_shown, "DICOMDIR (media index), checked against the files",
                            "skipped")
                )
            else:
                _add_file(Path(entry.path), entry_shown, est, result)
        stack.extend(reversed(subdirs))


def _add_file(path: Path, shown: str, st: os.stat_result, result: WalkResult) -> None:
    if not stat.S_ISREG(st.st_mode):
        result.problems.append(Problem(shown, "not a regular file", "skipped"))
        return
    if st.st_size >= 22 and _looks_zip(path):
        _walk_zip(path, shown, st.st_size, result)
        return
    result.items.append(MediaItem(display=shown, size=st.st_size, _path=path))


def _looks_zip(path: Path) -> bool:
    try:
        with open_regular(path) as fp:
            return fp.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _walk_zip(path: Path, shown: str, size: int, result: WalkResult) -> None:
    try:
        fp = open_regular(path)
    except OSError as exc:
        result.problems.append(Problem(shown, _os_reason(exc), "failed"))
        return
    try:
        zf = zipfile.ZipFile(fp)
        infos = [i for i in zf.infolist() if not i.is_dir()]
        refusal = _archive_refusal(zf, infos, size)
    except (zipfile.BadZipFile, OSError, zlib.error, NotImplementedError, ValueError) as exc:
        fp.close()
        result.problems.append(Problem(shown, f"damaged zip archive ({exc})", "failed"))
        return
    if refusal:
        zf.close()
        fp.close()
        result.problems.append(Problem(shown, refusal, "failed"))
        return
    archive = _Archive(fp, zf)
    result.archives.append(archive)
    names: dict[str, int] = {}
    for info in infos:
        names[info.filename] = names.get(info.filename, 0) + 1
    for info in infos:
        member_shown = f"{shown}!/{info.filename}"
        name = _member_path(info).rsplit("/", 1)[-1]
        if is_system_file(name) or _in_system_folder(_member_path(info)):
            continue
        problem = _member_problem(info, names[info.filename])
        if problem:
            result.problems.append(Problem(member_shown, problem, "failed"))
            continue
        if _is_dicomdir_name(name):
            result.dicomdirs += 1
            result.problems.extend(_check_zip_dicomdir(archive, info, infos, shown))
            continue
        result.items.append(
            MediaItem(display=member_shown, size=info.file_size, _archive=archive, _member=info)
        )


def _member_problem(info: zipfile.ZipInfo, copies: int) -> str | None:
    if copies > 1:
        return f"the zip holds {copies} members of this name (which one is meant?)"
    if info.flag_bits & 0x1:
        return "encrypted in the zip (needs a password)"
    if info.file_size > MAX_MEMBER_BYTES or (
        info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1)
    ):
        return "implausibly large when unpacked (zip bomb?)"
    return None


def _archive_refusal(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], size: int) -> str | None:
    """Why a whole zip archive is refused (a bomb's shape), or None."""
    total = sum(i.file_size for i in infos)
    if total > MAX_ARCHIVE_BYTES or (total > RATIO_FLOOR and total > MAX_RATIO * size):
        return (f"unpacks to {total >> 20} MB from {max(size >> 20, 1)} MB "
                f"(zip bomb?); nothing taken from it")
    ordered = sorted(zf.infolist(), key=lambda i: i.header_offset)
    end_of_data = getattr(zf, "start_dir", size)
    for info, after in zip(ordered, [*ordered[1:], None], strict=True):
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        name_len = len(info.orig_filename.encode(encoding, errors="replace"))
        end = info.header_offset + 30 + name_len + info.compress_size
        limit = after.header_offset if after is not None else end_of_data
        if end > limit:
            return "overlapping members in the zip (zip bomb?); nothing taken from it"
    return None


# -- DICOMDIR --------------------------------------------------------------------------------
#: What operating systems leave on a USB stick or in a zip beside the images (macOS's Finder
#: and Spotlight, Windows Explorer and its recycle bin): passed over without a word, as Horos
#: and Weasis do, instead of being counted as files that are not DICOM.
SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", ".localized"})
SYSTEM_FOLDERS = frozenset({"__macosx", ".spotlight-v100", ".trashes", ".fseventsd",
                            ".temporaryitems", "system volume information", "$recycle.bin"})


def is_system_file(name: str) -> bool:
    """A file an operating system writes for itself (``._*`` is macOS's AppleDouble)."""
    return name.startswith("._") or name.lower() in SYSTEM_FILES


def _in_system_folder(member: str) -> bool:
    return any(part.lower() in SYSTEM_FOLDERS for part in member.split("/")[:-1])


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
    with open_regular(dicomdir) as fp:
        return _file_ids(fp, str(dicomdir))


def _file_ids(fp: IO[bytes], name: str) -> list[tuple[str, ...]]:
    """:func:`referenced_files` of a DICOMDIR read from ``fp`` (a file or a zip member)."""
    data = fp.read(MAX_DICOMDIR_BYTES + 1)
    if len(data) > MAX_DICOMDIR_BYTES:
        raise OSError(0, f"larger than {MAX_DICOMDIR_BYTES >> 20} MB")
    ds = pydicom.dcmread(BufferReader(data, name), force=True, defer_size=None)
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


def _member_path(info: zipfile.ZipInfo) -> str:
    """A zip member's path with "/" between folders, also from tools that write "\\" (older
    Windows ones do)."""
    return info.filename.replace("\\", "/")


def _check_zip_dicomdir(archive: _Archive, dicomdir: zipfile.ZipInfo,
                        infos: list[zipfile.ZipInfo], shown: str) -> list[Problem]:
    """The DICOMDIR of a CD that was zipped, checked against the members beside it: a file it
    lists that is not in the zip is a problem line, as on the CD itself."""
    folder = _member_path(dicomdir).rpartition("/")[0]
    prefix = f"{folder}/" if folder else ""
    here = f"{shown}!/{dicomdir.filename}"
    try:
        with archive.open(dicomdir) as fp:
            refs = _file_ids(fp, here)
    except Exception as exc:  # a broken DICOMDIR must never stop the scan
        return [Problem(here, f"DICOMDIR unreadable ({type(exc).__name__}); the archive was "
                              f"scanned instead", "skipped")]
    paths = [_member_path(i) for i in infos]
    members = {tuple(_iso_name(p) for p in path[len(prefix):].split("/"))
               for path in paths if path.startswith(prefix)}
    problems = [Problem(here, "DICOMDIR (media index), checked against the files", "skipped")]
    for parts in refs:
        if tuple(_iso_name(p) for p in parts) not in members:
            problems.append(Problem(f"{shown}!/{prefix}{'/'.join(parts)}",
                                    "listed in the DICOMDIR but missing from the media",
                                    "failed"))
    return problems


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, NotRegularFile):
        return "not a regular file"
    if isinstance(exc, FileNotFoundError):
        return "no such file or folder"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
