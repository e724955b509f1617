"""Text values as their Value Representation allows them (PS3.5 6.2), for what Relay writes
itself from an outside file's header (a DICOMDIR's records, INDEX.HTM; never the file).

:func:`conform` gives a value with one clear valid reading that reading (the ACR-NEMA date
``1996.10.29`` is the DA ``19961029``, the time ``15:18:59`` the TM ``151859``) and refuses any
other invalid value (None): a guess would put a wrong date on a disc.
"""

from __future__ import annotations

import re
from datetime import date

#: The longest value of each VR, in characters (PS3.5 Table 6.2-1); PN per component group.
MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "IS": 12, "DA": 8}

_DA_PARTS = re.compile(r"(\d{4})[.\-/](\d{1,2})[.\-/](\d{1,2})")
_TM = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,6})?)?)?")
_TM_PARTS = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?")
_CS = re.compile(r"[A-Z0-9 _]*")
_IS = re.compile(r"[+-]?\d+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\\]")  # ESC (0x1B) starts a charset switch


def conform(vr: str, value: str) -> str | None:
    """``value`` as ``vr`` allows it: as it is when valid, its one valid reading when it has
    one, else None. Leading and trailing spaces are padding and go; VRs not handled here
    come back as they are."""
    text = value.strip(" \x00")
    if not text:
        return ""
    if vr == "DA":
        return _date(text)
    if vr == "TM":
        return _time(text)
    if vr == "IS":
        return _integer(text)
    if vr == "CS":
        upper = text.upper()
        return upper if len(upper) <= MAX_LENGTH["CS"] and _CS.fullmatch(upper) else None
    if vr in ("SH", "LO"):
        return text if len(text) <= MAX_LENGTH[vr] and not _CONTROL.search(text) else None
    if vr == "PN":
        groups = text.split("=")
        if len(groups) > 3 or _CONTROL.search(text):
            return None
        if any(len(g) > MAX_LENGTH["PN"] or g.count("^") > 4 for g in groups):
            return None
        return text
    return text


def _date(text: str) -> str | None:
    match = _DA_PARTS.fullmatch(text)
    if match:
        parts = [str(p) for p in match.group(1, 2, 3)]
    elif len(text) == 8 and text.isdigit():
        parts = [text[:4], text[4:6], text[6:8]]
    else:
        return None
    try:
        day = date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None
    return f"{day:%Y%m%d}"


def _time(text: str) -> str | None:
    match = _TM.fullmatch(text) or _TM_PARTS.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes or 0) > 59 or int(seconds or 0) > 60:
        return None
    return f"{int(hours):02d}{minutes or ''}{seconds or ''}{fraction or ''}"


def _integer(text: str) -> str | None:
    if not _IS.fullmatch(text):
        return None
    number = int(text)
    return str(number) if -(2**31) <= number < 2**31 else None
