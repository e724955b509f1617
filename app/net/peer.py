"""The one shape every remote speaks: :class:`Peer` (searched, sent to, fetched from).

A peer is a hub or PACS reached by one protocol (a profile's ``kind``: ``dicomweb`` or
``dimse``, see :data:`app.settings.PROFILE_KINDS`). Send (:mod:`app.net.send`), fetch
(:mod:`app.net.fetch`),
the incoming list, remote reading and ``relay hub test`` use only the operations below, never a
protocol's requests, so adding a protocol is one client module and one entry in
:data:`app.net.hubs.PEER_KINDS`.

Results are datasets in the DICOM JSON model (PS3.18 F.2: ``{"0020000D": {"vr": "UI",
"Value": [...]}}``), read with :func:`app.net.dicomweb.value`; searches are iterators that
fetch lazily (as pynetdicom's C-FIND responses), so a caller that stops early asks for no more.
An operation the protocol cannot do raises :class:`~app.errors.NotSupportedByPeer`, never a
silent no-op; a peer that cannot be used raises :class:`~app.errors.HubError` (its ``kind``
says whether waiting can help, see :mod:`app.net.retry`).

The movers that run queue jobs (:class:`~app.net.send.Sender`,
:class:`~app.net.fetch.Download`) share :class:`Mover`, so the queue runner drives either alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from app.net.multipart import PartSink

if TYPE_CHECKING:
    from app.net.send import TransferResult

#: One dataset in the DICOM JSON model (tag -> {"vr": ..., "Value": [...]}).
DicomJson = dict[str, Any]

# Tags (DICOM JSON keys) the transfer code reads from search results
STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
STUDY_INSTANCES = "00201208"  # NumberOfStudyRelatedInstances
SERIES_INSTANCES = "00201209"  # NumberOfSeriesRelatedInstances


def value(dataset: dict[str, Any], tag: str, default: Any = None) -> Any:
    """First value of ``tag`` in a DICOM JSON dataset (person names as their alphabetic text)."""
    element = dataset.get(tag)
    if not isinstance(element, dict):
        return default
    values = element.get("Value")
    if not isinstance(values, list) or not values:
        return default
    first = values[0]
    if isinstance(first, dict) and element.get("vr") == "PN":
        return first.get("Alphabetic", default)
    return first

S = TypeVar("S", bound=PartSink)
R = TypeVar("R")


@dataclass(frozen=True)
class StoreResult:
    """What the peer said about one store request (STOW-RS, or a C-STORE batch)."""

    stored: frozenset[str]
    """SOP Instance UIDs the peer confirmed."""
    failed: dict[str, str] = field(default_factory=dict)
    """SOP Instance UID -> failure reason in plain words."""
    decoded: frozenset[str] = frozenset()
    """Stored instances the peer took only decoded (lossless) to a syntax it accepts."""


@dataclass(frozen=True)
class Confirmation:
    """The peer's evidence that it keeps what was sent (:meth:`Peer.confirm`)."""

    found: frozenset[str] | None
    """SOP Instance UIDs confirmed; None: the peer offers no way to tell ("sent, not
    verified")."""
    evidence: str
    """How, in words: ``search`` (QIDO-RS), ``storage commitment``, ``C-FIND``."""
    refused: frozenset[str] = frozenset()
    """SOP Instance UIDs the peer said it does not keep (storage commitment's failed list, or
    asked and not committed): sent again."""


@runtime_checkable
class Peer(Protocol):
    """A remote Relay exchanges studies with. Every call may block on the network."""

    @property
    def where(self) -> str:
        """Where the peer is, for messages (``host:port``; never a secret)."""
        ...

    def check(self) -> str:
        """One cheap round trip; what it proved in plain words, or a :class:`HubError`."""
        ...

    # -- search (query) ----------------------------------------------------------------------
    def studies(self, **match: Any) -> Iterator[DicomJson]:
        """Studies matching these keys (keywords, DICOM matching rules)."""
        ...

    def series(self, study_uid: str) -> Iterator[DicomJson]:
        """The series of a study, each with NumberOfSeriesRelatedInstances."""
        ...

    def instances(self, study_uid: str, series_uid: str | None = None, *,
                  fields: Sequence[str] = (), match: Mapping[str, Any] | None = None,
                  limit: int | None = None, offset: int = 0) -> Iterator[DicomJson]:
        """Instances of a study or series: at most ``limit`` (all: None), from ``offset``."""
        ...

    def study_instance_count(self, study_uid: str) -> int | None:
        """Instances of a study on the peer; None when the peer does not have the study."""
        ...

    def present(self, study_uid: str, sop_uids: Sequence[str]) -> set[str]:
        """Which of ``sop_uids`` the peer holds (a missing one is confirmed with
        :meth:`instance_uids` before anyone acts on it)."""
        ...

    def instance_uids(self, study_uid: str, series_uid: str | None = None) -> set[str]:
        """Every SOP Instance UID the peer lists for a study (or one series)."""
        ...

    def metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """Every instance header of a series, without pixel data."""
        ...

    def confirm(self, study_uid: str, sop_uids: Sequence[str]) -> Confirmation:
        """The peer's evidence that it keeps these instances it confirmed storing (a search,
        or Storage Commitment), or ``found`` None when it can give none."""
        ...

    # -- store and retrieve ------------------------------------------------------------------
    def store(self, files: Sequence[tuple[Path, int]], study_uid: str | None = None
              ) -> StoreResult:
        """Send these ``(path, size)`` files of one study in one request."""
        ...

    def retrieve(self, study_uid: str, series_uid: str | None = None,
                 sop_uid: str | None = None, *, open_part: Callable[[dict[str, str]], S],
                 close_part: Callable[[S], R]) -> Iterator[R]:
        """Bring a study, a series or one instance as it is stored on the peer, instance by
        instance: ``open_part(headers)`` gives the sink an instance's bytes are written to,
        ``close_part(sink)`` is called when it is complete (and its result yielded)."""
        ...

    def close(self) -> None:
        """Let go of what is kept open between calls (connections, associations); the peer
        can still be used afterwards."""
        ...


@runtime_checkable
class Mover(Protocol):
    """Runs one transfer job of the queue to its end (or to a stop the user must act on)."""

    bytes: int
    """Bytes moved so far in this run (for a speed)."""

    def run(self, job_id: str) -> TransferResult:
        """Run (or resume) the job ``job_id``."""
        ...
