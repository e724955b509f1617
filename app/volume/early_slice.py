"""The slice a reader looks at first, decoded before the series is planned.

Planning a series (its index rows read, then sorted along the normal) costs ~7 ms for 400 slices in
a fresh process, far longer than reading one uncompressed slice. When no plan is cached,
:func:`early_slice` finds the middle slice with one index query that SQLite answers without
building any object (positions and orientations only), and decodes it at once. The loader takes it
if the plan agrees that it is the slice in view (same SOP Instance UID and frame) and discards it
otherwise: the plan stays the only authority on order and geometry. Series this cannot judge from
positions alone (multi-frame objects, missing positions, mixed orientations, several images at one
position) get no early slice.

Typical use::

    early = early_slice(store, series_uid)          # None when there is nothing to guess
    plan = series_plan(store, series_uid)
    loader = VolumeLoader.for_stack(plan.main, early=early)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from app.dicom.pixels import is_native_direct, read_frame
from app.errors import DecodeError
from app.store.local import Store
from app.volume.stack import SAME_POSITION_MM, SliceRef, slices_of


@dataclass(frozen=True)
class EarlySlice:
    """One decoded slice, handed to the loader."""

    sop_instance_uid: str
    frame: int
    pixels: np.ndarray
    #: ``time.monotonic()`` when it was decoded.
    ready_at: float


def middle_instance(store: Store, series_uid: str) -> str | None:
    """The SOP Instance UID of the middle slice along the normal, or None when the series is
    not one plain stack of single-frame images (then only the plan can tell)."""
    rows = store.slice_positions(series_uid)
    if len(rows) < 3 or any(r[1] is None or r[3] != 1 for r in rows):
        return None
    if len({r[2] for r in rows}) != 1 or rows[0][2] is None:
        return None  # mixed or missing orientations: the plan groups them
    orientation = np.asarray(json.loads(rows[0][2]), dtype=np.float64)
    positions = np.asarray(json.loads("[" + ",".join(str(r[1]) for r in rows) + "]"),
                           dtype=np.float64)
    if orientation.shape != (6,) or positions.shape != (len(rows), 3):
        return None
    (rx, ry, rz), (cx, cy, cz) = orientation[:3], orientation[3:]
    normal = np.array([ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx])  # row × column
    distance = positions @ normal  # (np.cross costs more than all this on its first call)
    order = np.argsort(distance, kind="stable")
    if np.any(np.diff(distance[order]) <= SAME_POSITION_MM):
        return None  # repeats: several stacks, the plan picks which
    return str(rows[int(order[len(rows) // 2])][0])


def read_slice(ref: SliceRef, *, codecs: bool = True) -> EarlySlice | None:
    """Decode ``ref`` now, for a loader to take; None when it has no file yet, cannot be
    decoded (the loader then reports the failure with the rest), or needs a codec and
    ``codecs`` is False (a process that leaves them to the pool)."""
    if ref.path is None:
        return None
    if not codecs and not is_native_direct(ref.transfer_syntax_uid, ref.info):
        return None
    try:
        pixels = read_frame(ref.path, ref.transfer_syntax_uid, ref.info, ref.frame)
    except DecodeError:
        return None
    return EarlySlice(ref.sop_instance_uid, ref.frame, pixels, time.monotonic())


def early_slice(store: Store, series_uid: str, *, codecs: bool = True) -> EarlySlice | None:
    """Decode the likely middle slice of a stored series now; None when there is no good guess
    or it cannot be decoded (here: see :func:`read_slice`)."""
    sop_uid = middle_instance(store, series_uid)
    instance = store.instance(sop_uid) if sop_uid else None
    refs = slices_of([instance]) if instance is not None else []
    return read_slice(refs[0], codecs=codecs) if refs else None


__all__ = ["EarlySlice", "early_slice", "middle_instance", "read_slice"]
