"""The table-position offset between two studies of one patient, remembered per pair.

When today's study and a prior share no frame of reference they scroll together by table
position, corrected by an offset the reader sets by dragging one of them alone
(:mod:`app.render.link`). That offset is where the patient lay, so it holds for the pair of
studies, not for a series or a window: it is kept here, per pair of Study Instance UIDs, in
``HOME/table_offsets.json`` (the reading state, not ``settings.json``, which holds the site's
configuration and references to secrets) and used again when the pair is opened together.

The file holds UIDs and millimetres only, no patient identifier. It is written atomically
(a crash leaves the old or the new file) and keeps the last :data:`MAX_PAIRS` pairs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "table_offsets.json"
#: Pairs kept (the oldest set are forgotten first).
MAX_PAIRS = 2000


def _key(a: str, b: str) -> tuple[str, float]:
    """The file's key for the pair and the sign of ``b``'s offset to ``a`` under it."""
    return (f"{a}|{b}", 1.0) if a < b else (f"{b}|{a}", -1.0)


def _read(home: Path) -> dict[str, float]:
    path = Path(home) / FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s not read (%s): the table offsets start again", path, exc)
        return {}
    pairs = raw.get("pairs") if isinstance(raw, dict) else None
    if not isinstance(pairs, dict):
        log.warning("%s not read (no 'pairs' object): the table offsets start again", path)
        return {}
    return {str(k): float(v) for k, v in pairs.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def load_offset(home: Path, study: str, other: str) -> float | None:
    """How far ``other``'s table positions are shifted from ``study``'s (mm: the offset
    ``other``'s viewports take when ``study``'s have none), or None when never set."""
    if study == other:
        return None
    key, sign = _key(study, other)
    value = _read(home).get(key)
    return None if value is None else sign * value


def save_offset(home: Path, study: str, other: str, mm: float) -> None:
    """Remember that ``other`` is shifted by ``mm`` from ``study`` (see :func:`load_offset`)."""
    if study == other:
        return
    key, sign = _key(study, other)
    pairs = _read(home)
    pairs.pop(key, None)  # the newest last: the oldest are dropped first
    pairs[key] = round(sign * float(mm), 3)
    kept = dict(list(pairs.items())[-MAX_PAIRS:])
    path = Path(home) / FILE
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(json.dumps({"schema": 1, "pairs": kept}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("table offset not saved to %s: %s", path, exc)
