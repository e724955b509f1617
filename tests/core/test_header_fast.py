"""The fast header reader gives field for field what the pydicom path gives, or steps aside."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

import app.dicom.header as header
from app.dicom.elements import Unusual, walk
from app.dicom.header_fast import scan
from app.dicom.synth import SeriesSpec, generate_series
from app.errors import DicomReadError, NotDicomError


@contextmanager
def _fast(on: bool) -> Iterator[None]:
    before = header.use_fast_reader
    header.use_fast_reader = on
    try:
        yield
    finally:
        header.use_fast_reader = before


def _result(buf: bytes, fast: bool) -> Any:
    with _fast(fast):
        try:
            return header.read_header(buf, "f")
        except (DicomReadError, NotDicomError) as exc:
            return (type(exc).__name__, exc.reason)


def test_same_result_as_pydicom_on_every_shared_file(data: Path) -> None:
    files = sorted(p for p in data.rglob("*") if p.is_file())
    assert len(files) > 700
    fast_read = 0
    for path in files:
        buf = path.read_bytes()
        assert _result(buf, True) == _result(buf, False), path
        fast_read += scan(buf) is not None
    # the fast path is the common path, not a rarity
    assert fast_read > 0.9 * len(files)


def test_malformed_files_fall_back(data: Path) -> None:
    for name in ("MR_truncated.dcm", "rtplan_truncated.dcm", "UN_sequence.dcm", "badVR.dcm",
                 "no_meta.dcm", "meta_missing_tsyntax.dcm",
                 "emri_small_jpeg_2k_lossless_too_short.dcm"):
        assert scan((data / "malformed" / name).read_bytes()) is None, name


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain")
    return generate_series(out, SeriesSpec(slices=1, rows=16, columns=16))[0]


def _variant(plain: Path, tmp: Path, edit: Any, implicit: bool = False) -> bytes:
    ds = pydicom.dcmread(plain)
    edit(ds)
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    path = tmp / "v.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def _raw(tag: int, vr: str, value: bytes) -> Any:
    def edit(ds: pydicom.Dataset) -> None:  # the bytes as given, never validated
        ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    return edit


EDITS = {
    "plain": lambda ds: None,
    "padded text": _raw(0x0008103E, "LO", b" Axial \\ 2 \x00"),
    "multi CS": _raw(0x00080008, "CS", b"ORIGINAL\\PRIMARY \\AXIAL "),
    "empty IS": _raw(0x00200013, "IS", b""),
    "blank IS": _raw(0x00200013, "IS", b"  "),
    "signed IS": _raw(0x00200013, "IS", b"+07 "),
    "float IS": _raw(0x00200013, "IS", b"1.0 "),
    "frames": _raw(0x00280008, "IS", b" 1"),
    "DS null": _raw(0x00281053, "DS", b"1.5\x00"),
    "DS exp": _raw(0x00281052, "DS", b" -1.024E3 "),
    "one position": _raw(0x00200032, "DS", b"12"),
    "odd DS": _raw(0x00281050, "DS", b"40\\"),
    "PN groups": _raw(0x00100010, "PN", b"DOE^J=D^J "),
    "latin-1": _raw(0x00100010, "PN", "Müller^Jörg".encode("latin-1")),
    "charset": _raw(0x00080005, "CS", b"ISO_IR 100"),
    "unknown charset": _raw(0x00080005, "CS", b"ISO_IR 144"),
    "wrong VR": _raw(0x00280010, "SS", struct.pack("<h", 16)),
    "two rows": _raw(0x00280010, "US", struct.pack("<HH", 16, 16)),
    "private": _raw(0x00091010, "LO", b"vendor"),
    "no study": lambda ds: delattr(ds, "StudyInstanceUID"),
    "no SOP instance": lambda ds: delattr(ds, "SOPInstanceUID"),
    "sequence": lambda ds: setattr(ds, "ReferencedImageSequence",
                                   [pydicom.Dataset(), pydicom.Dataset()]),
}


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_same_result_on_edge_cases(plain: Path, tmp_path: Path, edit: str,
                                   implicit: bool) -> None:
    buf = _variant(plain, tmp_path, EDITS[edit], implicit)
    assert _result(buf, True) == _result(buf, False)


def test_undefined_length_sequences_are_skipped(plain: Path, tmp_path: Path) -> None:
    def edit(ds: pydicom.Dataset) -> None:
        item = pydicom.Dataset()
        item.ReferencedSOPInstanceUID = "1.2.3"
        item.ReferencedImageSequence = [pydicom.Dataset()]
        ds.ReferencedImageSequence = [item]
        ds["ReferencedImageSequence"].is_undefined_length = True
        item["ReferencedImageSequence"].is_undefined_length = True
        ds.ReferencedImageSequence.is_undefined_length_sequence_item = True

    for implicit in (False, True):
        buf = _variant(plain, tmp_path, edit, implicit)
        assert scan(buf) is not None
        assert _result(buf, True) == _result(buf, False)


def test_truncations_fall_back_or_agree(plain: Path) -> None:
    buf = plain.read_bytes()
    for cut in (*range(120, 420, 7), len(buf) - 1, len(buf) - 300):
        part = buf[:cut]
        assert _result(part, True) == _result(part, False), cut


def test_walker_refuses_a_stray_delimiter() -> None:
    stray = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    with pytest.raises(Unusual):
        list(walk(stray, 0, len(stray), implicit=True))
