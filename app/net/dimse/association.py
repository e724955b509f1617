"""Every pynetdicom association Relay makes or accepts is made here, one way.

Promises: bounded waits (TCP connect, association answer, each DIMSE answer, silence on the
wire), TCP_NODELAY on every socket (requested and accepted), TLS verified against the system
trust store plus an optional CA file, and - when an association cannot be made - a
:class:`~app.errors.DimseError` whose ``kind`` names the fault and whose message says it in
plain words (host unreachable, TLS refused, the PACS does not know Relay's AE title, ...).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import ThreadedAssociationServer

from app.errors import DimseError

log = logging.getLogger(__name__)

#: Relay's AE title unless the node settings say otherwise.
DEFAULT_AE_TITLE = "RELAY"
#: The DICOM port IANA registered (11112), Relay's default listening port.
DEFAULT_PORT = 11112
#: pynetdicom logs every refused association at ERROR with its own words; Relay reports the
#: reason itself (a DimseError), so pynetdicom is heard only when it has something unexpected.
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
#: ... and so pynetdicom's standard handlers, which format a log record of every PDU and DIMSE
#: message sent and received (the one for a C-STORE request copies its whole data set to see
#: that it is not empty), are not bound: their records would be dropped unread.
_config.LOG_HANDLER_LEVEL = "none"


class _TimeExceptSleep:
    """``time`` itself, except for the ``sleep`` a subclass gives."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _Waker:
    """A pipe on which a thread that queues a PDU for a DUL reactor wakes it."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def poke(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake is pending anyway) or closed
            os.write(self.write_fd, b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.read_fd, 4096):
                pass


def _close_waker(read_fd: int, write_fd: int) -> None:
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def _waker(dul: Any) -> _Waker:
    """The reactor's waker, made by the reactor's own thread (closed with the DUL object)."""
    waker: _Waker | None = getattr(dul, "_relay_waker", None)
    if waker is None:
        waker = _Waker()
        weakref.finalize(dul, _close_waker, waker.read_fd, waker.write_fd)
        dul._relay_waker = waker
    return waker


class _WakeOnData(_TimeExceptSleep):
    """``time`` as pynetdicom's DUL module sees it: its reactor thread, idle, sleeps 1 ms
    between two looks at the socket and its queue of PDUs to send, so every answer (each
    C-STORE response) waited up to 1 ms there before it was read, and every PDU another
    thread queued (each C-STORE response Relay gives) up to 1 ms before it was sent: a run of
    C-STOREs on one association waits once per instance. Here the reactor's idle wait is a
    ``select`` on its own socket and on a pipe poked by :func:`_send_pdu` for the same time,
    which ends as soon as the peer's bytes arrive or a PDU is queued: the same CPU when idle,
    no latency when not. Any other caller (other threads, a socket gone) gets ``time``
    unchanged."""

    @staticmethod
    def sleep(seconds: float) -> None:
        dul = threading.current_thread()
        sock = getattr(getattr(dul, "socket", None), "socket", None)
        if isinstance(dul, DULServiceProvider) and isinstance(sock, socket.socket) \
                and not isinstance(sock, ssl.SSLSocket):
            try:
                waker = _waker(dul)
                waker.drain()
                if dul.to_provider_queue.empty():  # queued before the drain: no wait
                    watched: list[Any] = [sock, waker.read_fd]
                    select.select(watched, [], [], seconds)
                return
            except (OSError, ValueError):  # closed meanwhile: as before
                pass
        time.sleep(seconds)


def _send_pdu(dul: Any, primitive: Any) -> None:
    """pynetdicom's ``send_pdu`` (queue the PDU for the reactor), then wake the reactor."""
    _original_send_pdu(dul, primitive)
    waker: _Waker | None = getattr(dul, "_relay_waker", None)
    if waker is not None and threading.current_thread() is not dul:
        waker.poke()


class _WakeOnMessage(_TimeExceptSleep):
    """``time`` as pynetdicom's association module sees it: an association that serves
    requests (an acceptor, Relay's node) sleeps 1 ms before each look at its queue of
    received DIMSE messages, so each C-STORE waited up to 1 ms before its handler ran. Here
    that sleep ends as soon as a message is queued. Any other sleep is ``time.sleep``."""

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        messages = getattr(getattr(thread, "dimse", None), "msg_queue", None) \
            if isinstance(thread, Association) and seconds == 0.001 else None
        if not isinstance(messages, queue.Queue):
            time.sleep(seconds)
            return
        with messages.not_empty:
            if not messages._qsize():
                messages.not_empty.wait(seconds)


class _Checkpoint:
    """An association's ``_reactor_checkpoint`` that knows when its reactor waits on it.

    pynetdicom pauses an association's reactor (its thread, which takes received messages off
    the queue and serves requests) before a ``send_*`` call waits for its answer: the caller
    clears this event and spins until the association says ``_is_paused``. pynetdicom sets that
    flag from the reactor just before it waits here, and also while it serves a request (so a
    handler may send on its own association). Both were read by other threads as "the reactor
    is held", and both lie to them:

    - after the wait returned, before the reactor cleared the flag, a caller that cleared the
      event saw a paused reactor that was not: it sent, and the reactor took its answer
      ("Received unexpected C-STORE service message"); the caller waited out the DIMSE timeout
      and aborted (a C-MOVE of Relay's node to storescp under load, ~1 run in 100);
    - while the reactor served an N-ACTION, the node's commitment report, sent from a thread of
      its own, went out before the N-ACTION's answer, and the reactor took the answer to the
      report (the requestor got the report where it waited for its answer: no commitment).

    So for any thread but the reactor's own, ``_is_paused`` (:func:`_paused`) is true only
    while the reactor really waits here, as this event records under its lock, or once the
    reactor's thread has ended. The reactor's own thread reads pynetdicom's flag as before."""

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        self._cond = threading.Condition(threading.Lock())
        self._flag = True
        self._holding = False  # the reactor waits here

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._cond:
            self._flag = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._flag = False

    def held(self) -> bool:
        """Whether the reactor is waiting on this event now."""
        with self._cond:
            return self._holding

    def wait(self, timeout: float | None = None) -> bool:
        reactor = threading.current_thread() is self._assoc
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            try:
                while not self._flag:
                    self._holding = self._holding or reactor
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                if reactor:
                    self._holding = False


def _paused(assoc: Association) -> bool:
    """``Association._is_paused`` as the thread asking may rely on it (see :class:`_Checkpoint`)."""
    said = bool(assoc.__dict__.get("_relay_paused", False))
    checkpoint = assoc.__dict__.get("_reactor_checkpoint")
    if threading.current_thread() is assoc or not isinstance(checkpoint, _Checkpoint):
        return said
    return checkpoint.held() or not assoc.is_alive()


def _say_paused(assoc: Association, value: bool) -> None:
    assoc.__dict__["_relay_paused"] = value


_original_association_init = Association.__init__


def _association_init(self: Association, *args: Any, **kwargs: Any) -> None:
    _original_association_init(self, *args, **kwargs)
    self._reactor_checkpoint = _Checkpoint(self)  # type: ignore[assignment]


_original_send_pdu = DULServiceProvider.send_pdu


def _wake_on_data() -> None:
    import pynetdicom.association
    import pynetdicom.dul

    from app.net.dimse import rawreceive

    if getattr(pynetdicom.dul, "time", None) is time:
        vars(pynetdicom.dul)["time"] = _WakeOnData()
    if pynetdicom.dul.DULServiceProvider.send_pdu is _original_send_pdu:
        pynetdicom.dul.DULServiceProvider.send_pdu = _send_pdu  # type: ignore[assignment]
    if getattr(pynetdicom.association, "time", None) is time:
        vars(pynetdicom.association)["time"] = _WakeOnMessage()
    if Association.__init__ is _original_association_init:
        Association.__init__ = _association_init  # type: ignore[method-assign]
        Association._is_paused = property(_paused, _say_paused)  # type: ignore[assignment]
    rawreceive.install()


_wake_on_data()


@dataclass(frozen=True)
class Timeouts:
    """Bounded waits for one association (seconds)."""

    connect: float = 10.0
    """TCP connection (and TLS handshake) to the peer."""
    acse: float = 30.0
    """The peer's answer to an association or release request."""
    dimse: float = 120.0
    """Each DIMSE answer (a C-STORE response, the next C-FIND match, ...)."""
    network: float = 120.0
    """Silence on an established association before it is aborted."""


@dataclass(frozen=True)
class TlsOptions:
    """DICOM TLS (PS3.15 B.1). The peer's certificate is always verified."""

    ca_file: str = ""
    """PEM CA to trust besides the operating system's store (a PACS with its own CA)."""
    cert_file: str = ""
    """PEM certificate Relay presents (needed by PACS that check clients; servers always)."""
    key_file: str = ""
    """PEM private key of ``cert_file``."""


@dataclass(frozen=True)
class Endpoint:
    """Where a peer's DICOM service is: host, port, its (called) AE title, TLS or not."""

    host: str
    port: int
    ae_title: str
    tls: TlsOptions | None = None

    @property
    def where(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def client_ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """A verifying client context (system trust store + ``ca_file``; client certificate)."""
    from app.net.http import ssl_context

    try:
        ctx = ssl_context(tls.ca_file)
        if tls.cert_file:
            ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise DimseError("tls", f"the TLS files cannot be used: {exc}") from exc
    except Exception as exc:  # HubError from ssl_context: same words, DIMSE kind
        raise DimseError("tls", str(exc)) from exc
    return ctx


def server_ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """A server context presenting ``cert_file`` that requires each caller's certificate and
    verifies it as the client verifies servers: the system trust store plus ``ca_file``
    (TLS 1.2 at least, as BCP 195 asks)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if tls.ca_file:
            ctx.load_verify_locations(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise DimseError("tls", f"the TLS files cannot be used: {exc}") from exc
    return ctx


def _nodelay(event: evt.Event) -> None:
    sock = event.assoc.dul.socket
    raw = sock.socket if sock is not None else None
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


#: Handlers every association gets (TCP_NODELAY as soon as the connection opens).
NODELAY = (evt.EVT_CONN_OPEN, _nodelay)


def make_ae(ae_title: str = DEFAULT_AE_TITLE, *, timeouts: Timeouts = Timeouts(),
            requested: Iterable[PresentationContext] = (),
            supported: Iterable[PresentationContext] = (),
            max_pdu: int = 0) -> AE:
    """An application entity with Relay's timeouts and the given presentation contexts.

    ``max_pdu`` 0 means unlimited (pynetdicom splits to the peer's maximum anyway; measured
    faster than the 16 kB default for 512x512 CT in bench/bench_dimse.py).
    """
    ae = AE(ae_title=ae_title)
    ae.connection_timeout = timeouts.connect
    ae.acse_timeout = timeouts.acse
    ae.dimse_timeout = timeouts.dimse
    ae.network_timeout = timeouts.network
    ae.maximum_pdu_size = max_pdu
    ae.maximum_associations = 32
    ae.requested_contexts = list(requested)
    ae.supported_contexts = list(supported)
    return ae


@dataclass
class _Watch:
    """What happened while an association was being requested (for the diagnosis)."""

    opened: threading.Event = field(default_factory=threading.Event)

    def handlers(self) -> list[tuple[evt.EventType, object]]:
        return [NODELAY, (evt.EVT_CONN_OPEN, lambda event: self.opened.set())]


def associate(ae: AE, peer: Endpoint, *, contexts: Sequence[PresentationContext] | None = None,
              ext_neg: list[Any] | None = None,
              evt_handlers: Sequence[tuple[evt.EventType, object]] = ()) -> Association:
    """An established association with ``peer``, or a :class:`DimseError` saying why not."""
    for attempt in (1, 2):
        watch = _Watch()
        tls_args = None
        if peer.tls is not None:
            tls_args = (client_ssl_context(peer.tls), peer.host)
        started = time.monotonic()
        assoc = ae.associate(peer.host, peer.port, contexts=list(contexts) if contexts else None,
                             ae_title=peer.ae_title, ext_neg=ext_neg, tls_args=tls_args,
                             max_pdu=ae.maximum_pdu_size,
                             evt_handlers=[*watch.handlers(), *evt_handlers])  # type: ignore[list-item]
        if assoc.is_established:
            return assoc
        seconds = time.monotonic() - started
        # A peer that rejects and drops the connection at once (Orthanc, for a wrong called AE
        # title) can have its A-ASSOCIATE-RJ lost behind the close on a busy machine: a quick
        # close without an answer is asked once more before it is called that.
        if attempt == 1 and watch.opened.is_set() and assoc.acceptor.primitive is None \
                and seconds < 5.0:
            log.info("%s closed the connection without an answer; asking once more",
                     peer.where)
            continue
        break
    raise diagnose(ae, assoc, peer, opened=watch.opened.is_set(), seconds=seconds)


def diagnose(ae: AE, assoc: Association, peer: Endpoint, *, opened: bool,
             seconds: float) -> DimseError:
    """Why an association with ``peer`` was not established, in plain words."""
    if not opened:
        return _not_connected(peer, ae.connection_timeout or 10.0)
    answer = assoc.acceptor.primitive
    if answer is None:
        acse = ae.acse_timeout or 30.0
        if seconds >= acse * 0.9:
            return DimseError("timeout", f"{peer.where} accepted the connection but did not "
                                         f"answer the association request within {acse:.0f} s")
        hint = "" if peer.tls else " (does it expect TLS?)"
        return DimseError("aborted", f"{peer.where} closed the connection without answering "
                                     f"the association request{hint}")
    if answer.result in (1, 2):
        return _rejected(peer, answer.result, answer.result_source or 0, answer.diagnostic or 0,
                         ae.ae_title)
    refused = sorted({cx.abstract_syntax for cx in assoc.rejected_contexts if cx.abstract_syntax})
    what = ", ".join(_sop_name(uid) for uid in refused[:4]) or "everything proposed"
    return DimseError("refused", f"{peer.where} accepted the association but refused every "
                                 f"proposed SOP class or transfer syntax ({what})")


def _not_connected(peer: Endpoint, timeout: float) -> DimseError:
    """No transport: find out whether the host is unreachable or the TLS handshake failed."""
    try:
        with socket.create_connection((peer.host, peer.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:.0f} s"
        return DimseError("unreachable", f"cannot connect to {peer.host}:{peer.port} "
                                         f"({reason}); is the PACS running, the host and port "
                                         "right, a firewall in between?")
    if peer.tls is not None:
        return DimseError("tls", f"the TLS handshake with {peer.host}:{peer.port} failed "
                                 "(certificate not trusted, or the port does not speak TLS)")
    return DimseError("unreachable", f"the connection to {peer.host}:{peer.port} failed")


def _rejected(peer: Endpoint, result: int, source: int, diagnostic: int,
              calling: str) -> DimseError:
    permanent = result == 1
    if source == 1 and diagnostic == 3:
        return DimseError("calling-ae", f"{peer.where} rejected the association: it does not "
                                        f"know Relay's AE title '{calling}' (add '{calling}' "
                                        "with this computer's address to the PACS's list of "
                                        "DICOM nodes)")
    if source == 1 and diagnostic == 7:
        return DimseError("called-ae", f"{peer.host}:{peer.port} rejected the association: "
                                       f"its AE title is not '{peer.ae_title}' (check the "
                                       "PACS's AE title, it is case-sensitive)")
    if not permanent:
        return DimseError("busy", f"{peer.where} is busy and rejected the association for now "
                                  "(transient); trying again later can help")
    return DimseError("rejected", f"{peer.where} rejected the association (source {source}, "
                                  f"reason {diagnostic})")


def _sop_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


class _Server(ThreadedAssociationServer):
    """pynetdicom's threaded server with the TLS handshake moved out of the accepting thread
    (where one caller that connects and says nothing held up every other caller) into the
    caller's own thread, bounded by the ACSE timeout; a refused handshake is logged plainly."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        sock, address = self.socket.accept()
        return sock, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is not None:
            request = self._handshake(request, client_address)
            if request is None:
                return
        super().process_request_thread(request, client_address)

    def _handshake(self, sock: socket.socket, address: Any) -> ssl.SSLSocket | None:
        assert self.ssl_context is not None
        sock.settimeout(self.ae.acse_timeout or 30.0)
        try:
            wrapped = self.ssl_context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            log.warning("a caller from %s was refused: the TLS handshake failed (%s)",
                        address[0] if isinstance(address, tuple) else address, reason)
            with contextlib.suppress(OSError):
                sock.close()
            return None
        wrapped.settimeout(None)
        return wrapped


class _CheapCopy(PresentationContext):
    """A supported context that pynetdicom deep-copies for each association it accepts: 16 ms
    for the 120 storage classes in 12 syntaxes of a listener, each UID rebuilt and checked;
    UIDs are immutable, so only the list of syntaxes is copied (0.1 ms)."""

    @classmethod
    def of(cls, context: PresentationContext) -> PresentationContext:
        cheap = cls()
        cheap.__dict__.update(context.__dict__)
        cheap._transfer_syntax = list(context._transfer_syntax)
        return cheap

    def __deepcopy__(self, memo: dict[int, Any]) -> PresentationContext:
        return _CheapCopy.of(self)


#: How often a listening server looks at its stop flag between connections. pynetdicom's 0.5 s
#: made every stop (each commitment listener, each C-MOVE listener) cost half a second:
#: 0.46 s of 2.4 s of a 400-instance commitment (bench/bench_dimse_client.py).
SERVER_POLL = 0.02


def start_server(ae: AE, host: str, port: int, *, tls: TlsOptions | None = None,
                 evt_handlers: Sequence[tuple[evt.EventType, object]] = (),
                 ae_title: str | None = None) -> ThreadedAssociationServer:
    """Start ``ae`` listening on ``host:port`` in the background (TCP_NODELAY on every accepted
    socket; TLS when ``tls`` is given). Stop it with ``server.shutdown()`` (returns within
    :data:`SERVER_POLL` seconds plus the time its open associations take to end)."""
    ctx = server_ssl_context(tls) if tls is not None else None
    try:
        server = ae.make_server((host, port), ae_title=ae_title, ssl_context=ctx,
                                evt_handlers=[NODELAY, *evt_handlers],  # type: ignore[list-item]
                                server_class=_Server)
    except OSError as exc:
        raise DimseError("unreachable", f"cannot listen on {host}:{port}: "
                                        f"{exc.strerror or exc}") from exc
    assert isinstance(server, ThreadedAssociationServer)
    server.contexts = [_CheapCopy.of(cx) for cx in server.contexts]
    ae._servers.append(server)  # so that ae.shutdown() stops it too, as pynetdicom's would
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL},
                     name=f"dicom-listen-{port}", daemon=True).start()
    return server
