"""A loopback syslog receiver for the audit tests: UDP (RFC 5426, one message per datagram) or
TLS (RFC 5425, octet-counted frames), keeping every message it got."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path


class SyslogReceiver:
    """Listens on 127.0.0.1 (a free port); :attr:`messages` holds the raw messages in order."""

    def __init__(self, transport: str, cert_and_key: Path | None = None, *,
                 read_delay: float = 0.0, receive_buffer: int = 0) -> None:
        self.transport = transport
        #: seconds a TLS connection waits after its handshake before it reads (a busy server)
        self.read_delay = read_delay
        self.messages: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        if receive_buffer:  # a small window: the sender's last bytes wait in its own kernel
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._ctx: ssl.SSLContext | None = None
        if transport == "tls":
            assert cert_and_key is not None
            self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ctx.load_cert_chain(cert_and_key)
            self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self.transport == "udp":
                    data, _ = self.sock.recvfrom(70000)
                    self._keep(data)
                    continue
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn: socket.socket) -> None:
        assert self._ctx is not None
        conn.settimeout(10)
        try:
            tls = self._ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        with self._lock:
            self.connections += 1
        time.sleep(self.read_delay)
        buf = b""
        with tls:
            while True:
                try:
                    chunk = tls.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:
                    size, _, rest = buf.partition(b" ")
                    if len(rest) < int(size):
                        break
                    self._keep(rest[: int(size)])
                    buf = rest[int(size):]

    def _keep(self, message: bytes) -> None:
        with self._lock:
            self.messages.append(message)

    def wait_for(self, n: int, timeout: float = 30.0) -> list[bytes]:
        """The first ``n`` messages (fewer if they did not come within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= n:
                    break
            time.sleep(0.02)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
