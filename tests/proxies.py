"""Loopback servers that stand between Relay and a real hub: TLS in front, a slow link, garbage.

Plain classes (no pytest), shared by the exchange tests, the benches and the screenshot script.
Each listens on 127.0.0.1 only, on a free port (or the one given), accepts on a daemon thread and
is stopped with :meth:`LoopbackServer.close`.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path


class LoopbackServer:
    """Accepts connections on 127.0.0.1 and hands each to :meth:`_handle` on its own thread."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


class Relay(LoopbackServer):
    """A TCP relay to a backend port on loopback; subclasses shape what passes through."""

    chunk = 1 << 16

    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def _front(self, conn: socket.socket) -> socket.socket | None:
        """The client side as it should be spoken to (e.g. wrapped in TLS); None drops it."""
        return conn

    def _passed(self, n: int) -> None:
        """``n`` bytes went through (either way); a throttle waits here."""

    def _passing(self, src: socket.socket, dst: socket.socket, data: bytes) -> None:
        """``data`` read from ``src`` is about to be passed on to ``dst``; a relay may look or
        wait here."""

    def _ends(self, conn: socket.socket) -> tuple[socket.socket, socket.socket] | None:
        """The client's side (as :meth:`_front` makes it) and a new connection to the backend;
        None (both closed) when either cannot be had."""
        front = self._front(conn)
        if front is None:
            conn.close()
            return None
        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=60)
        except OSError:
            front.close()
            return None
        return front, backend

    def _handle(self, conn: socket.socket) -> None:
        ends = self._ends(conn)
        if ends is None:
            return
        front, backend = ends
        t = threading.Thread(target=self._pump, args=(backend, front), daemon=True)
        t.start()
        self._pump(front, backend)
        t.join(120)
        front.close()
        backend.close()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(self.chunk)
                if not data:
                    break
                self._passing(src, dst, data)
                dst.sendall(data)
                self._passed(len(data))
        except OSError:
            pass
        finally:
            _shut(src, dst)


def _shut(*socks: socket.socket) -> None:
    """Both ways of each socket shut (the peer sees the end at once); errors ignored."""
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


class TlsProxy(Relay):
    """A TLS front for a plain-HTTP hub on loopback (real TLS, the hub behind it real too).

    Orthanc 1.10 as packaged in Debian 12 crashes (SIGSEGV, civetweb with OpenSSL 3) on its
    first HTTPS connection, so TLS tests terminate TLS here with Python's ssl module.
    """

    def __init__(self, cert_and_key: Path, backend_port: int) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert_and_key)
        super().__init__(backend_port)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dicom-web"

    def _front(self, conn: socket.socket) -> socket.socket | None:
        try:
            conn.settimeout(30)
            return self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            return None

    def _handle(self, conn: socket.socket) -> None:
        """Both directions on one thread: an SSL object must not be used by two threads at
        once. With the base class's thread per direction, a read of the client on one thread
        while the other wrote to it now and then returned end of stream though the client was
        still there, and the relay closed a working connection: 4-8 DICOM TLS queries in 200
        failed under load, each at that read."""
        ends = self._ends(conn)
        if ends is None:
            return
        front, backend = ends
        assert isinstance(front, ssl.SSLSocket)
        try:
            while not self._stop.is_set():
                ready = [front] if front.pending() else \
                    select.select([front, backend], [], [], 0.2)[0]
                for src in ready:
                    data = src.recv(self.chunk)
                    if not data:
                        return
                    (backend if src is front else front).sendall(data)
        except OSError:
            pass
        finally:
            _shut(front, backend)
            front.close()
            backend.close()


class SlowLink(Relay):
    """A relay passing at most ``rate`` bytes per second: a slow WAN link.

    By default each connection has the rate to itself in each direction (small chunks, so a
    transfer can be interrupted part way at a chosen point); ``shared=True`` makes it one line
    whose rate all connections and both directions share, as a site's uplink is.
    """

    def __init__(self, backend_port: int, rate: float, *, shared: bool = False,
                 rtt: float = 0.0) -> None:
        self.rate = float(rate)
        self.shared = shared
        self.rtt = rtt  # seconds each request waits before it reaches the hub (a round trip)
        self.chunk = (1 << 16) if shared else (1 << 14)
        self._free = time.monotonic()
        self._lock = threading.Lock()
        super().__init__(backend_port)

    def _passing(self, src: socket.socket, dst: socket.socket, data: bytes) -> None:
        if self.rtt and src.getpeername()[1] != self.backend_port:  # towards the hub
            time.sleep(self.rtt)

    def _passed(self, n: int) -> None:
        if not self.shared:
            time.sleep(n / self.rate)
            return
        with self._lock:
            self._free = max(time.monotonic(), self._free) + n / self.rate
            until = self._free
        time.sleep(max(0.0, until - time.monotonic()))


class HoldLink(Relay):
    """A relay that notes each request line and holds requests whose line contains ``hold``
    until :meth:`release`: what a client does while a slow answer (e.g. a series' metadata) is
    still to come, made deterministic. Request lines are kept in :attr:`requests`."""

    def __init__(self, backend_port: int, hold: str) -> None:
        self.hold = hold
        self.requests: list[str] = []
        self.held = threading.Event()  # a request is being held
        self._released = threading.Event()
        self._clients: set[socket.socket] = set()
        super().__init__(backend_port)

    def release(self) -> None:
        self._released.set()

    def _front(self, conn: socket.socket) -> socket.socket | None:
        self._clients.add(conn)
        return conn

    def _passing(self, src: socket.socket, dst: socket.socket, data: bytes) -> None:
        if src not in self._clients:  # the hub's answers pass untouched
            return
        lines = [line.decode("latin-1") for line in data.split(b"\r\n") if b" HTTP/1." in line]
        self.requests += lines
        if any(self.hold in line for line in lines) and not self._released.is_set():
            self.held.set()
            self._released.wait(60)


class GarbageServer(LoopbackServer):
    """A loopback server answering every request with garbage: HTML, or bytes that are not HTTP."""

    def __init__(self, port: int, mode: str = "html") -> None:
        self.mode = mode
        super().__init__(port)

    def _handle(self, conn: socket.socket) -> None:
        answer: Callable[[], bytes] = self._html if self.mode == "html" else self._noise
        with conn:
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                conn.recv(65536)
                conn.sendall(answer())

    @staticmethod
    def _html() -> bytes:
        body = b"<html><body>Welcome to the intranet</body></html>"
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    @staticmethod
    def _noise() -> bytes:
        return os.urandom(64).replace(b"H", b"x") + b"\r\n\r\n"


class FaultyLink(Relay):
    """A relay that breaks some requests, chosen at random (seeded): the faults of a real WAN
    between a spoke and its hub.

    Each request (a new request line from the client, also on a kept-alive connection) is left
    alone or, with probability ``rate``, given one fault in one direction (towards the hub: the
    upload; back: the answer) after a random number of bytes:

    - ``drop``: the connection is closed before the request reaches the hub;
    - ``reset``: an RST (SO_LINGER 0) part way;
    - ``truncate``: a clean close (FIN) part way, as if the answer had ended;
    - ``stall``: nothing passes for ``stall`` seconds, then the bytes flow again;
    - ``slow``: the rest passes at ``slow_rate`` bytes per second.

    :attr:`counts` says how often each fault was dealt (``"none"`` for untouched requests).
    """

    FAULTS = ("drop", "reset", "truncate", "stall", "slow")
    _METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ")

    def __init__(self, backend_port: int, *, rate: float = 0.3, seed: int = 0,
                 faults: tuple[str, ...] = FAULTS, stall: float = 1.5,
                 slow_rate: float = 256_000, max_cut: int = 256 * 1024) -> None:
        import random
        from collections import Counter

        self.rate, self.faults, self.stall, self.slow_rate = rate, faults, stall, slow_rate
        self.max_cut = max_cut
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self._dealing = threading.Lock()
        super().__init__(backend_port)

    def _deal(self) -> dict[str, object]:
        """A fault for one request: kind, direction ("up"/"down"), after how many bytes."""
        with self._dealing:
            fault = self.random.choice(self.faults) if self.random.random() < self.rate \
                else "none"
            way = "up" if self.random.random() < 0.5 else "down"
            cut = self.random.randint(0, self.max_cut)
            self.counts[fault] += 1
        return {"fault": fault, "way": way, "cut": cut, "up": 0, "down": 0, "struck": False}

    def _handle(self, conn: socket.socket) -> None:
        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=60)
        except OSError:
            conn.close()
            return
        deal: dict[str, object] = {"fault": "none", "way": "up", "cut": 0, "up": 0, "down": 0,
                                   "struck": True}
        box = [deal]
        down = threading.Thread(target=self._faulty_pump, args=(backend, conn, "down", box),
                                daemon=True)
        down.start()
        self._faulty_pump(conn, backend, "up", box)
        down.join(120)
        conn.close()
        backend.close()

    def _faulty_pump(self, src: socket.socket, dst: socket.socket, way: str,
                     box: list[dict[str, object]]) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(self.chunk)
                if not data:
                    break
                if way == "up" and data.startswith(self._METHODS):
                    box[0] = self._deal()  # a new request on this connection
                    if box[0]["fault"] == "drop":
                        self._break(src, dst, reset=False)
                        return
                deal = box[0]
                passed, cut = int(deal[way]), int(deal["cut"])  # type: ignore[call-overload]
                if deal["way"] == way and not deal["struck"] and passed + len(data) > cut:
                    deal["struck"] = True
                    head, data = data[: cut - passed], data[cut - passed:]
                    dst.sendall(head)
                    if deal["fault"] in ("reset", "truncate"):
                        self._break(src, dst, reset=deal["fault"] == "reset")
                        return
                    if deal["fault"] == "stall":
                        time.sleep(self.stall)
                dst.sendall(data)
                deal[way] = passed + len(data)
                if deal["struck"] and deal["way"] == way and deal["fault"] == "slow":
                    time.sleep(len(data) / self.slow_rate)
        except OSError:
            pass
        finally:
            _shut(src, dst)

    @staticmethod
    def _break(src: socket.socket, dst: socket.socket, *, reset: bool) -> None:
        import struct

        for s in (src, dst):
            with contextlib.suppress(OSError):
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                else:
                    s.shutdown(socket.SHUT_RDWR)


class CannedServer(LoopbackServer):
    """A loopback "hub" answering every request with the same hostile answer: ``head`` (status
    line and headers) then ``body``, sent in ``chunk``-byte pieces ``pause`` seconds apart."""

    def __init__(self, head: bytes, body: bytes, *, chunk: int = 1 << 16,
                 pause: float = 0.0) -> None:
        self.head, self.body, self.chunk, self.pause = head, body, chunk, pause
        super().__init__(0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            conn.recv(65536)
            conn.sendall(self.head)
            for at in range(0, len(self.body), self.chunk):
                if self._stop.is_set():
                    return
                conn.sendall(self.body[at : at + self.chunk])
                if self.pause:
                    time.sleep(self.pause)


class HostileHub(LoopbackServer):
    """A loopback "DICOMweb hub" whose searches are sound and whose WADO-RS answer is hostile.

    It lists one study with one series of ``count`` instances (QIDO-RS), and answers every
    retrieval with ``mode``:

    - ``endless``: a part without Content-Length whose boundary never comes (bytes until the
      client hangs up, at most ``limit``);
    - ``huge``: a part announcing a Content-Length of a terabyte;
    - ``no-boundary``: a multipart Content-Type without a boundary parameter;
    - ``not-multipart``: ``application/json`` where a multipart answer is due;
    - ``garbage``: well-framed parts holding bytes that are not DICOM;
    - ``over-2gib``: what Orthanc 1.10 (CivetWeb) does with an object over 2 GiB: the headers
      of a 2,147,988,882-byte answer, then the connection closed before the body's first byte;
    - ``part-over-2gib``: the same for one part: an answer of unknown length whose part
      announces 2,147,988,648 bytes, closed right after the part's headers.

    ``sent`` counts the body bytes written to clients, ``retrievals`` the WADO-RS requests.
    """

    STUDY = "1.2.826.0.1.3680043.8.498.1"
    SERIES = "1.2.826.0.1.3680043.8.498.1.1"
    BOUNDARY = "hostile-boundary"

    def __init__(self, mode: str, *, count: int = 2, limit: int = 256 << 20) -> None:
        self.mode, self.count, self.limit = mode, count, limit
        self.sent = 0
        self.retrievals = 0
        self._sent_lock = threading.Lock()
        super().__init__(0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data:
                    return
                request += data
            path = request.split(b" ", 2)[1].decode("latin-1").split("?")[0]
            if path.endswith("/series") or path.endswith("/instances"):
                self._json(conn, path)
            else:
                self._wado(conn)

    def _json(self, conn: socket.socket, path: str) -> None:
        import json

        series = {"0020000D": {"vr": "UI", "Value": [self.STUDY]},
                  "0020000E": {"vr": "UI", "Value": [self.SERIES]},
                  "00201209": {"vr": "IS", "Value": [self.count]}}
        if path.endswith("/series"):
            items = [series]
        else:
            items = [{**series, "00080018": {"vr": "UI", "Value": [f"{self.SERIES}.{i + 1}"]}}
                     for i in range(self.count)]
        body = json.dumps(items).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _wado(self, conn: socket.socket) -> None:
        with self._sent_lock:
            self.retrievals += 1
        b = self.BOUNDARY.encode()
        related = b'multipart/related; type="application/dicom"'
        ctype = {"no-boundary": related, "not-multipart": b"application/json"}.get(
            self.mode, related + b"; boundary=" + b)
        length = b"Content-Length: 2147988882\r\n" if self.mode == "over-2gib" else b""
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype +
                     b"\r\n" + length + b"Connection: close\r\n\r\n")
        head = b"--" + b + b"\r\nContent-Type: application/dicom\r\n"
        if self.mode == "over-2gib":
            return  # closed before the body's first byte
        if self.mode == "part-over-2gib":
            self._send(conn, head + b"Content-Length: 2147988648\r\n\r\n")
        elif self.mode == "huge":
            self._send(conn, head + b"Content-Length: 1099511627776\r\n\r\n" + b"\0" * 65536)
        elif self.mode == "garbage":
            for _ in range(self.count):
                self._send(conn, head + b"Content-Length: 1000\r\n\r\n" + b"junk" * 250 + b"\r\n")
            self._send(conn, b"--" + b + b"--\r\n")
        else:  # endless, and the body of the answers without a usable boundary
            self._send(conn, head + b"\r\n")
            chunk = b"\0" * 65536
            while self.sent < self.limit and not self._stop.is_set():
                self._send(conn, chunk)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self._sent_lock:
            self.sent += len(data)

def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert PEM, cert+key PEM for a server)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay-test-hub")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    ca = tmp_path / "hub-ca.pem"
    ca.write_bytes(cert_pem)
    both = tmp_path / "hub-cert-and-key.pem"
    both.write_bytes(cert_pem + key_pem)
    return ca, both
