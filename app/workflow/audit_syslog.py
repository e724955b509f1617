"""The audit record sent on to an audit repository: DICOM audit messages over syslog.

Each line of the audit record (:mod:`app.workflow.audit`) becomes one DICOM audit message
(PS3.15 A.5, the XML of A.5.1) in an RFC 5424 syslog message (facility 10 security, severity 5
notice; MSGID ``DICOM+RFC3881``), sent over TLS (RFC 5425, octet-counted frames, the server's
certificate verified; a client certificate when configured) or UDP (RFC 5426, one message per
datagram). What has been sent is remembered as a byte offset into the record, so a repository
that is down gets the events it missed when it is back, in order, each once (over TLS; UDP
cannot know). Settings: the ``audit`` section (:class:`app.settings.AuditSettings`).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import RelayError
from app.workflow import audit

log = logging.getLogger(__name__)

OFFSET_FILE = "audit/syslog.offset"
#: PRI of every message: facility 10 (security/authorization), severity 5 (notice).
PRI = 10 * 8 + 5
MSGID = "DICOM+RFC3881"
APP_NAME = "Relay"
#: Seconds a connection to the repository may take, and to wait for it at exit.
TIMEOUT = 5.0
#: Longest UDP datagram sent (RFC 5426 asks receivers to take at least 2048 octets; IPv4
#: datagrams up to 65507 are deliverable on a LAN). Longer messages are cut and say so.
UDP_MAX = 65000

#: Event -> EventTypeCode (DCM) the message must carry (PS3.15 A.5.3.11: login/logout).
EVENT_TYPES = {"login": ("110122", "Login")}
#: Event -> (role of the local user, role of the peer), DCM codes of CID 402 (PS3.15 A.5.3).
ROLES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "send": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    "transfer": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    "receive": (("110152", "Destination Role ID"), ("110153", "Source Role ID")),
    "retrieve": (("110152", "Destination Role ID"), ("110153", "Source Role ID")),
    "import": (("110152", "Destination Role ID"), ("110155", "Source Media")),
    "export": (("110153", "Source Role ID"), ("110154", "Destination Media")),
    "query": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    "verify": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    "arrive": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    # Relay's node: a peer's C-FIND it answered (the peer asked), the instances it sent for a
    # peer's C-GET or C-MOVE (to the peer, or to the C-MOVE's destination)
    "answer": (("110152", "Destination Role ID"), ("110153", "Source Role ID")),
    "serve": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    # an association asked for: Relay the requestor (a node-side rejection: the peer)
    "login": (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
}
#: Events in which the peer, not Relay, asked (Relay's node answered a peer's request).
PEER_ASKED = frozenset({"answer", "serve", "receive"})


class SyslogError(RelayError):
    """The audit repository cannot be reached or refused the connection."""


@dataclass(frozen=True)
class SyslogTarget:
    """Where audit messages go."""

    host: str
    port: int
    transport: str  # "tls" or "udp"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


def target_of(home: Path) -> SyslogTarget | None:
    """The repository the settings of ``home`` name, or None when none is configured."""
    from app.settings import load_settings

    cfg = load_settings(home).audit
    if not cfg.syslog_host:
        return None
    return SyslogTarget(cfg.syslog_host, cfg.syslog_port, cfg.syslog_transport, cfg.ca_file,
                        cfg.cert_file, cfg.key_file)


# -- the message -----------------------------------------------------------------------------
def audit_message(entry: dict[str, Any]) -> str:
    """The PS3.15 A.5 ``AuditMessage`` XML of one audit record line."""
    root = ET.Element("AuditMessage")
    ident = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": str(entry.get("action", "E")),
        "EventDateTime": str(entry.get("time", "")),
        "EventOutcomeIndicator": str(entry.get("outcome", 0)),
    })
    event_id = entry.get("event_id") or {}
    _code(ident, "EventID", str(event_id.get("code", "")), str(event_id.get("meaning", "")))
    event = str(entry.get("event", ""))
    if event in EVENT_TYPES:
        _code(ident, "EventTypeCode", *EVENT_TYPES[event])
    mine, theirs = ROLES.get(event, (None, None))
    detail = entry.get("detail") or {}
    if not isinstance(detail, dict):
        detail = {}
    peer_asked = event in PEER_ASKED or detail.get("direction") == "incoming"
    if event == "login" and peer_asked:
        mine, theirs = theirs, mine
    # a C-MOVE's requestor is neither Relay nor the destination the instances went to
    third = str(detail.get("requested_by", "") or "")
    host = str(entry.get("host", ""))
    local = ET.SubElement(root, "ActiveParticipant", {
        "UserID": str(entry.get("user", "")) or "relay",
        "UserIsRequestor": "false" if peer_asked else "true",
        "NetworkAccessPointID": host, "NetworkAccessPointTypeCode": "1"})
    if mine:
        _code(local, "RoleIDCode", *mine)
    peer = str(entry.get("peer", ""))
    if peer:
        other = ET.SubElement(root, "ActiveParticipant", _participant(
            peer, requestor=peer_asked and not third))
        if theirs:
            _code(other, "RoleIDCode", *theirs)
    if third:
        ET.SubElement(root, "ActiveParticipant", _participant(third, requestor=True))
    source = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": host})
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": "1", "codeSystemName": "DCM",
                                                  "originalText": "End-user display device"})
    study = str(entry.get("study_uid", ""))
    if study:
        obj = ET.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": study, "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3"})
        _code(obj, "ParticipantObjectIDTypeCode", "110180", "Study Instance UID")
        detail = entry.get("detail") or {}
        if isinstance(detail.get("instances"), int):
            ET.SubElement(obj, "ParticipantObjectDetail", {
                "type": "NumberOfInstances", "value": _b64(str(detail["instances"]))})
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def syslog_message(entry: dict[str, Any]) -> bytes:
    """One RFC 5424 message carrying the audit message of ``entry`` (UTF-8, with the BOM)."""
    host = str(entry.get("host", "")) or "-"
    header = (f"<{PRI}>1 {entry.get('time', '-')} {_printable(host)} {APP_NAME} "
              f"{os.getpid()} {MSGID} - ")
    return header.encode("ascii", "replace") + b"\xef\xbb\xbf" + audit_message(entry).encode()


def _participant(peer: str, *, requestor: bool) -> dict[str, str]:
    """ActiveParticipant attributes of a peer named as the audit names it: ``AE@host:port``
    (DIMSE; a PACS profile's ``name@AE@host:port``) or ``name@URL`` (a hub)."""
    attrs = {"UserID": peer, "UserIsRequestor": "true" if requestor else "false"}
    where = _access_point(peer)
    if where:
        attrs.update(NetworkAccessPointID=where,
                     NetworkAccessPointTypeCode="2" if _is_ip(where) else "1")
    return attrs


def _access_point(peer: str) -> str:
    """The host of a peer as the audit names it ('' when it names none)."""
    from urllib.parse import urlsplit

    rest = peer.rsplit("@", 1)[-1]
    if "://" in rest:
        return urlsplit(rest).hostname or ""
    if rest.startswith("["):  # [IPv6]:port
        return rest[1:].split("]", 1)[0]
    if rest.count(":") == 1:
        rest = rest.split(":", 1)[0]
    return rest if "@" in peer or ":" in peer else ""


def _code(parent: ET.Element, tag: str, code: str, meaning: str) -> None:
    ET.SubElement(parent, tag, {"csd-code": code, "codeSystemName": "DCM",
                                "originalText": meaning})


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _printable(text: str) -> str:
    """An RFC 5424 HOSTNAME: printable US-ASCII without spaces, at most 255 characters."""
    return "".join(c if 33 <= ord(c) <= 126 else "-" for c in text)[:255] or "-"


# -- sending ---------------------------------------------------------------------------------
def ship(home: Path, target: SyslogTarget | None = None) -> int:
    """Send every audit event not sent yet; return how many were sent.

    Raises :class:`SyslogError` when the repository cannot be reached (what was sent before the
    fault stays sent; the rest goes next time)."""
    target = target or target_of(home)
    if target is None:
        return 0
    path = audit.audit_path(home)
    if not path.exists():
        return 0
    sent = 0
    with _offset_locked(home) as (offset, save):
        lines = list(_lines_after(path, offset))
        if not lines:
            return 0
        with _connection(target) as send:
            for end, entry in lines:
                if entry is not None:
                    send(syslog_message(entry))
                    sent += 1
                save(end)
    log.info("audit: %d event(s) sent to the audit repository %s:%d", sent, target.host,
             target.port)
    return sent


def pending(home: Path) -> int:
    """How many audit events have not been sent to the repository yet."""
    path = audit.audit_path(home)
    if not path.exists():
        return 0
    return sum(1 for _ in _lines_after(path, _read_offset(home)))


def _lines_after(path: Path, offset: int) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(offset after the line, its event or None when it does not parse) for complete lines."""
    import json

    with open(path, "rb") as fp:
        fp.seek(offset)
        pos = offset
        for raw in fp:
            if not raw.endswith(b"\n"):
                return  # a line being written: the next ship takes it
            pos += len(raw)
            try:
                yield pos, json.loads(raw)
            except ValueError:
                log.warning("audit: line ending at byte %d of the record is not JSON; not sent",
                            pos)
                yield pos, None


def _read_offset(home: Path) -> int:
    try:
        return int((Path(home) / OFFSET_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


@contextmanager
def _offset_locked(home: Path) -> Iterator[tuple[int, Any]]:
    """The sent offset, locked against other senders, and a function that saves a new one."""
    lock_path = Path(home) / (OFFSET_FILE + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with _SHIP_LOCK, open(lock_path, "a+b") as lock:
        try:
            import fcntl

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        except ImportError:
            pass
        offset_path = Path(home) / OFFSET_FILE

        def save(end: int) -> None:
            tmp = offset_path.with_suffix(".tmp")
            tmp.write_text(str(end))
            os.replace(tmp, offset_path)

        yield _read_offset(home), save


@contextmanager
def _connection(target: SyslogTarget) -> Iterator[Any]:
    """A function sending one message to ``target`` (TLS: octet-counted frames)."""
    where = f"{target.host}:{target.port}"
    if target.transport == "udp":
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            def send_udp(msg: bytes) -> None:
                if len(msg) > UDP_MAX:
                    log.warning("audit: a message of %d bytes was cut to %d for UDP", len(msg),
                                UDP_MAX)
                    msg = msg[:UDP_MAX]
                try:
                    sock.sendto(msg, (target.host, target.port))
                except OSError as exc:
                    raise SyslogError(f"cannot send to the audit repository {where} (UDP): "
                                      f"{exc.strerror or exc}") from exc
            yield send_udp
        return
    ctx = _tls_context(target)
    try:
        raw = socket.create_connection((target.host, target.port), timeout=TIMEOUT)
    except OSError as exc:
        raise SyslogError(f"the audit repository {where} is unreachable: "
                          f"{exc.strerror or exc}") from exc
    try:
        with ctx.wrap_socket(raw, server_hostname=target.host) as tls:
            def send_tls(msg: bytes) -> None:
                try:
                    tls.sendall(str(len(msg)).encode() + b" " + msg)
                except OSError as exc:
                    raise SyslogError(f"the connection to the audit repository {where} was "
                                      f"lost: {exc}") from exc
            yield send_tls
            _close(tls)
    except ssl.SSLError as exc:
        raise SyslogError(f"TLS with the audit repository {where} failed: "
                          f"{exc.reason or exc}") from exc
    except OSError as exc:
        raise SyslogError(f"the audit repository {where} closed the connection: {exc}") from exc
    finally:
        raw.close()


def _close(tls: ssl.SSLSocket) -> None:
    """Close a TLS connection only once the repository has read what was sent.

    A plain close with the server's TLS 1.3 session tickets still unread makes the kernel reset
    the connection, and the reset can throw away the last messages before the repository read
    them (seen on a busy machine: 2 of 3 arrived, all 3 counted as sent). So: send close_notify
    and wait (at most the socket's timeout) until the repository answers it or closes."""
    try:
        tls.unwrap()
    except (ssl.SSLError, OSError) as exc:  # closed without its own close_notify: it has read ours
        log.debug("audit: the audit repository closed the connection: %s", exc)


def _tls_context(target: SyslogTarget) -> ssl.SSLContext:
    from app.net.http import ssl_context

    try:
        ctx = ssl_context(target.ca_file)
        if target.cert_file:
            ctx.load_cert_chain(target.cert_file, target.key_file or None)
    except (OSError, ssl.SSLError, RelayError) as exc:
        raise SyslogError(f"the TLS files for the audit repository cannot be used: {exc}"
                          ) from exc
    return ctx


# -- in the background -----------------------------------------------------------------------
_SHIP_LOCK = threading.Lock()
_FORWARDERS: dict[Path, _Forwarder] = {}
_FORWARDERS_LOCK = threading.Lock()


class _Forwarder:
    """Ships a home's new audit events in a daemon thread; waits and retries on faults."""

    RETRY_SECONDS = (2.0, 5.0, 15.0, 60.0)

    def __init__(self, home: Path, target: SyslogTarget) -> None:
        self.home = home
        self.target = target
        self.wake = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.failures = 0
        threading.Thread(target=self._run, name="audit-syslog", daemon=True).start()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.idle.clear()
            self.wake.clear()
            try:
                if not self._still_wanted():
                    return
                ship(self.home, self.target)
                self.failures = 0
            except SyslogError as exc:
                delay = self.RETRY_SECONDS[min(self.failures, len(self.RETRY_SECONDS) - 1)]
                self.failures += 1
                log.warning("audit: %s; trying again in %.0f s", exc, delay)
                threading.Timer(delay, self.wake.set).start()
            except Exception:  # never let the audit take the program down
                log.exception("audit: sending to the audit repository failed")
            finally:
                self.idle.set()


    def _still_wanted(self) -> bool:
        """Whether this is still the home's sender, now sending to the repository its settings
        name now: a retry after the settings changed goes to the new address (the events the
        old one missed with it), and a sender whose repository was removed, or whose home is
        gone, ends instead of retrying an old address for as long as the program runs."""
        try:
            target = target_of(self.home) if self.home.is_dir() else None
        except RelayError:
            target = self.target  # unreadable for now: keep the one it has
        with _FORWARDERS_LOCK:
            if _FORWARDERS.get(self.home) is not self:
                return False
            if target is None:
                del _FORWARDERS[self.home]
                return False
            self.target = target
        return True


def forward_soon(home: Path) -> None:
    """Have the new events of ``home`` sent to its audit repository (if one is configured)."""
    home = Path(home).resolve()
    try:
        target = target_of(home)
    except RelayError as exc:
        log.warning("audit: the audit repository settings cannot be read: %s", exc)
        return
    with _FORWARDERS_LOCK:
        fwd = _FORWARDERS.get(home)
        if target is None:
            return
        if fwd is None or fwd.target != target:
            fwd = _FORWARDERS[home] = _Forwarder(home, target)
    fwd.wake.set()


def flush(timeout: float = TIMEOUT) -> None:
    """Wait (at most ``timeout`` seconds each) for the background senders to finish."""
    deadline = time.monotonic() + timeout
    for fwd in list(_FORWARDERS.values()):
        while (fwd.wake.is_set() or not fwd.idle.is_set()) and time.monotonic() < deadline:
            time.sleep(0.02)


atexit.register(flush)
