"""The header values Relay indexes, read without pydicom from plain Part-10 files.

:func:`scan` walks a Part-10 file in explicit or implicit VR little endian
(:mod:`app.dicom.elements`),
keeps only the elements :func:`app.dicom.header.read_header` asks for, and converts them the way
pydicom would (text split at backslashes and stripped of padding, IS and DS as numbers). It
answers None for anything it does not handle exactly like pydicom, and the caller reads the file
with pydicom instead: deflated or big endian files, files without preamble or file meta,
non-ASCII text, odd numbers, a VR other than the dictionary's, enhanced (per-frame) objects,
directories, anything malformed. ``tests/core/test_header_fast.py`` checks that both give the
same result on every file of the shared test data.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from app.dicom.elements import UNDEFINED, Unusual, walk

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
PIXEL_DATA = 0x7FE00010
#: Little endian transfer syntaxes with explicit VR that store the dataset as it is (native or
#: encapsulated pixel data; not deflated, not big endian).
EXPLICIT_SYNTAXES = frozenset({
    EXPLICIT_LE,
    *(f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81, 90, 91, 92, 93, 100, 101,
                                           102, 103, 104, 105, 106, 107, 108, 201, 202, 203)),
    "1.2.840.10008.1.2.5",
})
#: Character sets whose printable ASCII bytes decode as ASCII in pydicom.
PLAIN_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 6",
                            "ISO 2022 IR 100"})

KEYWORDS = (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate",
    "SeriesDate", "StudyTime", "SeriesTime", "AccessionNumber", "Modality", "StudyDescription",
    "SeriesDescription", "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
    "PatientSex", "BodyPartExamined", "SliceThickness", "SpacingBetweenSlices",
    "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "SeriesNumber", "AcquisitionNumber",
    "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "FrameOfReferenceUID",
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames",
    "Rows", "Columns", "PixelSpacing", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType",
    "VOILUTFunction", "InstitutionName",
)
META_KEYWORDS = ("MediaStorageSOPClassUID", "TransferSyntaxUID")
_TAGS: dict[int, tuple[str, str]] = {
    tag_for_keyword(k): (k, dictionary_VR(k)) for k in KEYWORDS + META_KEYWORDS  # type: ignore[misc]
}
#: Elements whose presence sends the file to pydicom (directories, enhanced objects, pixel data
#: that is not Pixel Data).
_REFUSED = frozenset({
    0x00041220, 0x52009229, 0x52009230, 0x7FE00008, 0x7FE00009,
})

_PRINTABLE = re.compile(rb"[\x20-\x7e]*\x00*\Z")
_IS = re.compile(r" *[+-]?[0-9]+ *\Z")
_DS = re.compile(r" *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *\Z")
_PREAMBLE = 132


class FastDataset:
    """The few elements read by :func:`scan`, answering like a pydicom ``Dataset`` does for them."""

    def __init__(self, values: dict[str, Any], raw: dict[int, RawDataElement], count: int,
                 implicit: bool, meta: FastDataset | None = None) -> None:
        self._values = values
        self._dict = raw
        self._count = count
        self.original_encoding = (implicit, True)
        self.file_meta = meta if meta is not None else self

    def get(self, keyword: str, default: Any = None) -> Any:
        return self._values.get(keyword, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self._dict

    def __len__(self) -> int:
        return self._count

    def __getattr__(self, keyword: str) -> Any:
        try:
            return self.__dict__["_values"][keyword]
        except KeyError:
            raise AttributeError(keyword) from None


def scan(buf: Any) -> FastDataset | None:
    """The dataset of a plain Part-10 file in ``buf`` (bytes or mmap), or None to use pydicom."""
    try:
        return _scan(buf)
    except (Unusual, struct.error, UnicodeDecodeError, ValueError, OverflowError):
        return None


def _scan(buf: Any) -> FastDataset | None:
    size = len(buf)
    if size < _PREAMBLE + 8 or buf[128:132] != b"DICM":
        return None
    meta_values: dict[str, Any] = {}
    pos = _PREAMBLE
    meta_count = 0
    for tag, vr, length, at in walk(buf, pos, _meta_end(buf, size), implicit=False):
        meta_count += 1
        if length == UNDEFINED:
            return None
        if tag in _TAGS:
            _keep(meta_values, tag, vr, buf[at : at + length])
        pos = at + length
    ts = meta_values.get("TransferSyntaxUID")
    if not isinstance(ts, str) or not ts.strip():
        return None
    ts = ts.strip()
    if ts != IMPLICIT_LE and ts not in EXPLICIT_SYNTAXES:
        return None
    implicit = ts == IMPLICIT_LE
    if pos >= size or not _starts_as(buf, pos, implicit):
        return None
    values: dict[str, Any] = {}
    raw: dict[int, RawDataElement] = {}
    count = 0
    for tag, vr, length, at in walk(buf, pos, size, implicit):
        count += 1
        group = tag >> 16
        if group == 0x0002 or tag in _REFUSED:
            return None
        if tag == PIXEL_DATA:
            if implicit and length == UNDEFINED:
                return None
            raw[tag] = RawDataElement(Tag(tag), vr, length, None, at, implicit, True)
            continue
        if length == UNDEFINED and (vr is None or vr != "SQ"):
            # implicit VR: only a dictionary sequence; explicit: only SQ (and Pixel Data)
            if not (vr is None and _dictionary_vr(tag) == "SQ"):
                return None
        if tag in _TAGS:
            if length == UNDEFINED:
                return None
            _keep(values, tag, vr, buf[at : at + length])
    if count == 0:
        return None
    charset = values.get("SpecificCharacterSet", "")
    if not isinstance(charset, str) or charset not in PLAIN_CHARSETS:
        return None
    meta = FastDataset(meta_values, {}, meta_count, False)
    return FastDataset(values, raw, count, implicit, meta)


def _meta_end(buf: Any, size: int) -> int:
    """Offset after the group-2 elements (walked one by one; the group length is not trusted)."""
    pos = _PREAMBLE
    while pos + 8 <= size:
        group = struct.unpack_from("<H", buf, pos)[0]
        if group != 0x0002:
            return pos
        vr = bytes(buf[pos + 4 : pos + 6])
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV",
                  b"SV", b"UV"):
            if pos + 12 > size:
                raise Unusual("the file ends inside the file meta")
            pos += 12 + struct.unpack_from("<I", buf, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", buf, pos + 6)[0]
    raise Unusual("no dataset after the file meta")


def _starts_as(buf: Any, pos: int, implicit: bool) -> bool:
    """Is the dataset encoded as the transfer syntax says (pydicom would notice otherwise)?"""
    head = bytes(buf[pos : pos + 6])
    if len(head) < 6:
        return False
    looks_explicit = head[4:6].isalpha() and head[4:6].isupper()
    return looks_explicit != implicit


def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


def _keep(values: dict[str, Any], tag: int, vr: str | None, data: Any) -> None:
    """Convert one element the way pydicom does, or raise :class:`Unusual`."""
    keyword, expected = _TAGS[tag]
    if vr is not None and vr != expected:
        raise Unusual(f"{keyword} has VR {vr}")
    raw = bytes(data)
    if expected == "US":
        if len(raw) == 0:
            values[keyword] = None
        elif len(raw) == 2:
            values[keyword] = raw[0] | raw[1] << 8
        else:
            raise Unusual(f"{keyword} has {len(raw)} bytes")
        return
    if not _PRINTABLE.match(raw):
        raise Unusual(f"{keyword} is not plain text")
    text = raw.decode("ascii")
    if expected in ("SH", "LO"):  # text VRs: each value stripped of trailing padding
        parts = [v.rstrip("\x00 ") for v in text.split("\\")]
    else:  # CS, DA, TM, PN, UI, IS, DS: the whole value stripped, then split
        parts = text.rstrip(" \x00").split("\\")
    if expected == "IS":
        values[keyword] = _numbers(parts, _IS, int, keyword, multi=False)
    elif expected == "DS":
        values[keyword] = _numbers(parts, _DS, float, keyword, multi=True)
    else:
        values[keyword] = parts[0] if len(parts) == 1 else parts


def _numbers(parts: list[str], pattern: re.Pattern[str], kind: type, keyword: str,
             multi: bool) -> Any:
    if parts == [""]:
        return ""
    if len(parts) > 1 and not multi:
        raise Unusual(f"{keyword} has several values")
    if not all(pattern.match(p) for p in parts):
        raise Unusual(f"{keyword} is not a plain number")
    out = [kind(p) for p in parts]
    return out[0] if len(out) == 1 else out
