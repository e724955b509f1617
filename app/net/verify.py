"""Proof that a hub holds the bytes that were sent: each instance fetched back and compared.

A send is "verified" when the hub's search lists every instance (QIDO-RS). That proves the UIDs
are there, not that the hub kept these bytes: a hub that already held another object under the
same UID (Orthanc with ``OverwriteInstances`` off keeps the first), or one that re-encoded the
file, passes the count. With ``TransferSettings.verify_bytes`` the sender then fetches every
instance back (WADO-RS, ``transfer-syntax=*``: the stored bytes as they are), hashing it as it
streams (nothing is written), and compares length and SHA-256 with the local store's record.
It costs a second transfer of the study, so it is a mode, not the default.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from app.net.peer import Peer
from app.store.local import Store
from app.tasks import Progress

log = logging.getLogger(__name__)

#: How every reason given by :func:`differing_copies` begins.
DIFFERS = "the hub"


class _Digest:
    """A multipart sink that keeps only the length and SHA-256 of what it is given."""

    def __init__(self) -> None:
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def differing_copies(store: Store, peer: Peer, study_uid: str,
                     instances: Iterable[tuple[str, str]],
                     progress: Progress | None = None) -> dict[str, str]:
    """Fetch the hub's copy of each ``(sop_uid, series_uid)`` and compare it with the store's
    record; return ``{sop_uid: reason}`` for every copy that differs (empty: all the same).

    A :class:`~app.errors.HubError` (the hub went away) passes to the caller: nothing is
    concluded from a comparison that could not be made."""
    differ: dict[str, str] = {}
    for sop, series in instances:
        if progress is not None:
            progress.check()
        local = store.instance(sop)
        if local is None:
            continue  # not in the store any more: nothing to compare with
        copies = list(peer.retrieve(study_uid, series, sop, open_part=lambda _h: _Digest(),
                                    close_part=lambda d: d))
        if len(copies) != 1:
            differ[sop] = f"the hub answered {len(copies)} objects for one instance"
        elif copies[0].size != local.size:
            differ[sop] = (f"the hub's copy has {copies[0].size} bytes, the local file "
                           f"{local.size}")
        elif copies[0].hexdigest() != local.sha256:
            differ[sop] = "the hub's copy has other bytes (SHA-256 differs)"
        if progress is not None:
            progress.advance(1)
    if differ:
        log.warning("%d instance(s) differ on the hub from what was sent", len(differ))
    return differ
