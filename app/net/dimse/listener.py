"""Relay's DICOM node: C-ECHO, C-STORE, C-FIND, C-GET and C-MOVE SCP over the local store.

:class:`Listener` runs pynetdicom's threaded server (one thread per association) until
:meth:`Listener.stop`. Calling AE titles outside the allow list are rejected and logged;
a peer that connects and says nothing, or stops talking, is dropped after the ACSE / network
timeouts; at most ``max_associations`` are served at once. Received instances go through
:mod:`app.net.dimse.receive`; when an association ends, one :class:`StudyReceived` per study
it brought is passed to the subscribers (the window's Incoming list), and while it is open,
its studies' progress to those of :meth:`Listener.subscribe_arriving` (a scanner may send a
whole exam in one association that lasts minutes). While it listens it
announces itself in the home, and what it receives for a job of another Relay process on the
same home (a C-MOVE's C-STOREs, a Storage Commitment report) is stored and handed over to that
job (:mod:`app.net.dimse.handover`). No Qt here; nothing about patients in the log.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydicom.uid import (
    AllTransferSyntaxes,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, evt
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import _STORAGE_CLASSES as STORAGE_CLASSES
from pynetdicom.transport import ThreadedAssociationServer

from app.errors import StoreError
from app.net.dimse import find_scp, retrieve_scp
from app.net.dimse.association import NODELAY, Timeouts, TlsOptions, make_ae, start_server
from app.net.dimse.client import StorageCommitmentPushModel
from app.net.dimse.commit_scp import CommitmentScp
from app.net.dimse.handover import Beacon, Handover
from app.net.dimse.node import NodeSettings
from app.net.dimse.rawreceive import STREAM_OPENER, StreamedDataSet, file_head
from app.net.dimse.receive import (
    OUT_OF_RESOURCES,
    SUCCESS,
    StudyReceived,
    Tally,
    node_source,
    receive,
    receive_part,
)
from app.net.dimse.routes import ROUTES, answer_report
from app.net.incoming import remember_arrival
from app.store.deferred import DeferredIndex
from app.store.local import Store, StoredFile
from app.store.part_ingest import MAX_BUFFERS, PartIngest, PipedPart, Ticket
from app.workflow import audit

log = logging.getLogger(__name__)

Subscriber = Callable[[StudyReceived], None]
#: Told of each instance newly stored, with the calling AE title (forwarding rules).
InstanceSubscriber = Callable[[StoredFile, str], None]
#: Seconds :meth:`Listener.stop` lets running associations finish before aborting them.
STOP_GRACE = 5.0
#: pynetdicom accepts the first of these that the peer proposes in a context: lossless
#: compression (kept as received; less to write), then uncompressed, then lossy (only when the
#: peer has nothing else), big endian last.
_LOSSLESS = {str(u) for u in (JPEGLSLossless, JPEGLosslessSV1, JPEGLossless, JPEG2000Lossless,
                               HTJ2KLossless, HTJ2KLosslessRPCL, RLELossless)}
_TRANSFER_SYNTAXES = [str(u) for u in sorted(AllTransferSyntaxes, key=lambda u: (
    0 if u in _LOSSLESS else 1 if u == ExplicitVRLittleEndian else
    2 if u == ImplicitVRLittleEndian else 4 if u == ExplicitVRBigEndian else 3))]
VERIFICATION = "1.2.840.10008.1.1"
#: Study Root Query/Retrieve Information Model - FIND, GET, MOVE (PS3.4 C.6.2).
_QR_MODELS = ("1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.3",
              "1.2.840.10008.5.1.4.1.2.2.2")


#: Bytes of a C-STORE's data set written and hashed at a time while the rest still comes.
STREAM_PIECE = 128 * 1024


class Listener:
    """Relay's node serving ``store`` with the settings ``node``."""

    def __init__(self, store: Store, node: NodeSettings) -> None:
        self.store = store
        self.node = node
        self.tally = Tally()
        self._subscribers: list[Subscriber] = []
        self._arriving_subscribers: list[Subscriber] = []
        self._instance_subscribers: list[InstanceSubscriber] = []
        self._server: ThreadedAssociationServer | None = None
        self._ae = self._build_ae()
        self._commitment = CommitmentScp(store, node, self._timeouts())
        self._handover = Handover(store.home)
        self._beacon = Beacon(store.home)
        #: Rows of received instances, durable by batch (each file is before its answer).
        self._index = DeferredIndex(store)
        #: The pipeline C-STOREs stream into as they arrive (while the node listens).
        self._ingest: PartIngest | None = None
        #: Each association's data set being streamed, not yet handed to its C-STORE.
        self._streaming: dict[int, PipedPart] = {}
        self._streaming_lock = threading.Lock()

    # -- life ------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        """Listen (in background threads); the bound (host, port). Raises DimseError when
        the port cannot be had (another node on it)."""
        handlers: list[tuple[Any, Any]] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_C_ECHO, _on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_N_ACTION, self._commitment.on_action),
            (evt.EVT_N_EVENT_REPORT, self._on_report),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        node = self.node
        if self._ingest is None:
            self._ingest = PartIngest(
                self.store, commit=lambda files: self._index.commit(files, synced=True),
                max_buffers=node.max_associations + MAX_BUFFERS, handoff=STREAM_PIECE,
                shared=True)
        tls = TlsOptions(node.tls_ca_file, node.tls_cert_file, node.tls_key_file) \
            if node.tls else None
        self._server = start_server(self._ae, node.bind, node.port, tls=tls,
                                    evt_handlers=handlers)
        host, port = self._server.server_address[:2]
        ROUTES.node_started(node.ae_title, int(port))
        self._beacon.raise_(node.ae_title, int(port))
        log.info("node %s listening on %s:%s%s", node.ae_title, host, port,
                 " (DICOM TLS)" if tls else "")
        return str(host), int(port)

    @property
    def address(self) -> tuple[str, int] | None:
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting, give running associations ``grace`` seconds, then abort them."""
        server, self._server = self._server, None
        if server is None:
            return
        ROUTES.node_stopped()
        self._beacon.lower()
        server.shutdown()
        deadline = time.monotonic() + grace
        while server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        for assoc in server.active_associations:
            assoc.abort()
        ingest, self._ingest = self._ingest, None
        if ingest is not None:
            with self._streaming_lock:
                left, self._streaming = list(self._streaming.values()), {}
            for part in left:
                part.discard()
            try:
                ingest.close()
            except Exception as exc:  # nothing was answered Success for what it held
                log.warning("the node's ingest stopped with %s", type(exc).__name__)
        self._flush_index()
        log.info("node %s stopped", self.node.ae_title)

    def subscribe_instances(self, fn: InstanceSubscriber) -> None:
        """Call ``fn(stored_file, calling_ae)`` for every instance newly stored (on the
        association's thread, after the index row is committed, before the status goes back)."""
        self._instance_subscribers.append(fn)

    def subscribe(self, fn: Subscriber) -> None:
        """Call ``fn`` (on an association thread) for each study an association brought."""
        self._subscribers.append(fn)

    def subscribe_arriving(self, fn: Subscriber) -> None:
        """Call ``fn`` (on the association's thread, after the instance's index row is
        committed) with a study's progress while its association is still open (``arriving``
        is True): at its first instance stored, then at most every
        :data:`app.net.dimse.receive.PROGRESS_SECONDS`."""
        self._arriving_subscribers.append(fn)

    @property
    def active_associations(self) -> int:
        return len(self._server.active_associations) if self._server else 0

    # -- the application entity -------------------------------------------------------------
    def _timeouts(self) -> Timeouts:
        node = self.node
        return Timeouts(connect=node.acse_timeout, acse=node.acse_timeout,
                        dimse=node.dimse_timeout, network=node.network_timeout)

    def _build_ae(self) -> AE:
        node = self.node
        ae = make_ae(node.ae_title, timeouts=self._timeouts(),
                     supported=[build_context(VERIFICATION)] + [
                         build_context(model)
                         for model in (*_QR_MODELS, *find_scp.PATIENT_ROOT_MODELS)])
        for uid in STORAGE_CLASSES.values():
            # Both roles: received by C-STORE, and sent back to a C-GET requestor (which
            # proposes the SCP role for itself).
            ae.add_supported_context(uid, _TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        # Storage Commitment: Relay's node commits what it holds intact (N-ACTION, answered
        # by N-EVENT-REPORT), and takes the reports a PACS sends back for Relay's requests
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        ae.maximum_associations = node.max_associations
        ae.require_calling_aet = list(node.allowed_callers)
        return ae

    # -- association events ----------------------------------------------------------------
    def _on_requested(self, event: Any) -> None:
        calling = _calling(event)
        if not self.node.caller_allowed(calling):
            log.warning("association from %s (%s) rejected: calling AE title '%s' is not in the "
                        "node's allowed callers", event.assoc.requestor.address,
                        event.assoc.requestor.port, calling)
            self.tally.count("rejected")

    def _on_accepted(self, event: Any) -> None:
        """Every association the node accepts is one successful login in the audit trail
        (110114): who came in, as what, and to which AE title. Its C-STOREs stream into the
        node's ingest as they arrive (:meth:`_open_stream`)."""
        setattr(event.assoc, STREAM_OPENER, self._open_stream)
        calling = _calling(event)
        audit.record(self.store.home, "login", outcome=audit.SUCCESS,
                     peer=f"{calling}@{_address(event)}",
                     detail={"protocol": "DIMSE", "direction": "incoming",
                             "calling_ae": calling, "called_ae": _called(event)})

    def _on_rejected(self, event: Any) -> None:
        """Every association the node rejects is one failed login attempt in the audit trail
        (110114), with the calling AE title and why."""
        calling = _calling(event)
        log.info("association from %s rejected", calling)
        if not self.node.caller_allowed(calling):
            outcome, reason = audit.SERIOUS_FAILURE, "calling AE title not allowed"
        elif sum(a.is_acceptor for a in self._ae.active_associations) \
                > self._ae.maximum_associations:
            outcome, reason = audit.MINOR_FAILURE, "too many associations at once"
        else:
            outcome, reason = audit.SERIOUS_FAILURE, "association refused"
        audit.record(self.store.home, "login", outcome=outcome,
                     peer=f"{calling}@{_address(event)}",
                     detail={"protocol": "DIMSE", "direction": "incoming",
                             "calling_ae": calling,
                             "called_ae": _called(event), "reason": reason})

    def _flush_index(self) -> None:
        try:
            self._index.flush()
        except StoreError as exc:  # the marker stays: the rows are recovered at next start
            log.warning("the index rows of received instances wait for the disk: %s", exc)

    def _open_stream(self, message: Any, assoc: Any) -> PipedPart | None:
        """A part of the node's ingest for the data set of the C-STORE-RQ ``message`` (its
        command set complete), its file meta group first, as :func:`write_received` writes
        it; None when the node does not stream it (stopping; a C-MOVE's sub-operation, stored
        whole for the job that asked for it; UIDs that are not plain)."""
        ingest = self._ingest
        command = message.command_set
        if ingest is None or getattr(command, "MoveOriginatorMessageID", None) is not None:
            return None
        try:
            context = assoc._accepted_cx[message.context_id]
            sop_uid = str(command.AffectedSOPInstanceUID)
            head = file_head(str(command.AffectedSOPClassUID), sop_uid,
                             str(context.transfer_syntax[0]))
        except (AttributeError, KeyError, IndexError, TypeError, UnicodeEncodeError,
                struct.error):
            return None
        part = ingest.open_part({})
        part.ticket = Ticket(sop_uid)
        try:
            part.write(head)
        except BaseException:
            part.discard()
            return None
        with self._streaming_lock:
            older = self._streaming.pop(id(assoc), None)
            self._streaming[id(assoc)] = part
        if older is not None:  # its C-STORE never reached the handler (refused before)
            older.discard()
        return part

    def _streamed(self, event: Any) -> PipedPart | None:
        """The part the C-STORE of ``event`` was streamed into (taken: the caller finishes or
        discards it), or None."""
        with self._streaming_lock:
            part = self._streaming.pop(id(event.assoc), None)
        stream = getattr(event.request, "DataSet", None)
        if part is None or not isinstance(stream, StreamedDataSet) or stream.sink is not part:
            if part is not None:
                part.discard()
            return None
        return part

    def _on_closed(self, event: Any) -> None:
        with self._streaming_lock:
            part = self._streaming.pop(id(event.assoc), None)
        if part is not None:  # the association ended in the middle of a data set
            part.discard()
            ingest = self._ingest
            if ingest is not None:
                ingest.writer_idle()  # its temp file and buffers are gone before we go on
        self._flush_index()
        calling = event.assoc.requestor.ae_title
        for study in self.tally.close(id(event.assoc), calling):
            self._remember(study)
            log.info("received %d instance(s) of a study from %s (%d duplicate, %d failed)",
                     study.instances, calling, study.duplicates, study.failed)
            audit.record(self.store.home, "receive",
                         outcome=audit.SUCCESS if not study.failed else audit.MINOR_FAILURE,
                         study_uid=study.study_uid, peer=f"{calling}@{_address(event)}",
                         detail={"instances": study.instances, "duplicates": study.duplicates,
                                 "failed": study.failed, "first": study.first,
                                 "last": study.last})
            for fn in list(self._subscribers):
                try:
                    fn(study)
                except Exception:  # a subscriber's bug must not take the node down
                    log.exception("a subscriber to received studies failed")

    def _tell_arriving(self, study: StudyReceived) -> None:
        if study.instances == 1:  # its first in this association: listed from now on
            self._remember(study)
        for fn in list(self._arriving_subscribers):
            try:
                fn(study)
            except Exception:  # a subscriber's bug must not refuse what was stored
                log.exception("a subscriber to arriving studies failed")

    def _remember(self, study: StudyReceived) -> None:
        """Kept for Incoming across restarts (of the window, or of ``relay listen``)."""
        if not study.instances:
            return
        try:
            remember_arrival(self.store.home, node_source(study.calling_ae), study.study_uid,
                             time.time())
        except sqlite3.Error as exc:
            log.warning("a received study could not be noted for Incoming: %s", exc)

    # -- services --------------------------------------------------------------------------
    def _on_store(self, event: Any) -> int:
        part, ingest = self._streamed(event), self._ingest
        routed = ROUTES.store_handler(event, self.node.ae_title)
        handed = self._handed_move(event) if routed is None else None
        if part is not None and (routed is not None or handed is not None or ingest is None):
            part.discard()  # stored whole, below
            part = None
        if routed is not None:  # part of a C-MOVE a job of this process asked for
            return routed(event)
        req = event.request
        calling = event.assoc.requestor.ae_title
        if handed is not None:  # part of a C-MOVE a job of another process asked for
            return self._store_handed(event, handed)
        if part is not None and ingest is not None:
            outcome = receive_part(self.store, ingest, part)
        else:
            outcome = receive(self.store, ingest, event.encoded_dataset(),
                              sop_instance_uid=str(req.AffectedSOPInstanceUID),
                              name=f"C-STORE from {calling} (message {req.MessageID})")
        arriving = self.tally.add(id(event.assoc), outcome, calling)
        if arriving is not None:
            self._tell_arriving(arriving)
        if outcome.stored is not None:
            for fn in list(self._instance_subscribers):
                try:
                    fn(outcome.stored, calling)
                except Exception:  # forwarding must not refuse what was stored
                    log.exception("a subscriber to received instances failed")
        if outcome.reason:
            log.warning("C-STORE from %s refused (0x%04X): %s", calling, outcome.status,
                        outcome.reason)
        return outcome.status

    def _handed_move(self, event: Any) -> int | None:
        """The handed-over C-MOVE (of a job in another process) a C-STORE belongs to."""
        if not self._handover.exists():
            return None
        req = event.request
        origin = getattr(req, "MoveOriginatorMessageID", None)
        try:
            return self._handover.move_for(
                int(origin) if origin is not None else None,
                str(getattr(req, "MoveOriginatorApplicationEntityTitle", "") or ""),
                str(event.assoc.requestor.ae_title))
        except sqlite3.Error as exc:
            log.warning("the moves of other Relay programs cannot be read: %s", exc)
            return None

    def _store_handed(self, event: Any, move: int) -> int:
        """Store it (the one ingest path) and tell the job which file holds it: success goes
        back only once both are durable."""
        req = event.request
        calling = event.assoc.requestor.ae_title
        sop_uid = str(req.AffectedSOPInstanceUID).strip()
        outcome = receive(self.store, self._ingest, event.encoded_dataset(),
                          sop_instance_uid=sop_uid,
                          name=f"C-STORE from {calling} (message {req.MessageID})")
        if outcome.status != SUCCESS or outcome.path is None:
            if outcome.reason:
                log.warning("C-STORE from %s refused (0x%04X): %s", calling, outcome.status,
                            outcome.reason)
            return outcome.status if outcome.status != SUCCESS else OUT_OF_RESOURCES
        try:
            self._handover.record_arrival(move, sop_uid, outcome.path)
        except sqlite3.Error as exc:  # stored, but its job cannot learn of it: the PACS retries
            log.warning("a retrieved instance could not be handed over: %s", exc)
            return OUT_OF_RESOURCES
        return SUCCESS

    def _on_report(self, event: Any) -> tuple[int, None]:
        """A Storage Commitment report: for a job of this process, or kept for the job of
        another process that asked for it, else refused."""
        if ROUTES.report_handler(event) is None and self._handover.exists():
            info = event.event_information
            transaction = str(getattr(info, "TransactionUID", "") or "")
            committed = [str(r.ReferencedSOPInstanceUID)
                         for r in getattr(info, "ReferencedSOPSequence", None) or []]
            failed = [str(r.ReferencedSOPInstanceUID)
                      for r in getattr(info, "FailedSOPSequence", None) or []]
            try:
                if self._handover.record_report(transaction, committed, failed):
                    return 0x0000, None
            except (sqlite3.Error, AttributeError) as exc:
                log.warning("a storage commitment report could not be handed over: %s", exc)
        return answer_report(event)

    def _on_find(self, event: Any) -> Iterator[tuple[int, Any]]:
        """Answer a C-FIND; the search is one audit event (``answer``, 110112): the peer, the
        level, the kinds of keys (never their values) and the number of answers."""
        identifier: Any = None
        answers, failed, stopped = 0, "", False
        try:
            identifier = event.identifier
            matches = find_scp.find(self.store, identifier, patient_root=_patient_root(event))
            for match in matches:
                if event.is_cancelled:
                    stopped = True
                    yield 0xFE00, None
                    return
                answers += 1
                yield 0xFF00, find_scp.answer(identifier, match, self.node.ae_title)
        except find_scp.QueryError as exc:
            log.warning("C-FIND from %s refused: %s", event.assoc.requestor.ae_title, exc)
            failed = f"refused with status 0x{exc.status:04X}"
            yield exc.status, None
            return
        except Exception as exc:
            failed = type(exc).__name__
            raise
        finally:
            self._audit_answer(event, identifier, answers, failed, stopped)
        yield 0x0000, None

    def _audit_answer(self, event: Any, identifier: Any, answers: int, failed: str,
                      stopped: bool) -> None:
        level, keys, study = "", [], ""
        if identifier is not None:
            level = str(identifier.get("QueryRetrieveLevel", "") or "")
            keys = audit.matching_keys(identifier)
            uids = retrieve_scp.uids_of(identifier, "StudyInstanceUID")
            study = uids[0] if len(uids) == 1 and "*" not in uids[0] else ""
        audit.query(self.store.home, f"{event.assoc.requestor.ae_title}@{_address(event)}",
                    answers, level=level or "unknown", keys=keys, failed=failed,
                    study_uid=study, event="answer", stopped=stopped,
                    model="patient root" if _patient_root(event) else "study root")

    def _on_get(self, event: Any) -> Iterator[Any]:
        instances = self._retrieve_list(event)
        if isinstance(instances, find_scp.QueryError):
            self._audit_refused(event, "C-GET", f"{event.assoc.requestor.ae_title}@"
                                f"{_address(event)}", str(instances))
            yield 1
            yield instances.status, None
            return
        retrieve_scp.send_exact(event.assoc)
        served = Served(self.store.home, "C-GET", instances,
                        f"{event.assoc.requestor.ae_title}@{_address(event)}")
        event.assoc.bind(evt.EVT_DIMSE_RECV, served.on_message)
        try:
            yield len(instances)
            yield from self._send_each(event, instances, lambda: event.assoc.accepted_contexts,
                                       served)
        finally:
            event.assoc.unbind(evt.EVT_DIMSE_RECV, served.on_message)
            served.record()

    def _on_move(self, event: Any) -> Iterator[Any]:
        dest = self.node.destination(str(event.move_destination))
        if dest is None:
            log.warning("C-MOVE from %s refused: destination '%s' is not a known destination",
                        event.assoc.requestor.ae_title, str(event.move_destination).strip())
            self._audit_refused(event, "C-MOVE", str(event.move_destination).strip(),
                                "the destination is not a known destination")
            yield None, None
            return
        instances = self._retrieve_list(event)
        if isinstance(instances, find_scp.QueryError):
            self._audit_refused(event, "C-MOVE", f"{str(event.move_destination).strip()}@"
                                f"{dest.host}:{dest.port}", str(instances))
            yield dest.host, dest.port
            yield 1
            yield instances.status, None
            return
        held: dict[str, Any] = {}
        served = Served(self.store.home, "C-MOVE", instances,
                        f"{str(event.move_destination).strip()}@{dest.host}:{dest.port}",
                        requested_by=f"{event.assoc.requestor.ae_title}@{_address(event)}")

        def on_accepted(ev: Any) -> None:
            held["assoc"] = ev.assoc
            retrieve_scp.send_exact(ev.assoc)

        try:
            yield dest.host, dest.port, {
                "contexts": retrieve_scp.contexts_for(instances) or None,
                "evt_handlers": [NODELAY, (evt.EVT_ACCEPTED, on_accepted),
                                 (evt.EVT_DIMSE_RECV, served.on_message)],
            }
            yield len(instances)
            yield from self._send_each(event, instances,
                                       lambda: held["assoc"].accepted_contexts if held else [],
                                       served)
        finally:
            if not held:
                served.refused = "the destination refused the association"
            served.record()

    def _audit_refused(self, event: Any, operation: str, peer: str, reason: str) -> None:
        """A C-GET or C-MOVE the node refused: one ``serve`` event, nothing sent."""
        detail = {"operation": operation, "instances": 0, "failed": 0, "reason": reason}
        if operation == "C-MOVE":
            detail["requested_by"] = f"{event.assoc.requestor.ae_title}@{_address(event)}"
        audit.record(self.store.home, "serve", outcome=audit.SERIOUS_FAILURE, peer=peer,
                     detail=detail)

    def _retrieve_list(self, event: Any) -> list[Any] | find_scp.QueryError:
        try:
            return retrieve_scp.instances_for(self.store, event.identifier,
                                              patient_root=_patient_root(event))
        except find_scp.QueryError as exc:
            log.warning("retrieve from %s refused: %s", event.assoc.requestor.ae_title, exc)
            return exc

    def _send_each(self, event: Any, instances: list[Any], accepted: Callable[[], Any],
                   served: Served) -> Iterator[tuple[int, Any]]:
        for inst in instances:
            if event.is_cancelled:
                served.cancelled = True
                yield 0xFE00, None
                return
            data: Any
            try:
                data = retrieve_scp.dataset_for_peer(inst, accepted())
            except (OSError, ValueError) as exc:
                log.warning("an instance could not be sent: %s", exc)
                served.unreadable(inst)
                data = _FAILED  # counted as a failed sub-operation by pynetdicom
            yield 0xFF00, data


class Served:
    """What one C-GET or C-MOVE the node serves sent: per study, the instances the peer
    stored and those that failed (from the peer's C-STORE answers), recorded once the
    operation ends as one audit event per study (``serve``, 110104; never per instance)."""

    def __init__(self, home: Any, operation: str, instances: list[Any], peer: str, *,
                 requested_by: str = "") -> None:
        self.home, self.operation, self.peer = home, operation, peer
        self.requested_by = requested_by
        self.cancelled = False
        self.refused = ""
        self._lock = threading.Lock()
        self._study_of = {i.sop_instance_uid: i.study_instance_uid for i in instances}
        self._counts: dict[str, list[int]] = {}  # study -> [stored, failed]
        for study in self._study_of.values():
            self._counts.setdefault(study, [0, 0])
        self._recorded = False

    def on_message(self, event: Any) -> None:
        """EVT_DIMSE_RECV: a C-STORE answer of the peer counts its instance."""
        message = event.message
        if type(message).__name__ != "C_STORE_RSP":
            return
        command = message.command_set
        study = self._study_of.get(str(command.get("AffectedSOPInstanceUID", "")).strip())
        if study is None:
            return
        status = int(command.get("Status", 0xC000))
        ok = status == 0 or (status & 0xF000) == 0xB000
        with self._lock:
            self._counts[study][0 if ok else 1] += 1

    def unreadable(self, instance: Any) -> None:
        with self._lock:
            self._counts[instance.study_instance_uid][1] += 1

    def record(self) -> None:
        with self._lock:
            if self._recorded:
                return
            self._recorded = True
            counts = {k: list(v) for k, v in self._counts.items()}
        for study, (stored, failed) in counts.items():
            whole = not failed and not self.cancelled and not self.refused
            detail: dict[str, Any] = {"operation": self.operation, "instances": stored,
                                      "failed": failed}
            if self.requested_by:
                detail["requested_by"] = self.requested_by
            if self.cancelled:
                detail["cancelled"] = True
            if self.refused:
                detail["reason"] = self.refused
            audit.record(self.home, "serve", study_uid=study, peer=self.peer, detail=detail,
                         outcome=audit.SUCCESS if whole else audit.MINOR_FAILURE if stored
                         else audit.SERIOUS_FAILURE)


#: Not a Dataset: pynetdicom counts it as a failed sub-operation and carries on.
_FAILED = object()


def _patient_root(event: Any) -> bool:
    return find_scp.is_patient_root(str(event.request.AffectedSOPClassUID))


def _address(event: Any) -> str:
    """``host:port`` of the peer of the event's association."""
    requestor = event.assoc.requestor
    return f"{requestor.address}:{requestor.port}"


def _called(event: Any) -> str:
    primitive = event.assoc.requestor.primitive
    return str(getattr(primitive, "called_ae_title", "") or "").strip()


def _calling(event: Any) -> str:
    """The calling AE title of the association request (before negotiation fills it in)."""
    primitive = event.assoc.requestor.primitive
    return str(getattr(primitive, "calling_ae_title", "") or event.assoc.requestor.ae_title)


def _on_echo(event: Any) -> int:
    return 0x0000



def serve_forever(listener: Listener, stop: threading.Event) -> None:
    """Block until ``stop`` is set (the command line's Ctrl-C), then stop the listener."""
    try:
        while not stop.wait(0.2):
            pass
    finally:
        listener.stop()
