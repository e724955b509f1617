"""multipart/related bodies, written and read as streams.

Writing (STOW-RS): :class:`MultipartBody` yields the framing and each file's bytes in chunks, and
knows the total length in advance, so a request has a Content-Length and never holds more than
one chunk in memory. Each part's Content-Type is exactly ``application/dicom`` and the boundary
holds no ``=`` (Orthanc 1.10 rejects both otherwise).

Reading (WADO-RS): :func:`read_parts` splits a response stream into parts and writes each body
to a sink as it arrives, using the part's Content-Length when given and the boundary otherwise.
When the stream can ``readinto`` and the sink offers its free space (:class:`BufferSink`), a
body of known length goes from the socket straight into the sink's memory, and the framing is
read in small chunks, so the bulk of the bytes is copied once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from app.errors import HubError

CHUNK = 1 << 20
#: Read size for framing when bodies go straight into their sinks (a part's boundary and
#: headers, and the start of its body: the rest goes from the socket into the sink).
FRAME_CHUNK = 1 << 10
PART_TYPE = "application/dicom"
#: Largest part taken from a hub, by its Content-Length or, without one, as it arrives: a
#: hostile or broken hub (a part with no length whose boundary never comes) is stopped here
#: instead of filling the disk. DICOM files of native pixel data end below 4 GiB (32-bit
#: lengths); 8 GiB leaves room for encapsulated multi-frame objects.
MAX_PART_BYTES = 8 << 30
#: Largest answer body Orthanc's embedded web server sends (checked with Orthanc 1.10.1 and
#: CivetWeb 1.15): for a bigger one (a DICOM object over 2 GiB, alone or as one part) it sends
#: the headers with the right Content-Length, then closes the connection before the first byte
#: of the body ("This HTTP answer has not sent the proper number of bytes in its body" in its
#: log), however often it is asked. See docs/hub-limits.md.
WEB_SERVER_LIMIT = (1 << 31) - 1


def new_boundary() -> str:
    """A boundary made of letters, digits and dashes (no ``=``)."""
    return f"relay-{uuid.uuid4().hex}"


class MultipartBody:
    """A multipart/related body of DICOM files, streamed from disk."""

    def __init__(self, files: Sequence[tuple[Path, int]], boundary: str | None = None) -> None:
        self.files = list(files)
        self.boundary = boundary or new_boundary()
        self._head = f"--{self.boundary}\r\nContent-Type: {PART_TYPE}\r\n\r\n".encode()
        self._tail = f"--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{PART_TYPE}"; boundary={self.boundary}'

    def __len__(self) -> int:
        return sum(len(self._head) + size + 2 for _, size in self.files) + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        for path, size in self.files:
            yield self._head
            sent = 0
            with open(path, "rb") as fp:
                while True:
                    chunk = fp.read(CHUNK)
                    if not chunk:
                        break
                    sent += len(chunk)
                    yield chunk
            if sent != size:  # the store file changed under us: never send a wrong length
                raise OSError(f"{path} has {sent} bytes, expected {size}")
            yield b"\r\n"
        yield self._tail


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type, or raise ``not-dicomweb``."""
    if not content_type.lower().startswith("multipart/"):
        raise HubError("not-dicomweb",
                       f"expected a multipart answer, got '{content_type or 'no content type'}'")
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary" and value:
            return value.strip().strip('"')
    raise HubError("not-dicomweb", "a multipart answer without a boundary")


class Stream(Protocol):
    def read(self, amt: int) -> bytes: ...


class PartSink(Protocol):
    """Where one part's body goes."""

    def write(self, data: bytes | memoryview) -> object: ...


@runtime_checkable
class BufferSink(Protocol):
    """A sink that lets the reader fill its memory directly."""

    def free(self) -> memoryview:
        """The unfilled rest of the sink's memory."""
        ...

    def filled(self, n: int) -> None:
        """``n`` more bytes were placed at the start of :meth:`free`."""
        ...


R = TypeVar("R")
S = TypeVar("S", bound=PartSink)


def read_parts(
    stream: Stream,
    boundary: str,
    open_part: Callable[[dict[str, str]], S],
    close_part: Callable[[S], R],
    max_part: int | None = None,
    body_length: int | None = None,
) -> Iterator[R]:
    """Yield ``close_part(sink)`` for each part of ``stream`` once its body is complete.

    A part larger than ``max_part`` bytes (default :data:`MAX_PART_BYTES`) raises a
    ``not-dicomweb`` :class:`HubError`: at once when its Content-Length says so, else as soon as
    that many bytes came without the boundary. An answer (``body_length``, its Content-Length)
    or a part over :data:`WEB_SERVER_LIMIT` that ends before its first byte raises one too: the
    hub's web server cannot send it, and asking again would only repeat that.
    """
    cap = MAX_PART_BYTES if max_part is None else max_part
    reader = _Reader(stream)
    delim = b"--" + boundary.encode("latin-1")
    # Preamble: everything up to the first delimiter line.
    try:
        reader.skip_until(delim)
    except HubError as exc:
        if exc.kind == "unreachable" and reader.received == 0 and (
                body_length or 0) > WEB_SERVER_LIMIT:
            raise _over_web_server_limit(body_length or 0) from exc
        raise
    while True:
        after = reader.take(2)
        if after == b"--":
            return  # close delimiter
        if after != b"\r\n":
            raise HubError("not-dicomweb", "malformed multipart answer (after a boundary)")
        headers = _parse_headers(reader.take_until(b"\r\n\r\n"))
        length = _digits(headers.get("content-length"))
        if length is not None and length > cap:
            raise _too_large(f"announced a part of {_mb(length)}", cap)
        sink = open_part(headers)
        if length is not None:
            started = reader.received - (len(reader.buf) - reader.pos)  # the body's offset
            try:
                reader.copy(length, sink)
            except HubError as exc:
                if exc.kind == "unreachable" and reader.received == started and (
                        length > WEB_SERVER_LIMIT):
                    raise _over_web_server_limit(length) from exc
                raise
            if reader.take(2) != b"\r\n" or reader.take(len(delim)) != delim:
                raise HubError("not-dicomweb", "multipart part longer than its Content-Length")
        elif not reader.copy_until(b"\r\n" + delim, sink, cap):
            raise _too_large("sent a part without a length whose boundary did not come "
                             f"within {_mb(cap)}", cap)
        yield close_part(sink)


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def _too_large(what: str, cap: int) -> HubError:
    return HubError("not-dicomweb", f"the hub {what}; parts over {_mb(cap)} are refused "
                                    "(a broken or hostile answer)")


def _over_web_server_limit(size: int) -> HubError:
    """The answer of a hub whose web server cannot send ``size`` bytes (not retried)."""
    return HubError("not-dicomweb", f"the hub cannot send this {size / 1e9:.2f} GB object: its "
                                    "web server ends every answer over 2 GiB before its first "
                                    "byte (a limit of Orthanc), so trying again will not help")


def _digits(value: str | None) -> int | None:
    """A Content-Length's value, or None (ASCII digits only: str.isdigit() is also true for "¹"
    or "٣", which int() refuses)."""
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def _parse_headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


class _Reader:
    """Buffered reads from a stream, with a clear error at an early end."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.pos = 0
        readinto = getattr(stream, "readinto", None)
        self.readinto = readinto if getattr(stream, "direct", False) else None
        self.chunk = FRAME_CHUNK if self.readinto else CHUNK
        #: bytes read from the stream so far
        self.received = 0

    def _fill(self) -> None:
        if self.pos >= len(self.buf):
            self.buf.clear()
            self.pos = 0
        elif self.pos > CHUNK:
            del self.buf[: self.pos]
            self.pos = 0
        data = self.stream.read(self.chunk)
        if not data:
            raise HubError("unreachable", "the hub's answer ended early (connection lost?)")
        self.received += len(data)
        self.buf += data

    def take(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def take_until(self, marker: bytes, limit: int = 65536) -> bytes:
        while True:
            at = self.buf.find(marker, self.pos)
            if at >= 0:
                out = bytes(self.buf[self.pos : at])
                self.pos = at + len(marker)
                return out
            if len(self.buf) - self.pos > limit:
                raise HubError("not-dicomweb", "malformed multipart answer (headers too long)")
            self._fill()

    def skip_until(self, marker: bytes, limit: int = 1 << 20) -> None:
        self.take_until(marker, limit)

    def _emit(self, sink: PartSink, end: int) -> None:
        """Write buf[pos:end] to the sink without a copy; advance pos."""
        with memoryview(self.buf) as view, view[self.pos : end] as piece:
            sink.write(piece)
        self.pos = end

    def copy(self, n: int, sink: PartSink) -> None:
        direct = self.readinto is not None and isinstance(sink, BufferSink)
        while n > 0:
            if self.pos >= len(self.buf):
                if direct:
                    n -= self._read_into(sink, n)  # type: ignore[arg-type]
                    continue
                self._fill()
            k = min(n, len(self.buf) - self.pos)
            self._emit(sink, self.pos + k)
            n -= k

    def _read_into(self, sink: BufferSink, n: int) -> int:
        """Read up to ``n`` bytes from the stream straight into the sink; return how many."""
        assert self.readinto is not None
        with sink.free() as free, free[:n] as view:
            got = self.readinto(view)
        if not got:
            raise HubError("unreachable", "the hub's answer ended early (connection lost?)")
        sink.filled(got)
        self.received += got
        return int(got)

    def copy_until(self, marker: bytes, sink: PartSink, cap: int) -> bool:
        """Copy to the sink up to ``marker`` (consumed); False, with at most ``cap`` bytes
        copied, when the marker did not come within ``cap`` bytes."""
        keep = len(marker)
        copied = 0
        while True:
            at = self.buf.find(marker, self.pos)
            if at >= 0:
                if copied + at - self.pos > cap:
                    return False
                self._emit(sink, at)
                self.pos = at + len(marker)
                return True
            safe = len(self.buf) - keep
            if safe > self.pos:
                if copied + safe - self.pos > cap:
                    return False
                copied += safe - self.pos
                self._emit(sink, safe)
            self._fill()
