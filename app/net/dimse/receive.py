"""Instances received by Relay's node (C-STORE SCP, and C-GET/C-MOVE into Relay) into the store.

The bytes are kept exactly as the peer sent them, in the transfer syntax it chose, behind a
Part-10 file meta header. A C-STORE to Relay's node streams its data set, as it arrives, into
the pipeline every download and import goes through (:mod:`app.store.part_ingest`: written and
hashed on its writer thread, the write-back started, the header checked and the file placed by
its workers; :func:`receive_part`); one that cannot be streamed goes through it whole
(:func:`receive`). Either way the file and its folder are fsync'ed before its
index row is committed, and the success status goes back only once both are done (the row may
wait for the disk with its batch: :mod:`app.store.deferred`).
A dataset that cannot be read gets a failure status of its own; nothing already stored is
touched. Nothing about the patient is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import StoreError
from app.imports.media import Problem
from app.store.ingest import Duplicate
from app.store.local import Store, StoredFile
from app.store.part_ingest import Mismatch, PartIngest, PipedPart, Ticket
from app.workflow import audit

log = logging.getLogger(__name__)

SUCCESS = 0x0000
#: PS3.4 B.2.3: "Refused: Out of Resources" (the store cannot write).
OUT_OF_RESOURCES = 0xA700
#: "Error: Data Set does not match SOP Class" (the request and the data set disagree).
DOES_NOT_MATCH = 0xA900
#: "Error: Cannot understand" (garbage, truncated, not a storable object).
CANNOT_UNDERSTAND = 0xC000
#: Why a data set naming another instance than its request is refused.
MISMATCH = "the data set's SOP Instance UID differs from the request's"
#: Seconds a C-STORE's answer waits for its instance to be stored, at most.
PART_WAIT = 120.0


@dataclass(frozen=True)
class Outcome:
    """What happened to one received instance."""

    status: int
    """The DIMSE status sent back."""
    result: str
    """``imported``, ``duplicate``, ``conflict`` or ``failed``."""
    study_uid: str = ""
    reason: str = ""
    stored: StoredFile | None = field(default=None, repr=False, compare=False)
    """The file newly stored (``imported``), for forwarding rules."""
    path: Path | None = field(default=None, repr=False, compare=False)
    """The store's file holding exactly the bytes received (stored now, or before)."""


def receive_part(store: Store, ingest: PartIngest, part: PipedPart, *,
                 wait: float = PART_WAIT) -> Outcome:
    """The status to answer a C-STORE with whose data set was streamed into ``part`` (with
    its :class:`Ticket`) as it arrived: the part goes through ``ingest`` (the pipeline every
    download goes through) and the answer waits until its file, its folder and its index row
    are done (the row durable with its batch: ``ingest`` commits through a
    :class:`DeferredIndex`)."""
    ticket = part.ticket
    assert ticket is not None
    try:
        ingest.submit(part, urgent=True)
        staged, status = ticket.future.result(timeout=wait)
    except StoreError as exc:
        return Outcome(OUT_OF_RESOURCES, "failed", reason=str(exc))
    except FutureTimeout:
        return Outcome(OUT_OF_RESOURCES, "failed",
                       reason=f"the instance was not stored within {wait:.0f} s")
    except Exception as exc:  # a bug must not take the association down; the peer retries
        log.warning("a received instance could not be stored (%s)", type(exc).__name__,
                    exc_info=True)
        return Outcome(OUT_OF_RESOURCES, "failed", reason=type(exc).__name__)
    if isinstance(staged, Problem):
        return Outcome(CANNOT_UNDERSTAND, "failed", reason=staged.reason)
    if isinstance(staged, Mismatch):
        return Outcome(DOES_NOT_MATCH, "failed", staged.header.study.study_instance_uid,
                       MISMATCH)
    return _stored(store, staged, status or "duplicate", ticket.sop_instance_uid)


def _stored(store: Store, staged: StoredFile | Duplicate, result: str, sop_uid: str) -> Outcome:
    study_uid = staged.header.study.study_instance_uid
    if isinstance(staged, Duplicate) or result == "duplicate":
        return Outcome(SUCCESS, "duplicate", study_uid,
                       path=store.file_of(sop_uid, staged.sha256))
    return Outcome(SUCCESS, result, study_uid, stored=staged if result == "imported" else None,
                   path=store.abspath(staged.relpath))


def receive(store: Store, ingest: PartIngest | None, data: bytes, *, sop_instance_uid: str,
            name: str) -> Outcome:
    """Check and durably store one received Part-10 byte string (a C-STORE that could not be
    streamed: over TLS, or part of a C-MOVE another Relay program asked for) through the same
    pipeline as a streamed one (:func:`receive_part`); the status to answer with.

    ``sop_instance_uid`` is the Affected SOP Instance UID of the request: a data set holding
    another one is refused (PS3.4 B.2.3, 0xA900) rather than stored under the wrong identity.
    ``ingest`` None: the node is stopping, the peer is told to send it again later.
    """
    if ingest is None:
        return Outcome(OUT_OF_RESOURCES, "failed", reason="the node is stopping")
    part = ingest.open_part({}, name)
    part.ticket = Ticket(sop_instance_uid)
    try:
        part.write(data)
    except StoreError as exc:
        part.discard()
        return Outcome(OUT_OF_RESOURCES, "failed", reason=str(exc))
    return receive_part(store, ingest, part)


#: How Incoming names a study's source when Relay's node received it: ``DICOM <calling AE>``.
NODE_SOURCE_PREFIX = "DICOM "


def node_source(calling_ae: str) -> str:
    """The "From" of a study Relay's node received (for a hub study: the hub's name)."""
    return f"{NODE_SOURCE_PREFIX}{calling_ae}"


@dataclass(frozen=True)
class StudyReceived:
    """Instances of one study received in one association (one notification per study)."""

    study_uid: str
    calling_ae: str
    instances: int
    """Instances newly stored (not counting duplicates)."""
    duplicates: int
    failed: int
    first: str = ""
    """When its first instance came (ISO 8601 with offset, as the audit writes times)."""
    last: str = ""
    """When its last instance came."""
    arriving: bool = False
    """The association is still open: more of the study may come (a progress report, sent
    at its first instance and then every :data:`PROGRESS_SECONDS`; the report of the
    association's end has it False)."""


#: Seconds between two reports of a study still arriving in one association.
PROGRESS_SECONDS = 2.0


class Tally:
    """Counts per association and in total; thread-safe (one thread per association)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self._per_assoc: dict[int, dict[str, Counter[str]]] = {}
        self._times: dict[int, dict[str, list[str]]] = {}
        #: (association, study) → when its next progress report is due (monotonic)
        self._due: dict[tuple[int, str], float] = {}

    def add(self, assoc_id: int, outcome: Outcome, calling_ae: str = "") -> StudyReceived | None:
        """Count one instance; a report of its study still arriving when one is due (its
        first instance stored in this association, then every :data:`PROGRESS_SECONDS`)."""
        key = "stored" if outcome.result == "imported" else outcome.result
        uid = outcome.study_uid
        with self._lock:
            self.totals["received"] += 1
            self.totals[key] += 1
            studies = self._per_assoc.setdefault(assoc_id, {})
            counts = studies.setdefault(uid, Counter())
            counts[key] += 1
            stamp = audit.now()
            times = self._times.setdefault(assoc_id, {}).setdefault(uid, [stamp, stamp])
            times[1] = stamp
            if not uid or key not in ("stored", "conflict"):
                return None
            now = time.monotonic()
            due = self._due.get((assoc_id, uid))
            if due is not None and now < due:
                return None
            self._due[(assoc_id, uid)] = now + PROGRESS_SECONDS
            return StudyReceived(uid, calling_ae, counts["stored"] + counts["conflict"],
                                 counts["duplicate"], counts["failed"], times[0], times[1],
                                 arriving=True)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.totals[key] += n

    def close(self, assoc_id: int, calling_ae: str) -> list[StudyReceived]:
        """The association ended: its studies, in the order they first arrived."""
        with self._lock:
            studies = self._per_assoc.pop(assoc_id, {})
            times = self._times.pop(assoc_id, {})
            for uid in studies:
                self._due.pop((assoc_id, uid), None)
        return [
            StudyReceived(uid, calling_ae, c["stored"] + c["conflict"], c["duplicate"], c["failed"],
                          first=times.get(uid, ["", ""])[0], last=times.get(uid, ["", ""])[1])
            for uid, c in studies.items() if uid
        ]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.totals)
