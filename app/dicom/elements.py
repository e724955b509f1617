"""A small DICOM data element walker for the plain encodings (little endian, explicit or implicit).

:func:`walk` yields the top-level elements of a dataset as ``(tag, vr, length, value_offset)``
without converting anything, skipping values by their length and nested sequences of undefined
length item by item. It handles only what is well formed: anything unusual (an unknown VR, an
element running past the end, a stray delimiter, an undefined-length value it cannot skip, a few
bytes left over at the end) raises :class:`Unusual`, and the caller hands the file to pydicom,
which knows every corner of the standard and says in plain words what is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD

#: VRs whose explicit encoding has a 2-byte reserved field and a 4-byte length (as pydicom has it).
LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
VRS = LONG_VRS | {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL",
    "SS", "ST", "TM", "UI", "UL", "US",
}
#: How deep nested sequences of undefined length may go before the file counts as unusual.
MAX_DEPTH = 16

_TAG_LEN = struct.Struct("<HHI")
_EXPLICIT = struct.Struct("<HH2sH")


class Unusual(Exception):
    """The bytes are not the plain case this walker handles; use the full reader."""


Element = tuple[int, str | None, int, int]


def walk(buf: Any, start: int, end: int, implicit: bool) -> Iterator[Element]:
    """Yield ``(tag, vr, length, value_offset)`` for each element in ``buf[start:end]``.

    ``vr`` is None for implicit VR. An element of undefined length is yielded with its length
    as :data:`UNDEFINED` after its items were checked; its end is found by the walker.
    """
    pos = start
    while pos < end:
        if end - pos < 8:
            raise Unusual("bytes left over after the last element")
        tag, vr, length, pos = _element_head(buf, pos, implicit)
        if tag >> 16 == 0xFFFE:
            raise Unusual("a delimiter outside a sequence")
        value_at = pos
        if length == UNDEFINED:
            if vr is not None and vr not in ("SQ", "OB", "OW"):
                raise Unusual(f"{vr} of undefined length")
            pos = _skip_items(buf, pos, end, implicit, 0)
        else:
            pos += length
            if pos > end:
                raise Unusual("an element runs past the end")
        yield tag, vr, length, value_at


def _element_head(buf: Any, pos: int, implicit: bool) -> tuple[int, str | None, int, int]:
    if implicit:
        group, elem, length = _TAG_LEN.unpack_from(buf, pos)
        return group << 16 | elem, None, length, pos + 8
    group, elem, vr_bytes, short = _EXPLICIT.unpack_from(buf, pos)
    tag = group << 16 | elem
    if group == 0xFFFE:  # item and delimiters have no VR
        return tag, None, _TAG_LEN.unpack_from(buf, pos)[2], pos + 8
    try:
        vr = vr_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise Unusual("an unknown VR") from None
    if vr not in VRS:
        raise Unusual("an unknown VR")
    if vr in LONG_VRS:
        if pos + 12 > len(buf):
            raise Unusual("the file ends inside an element header")
        if short != 0:
            raise Unusual("a non-zero reserved field")
        return tag, vr, struct.unpack_from("<I", buf, pos + 8)[0], pos + 12
    return tag, vr, short, pos + 8


def _skip_items(buf: Any, pos: int, end: int, implicit: bool, depth: int) -> int:
    """Skip the items of an undefined-length value; return the offset after its delimiter."""
    if depth >= MAX_DEPTH:
        raise Unusual("sequences nested deeply")
    while True:
        if end - pos < 8:
            raise Unusual("the file ends inside a sequence")
        group, elem, length = _TAG_LEN.unpack_from(buf, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == SEQUENCE_END:
            if length != 0:
                raise Unusual("a sequence delimiter with a length")
            return pos
        if tag != ITEM:
            raise Unusual("something other than an item in a sequence")
        if length != UNDEFINED:
            pos += length
            if pos > end:
                raise Unusual("an item runs past the end")
            continue
        pos = _skip_item_elements(buf, pos, end, implicit, depth + 1)


def _skip_item_elements(buf: Any, pos: int, end: int, implicit: bool, depth: int) -> int:
    """Skip the elements of an undefined-length item; return the offset after its delimiter."""
    while True:
        if end - pos < 8:
            raise Unusual("the file ends inside an item")
        tag, vr, length, pos = _element_head(buf, pos, implicit)
        if tag == ITEM_END:
            if length != 0:
                raise Unusual("an item delimiter with a length")
            return pos
        if tag >> 16 == 0xFFFE:
            raise Unusual("a stray delimiter in an item")
        if length == UNDEFINED:
            if vr is not None and vr != "SQ":
                raise Unusual(f"{vr} of undefined length in an item")
            pos = _skip_items(buf, pos, end, implicit, depth)
        else:
            pos += length
            if pos > end:
                raise Unusual("an element runs past the end of an item")
