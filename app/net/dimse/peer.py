"""A PACS as a :class:`~app.net.peer.Peer`: the seam's operations over DIMSE (profile kind
``dimse``).

- ``check``: C-ECHO, then a C-FIND matching nothing (many PACS, Orthanc among them, answer
  anyone's echo but only the queries of nodes they know);
- ``studies``/``series``/``instances``: C-FIND (Study Root) at STUDY/SERIES/IMAGE level, each
  match as a DICOM JSON dataset as it arrives; ``limit`` ends the search with a C-CANCEL;
- ``study_instance_count``/``present``/``instance_uids``: C-FIND (``present`` with UID list
  matching, by chunks);
- ``metadata``: an IMAGE-level C-FIND of the attributes a slice plan needs (a PACS that
  answers only its index keys gives what it has; the plan says what is missing);
- ``store``: C-STORE of each file as stored (or decoded, lossless, when the PACS accepts only
  uncompressed: :attr:`StoreResult.decoded`), on associations kept open between calls
  (:meth:`close` releases them);
- ``confirm``: Storage Commitment where the PACS offers it, else an IMAGE-level C-FIND, else
  no evidence (``found`` None: "sent, not verified");
- ``retrieve``: C-GET (default) or C-MOVE to Relay's node, each received instance written
  byte-exact (with its file meta header) through ``open_part``/``close_part``.

Faults are :class:`~app.errors.DimseError` (a :class:`~app.errors.HubError`), so the retry loop
and the movers treat a PACS as they treat a hub.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.tag import Tag
from pynetdicom import evt

from app.errors import Cancelled, DimseError, NotSupportedByPeer
from app.net.dimse.association import DEFAULT_AE_TITLE, Endpoint, TlsOptions
from app.net.dimse.client import DimseClient, Sender
from app.net.dimse.commit import Commitments
from app.net.dimse.rawreceive import write_received
from app.net.dimse.rawstore import NotRaw, file_meta
from app.net.multipart import PartSink
from app.net.peer import Confirmation, DicomJson, StoreResult
from app.settings import HubProfile, Settings
from app.tasks import Progress

log = logging.getLogger(__name__)

S = TypeVar("S", bound=PartSink)
R = TypeVar("R")
T = TypeVar("T")

#: SOP Instance UIDs per C-FIND with UID list matching (a long list is split).
UID_CHUNK = 200
#: Associations kept open for C-STORE between two :meth:`DimsePeer.store` calls.
KEEP_OPEN = 4
#: Return keys of study, series and instance searches (the issue's study row, plus what the
#: incoming list and the transfers read).
STUDY_KEYS = ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate",
              "PatientSex", "StudyDate", "StudyTime", "StudyDescription",
              "ModalitiesInStudy", "AccessionNumber", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances")
SERIES_KEYS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "NumberOfSeriesRelatedInstances")
INSTANCE_KEYS = ("SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "InstanceNumber")
#: What a slice plan is made of (:func:`app.dicom.header.header_of_dataset`), asked for by
#: :meth:`DimsePeer.metadata`.
PLAN_KEYS = (*INSTANCE_KEYS, "StudyInstanceUID", "Modality", "Rows", "Columns",
             "BitsAllocated", "BitsStored", "PixelRepresentation", "SamplesPerPixel",
             "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames",
             "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
             "SliceThickness", "SpacingBetweenSlices", "FrameOfReferenceUID",
             "RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth",
             "VOILUTFunction", "ImageType", "AcquisitionNumber", "SeriesNumber",
             "SeriesDescription", "BodyPartExamined", "TemporalPositionIndex")

#: What :meth:`DimsePeer.metadata` adds to each instance from the study's STUDY-level answer.
ABOVE_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
              "StudyTime", "StudyDescription", "AccessionNumber")
_ABOVE_TAGS = frozenset(f"{tag_for_keyword(k):08X}" for k in ABOVE_KEYS)


def connect(profile: HubProfile, secret: str | None = None, *, pool_size: int = 4,
            settings: Settings | None = None, home: Path | None = None) -> DimsePeer:
    """The peer of a ``dimse`` profile, calling as Relay's node (AE title and port from
    ``settings.node``; ``home``: where Relay's node running in another process hands over
    what it receives for this one). DIMSE has no secret: TLS client certificates are files."""
    del secret
    tls = TlsOptions(profile.ca_file, profile.cert_file, profile.key_file) \
        if profile.tls else None
    node = settings.node if settings is not None else None
    calling = (node.ae_title if node is not None else "") or DEFAULT_AE_TITLE
    port = node.port if node is not None else 0
    client = DimseClient(Endpoint(profile.host, profile.port, profile.ae_title, tls), calling,
                         listen_port=port, home=home, name=profile.name)
    return DimsePeer(client, method=profile.retrieve, keep_open=min(KEEP_OPEN, pool_size))


#: Pauses before asking a busy PACS again for the only association this peer wants.
BUSY_PAUSES = (0.2, 0.5, 1.0)


class DimsePeer:
    """One PACS spoken to over DIMSE: a :class:`~app.net.peer.Peer`."""

    def __init__(self, client: DimseClient, *, method: str = "get", keep_open: int = KEEP_OPEN,
                 commit_wait: float = 10.0) -> None:
        self.client = client
        #: ``get`` (C-GET) or ``move`` (C-MOVE to Relay's node); a job may choose its own.
        self.method = method
        self.commit_wait = commit_wait
        self._keep_open = keep_open
        self._idle: list[tuple[frozenset[tuple[str, str]], Any, Sender]] = []
        self._opening = 0  # associations being requested right now
        self._lock = threading.Lock()
        #: C-STORE associations open (idle or in use), and the most the PACS took at once
        #: (learnt when it rejects one more as busy; None: no limit seen)
        self._live = 0
        self._limit: int | None = None
        self._given_back = threading.Condition(self._lock)
        #: SOP Instance UID -> SOP Class UID of what this peer stored (for commitment).
        self._classes: dict[str, str] = {}
        self._study_classes: dict[str, set[str]] = {}
        self._commitment: bool | None = None  # learnt at the first confirm
        #: Storage Commitment asked for in batches while the C-STOREs go on (one listener for
        #: the reports while this peer lives); None until the first instance is stored.
        self._commits: Commitments | None = None
        self._searches: bool | None = None  # False: the PACS refuses IMAGE-level queries
        self._study_rows: dict[str, DicomJson] = {}  # study UID -> its STUDY-level answer

    @property
    def where(self) -> str:
        return self.client.peer.where

    # -- check -----------------------------------------------------------------------------
    def check(self) -> str:
        started = time.monotonic()
        self.client.echo()
        probe = Dataset()
        probe.StudyInstanceUID = "1.2.3.4.5.6.7.8.9.0.1.2.3"  # matches nothing
        try:
            list(self.client.find("STUDY", probe))
        except DimseError as exc:
            if exc.kind == "aborted" and time.monotonic() - started < 60:
                raise DimseError(
                    "calling-ae", f"{self.client.peer.where} answers C-ECHO but aborted a "
                    f"query from '{self.client.calling_ae}': it probably does not know "
                    f"Relay's AE title (add '{self.client.calling_ae}' with this computer's "
                    "address to the PACS's list of DICOM nodes)") from exc
            raise
        return f"{self.client.peer.where} answers C-ECHO and queries from " \
               f"'{self.client.calling_ae}'"

    # -- search ----------------------------------------------------------------------------
    def find(self, level: str, keys: Sequence[str], match: Mapping[str, Any] | None = None, *,
             limit: int | None = None, offset: int = 0,
             progress: Progress | None = None) -> Iterator[DicomJson]:
        """C-FIND at ``level`` returning ``keys`` (keywords or DICOM JSON tags) where
        ``match`` (keyword -> value, DICOM matching rules): each match as DICOM JSON, at
        most ``limit`` from ``offset``; stopping early sends C-CANCEL."""
        query = Dataset()
        for key in keys:
            _set(query, key, "")
        for key, wanted in (match or {}).items():
            _set(query, key, wanted)
        if self._limit is not None:  # a PACS taking few associations: free the idle ones
            self._release()
        # a search stopped at ``limit`` is cancelled on its own progress, never the caller's
        own = progress if progress is not None and limit is None else Progress("C-FIND")
        given = skipped = 0
        try:
            for found in self.client.find(level, query, own):
                if skipped < offset:
                    skipped += 1
                    continue
                yield found.to_json_dict()
                given += 1
                if limit is not None and given >= limit:
                    own.cancel()  # C-CANCEL now; the rest is drained by the client
        except Cancelled:
            if progress is not None and progress.cancelled:
                raise
            return

    def studies(self, **match: Any) -> Iterator[DicomJson]:
        return self.find("STUDY", STUDY_KEYS, match)

    def series(self, study_uid: str) -> Iterator[DicomJson]:
        return self.find("SERIES", SERIES_KEYS, {"StudyInstanceUID": study_uid})

    def instances(self, study_uid: str, series_uid: str | None = None, *,
                  fields: Sequence[str] = (), match: Mapping[str, Any] | None = None,
                  limit: int | None = None, offset: int = 0) -> Iterator[DicomJson]:
        where = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid or "",
                 **(match or {})}
        return self.find("IMAGE", (*INSTANCE_KEYS, *fields), where, limit=limit,
                         offset=offset)

    def study_instance_count(self, study_uid: str) -> int | None:
        def count() -> int | None:
            for found in self.find("STUDY", ("NumberOfStudyRelatedInstances",),
                                   {"StudyInstanceUID": study_uid}):
                number = _first(found, "00201208")
                return int(number) if number not in (None, "") else 0
            return None

        return self._searching(count)

    def present(self, study_uid: str, sop_uids: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(sop_uids))

        def search() -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), UID_CHUNK):
                chunk = wanted[start : start + UID_CHUNK]
                match = {"StudyInstanceUID": study_uid, "SOPInstanceUID": chunk}
                found |= {str(u) for d in self.find("IMAGE", ("SOPInstanceUID",), match)
                          if (u := _first(d, "00080018"))}
            return found & set(wanted)

        return self._searching(search)

    def instance_uids(self, study_uid: str, series_uid: str | None = None) -> set[str]:
        return self._searching(lambda: {str(u) for d in self.instances(study_uid, series_uid)
                                        if (u := _first(d, "00080018"))})

    def _searching(self, search: Callable[[], T]) -> T:
        """A search that tells what the PACS holds; a PACS that refuses such queries (or
        aborts them) cannot be asked: :class:`NotSupportedByPeer`, remembered."""
        if self._searches is False:
            raise NotSupportedByPeer(f"{self.where} does not answer image queries")
        try:
            result = search()
        except DimseError as exc:
            if exc.retryable and exc.kind != "aborted":
                raise
            self._searches = False
            raise NotSupportedByPeer(f"{self.where} does not answer image queries: {exc}"
                                     ) from exc
        self._searches = True
        return result

    def metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """An IMAGE-level C-FIND of what a slice plan needs (no pixels); as a PACS keeps them,
        so the transfer syntax is unknown (it comes with each instance). The patient and the
        study (who is read: name, ID, birth date, sex; the study's date, description and
        accession) come from a STUDY-level C-FIND, asked once per study: an IMAGE-level query
        carries no keys of the levels above but their UIDs."""
        items = list(self.find("IMAGE", PLAN_KEYS, {"StudyInstanceUID": study_uid,
                                                    "SeriesInstanceUID": series_uid}))
        study = self._study_rows.get(study_uid)
        if study is None:
            try:
                study = next(iter(self.studies(StudyInstanceUID=study_uid)), {})
            except DimseError as exc:  # the images still open; their overlay lacks the names
                log.warning("%s: the study's patient and study values could not be asked: %s",
                            self.where, exc)
                study = {}
            self._study_rows[study_uid] = study
        above = {tag: element for tag, element in study.items() if tag in _ABOVE_TAGS}
        for item in items:
            for tag, element in above.items():
                item.setdefault(tag, element)
        return items

    # -- store ------------------------------------------------------------------------------
    def store(self, files: Sequence[tuple[Path, int]], study_uid: str | None = None
              ) -> StoreResult:
        """C-STORE each file (one association for the call, kept open for the next)."""
        metas: list[tuple[Path, str, str, str]] = []
        failed: dict[str, str] = {}
        for path, _ in files:
            try:
                try:
                    cls, sop, ts = file_meta(path)
                except NotRaw:
                    meta = read_file_meta_info(path)
                    cls, sop, ts = (str(meta.MediaStorageSOPClassUID),
                                    str(meta.MediaStorageSOPInstanceUID),
                                    str(meta.TransferSyntaxUID))
                metas.append((path, sop, cls, ts))
            except (OSError, AttributeError, ValueError) as exc:
                log.info("a stored file has no readable file meta header: %s", exc)
                failed[path.name] = f"the stored file {path.name} cannot be read"
        if not metas:
            return StoreResult(frozenset(), failed)
        pairs = frozenset((cls, ts) for _, _, cls, ts in metas)
        stored: set[str] = set()
        decoded: set[str] = set()
        assoc, sender = self._sender(pairs)
        healthy = False
        try:
            with sender.holding():
                for n, (path, sop, cls, ts) in enumerate(metas, 1):
                    outcome = sender.send(path, cls, ts, msg_id=n % 65536 or 1,
                                         sop_instance=sop)
                    if outcome.stored:
                        stored.add(sop)
                        if outcome.decoded:
                            decoded.add(sop)
                        with self._lock:
                            self._classes[sop] = cls
                        if self._commitment is not False:
                            self._commitments().add(cls, sop)
                    else:
                        failed[sop] = outcome.comment or \
                            f"{self.where} answered C-STORE with status 0x{outcome.status:04X}"
            healthy = True
        finally:
            self._give_back(pairs, assoc, sender, healthy)
        return StoreResult(frozenset(stored), failed, frozenset(decoded))

    def _sender(self, pairs: frozenset[tuple[str, str]]) -> tuple[Any, Sender]:
        """An open association whose contexts cover ``pairs`` (an idle one, or a new one).
        A PACS that rejects one more association as busy while this peer has others open
        (it serves fewer at once than ``transfer.in_flight``) is not asked again for more:
        the C-STORE batches then take turns on the associations it accepted."""
        stale: list[Any] = []
        deadline = time.monotonic() + self.client.timeouts.dimse
        with self._lock:
            while True:
                for k, (key, cm, sender) in enumerate(self._idle):
                    if pairs <= key and sender.assoc.is_established:
                        del self._idle[k]
                        return cm, sender
                if self._limit is None or self._live < self._limit:
                    break
                if self._idle:  # at the limit, none of them fits: one makes room
                    stale.append(self._idle.pop(0)[1])
                    self._live -= 1
                    break
                if not self._given_back.wait(max(0.0, deadline - time.monotonic())):
                    raise DimseError("timeout", f"no association with {self.where} came free "
                                                "for the next C-STORE batch")
            self._live += 1
        for cm in stale:
            with contextlib.suppress(Exception):
                cm.__exit__(None, None, None)
        try:
            with self._asking():
                return self._open_sending(pairs)
        except DimseError as exc:
            with self._lock:
                self._live -= 1
                others = self._live
                if exc.kind == "busy" and others:
                    self._limit = others
                self._given_back.notify_all()  # one less open: a batch waiting may ask
            if exc.kind == "busy" and others:
                log.info("%s takes %d association(s) at a time: the C-STORE batches take turns",
                         self.where, others)
                return self._sender(pairs)
            raise

    def _open_sending(self, pairs: frozenset[tuple[str, str]]) -> tuple[Any, Sender]:
        """A new sending association. A PACS that rejects it as busy while this peer holds none
        is often still freeing one this peer has just released (its search before the send, a
        commitment's): asked again after a moment, a few times, before the busy answer stands
        (seen under load: the round backed off 1, 2 and 4 s for it)."""
        for pause in (*BUSY_PAUSES, None):
            try:
                cm = self.client.sending(pairs)
                return cm, cm.__enter__()
            except DimseError as exc:
                with self._lock:
                    alone = self._live <= 1
                if exc.kind != "busy" or not alone or pause is None:
                    raise
                log.info("%s is busy; asking again in %.2f s", self.where, pause)
                time.sleep(pause)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _asking(self) -> Iterator[None]:
        """While this runs, another association is being asked for: associations kept open
        are released as soon as they are given back."""
        with self._lock:
            self._opening += 1
        try:
            yield
        finally:
            with self._lock:
                self._opening -= 1

    def _give_back(self, pairs: frozenset[tuple[str, str]], cm: Any, sender: Sender,
                   healthy: bool) -> None:
        if healthy and sender.assoc.is_established:
            with self._lock:
                # kept for the next call, unless another call waits for an association: a
                # PACS serving one association at a time (dcmtk storescp) waits for this one
                if len(self._idle) < self._keep_open and not self._opening:
                    self._idle.append((pairs, cm, sender))
                    self._given_back.notify()
                    return
            try:
                cm.__exit__(None, None, None)
            finally:
                self._closed(1)
            return
        with contextlib.suppress(Exception):
            cm.__exit__(DimseError, DimseError("aborted", "lost"), None)  # aborts
        self._closed(1)

    def _closed(self, count: int) -> None:
        with self._lock:
            self._live = max(0, self._live - count)
            self._given_back.notify_all()

    def _commitments(self) -> Commitments:
        with self._lock:
            if self._commits is None:
                self._commits = Commitments(self.client, wait=self.commit_wait)
            return self._commits

    def close(self) -> None:
        """Release the associations kept open for C-STORE, and stop waiting for commitment
        reports."""
        self._release()
        with self._lock:
            commits, self._commits = self._commits, None
        if commits is not None:
            commits.close()

    def _release(self) -> None:
        """Release the associations kept open for C-STORE."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, cm, _ in idle:
            with contextlib.suppress(Exception):
                cm.__exit__(None, None, None)
        self._closed(len(idle))

    # -- verification ----------------------------------------------------------------------
    def confirm(self, study_uid: str, sop_uids: Sequence[str]) -> Confirmation:
        """Storage Commitment of what this peer stored (when the PACS offers it), else an
        IMAGE-level C-FIND, else no evidence."""
        with self._lock:
            refs = [(self._classes[u], u) for u in sop_uids if u in self._classes]
        # what the PACS offers is still being learnt (a PACS serving one association at a time
        # must have the kept ones back first); once Storage Commitment is known to work the
        # C-STORE association stays open from one batch to the next (forwarding's batches)
        learning = self._commitment is None or (not self._commitment and self._searches is None)
        with self._asking() if learning else contextlib.nullcontext():
            if learning:
                self._release()  # a PACS serving one association at a time waits for these
            return self._confirm(study_uid, sop_uids, refs)

    def _confirm(self, study_uid: str, sop_uids: Sequence[str],
                 refs: list[tuple[str, str]]) -> Confirmation:
        if self._commitment is not False and refs:
            committed = self._commitments().finish(refs)
            self._commitment = committed is not None
            if committed is not None:
                asked = {u for _, u in refs}
                return Confirmation(frozenset(committed & set(sop_uids)), "storage commitment",
                                    refused=frozenset(asked - committed))
        try:
            found = self.present(study_uid, sop_uids)
        except NotSupportedByPeer as exc:
            log.info("no evidence from %s: %s", self.where, exc)
            return Confirmation(None, "")
        return Confirmation(frozenset(found), "C-FIND")

    # -- retrieve ----------------------------------------------------------------------------
    def retrieve(self, study_uid: str, series_uid: str | None = None,
                 sop_uid: str | None = None, *, open_part: Callable[[dict[str, str]], S],
                 close_part: Callable[[S], R]) -> Iterator[R]:
        """C-GET (or C-MOVE, see :attr:`method`) of a study, series or instance; each instance
        is yielded once written through ``open_part``/``close_part``. Asking for one instance
        the PACS no longer has is a :class:`HubError` with status 404 (as a hub says it)."""
        ident = Dataset()
        ident.StudyInstanceUID = study_uid
        ident.QueryRetrieveLevel = "STUDY"
        if series_uid:
            ident.QueryRetrieveLevel = "SERIES"
            ident.SeriesInstanceUID = series_uid
        if sop_uid:
            ident.QueryRetrieveLevel = "IMAGE"
            ident.SOPInstanceUID = sop_uid
        arrived: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = Progress("retrieve")  # cancelled when the caller stops early: C-CANCEL
        refused: list[Exception] = []  # the write that failed: the retrieve stops with it

        def on_store(event: evt.Event) -> int:
            if stop.cancelled:
                return 0xA700  # nobody takes it any more
            try:
                part = open_part({"Content-Type": "application/dicom"})
                write_received(event, part.write)
                arrived.put(close_part(part))
            except Exception as exc:  # the disk is full, the part cannot be written
                if not refused:
                    log.error("a received instance cannot be written (%s); the retrieve stops",
                              type(exc).__name__)
                    refused.append(exc)
                # C-CANCEL: the rest would be refused one by one (a whole study sent for
                # nothing, a line each); the job asks again for what it lacks
                stop.cancel()
                return 0xA700  # out of resources: the PACS may send it again
            return 0x0000

        outcome: list[Any] = []

        def ask() -> None:
            try:
                if self.method == "move":
                    outcome.append(self.client.move(ident, on_store, stop))
                else:
                    outcome.append(self.client.get(ident, self._classes_of(study_uid),
                                                   on_store, stop))
            except BaseException as exc:  # handed to the iterating thread
                outcome.append(_Failure(exc))
            finally:
                arrived.put(_END)

        worker = threading.Thread(target=ask, name=f"c-{self.method}", daemon=True)
        worker.start()
        count = 0
        try:
            while (item := arrived.get()) is not _END:
                count += 1
                yield item
        finally:
            if worker.is_alive():  # the caller stopped early: C-CANCEL, bounded wait
                stop.cancel()
                worker.join(self.client.timeouts.dimse)
        result = outcome[0] if outcome else None
        failure = result.exc if isinstance(result, _Failure) else None
        if refused:  # why it stopped (the C-CANCEL's "cancelled" was Relay's own doing)
            failure = refused[0]
        if sop_uid and count == 0 and (failure is None or isinstance(failure, DimseError)
                                       and failure.kind == "failed"):
            raise DimseError("failed", f"{self.where} did not send instance {sop_uid}"
                             + (f" ({failure})" if failure else ""), status=404)
        if failure is not None:
            raise failure

    def _classes_of(self, study_uid: str) -> set[str]:
        """The SOP classes of a study (SOPClassesInStudy), for C-GET's SCP roles; the common
        ones when the PACS does not say."""
        known = self._study_classes.get(study_uid)
        if known is None:
            known = set()
            with contextlib.suppress(DimseError):
                for d in self.find("STUDY", ("SOPClassesInStudy",),
                                   {"StudyInstanceUID": study_uid}):
                    element = d.get("00080062") or {}
                    known = {str(v) for v in element.get("Value", [])}
            self._study_classes[study_uid] = known
        return known or COMMON_CLASSES

class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()  # the retrieve's last answer came


#: SOP classes proposed for C-GET when the PACS would not say which a study holds.
COMMON_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
                  "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1",
                  "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.1",
                  "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.128",
                  "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.59",
                  "1.2.840.10008.5.1.4.1.1.11.1", "1.2.840.10008.5.1.4.1.1.6.1"}


def _set(query: Dataset, key: str, wanted: Any) -> None:
    """Set a query key given by keyword or DICOM JSON tag (``00100020``)."""
    keyword = key
    if len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key):
        keyword = keyword_for_tag(Tag(int(key, 16))) or key
    if isinstance(wanted, list | tuple):
        wanted = [str(w) for w in wanted]
    elif wanted == "":
        wanted = None  # universal matching: an empty element of any VR
    elif wanted is not None and not isinstance(wanted, str):
        wanted = str(wanted)
    setattr(query, keyword, wanted)


def _first(item: DicomJson, tag: str) -> Any:
    element = item.get(tag)
    if not isinstance(element, dict):
        return None
    values = element.get("Value")
    return values[0] if isinstance(values, list) and values else None
