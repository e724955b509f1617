"""Index rows of the ``instances`` table to :class:`~app.model.Instance` objects.

Opening a series reads hundreds of rows at once, so the image JSON is split by SQLite into the
part the images of a series share and the values of :data:`~app.model.FILE_FIELDS`; each
distinct shared part is parsed once, the positions of all rows in one ``json.loads``. For 400
slices this is ~2 ms instead of ~8 ms for a JSON parse and a dataclass per row
(``bench/bench_load.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.model import ImageInfo, Instance

#: The columns :func:`instances_from_rows` reads, in its order.
COLUMNS = (
    "sop_instance_uid, sop_class_uid, series_instance_uid, study_instance_uid, "
    "transfer_syntax_uid, instance_number, acquisition_number, image_type, sha256, size, path, "
    "json_remove(image, '$.position', '$.pixel_offset', '$.pixel_length', '$.fragments'), "
    "json_extract(image, '$.position'), json_extract(image, '$.pixel_offset'), "
    "json_extract(image, '$.pixel_length'), json_extract(image, '$.fragments')"
)
_IDENTITY = ("sop_instance_uid", "sop_class_uid", "series_instance_uid", "study_instance_uid",
             "transfer_syntax_uid", "instance_number", "acquisition_number", "image_type",
             "sha256", "size")
_PATH = len(_IDENTITY)
_SHARED = _PATH + 1


def instances_from_rows(rows: Sequence[Sequence[Any]], root: Path) -> list[Instance]:
    """Instances from rows of :data:`COLUMNS` (plain tuples), their paths under ``root``."""
    out = []
    for row, image in zip(rows, _images(rows), strict=True):
        # built without __init__, as ImageInfo.from_dict does: a frozen dataclass's generated
        # __init__ costs ~2 µs per row
        inst = object.__new__(Instance)
        inst.__dict__.update(zip(_IDENTITY, row), image=image, path=root / row[_PATH])
        out.append(inst)
    return out


def _images(rows: Sequence[Sequence[Any]]) -> list[ImageInfo | None]:
    positions = _json_list(r[_SHARED + 1] for r in rows)
    fragments = _json_list(r[_SHARED + 4] for r in rows)
    shared: dict[str, ImageInfo] = {}
    out: list[ImageInfo | None] = []
    for row, position, frags in zip(rows, positions, fragments, strict=True):
        text = row[_SHARED]
        if text is None:
            out.append(None)
            continue
        common = shared.get(text)
        if common is None:
            common = shared[text] = ImageInfo.from_json(text)
        out.append(common.for_file(
            tuple(position) if position is not None else None, row[_SHARED + 2],
            row[_SHARED + 3], tuple(tuple(f) for f in frags) if frags else ()))
    return out


def _json_list(texts: Any) -> list[Any]:
    """Each JSON text (None for SQL NULL) parsed, in one call."""
    return json.loads("[" + ",".join(t if t is not None else "null" for t in texts) + "]")  # type: ignore[no-any-return]


__all__ = ["COLUMNS", "instances_from_rows"]
