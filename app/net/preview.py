"""One image of a series on a hub, shown before the series is planned: a guess at its middle.

Planning a series read from a hub needs its WADO-RS metadata, which a server may build by
reading every file (Orthanc 1.10: 0.2–0.5 s for 400 instances, before the first byte). A QIDO-RS
search at instance level for one InstanceNumber (a matching key every server must support,
answered by Orthanc from its database in a few milliseconds) names an instance that is very
likely in the middle of the series; it is fetched through the :class:`~app.net.fetch.Download`
(stored and indexed like any other, so it is never fetched again) and decoded, while the
metadata request runs beside it. Numbering that does not start at 1 or is absent falls back to
the instance at the middle offset of the listing (``limit=1``), which is just as cheap.

The guess is only a guess: a :class:`Preview` carries the instance's own geometry and number,
never a position in the series, and the plan made from the metadata decides where it belongs.

Typical use (network: not on a UI thread)::

    sop = guess_middle(peer, study_uid, series_uid, count=400)
    preview = fetch_preview(peer, download, store, study_uid, series_uid, sop)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app.errors import HubError, NotSupportedByPeer
from app.model import Series, Study
from app.net.fetch import Download
from app.net.peer import SOP_UID, DicomJson, Peer, value
from app.store.local import Store
from app.volume.early_slice import EarlySlice, read_slice
from app.volume.stack import Stack, plan_series

log = logging.getLogger(__name__)

INSTANCE_NUMBER = "00200013"
#: At most this many answers to the InstanceNumber search (several stacks may share a number;
#: a server ignoring the filter must not send the whole listing).
MATCH_LIMIT = 8


@dataclass(frozen=True)
class Preview:
    """One decoded image of a series that is not planned yet."""

    series_uid: str
    sop_instance_uid: str
    #: The instance's own InstanceNumber (None when it has none).
    instance_number: int | None
    #: Instances the hub lists in the series.
    count: int
    #: The instance alone, with its own geometry (one slice).
    stack: Stack
    pixels: EarlySlice
    study: Study
    series: Series


def guess_middle(peer: Peer, study_uid: str, series_uid: str,
                 count: int) -> str | None:
    """The SOP Instance UID of an instance likely in the middle of a series of ``count``
    instances: one or two small QIDO-RS searches; None when there is nothing to guess from."""
    if count <= 0:
        return None
    number = count // 2 + 1
    for match, limit, offset in (({"InstanceNumber": number}, MATCH_LIMIT, 0),
                                 ({}, 1, count // 2)):
        rows = _search(peer, study_uid, series_uid, match, limit, offset)
        if match:  # a server that ignored the filter lists other numbers
            rows = [r for r in rows if _number(r) == number]
        sop = next((value(r, SOP_UID) for r in rows if value(r, SOP_UID)), None)
        if sop:
            return str(sop)
    return None


def fetch_preview(peer: Peer, download: Download, store: Store, study_uid: str,
                  series_uid: str, sop_uid: str, count: int = 0) -> Preview | None:
    """Fetch ``sop_uid`` into the store now and decode it; None when it did not come or is not
    a single-frame image that can be decoded here (network and disk: not on a UI thread)."""
    if not download.fetch_now(series_uid, sop_uid):
        return None
    instance = store.instance(sop_uid)
    if instance is None or instance.image is None or instance.image.frames != 1:
        return None
    study = store.study(study_uid) or Study(study_instance_uid=study_uid)
    series = next((s for s in study.series if s.series_instance_uid == series_uid),
                  Series(series_instance_uid=series_uid, study_instance_uid=study_uid))
    stack = plan_series([instance], series.frame_of_reference_uid).main
    pixels = read_slice(stack.slices[0]) if stack is not None else None
    if stack is None or pixels is None:
        return None
    return Preview(series_uid=series_uid, sop_instance_uid=sop_uid,
                   instance_number=instance.instance_number, count=count, stack=stack,
                   pixels=pixels, study=study, series=series)


def _search(peer: Peer, study_uid: str, series_uid: str, match: dict[str, Any], limit: int,
            offset: int) -> list[DicomJson]:
    """One short instance search; nothing when the hub cannot answer it (a preview is
    optional: the plan shows the series either way)."""
    try:
        return list(peer.instances(study_uid, series_uid, match=match, limit=limit,
                                   offset=offset))
    except (HubError, NotSupportedByPeer) as exc:
        log.info("no preview guess from the hub: %s", exc)
        return []


def _number(row: dict[str, Any]) -> int | None:
    try:
        return int(value(row, INSTANCE_NUMBER))
    except (TypeError, ValueError):
        return None


__all__ = ["Preview", "fetch_preview", "guess_middle"]

