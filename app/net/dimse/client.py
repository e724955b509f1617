"""Relay as a DIMSE client of one PACS: C-ECHO, C-FIND (streaming, cancellable), C-STORE of stored
files, Storage Commitment, C-GET and C-MOVE.

Every association goes through :func:`~app.net.dimse.association.associate` (bounded waits,
TCP_NODELAY, TLS). Failures are :class:`~app.errors.DimseError` with a plain reason; a lost
association in the middle of an operation is ``aborted`` (retryable).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import _config, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from app.errors import Cancelled, DimseError
from app.net.dimse.association import Endpoint, Timeouts, associate, make_ae, start_server
from app.net.dimse.handover import Handover, handed_move, node_elsewhere
from app.net.dimse.rawstore import NotRaw, RawStore
from app.net.dimse.routes import ROUTES, answer_report, next_message_id
from app.tasks import Progress
from app.workflow import audit

log = logging.getLogger(__name__)

#: Association faults that are no refusal of Relay (nobody answered yet): a minor failure of
#: the login attempt in the audit trail; any other refusal is a serious one.
TRANSIENT_REFUSALS = frozenset({"unreachable", "timeout", "busy", "aborted"})

#: Send stored files straight from disk, never decoded (pynetdicom reads them in chunks).
_config.STORE_SEND_CHUNKED_DATASET = True

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
#: What Relay accepts when it receives (C-GET, C-MOVE): everything it can store and decode,
#: uncompressed first, then the lossless codecs, then the lossy ones (kept as received).
RECEIVE_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1,
                    JPEGLSLossless, JPEG2000Lossless, RLELossless, JPEGLSNearLossless, JPEG2000,
                    JPEGBaseline8Bit, JPEGExtended12Bit, DeflatedExplicitVRLittleEndian,
                    ExplicitVRBigEndian)
MAX_CONTEXTS = 128
Verification = UID("1.2.840.10008.1.1")
StorageCommitmentPushModel = UID("1.2.840.10008.1.20.1")
COMMITMENT_INSTANCE = UID("1.2.840.10008.1.20.1.1")
StudyRootQueryRetrieveInformationModelFind = UID("1.2.840.10008.5.1.4.1.2.2.1")
StudyRootQueryRetrieveInformationModelMove = UID("1.2.840.10008.5.1.4.1.2.2.2")
StudyRootQueryRetrieveInformationModelGet = UID("1.2.840.10008.5.1.4.1.2.2.3")

StoreHandler = Callable[[evt.Event], int]


@dataclass(frozen=True)
class StoreOutcome:
    """One C-STORE: the peer's status and whether the pixels were decoded to be accepted."""

    status: int
    decoded: bool = False
    comment: str = ""

    @property
    def stored(self) -> bool:
        """Success or a warning (0xB000, 0xB006, 0xB007: stored, with remarks)."""
        return self.status == 0 or (self.status & 0xF000) == 0xB000


@dataclass(frozen=True)
class RetrieveOutcome:
    """The final C-GET/C-MOVE answer: sub-operation counts and the status."""

    status: int
    completed: int
    failed: int
    warning: int


def store_contexts(pairs: Iterable[tuple[str, str]]) -> list[PresentationContext]:
    """Contexts for sending instances of these ``(sop_class, transfer_syntax)`` pairs: each
    class in each of its stored syntaxes on its own (implicit VR included: what the peer
    accepts goes out byte for byte, as stored), and each class in explicit and implicit VR
    little endian (the fallbacks every PACS accepts)."""
    contexts: list[PresentationContext] = []
    classes: list[str] = []
    for sop_class, syntax in sorted(set(pairs)):
        contexts.append(build_context(sop_class, [syntax]))
        if sop_class not in classes:
            classes.append(sop_class)
    contexts += [build_context(c, list(UNCOMPRESSED)) for c in classes]
    if len(contexts) > MAX_CONTEXTS:
        raise DimseError("refused", f"{len(classes)} SOP classes and syntaxes need more than "
                                    f"{MAX_CONTEXTS} presentation contexts in one association")
    return contexts


def receive_contexts(sop_classes: Iterable[str], *,
                     first: Sequence[PresentationContext] = ()) -> list[PresentationContext]:
    """Contexts for receiving these SOP classes (C-GET): one per class and syntax, as many
    syntaxes as fit in one association, so the PACS can send each instance as it holds it."""
    classes = sorted(set(sop_classes))
    room = MAX_CONTEXTS - len(first)
    per_class = max(2, min(len(RECEIVE_SYNTAXES), room // max(1, len(classes))))
    contexts = list(first)
    for sop_class in classes:
        contexts += [build_context(sop_class, [ts]) for ts in RECEIVE_SYNTAXES[:per_class]]
    return contexts[:MAX_CONTEXTS]


class DimseClient:
    """Operations against one PACS, each on its own association."""

    def __init__(self, peer: Endpoint, calling_ae: str, timeouts: Timeouts | None = None, *,
                 listen_port: int = 0, home: Path | None = None, name: str = "") -> None:
        self.peer = peer
        #: The PACS profile's name (in the audit trail's ``peer``: ``name@AE@host:port``).
        self.name = name
        self.calling_ae = calling_ae
        self.timeouts = timeouts or Timeouts()
        #: Where Relay listens for what the PACS opens towards it (C-MOVE, commitment reports).
        self.listen_port = listen_port
        #: The Relay home: when Relay's node of this home runs in another process, it hands
        #: over what it receives for this one (:mod:`app.net.dimse.handover`); also the home
        #: whose audit trail records each association asked for (110114) and each search.
        self.home = home

    @property
    def audit_peer(self) -> str:
        """The PACS as the audit trail names it."""
        return f"{self.name}@{self.peer.where}" if self.name else self.peer.where

    @contextmanager
    def association(self, contexts: Sequence[PresentationContext], *,
                    ext_neg: list[Any] | None = None,
                    handlers: Sequence[tuple[evt.EventType, object]] = (),
                    timeouts: Timeouts | None = None,
                    service: str = "") -> Iterator[Association]:
        """An established association, released (or aborted, if it must be) afterwards. The
        attempt is one audit event (110114 User Authentication, with its outcome) when the
        client has a home; ``service``: what it is for (``C-FIND``, ``C-STORE``, ...)."""
        ae = make_ae(self.calling_ae, timeouts=timeouts or self.timeouts)
        try:
            assoc = associate(ae, self.peer, contexts=contexts, ext_neg=ext_neg,
                              evt_handlers=handlers)
        except DimseError as exc:
            self._audit_login(service, exc)
            raise
        self._audit_login(service, None)
        try:
            yield assoc
        except RuntimeError as exc:
            lost = not assoc.is_established  # before the abort, which ends it either way
            assoc.abort()
            if not lost:
                raise
            # pynetdicom refuses a request on an association that ended meanwhile (the peer
            # or the network closed it after accepting): said as what it is, not as a crash
            raise DimseError("aborted", f"{self.peer.where} closed the association before "
                                        f"{service or 'the request'} could be sent (connection "
                                        "lost or aborted by the peer); trying again can "
                                        "help") from exc
        except BaseException:
            assoc.abort()
            raise
        else:
            if assoc.is_established:
                assoc.release()

    def _audit_login(self, service: str, failure: DimseError | None) -> None:
        """One association asked for: accepted, or refused and why (never a patient)."""
        if self.home is None:
            return
        if failure is None:
            outcome = audit.SUCCESS
        elif failure.kind in TRANSIENT_REFUSALS:
            outcome = audit.MINOR_FAILURE  # no answer yet: the attempt is made again
        else:
            outcome = audit.SERIOUS_FAILURE  # rejected: Relay is not let in
        detail = {"protocol": "DIMSE", "service": service, "calling_ae": self.calling_ae,
                  "tls": self.peer.tls is not None}
        if failure is not None:
            detail["reason"] = failure.kind
        audit.record(self.home, "login", outcome=outcome, peer=self.audit_peer, detail=detail)

    # -- verification and query ----------------------------------------------------------------
    def echo(self) -> None:
        with self.association([build_context(Verification)], service="C-ECHO") as assoc:
            since = time.monotonic()
            status = assoc.send_c_echo()
            _check(assoc, status, self.peer, "C-ECHO", since=since)

    def find(self, level: str, identifier: Dataset, progress: Progress | None = None, *,
             audited: bool = False) -> Iterator[Dataset]:
        """C-FIND (Study Root) at ``level``: the matches as they arrive. Cancelling
        ``progress`` sends C-CANCEL and ends the iteration with :class:`Cancelled`.
        ``audited``: a search someone asked for (not one of a transfer's own checks) is one
        audit event (110112 Query) with its level, the kinds of keys and the answers."""
        if not audited or self.home is None:
            yield from self._find(level, identifier, progress)
            return
        answers, failed, stopped = 0, "", False
        try:
            for match in self._find(level, identifier, progress):
                answers += 1
                yield match
        except Cancelled:
            stopped = True
            raise
        except GeneratorExit:  # the caller had enough
            stopped = True
            raise
        except Exception as exc:
            failed = getattr(exc, "kind", "") or type(exc).__name__
            raise
        finally:
            study = str(identifier.get("StudyInstanceUID", "") or "")
            audit.query(self.home, self.audit_peer, answers, level=level,
                        keys=audit.matching_keys(identifier), failed=failed,
                        study_uid=study if _single_uid(study) else "", stopped=stopped)

    def _find(self, level: str, identifier: Dataset,
              progress: Progress | None) -> Iterator[Dataset]:
        query = Dataset()
        query.update(identifier)
        query.QueryRetrieveLevel = level
        model = StudyRootQueryRetrieveInformationModelFind
        with self.association([build_context(model)], service="C-FIND") as assoc:
            since = time.monotonic()
            responses = assoc.send_c_find(query, model, msg_id=1)
            cancel = _FindCanceller(assoc, model, progress)
            try:
                for status, match in responses:
                    if cancel.requested():
                        _drain(responses)
                        raise Cancelled("query cancelled")
                    code = _check(assoc, status, self.peer, "C-FIND", since=since)
                    if code in (0xFF00, 0xFF01) and match is not None:
                        yield match
                    since = time.monotonic()
            finally:
                cancel.stop()
            if cancel.requested():  # the PACS ended the query on our C-CANCEL
                raise Cancelled("query cancelled")

    # -- storage -------------------------------------------------------------------------------
    @contextmanager
    def sending(self, pairs: Iterable[tuple[str, str]]) -> Iterator[Sender]:
        """An association for C-STORE of instances with these (sop_class, syntax) pairs."""
        with self.association(store_contexts(pairs), service="C-STORE") as assoc:
            yield Sender(assoc, self.peer)

    def commit(self, refs: Sequence[tuple[str, str]], *, wait: float = 30.0) -> set[str] | None:
        """Storage Commitment of ``refs`` (SOP Class UID, SOP Instance UID) in one go: the SOP
        Instance UIDs the PACS commits to keep, or None when it gives no evidence (see
        :class:`~app.net.dimse.commit.Commitments`, which also asks while a send runs)."""
        from app.net.dimse.commit import Commitments  # commit.py builds on this module

        with Commitments(self, wait=wait) as commitments:
            return commitments.finish(refs)

    # -- retrieval -----------------------------------------------------------------------------
    def get(self, identifier: Dataset, sop_classes: Iterable[str], on_store: StoreHandler,
            progress: Progress | None = None) -> RetrieveOutcome:
        """C-GET (Study Root): the PACS sends the matches back on this association, each to
        ``on_store`` (which returns the C-STORE status)."""
        model = StudyRootQueryRetrieveInformationModelGet
        classes = sorted(set(sop_classes))
        contexts = receive_contexts(classes, first=[build_context(model)])
        roles = [build_role(c, scp_role=True) for c in classes]
        with self.association(contexts, ext_neg=roles, service="C-GET",
                              handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            return self._retrieve(assoc, assoc.send_c_get(identifier, model, msg_id=1), model,
                                  progress, "C-GET")

    def move(self, identifier: Dataset, on_store: StoreHandler,
             progress: Progress | None = None) -> RetrieveOutcome:
        """C-MOVE (Study Root) to Relay's own AE title: the PACS opens an association to Relay's
        port, where Relay's node (or, when it does not run in this process, a stand-in shared
        by the jobs waiting) hands each to ``on_store`` (:mod:`app.net.dimse.routes`). When
        Relay's node of this home runs in another process, that node stores them and this
        process reads them from the store (:func:`~app.net.dimse.handover.handed_move`)."""
        handover = STAND_IN.elsewhere(self)
        if handover is not None:
            return handed_move(handover, self.peer.ae_title, self.calling_ae,
                               lambda msg_id: self._move(identifier, msg_id, progress),
                               on_store, lambda: node_elsewhere(self.home, self.listen_port))
        msg_id = next_message_id()
        try:
            with ROUTES.move(msg_id, self.peer.ae_title, on_store), STAND_IN.held(self):
                return self._move(identifier, msg_id, progress)
        except DimseError as exc:
            if exc.kind != "port":
                raise
            raise DimseError("rejected", f"C-MOVE needs Relay's port {self.listen_port}, and "
                             f"another program listens there ({exc}): stop it, or use "
                             "C-GET") from exc

    def _move(self, identifier: Dataset, msg_id: int,
              progress: Progress | None) -> RetrieveOutcome:
        model = StudyRootQueryRetrieveInformationModelMove
        with self.association([build_context(model)], service="C-MOVE") as assoc:
            responses = assoc.send_c_move(identifier, self.calling_ae, model, msg_id=msg_id)
            return self._retrieve(assoc, responses, model, progress, "C-MOVE", msg_id)

    def _retrieve(self, assoc: Association, responses: Iterator[tuple[Dataset, Any]],
                  model: str, progress: Progress | None, what: str,
                  msg_id: int = 1) -> RetrieveOutcome:
        last = Dataset()
        since = time.monotonic()
        for status, _ in responses:
            if progress is not None and progress.cancelled:
                assoc.send_c_cancel(msg_id, query_model=model)
                _drain(responses)
                raise Cancelled(f"{what} cancelled")
            code = _check(assoc, status, self.peer, what, allow_failure=True, since=since)
            last = status
            since = time.monotonic()
            if code not in (0xFF00, 0xFF01):
                break
        code = int(last.Status)
        outcome = RetrieveOutcome(code, int(last.get("NumberOfCompletedSuboperations", 0) or 0),
                                  int(last.get("NumberOfFailedSuboperations", 0) or 0),
                                  int(last.get("NumberOfWarningSuboperations", 0) or 0))
        if code not in (0x0000, 0xB000, 0xFE00) and not outcome.completed:
            raise DimseError("failed", f"{self.peer.where} answered {what} with status "
                                       f"0x{code:04X}{_comment(last)}")
        return outcome


class StandIn:
    """Relay's port while its node does not run in this process: one listener shared by every
    job waiting for what a PACS opens towards Relay (C-MOVE C-STOREs, commitment reports),
    routed as the node routes them (:data:`~app.net.dimse.routes.ROUTES`); started by the
    first job that needs it, stopped after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._server: Any = None
        self._port = 0
        self._ae = ""

    def elsewhere(self, client: DimseClient) -> Handover | None:
        """Where Relay's node of ``client.home`` hands over what it receives for this process,
        when it runs in another process on Relay's port; None when this process listens
        there (its node, or this stand-in) or may start to."""
        port = client.listen_port
        if not port or client.home is None or ROUTES.node_on(port):
            return None
        with self._lock:
            if self._server is not None:
                return None
        return Handover(client.home) if node_elsewhere(client.home, port) else None

    @contextmanager
    def held(self, client: DimseClient) -> Iterator[None]:
        """Relay's port is listened on while this runs (nothing to do when the node runs, or
        when no port is set). A port held by another program: ``DimseError`` kind ``port``."""
        port = client.listen_port
        if not port or ROUTES.node_on(port):
            yield
            return
        with self._lock:
            if self._server is None:
                self._server = self._start(client)
                self._port, self._ae = port, client.calling_ae
            elif self._port != port:
                raise DimseError("port", f"Relay already waits on port {self._port} for "
                                         f"another job, not {port}")
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                server = self._server if self._users == 0 else None
                if server is not None:
                    self._server = None
            if server is not None:
                server.shutdown()

    def _start(self, client: DimseClient) -> Any:
        ae = make_ae(client.calling_ae, timeouts=client.timeouts)
        from pynetdicom import StoragePresentationContexts

        for cx in StoragePresentationContexts:
            if cx.abstract_syntax:
                ae.add_supported_context(cx.abstract_syntax, list(RECEIVE_SYNTAXES))
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        try:
            return start_server(ae, "0.0.0.0", client.listen_port, evt_handlers=[
                (evt.EVT_C_STORE, self._on_store), (evt.EVT_N_EVENT_REPORT, answer_report)])
        except DimseError as exc:
            raise DimseError("port", str(exc)) from exc

    def _on_store(self, event: evt.Event) -> int:
        routed = ROUTES.store_handler(event, self._ae)
        if routed is None:
            log.info("a C-STORE no job here asked for was refused")
            return 0x0124  # refused: not authorised
        return routed(event)


#: The stand-in of this process.
STAND_IN = StandIn()


class Sender:
    """C-STORE on one association: each file as stored, or decoded when the PACS accepts only
    uncompressed for its SOP class (lossless: the stored pixels, never re-encoded)."""

    def __init__(self, assoc: Association, peer: Endpoint) -> None:
        self.assoc = assoc
        self.peer = peer
        self.accepted: dict[str, set[str]] = {}
        #: (SOP class, transfer syntax) -> the accepted context to send it on, as stored
        self.context_ids: dict[tuple[str, str], int] = {}
        for cx in assoc.accepted_contexts:
            self.accepted.setdefault(str(cx.abstract_syntax), set()).update(
                str(ts) for ts in cx.transfer_syntax)
            if cx.as_scu and cx.context_id is not None:
                for ts in cx.transfer_syntax:
                    self.context_ids.setdefault((str(cx.abstract_syntax), str(ts)),
                                                int(cx.context_id))
        #: Writes the stored bytes straight to the socket where it can (plain TCP, POSIX).
        self.raw = RawStore(assoc)

    def holding(self) -> contextlib.AbstractContextManager[None]:
        """Around a run of :meth:`send` calls (the association is used by nothing else)."""
        return self.raw.holding()

    def send(self, path: Path, sop_class: str, syntax: str, msg_id: int = 1,
             sop_instance: str = "") -> StoreOutcome:
        accepted = self.accepted.get(sop_class, set())
        decoded = False
        data: Path | Dataset = path
        context_id = self.context_ids.get((sop_class, syntax))
        if context_id is not None and sop_instance and self.raw.usable:
            since = time.monotonic()
            try:
                status = self.raw.send(path, context_id, sop_class, sop_instance, msg_id)
            except NotRaw:
                pass
            else:
                code = _check(self.assoc, status, self.peer, "C-STORE", allow_failure=True,
                              since=since)
                return StoreOutcome(code, False, _comment(status).lstrip(": "))
        if syntax not in accepted:
            if not accepted & set(UNCOMPRESSED):
                return StoreOutcome(0x0122, comment=f"{self.peer.where} refused "
                                                    f"{UID(sop_class).name or sop_class}")
            data, decoded = _readable(path, syntax)
        since = time.monotonic()
        try:
            status = self.assoc.send_c_store(data, msg_id=msg_id)
        except (AttributeError, ValueError):
            if decoded:
                raise
            data, decoded = _readable(path, syntax)
            status = self.assoc.send_c_store(data, msg_id=msg_id)
        code = _check(self.assoc, status, self.peer, "C-STORE", allow_failure=True, since=since)
        return StoreOutcome(code, decoded, _comment(status).lstrip(": "))


def _readable(path: Path, syntax: str) -> tuple[Dataset, bool]:
    """The file as a dataset the PACS accepts: uncompressed ones are converted by pynetdicom
    (explicit <-> implicit VR); compressed pixels are decoded (lossless to what is stored)."""
    ds = dcmread(path, force=True)
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        from pydicom.dataset import FileMetaDataset

        ds.file_meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(syntax)
    if UID(syntax).is_compressed:
        # the same instance in another transfer syntax: its SOP Instance UID stays
        ds.decompress(generate_instance_uid=False)
        return ds, True
    return ds, False


def _check(assoc: Association, status: Dataset | None, peer: Endpoint, what: str, *,
           allow_failure: bool = False, since: float) -> int:
    """The status code of a response, or a DimseError when the association was lost or (unless
    ``allow_failure``) the peer answered with a failure."""
    if status is None or "Status" not in status:
        dimse = assoc.dimse_timeout or 0.0
        if dimse and time.monotonic() - since >= dimse * 0.9:
            raise DimseError("timeout", f"{peer.where} did not answer {what} within "
                                        f"{dimse:.0f} s")
        raise DimseError("aborted", f"the association with {peer.where} was lost during {what} "
                                    f"(the PACS aborted it, or the connection dropped; a PACS "
                                    f"that does not know Relay's AE title "
                                    f"'{assoc.requestor.ae_title}' may do this)")
    code = int(status.Status)
    if not allow_failure and code not in (0x0000, 0xFF00, 0xFF01, 0xFE00) \
            and (code & 0xF000) != 0xB000:
        raise DimseError("failed", f"{peer.where} answered {what} with status "
                                   f"0x{code:04X}{_comment(status)}")
    return code


def _single_uid(text: str) -> bool:
    """One UID (not a list, not a wildcard): a search of one study."""
    return bool(text) and all(c.isdigit() or c == "." for c in text)


def _comment(status: Dataset) -> str:
    text = str(status.get("ErrorComment", "") or "").strip()
    return f": {text}" if text else ""


class _FindCanceller:
    """Sends C-CANCEL as soon as ``progress`` is cancelled, even while the PACS is silent
    between two answers (the iteration itself waits for the next one)."""

    def __init__(self, assoc: Any, model: Any, progress: Progress | None) -> None:
        self._assoc, self._model, self._progress = assoc, model, progress
        self._lock = threading.Lock()
        self._sent = False
        self._done = threading.Event()
        if progress is not None:
            threading.Thread(target=self._watch, name="find-cancel", daemon=True).start()

    def requested(self) -> bool:
        """True once the query was cancelled (the C-CANCEL is sent, at most once)."""
        if self._progress is None or not self._progress.cancelled:
            return False
        with self._lock:
            if not self._sent:
                self._sent = True
                with contextlib.suppress(Exception):  # the association may have ended
                    self._assoc.send_c_cancel(1, query_model=self._model)
        return True

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if self.requested():
                return


def _drain(responses: Iterator[Any]) -> None:
    with contextlib.suppress(Exception):
        for _ in responses:
            pass
