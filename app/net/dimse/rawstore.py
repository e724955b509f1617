"""C-STORE of a stored file written straight to the association's socket.

pynetdicom builds every P-DATA-TF PDU in Python and hands each one from the sending thread to its
DUL thread through two queues and its state machine: with the 16 kB PDUs Orthanc (and dcmtk)
negotiate, a 512x512 CT slice is 33 PDUs, and 400 slices cost the sender 2.7-3.7 s of CPU where
dcmtk's storescu spends 0.35 s (bench/bench_dimse_client.py). Here a C-STORE request goes out as
pynetdicom would send it, byte for byte the same PDUs, but written by the calling thread: the
command set encoded once by hand, then the file's data set (as stored, never decoded) read in
large chunks and cut into PDUs by ``memoryview`` slices, many PDUs per ``sendmsg`` call. pynetdicom
still does everything else: the association, reading the socket (the C-STORE response comes back
through its DUL thread and DIMSE queue as for its own ``send_c_store``), release and abort.

Used only where it is safe: a plain TCP socket (a TLS socket must not be written by one thread
while pynetdicom's thread reads it), a platform with ``sendmsg`` and ``MSG_DONTWAIT`` (every wait
on the socket is bounded by the association's network timeout), and the pynetdicom internals it
relies on present; otherwise :attr:`RawStore.usable` is False and the caller uses
``send_c_store``.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.association import Association

#: Bytes of the file read at a time (one ``readinto``, then as many PDUs as fit in it).
CHUNK = 1 << 20
#: Buffers per ``sendmsg`` (a header and a slice per PDU; POSIX guarantees 16, Linux has 1024).
MAX_IOV = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16)
#: The data set fragment size when the peer sets no maximum PDU length.
UNLIMITED_FRAGMENT = 1 << 22
_PDU_HEAD = struct.Struct(">BBIIBB")  # P-DATA-TF type, reserved, length; PDV length, context, flags


class NotRaw(Exception):
    """This file cannot be sent by :class:`RawStore` (the caller sends it with pynetdicom)."""


def dataset_offset(f: io.RawIOBase) -> int:
    """Where the data set starts in a DICOM file: after the 128-byte preamble, ``DICM`` and
    the file meta group, as its group length (0002,0000) says. :class:`NotRaw` when the file
    does not start so (no preamble, no group length first)."""
    head = f.read(144)
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL" \
            or head[138:140] != b"\x04\x00":
        raise NotRaw("no file meta group length")
    offset: int = 144 + struct.unpack_from("<I", head, 140)[0]
    f.seek(offset)
    if f.read(2) == b"\x02\x00":  # the group length did not cover the whole group
        raise NotRaw("file meta group longer than its group length")
    f.seek(offset)
    return offset


_META = {0x0002: "sop_class", 0x0003: "sop_instance", 0x0010: "syntax"}


def file_meta(path: Path) -> tuple[str, str, str]:
    """(SOP Class UID, SOP Instance UID, Transfer Syntax UID) from a file's meta group (read
    as stored: explicit VR little endian, after the preamble and its group length).
    :class:`NotRaw` when it is not so (pydicom reads it then)."""
    with open(path, "rb", buffering=0) as f:
        end = dataset_offset(f)
        f.seek(144)
        group = f.read(end - 144)
    found: dict[str, str] = {}
    try:
        at = 0
        while at + 8 <= len(group):
            number, element = struct.unpack_from("<HH", group, at)
            vr = group[at + 4 : at + 6]
            if number != 0x0002:
                break
            if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
                length = struct.unpack_from("<I", group, at + 8)[0]
                at += 12
            else:
                length = struct.unpack_from("<H", group, at + 6)[0]
                at += 8
            if element in _META:
                found[_META[element]] = group[at : at + length].rstrip(b"\x00 ").decode("ascii")
            at += length
    except (struct.error, UnicodeDecodeError) as exc:
        raise NotRaw(f"file meta not as expected ({exc})") from exc
    if len(found) != 3:
        raise NotRaw("file meta without SOP class, instance or transfer syntax")
    return found["sop_class"], found["sop_instance"], found["syntax"]


def command_element(tag: int, value: bytes) -> bytes:
    """One implicit VR little endian element of the command group."""
    return struct.pack("<HHI", 0x0000, tag, len(value)) + value


def uid_value(value: str) -> bytes:
    """A UID as a command element holds it: ASCII, padded with NUL to an even length."""
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def store_command(sop_class: str, sop_instance: str, msg_id: int, priority: int = 2) -> bytes:
    """The command set of a C-STORE-RQ (PS3.7 9.3.1.1), implicit VR little endian, with its
    group length, as pynetdicom encodes it."""
    body = b"".join((
        command_element(0x0002, uid_value(sop_class)),        # Affected SOP Class UID
        command_element(0x0100, struct.pack("<H", 0x0001)),   # Command Field: C-STORE-RQ
        command_element(0x0110, struct.pack("<H", msg_id)),   # Message ID
        command_element(0x0700, struct.pack("<H", priority)),
        command_element(0x0800, struct.pack("<H", 0x0001)),   # Command Data Set Type: data set
        command_element(0x1000, uid_value(sop_instance)),     # Affected SOP Instance UID
    ))
    return command_element(0x0000, struct.pack("<I", len(body))) + body


class RawStore:
    """C-STOREs on one established association, written by the calling thread."""

    def __init__(self, assoc: Association) -> None:
        self.assoc = assoc
        sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
        self.sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None
        self.usable = (self.sock is not None and not isinstance(self.sock, ssl.SSLSocket)
                       and hasattr(self.sock, "sendmsg") and hasattr(socket, "MSG_DONTWAIT")
                       and hasattr(select, "poll")
                       and all(hasattr(assoc, name) for name in (
                           "_reactor_checkpoint", "_is_paused", "_check_received_status",
                           "_handle_no_response")))
        peer_max = int(assoc.acceptor.maximum_length or 0) if assoc.is_requestor \
            else int(assoc.requestor.maximum_length or 0)
        self.fragment = peer_max - 6 if peer_max > 6 else UNLIMITED_FRAGMENT
        self.timeout = float(assoc.network_timeout or 120.0)
        self._buffer = bytearray(max(CHUNK, self.fragment))
        self._held = False

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Keep pynetdicom's association reactor paused while this runs (it would otherwise
        take the C-STORE responses off the DIMSE queue as requests): for a run of C-STOREs,
        instead of pausing and waking it (up to 1 ms each time) around each one."""
        if self._held or not self.usable:
            yield
            return
        self._pause()
        self._held = True
        try:
            yield
        finally:
            self._held = False
            self.assoc._reactor_checkpoint.set()

    def _pause(self) -> None:
        assoc = self.assoc
        assoc._reactor_checkpoint.clear()
        deadline = time.monotonic() + 5.0
        while not assoc._is_paused and assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.0001)

    def send(self, path: Path, context_id: int, sop_class: str, sop_instance: str,
             msg_id: int) -> Dataset:
        """C-STORE the data set of the file at ``path`` as stored (its transfer syntax is that
        of ``context_id``): the response's status, or an empty Dataset when the association
        was lost or the peer did not answer in time (as ``send_c_store`` returns).
        :class:`NotRaw` (before anything was written) when the file must go another way."""
        assert self.usable
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size - dataset_offset(f)  # NotRaw: nothing sent
            if size <= 0:
                raise NotRaw("no data set")
            command = store_command(sop_class, sop_instance, msg_id)
            if len(command) > self.fragment:  # a peer with tiny PDUs: pynetdicom splits it
                raise NotRaw("the command set is longer than the peer's PDUs")
            held = self._held
            if not held:
                self._pause()
            try:
                try:
                    self._write(f, size, context_id, command)
                except OSError as exc:
                    # half a message is on the wire: the association cannot go on
                    self._end(stalled=isinstance(exc, TimeoutError))
                    return Dataset()
                _, rsp = self.assoc.dimse.get_msg(block=True)
            finally:
                if not held:
                    self.assoc._reactor_checkpoint.set()
        if rsp is None:
            self.assoc._handle_no_response()
            return Dataset()
        status: Dataset = self.assoc._check_received_status(rsp)
        return status

    def _write(self, f: io.RawIOBase, size: int, context_id: int, command: bytes) -> None:
        """The command PDU, then the ``size`` bytes of the data set in PDUs. OSError when the
        connection failed, the peer took nothing for the network timeout (``TimeoutError``) or
        the file ended early."""
        buffers: list[Any] = [_PDU_HEAD.pack(0x04, 0, len(command) + 6, len(command) + 2,
                                             context_id, 0x03), command]
        view = memoryview(self._buffer)
        step = self.fragment
        left = size
        while left > 0:
            got = f.readinto(view[: min(len(view), left)])
            if not got:
                raise OSError("the file is shorter than it was a moment ago")
            left -= got
            for start in range(0, got, step):
                end = min(start + step, got)
                flags = 0x02 if end == got and left == 0 else 0x00
                buffers.append(_PDU_HEAD.pack(0x04, 0, end - start + 6, end - start + 2,
                                              context_id, flags))
                buffers.append(view[start:end])
                if len(buffers) >= MAX_IOV - 1:
                    self._sendmsg(buffers)
                    buffers = []
            if buffers:  # the buffer is read into again next: send what points at it
                self._sendmsg(buffers)
                buffers = []

    def _end(self, *, stalled: bool) -> None:
        """Abort the association after a C-STORE that could not be written whole. A peer that
        stopped reading would never take the A-ABORT either (pynetdicom's thread would block
        writing it): its connection is shut down first."""
        if stalled and self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.assoc.abort()

    def _sendmsg(self, buffers: list[Any]) -> None:
        """Send every byte of ``buffers``; each wait for room in the socket bounded by the
        network timeout (``TimeoutError``, an OSError)."""
        assert self.sock is not None
        sock = self.sock
        first = 0
        while first < len(buffers):
            if not self.assoc.is_established:
                raise ConnectionAbortedError("the association ended")
            try:
                sent = sock.sendmsg(buffers[first : first + MAX_IOV], [], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            while sent:
                length = len(buffers[first])
                if sent >= length:
                    sent -= length
                    first += 1
                else:
                    buffers[first] = memoryview(buffers[first])[sent:]
                    sent = 0
            if first < len(buffers):
                poller = select.poll()
                poller.register(sock, select.POLLOUT)
                if not poller.poll(self.timeout * 1000):
                    raise TimeoutError("the peer took nothing for the network timeout")
