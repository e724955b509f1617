"""Fuzz targets over the readers that take bytes from outside: media, hubs.

Each :class:`Target` turns one input (bytes) into a call of the product's own entry point and
lets only the product's documented refusals pass (``NotDicomError``, ``DicomReadError``,
``HubError``, an import :class:`~app.imports.media.Problem`). Anything else escaping is a finding:
atheris saves the input, and the input goes to ``tests/fuzz/cases/<target>/`` with the fix
(replayed by ``tests/fuzz/test_fuzz.py``). Hangs and memory are bounded by the runner
(``bench/fuzz.py``: a per-input timeout and an address-space cap).

The targets are plain functions, so the regression test replays cases without atheris.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.dicom.elements import Unusual, walk
from app.dicom.header import read_header
from app.errors import DicomReadError, HubError, NotDicomError
from app.imports import media
from app.net.metadata import headers_of, plan_of
from app.net.multipart import read_parts

CASES = Path(__file__).resolve().parent / "cases"
DATA = Path(os.environ.get("RELAY_TEST_DATA",
                           Path(__file__).resolve().parents[3] / "shared" / "data"))
#: Seeds are cut to this many bytes (headers live at the start; the fuzzer grows inputs).
SEED_BYTES = 16 * 1024


class Finding(AssertionError):
    """A handled-looking outcome that is still wrong (e.g. a memory refusal dressed as a reason)."""


@dataclass(frozen=True)
class Target:
    """One fuzz target: ``run(data)`` raises only on a finding; ``seeds(data_dir)`` starts it."""

    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[Path], Iterator[bytes]]
    max_len: int = 64 * 1024


# -- seeds -------------------------------------------------------------------------------------
def _dicom_files(data: Path, limit: int = 80) -> list[Path]:
    """Small real files of every kind: one or two per folder, the malformed ones all."""
    picked: list[Path] = []
    for folder in sorted({p.parent for p in data.rglob("*") if p.is_file()}):
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".tsv"
                       and p.name not in ("README.md",))
        picked.extend(files if folder.name == "malformed" else files[:2])
    return picked[:limit]


def _header_seeds(data: Path) -> Iterator[bytes]:
    for path in _dicom_files(data):
        with open(path, "rb") as fp:
            yield fp.read(SEED_BYTES)


def _dicomdir_seeds(data: Path) -> Iterator[bytes]:
    for path in sorted(data.rglob("DICOMDIR")):
        yield path.read_bytes()[: 4 * SEED_BYTES]


# -- header readers ----------------------------------------------------------------------------
def run_header(data: bytes) -> None:
    """app.dicom.header.read_header (the fast reader first, pydicom behind it)."""
    try:
        read_header(data, "fuzz.dcm")
    except NotDicomError:
        pass
    except DicomReadError as exc:
        if "impossibly large" in exc.reason:  # a MemoryError turned into a reason
            raise Finding(exc.reason) from None


def run_elements(data: bytes) -> None:
    """app.dicom.elements.walk, both encodings, from byte 0 (no file meta)."""
    for implicit in (False, True):
        try:
            for _tag, _vr, length, at in walk(data, 0, len(data), implicit):
                assert at <= len(data) and (length == 0xFFFFFFFF or at + length <= len(data))
        except (Unusual, struct.error):
            pass


# -- media: DICOMDIR and generated trees ----------------------------------------------------
def _walk_and_read(root: Path) -> None:
    """Walk ``root`` the way an import does and read every item's header."""
    result = media.walk([str(root)])
    for problem in result.problems:
        assert problem.reason and problem.kind in ("failed", "skipped"), problem
    for item in result.items:
        sink = _Bytes()
        try:
            item.pour(sink)
            read_header(bytes(sink.data), item.display)
        except (OSError, NotDicomError, DicomReadError):
            pass


class _Bytes:
    """A sink for :meth:`MediaItem.pour` that keeps everything in memory."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._piece = bytearray(1 << 16)

    def free(self) -> memoryview:
        return memoryview(self._piece)

    def filled(self, n: int) -> None:
        self.data += self._piece[:n]


def run_dicomdir(data: bytes) -> None:
    """A CD whose DICOMDIR is ``data``, beside a few files it may or may not list."""
    with tempfile.TemporaryDirectory(prefix="fuzz-dicomdir-") as tmp:
        root = Path(tmp) / "cd"
        (root / "IMAGES").mkdir(parents=True)
        (root / "DICOMDIR").write_bytes(data)
        (root / "IMAGES" / "IM0").write_bytes(b"\0" * 128 + b"DICM")
        _walk_and_read(root)


def run_tree(data: bytes) -> None:
    """A generated media tree: folders, files, DICOMDIRs, zips, gzips, links, odd names."""
    with tempfile.TemporaryDirectory(prefix="fuzz-tree-") as tmp:
        root = Path(tmp) / "media"
        root.mkdir()
        _build_tree(root, io.BytesIO(data))
        _walk_and_read(root)


def _build_tree(root: Path, src: io.BytesIO, limit: int = 12) -> None:
    """Interpret ``src`` as up to ``limit`` commands that build a small tree under ``root``:
    one byte (kind, name length), one byte (which folder), a name, two bytes of size, a body."""
    folders = [root]
    for _ in range(limit):
        head = src.read(2)
        if len(head) < 2:
            return
        kind, folder = head[0] % 8, folders[head[1] % len(folders)]
        name = _name(src.read(1 + (head[0] >> 5)))
        size = int.from_bytes(src.read(2), "little") % 4096
        body = src.read(size)
        path = folder / name
        if path.exists() or path.is_symlink():
            continue
        if kind == 0:
            path.mkdir()
            folders.append(path)
        elif kind == 1:
            path.write_bytes(body)
        elif kind == 2:
            dicomdir = folder / "DICOMDIR"
            if not dicomdir.is_symlink() and not dicomdir.is_dir():
                dicomdir.write_bytes(body)
        elif kind == 3:
            with zipfile.ZipFile(path, "w") as zf:
                for i in range(1 + len(body) % 3):
                    zf.writestr(f"{name}/{i}.dcm", body[i:])
        elif kind == 4:
            path.write_bytes(gzip.compress(body, 1))
        elif kind == 5:
            os.symlink([root, root.parent, Path("/"), folders[-1], path][len(body) % 5], path)
        elif kind == 6:
            path.write_bytes(body[:4] + b"PK\x03\x04" + body[4:])  # looks like a zip, is not
        else:
            path.write_bytes(b"\0" * 128 + b"DICM" + body)


def _name(raw: bytes) -> str:
    text = raw.decode("latin-1").replace("/", "_").replace("\0", "_").strip(".") or "x"
    return text[:40]


# -- hub answers ---------------------------------------------------------------------------
class _Sink:
    """A part sink keeping a count (the sizes are what a real sink would write)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self.size += len(data)
        return len(data)


def run_multipart(data: bytes) -> None:
    """app.net.multipart.read_parts on a hub answer: first line = boundary, rest = body."""
    boundary, _, body = data.partition(b"\n")
    if not boundary:
        return
    total = 0
    stream = io.BytesIO(body)
    try:
        for size in read_parts(stream, boundary.decode("latin-1"), lambda _h: _Sink(),
                               lambda sink: sink.size):
            total += size
            assert total <= len(body)
    except HubError:
        pass


def run_metadata(data: bytes) -> None:
    """app.net.metadata on a DICOM JSON answer: headers of each instance, then the plan."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return  # not JSON: the HTTP layer refuses it before this reader sees it
    items = doc if isinstance(doc, list) else [doc]
    headers = headers_of(items)
    if headers:
        plan_of(headers)


def _multipart_seeds(data: Path) -> Iterator[bytes]:
    files = _dicom_files(data, limit=6)
    for path in files:
        body = path.read_bytes()[:2048]
        part = (b"--b1\r\nContent-Type: application/dicom\r\n\r\n" + body +
                b"\r\n--b1--\r\n")
        yield b"b1\n" + part
        sized = (b"--b1\r\nContent-Type: application/dicom\r\nContent-Length: " +
                 str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n--b1--")
        yield b"b1\n" + b"preamble\r\n" + sized


def _metadata_seeds(data: Path) -> Iterator[bytes]:
    from pydicom import dcmread

    for path in _dicom_files(data, limit=30):
        try:
            ds = dcmread(path, stop_before_pixels=True, force=True)
            doc = ds.to_json_dict(bulk_data_threshold=64, bulk_data_element_handler=lambda _e: "x")
            doc["00020010"] = {"vr": "UI", "Value": [str(ds.file_meta.get("TransferSyntaxUID",
                                                                              ""))]}
            yield json.dumps([doc, doc]).encode()
        except Exception:
            continue


def _tree_seeds(data: Path) -> Iterator[bytes]:
    files = _dicom_files(data, limit=8)
    for i, path in enumerate(files):
        body = path.read_bytes()[:4000]
        size = len(body).to_bytes(2, "little")
        yield bytes([0x20 + i % 8, 0]) + b"ab" + size + body
        yield bytes([0x00, 0]) + b"d" + b"\0\0" + bytes([0x23, 1]) + b"zz" + size + body


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("header", run_header, _header_seeds),
    Target("elements", run_elements, _header_seeds),
    Target("dicomdir", run_dicomdir, _dicomdir_seeds),
    Target("tree", run_tree, _tree_seeds, max_len=16 * 1024),
    Target("multipart", run_multipart, _multipart_seeds),
    Target("metadata", run_metadata, _metadata_seeds),
)}


def cases(name: str) -> list[Path]:
    """The saved regression inputs of one target."""
    folder = CASES / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
