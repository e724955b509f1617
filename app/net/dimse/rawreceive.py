"""C-STORE data sets read straight off the association's socket.

pynetdicom reads every P-DATA-TF PDU in 4 kB ``recv`` calls, decodes it into PDU and primitive
objects, runs it through its state machine and only then appends the fragment to the DIMSE
message being assembled: with the 16 kB PDUs storescu and Orthanc send, 400 slices of 512x512 CT
are 13,000 PDUs. Here, while a C-STORE-RQ's command set is complete and its data set is being
received, a PDU holding one data set fragment that is not the last is read with two ``recv``
calls into a reused buffer and appended to the very same message (pynetdicom's
``DIMSEMessage.data_set``): the bytes end up where pynetdicom would have put them, in the same
order. Everything else goes through pynetdicom unchanged: the association, every command set,
the last fragment of each data set (which completes the message, so pynetdicom hands the
C-STORE to the handler as always), PDUs with several fragments, release, abort, TLS sockets,
associations with a handler bound to the raw PDU events. A PDU read here is as bounded as
pynetdicom's reads (the association's network timeout), and a connection that ends within one
closes the association as pynetdicom does (no C-STORE is handed on). Used by every
association Relay takes part in: its node's C-STORE SCP and the C-STOREs of a C-GET it asked for.

The same per-instance work is cut on the way in and out: a received C-STORE-RQ or C-GET-RSP
becomes its primitive from the command bytes read by hand (:func:`command_values`, anything
unusual left to pynetdicom), a received instance gets its file meta group encoded by hand
(:func:`file_head`), and a plain C-STORE-RSP is encoded by hand (:func:`store_response`): each
byte for byte, value for value what pynetdicom gives.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from io import BytesIO
from typing import Any

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom._handlers import standard_pdu_recv_handler
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import C_GET_RSP, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_GET, C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import P_DATA

from app.net.dimse.rawstore import command_element, uid_value

#: P-DATA-TF PDU header and the header of its first PDV: PDU type, reserved, PDU length;
#: PDV length, presentation context ID, message control header (PS3.8 9.3.5, E.2).
_HEAD = struct.Struct(">BBIIBB")
_P_DATA_TF = 0x04
#: PDUs read in one go before pynetdicom's reactor looks at its queues again.
RUN = 64
#: Largest fragment read this way (a peer that negotiated no limit may send more: pynetdicom).
MAX_FRAGMENT = 1 << 22

#: Data set fragments read here since the process started (the benches and tests look).
fragments_read = 0

_original_read = DULServiceProvider._read_pdu_data
_buffers = threading.local()


def _buffer(size: int) -> memoryview:
    buf: bytearray | None = getattr(_buffers, "buf", None)
    if buf is None or len(buf) < size:
        buf = bytearray(max(size, 1 << 16))
        _buffers.buf = buf
    return memoryview(buf)


def _raw_socket(dul: DULServiceProvider) -> socket.socket | None:
    sock = getattr(dul.socket, "socket", None)
    if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
        return sock
    return None


def _no_pdu_handlers(assoc: Any) -> bool:
    """No handler would miss the PDU events a fast read skips (pynetdicom's own logging
    handler does nothing for a P-DATA-TF PDU)."""
    if assoc.get_handlers(evt.EVT_DATA_RECV):
        return False
    return all(handler is standard_pdu_recv_handler
               for handler, _ in assoc.get_handlers(evt.EVT_PDU_RECV))


def receiving_data_set(dul: DULServiceProvider) -> Any:
    """The C-STORE-RQ message whose data set is being received on this association, when its
    next PDUs may be read here; else None."""
    message = getattr(dul.assoc.dimse, "message", None)
    if type(message) is not C_STORE_RQ or not isinstance(message.data_set, BytesIO) \
            or getattr(message, "_data_set_file", None) is not None \
            or message.context_id is None:
        return None
    if dul.state_machine.current_state != "Sta6" or not dul.event_queue.empty() \
            or not dul._recv_pdu.empty() or not _no_pdu_handlers(dul.assoc):
        return None
    return message


def read_fragments(dul: DULServiceProvider) -> bool:
    """Read the PDUs waiting on ``dul``'s socket that each hold one data set fragment (not the
    last) of the C-STORE being received, appending them to its message; up to :data:`RUN` of
    them. False when nothing was read (the next PDU is pynetdicom's to read)."""
    message = receiving_data_set(dul)
    sock = _raw_socket(dul) if message is not None else None
    if sock is None:
        return False
    head = bytearray(_HEAD.size)
    read = 0
    while read < RUN:
        if read and not dul.to_provider_queue.empty():
            break  # something to send: the reactor's turn
        try:
            # a socket with a timeout waits for data even with MSG_DONTWAIT: poll first
            if not select.select([sock], [], [], 0)[0]:
                break
            seen = sock.recv_into(head, _HEAD.size, socket.MSG_PEEK)
        except (OSError, ValueError):
            break  # pynetdicom reads the same error and closes the association
        if seen < _HEAD.size:
            break
        kind, _, pdu_length, pdv_length, context_id, control = _HEAD.unpack(head)
        size = pdv_length - 2
        if kind != _P_DATA_TF or pdu_length != pdv_length + 4 or control & 0x03 \
                or context_id != message.context_id or not 0 < size <= MAX_FRAGMENT:
            break  # a command, the last fragment, several PDVs: pynetdicom's
        if not _read_exactly(dul, sock, None, _HEAD.size) \
                or not _read_exactly(dul, sock, message.data_set, size):
            return True  # the association is closing: nothing to count
        read += 1
    global fragments_read
    fragments_read += read
    return read > 0


def _read_exactly(dul: DULServiceProvider, sock: socket.socket, into: BytesIO | None,
                  size: int) -> bool:
    """Append the next ``size`` bytes of the socket to ``into`` (None: drop them, a header
    already peeked); False when the connection closed or stalled first (the association is
    then closed as pynetdicom does: Evt17)."""
    view = _buffer(size)[:size]
    got = 0
    try:
        while got < size:
            n = sock.recv_into(view[got:], size - got)
            if n == 0:
                break
            got += n
    except OSError:  # the network timeout (TimeoutError) or a reset
        pass
    if got < size:
        dul.event_queue.put("Evt17")  # transport connection closed: A-ABORT, no C-STORE
        return False
    if into is not None:
        into.write(view)
    return True


def _read_pdu_data(self: DULServiceProvider) -> None:
    if not read_fragments(self):
        _original_read(self)


def store_response(rsp: C_STORE) -> bytes | None:
    """The command set of a C-STORE-RSP (PS3.7 9.3.1.2) as pynetdicom encodes it, with its
    group length; None when the answer carries more than a status (an error comment, an
    offending element: pynetdicom encodes it)."""
    if rsp.MessageIDBeingRespondedTo is None or rsp.Status is None \
            or rsp.ErrorComment is not None or rsp.OffendingElement is not None:
        return None
    parts = []
    if rsp.AffectedSOPClassUID is not None:
        parts.append(command_element(0x0002, uid_value(str(rsp.AffectedSOPClassUID))))
    parts += [command_element(0x0100, struct.pack("<H", 0x8001)),  # Command Field: C-STORE-RSP
              command_element(0x0120, struct.pack("<H", rsp.MessageIDBeingRespondedTo)),
              command_element(0x0800, struct.pack("<H", 0x0101)),  # no data set
              command_element(0x0900, struct.pack("<H", rsp.Status))]
    if rsp.AffectedSOPInstanceUID is not None:
        parts.append(command_element(0x1000, uid_value(str(rsp.AffectedSOPInstanceUID))))
    body = b"".join(parts)
    return command_element(0x0000, struct.pack("<I", len(body))) + body


_original_send_msg = DIMSEServiceProvider.send_msg


def _send_msg(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> None:
    """pynetdicom's ``send_msg``, with a plain C-STORE-RSP encoded by :func:`store_response`
    (pydicom's encoding of the command set cost 1-2 ms for each instance received)."""
    command = store_response(primitive) if type(primitive) is C_STORE else None
    limit = int(self.maximum_pdu_size or 0)
    if command is None or self.assoc.get_handlers(evt.EVT_DIMSE_SENT) \
            or (limit and len(command) + 6 > limit):
        _original_send_msg(self, primitive, context_id)
        return
    pdata = P_DATA()
    # a list, as pynetdicom checks (its annotation says a tuple)
    pdata.presentation_data_value_list = [[context_id, b"\x03" + command]]  # type: ignore[list-item]
    self.dul.send_pdu(pdata)


#: The attribute of an association that streams its C-STOREs' data sets as they arrive: a
#: callable given the C-STORE-RQ message (its command set complete) and the association,
#: answering the sink to write its data set to (:class:`StreamedDataSet`), or None.
STREAM_OPENER = "relay_stream_opener"


class StreamedDataSet(BytesIO):
    """A C-STORE's data set being received, kept as pynetdicom keeps it (every handler reads
    it as always) and handed on, fragment by fragment as it arrives, to ``sink`` (a
    :class:`app.store.part_ingest.PipedPart`: written, hashed and its write-back started while
    the rest is still on the wire). A sink that fails is dropped (:attr:`error`); the data set
    is then whole here all the same."""

    def __init__(self, sink: Any) -> None:
        super().__init__()
        self.sink = sink
        self.error: BaseException | None = None

    def write(self, data: Any) -> int:
        n = super().write(data)
        sink = self.sink
        if sink is not None:
            try:
                sink.write(data)
            except BaseException as exc:  # a full disk: the handler hears of it
                self.error, self.sink = exc, None
                sink.discard()
        return n


_original_decode = DIMSEMessage.decode_msg


def _decode_msg(self: DIMSEMessage, primitive: Any, assoc: Any = None) -> bool:
    """pynetdicom's ``decode_msg``; once a C-STORE-RQ's command set is complete on an
    association that streams (:data:`STREAM_OPENER`), its data set goes to a
    :class:`StreamedDataSet` from the first fragment on."""
    done: bool = _original_decode(self, primitive, assoc)
    if done or type(self) is not C_STORE_RQ or assoc is None:
        return done
    data_set = self.data_set
    opener = getattr(assoc, STREAM_OPENER, None)
    if opener is None or type(data_set) is not BytesIO or self._data_set_file is not None:
        return done
    sink = opener(self, assoc)
    if sink is not None:
        streamed = StreamedDataSet(sink)
        with data_set.getbuffer() as first:  # a fragment in the command set's PDU
            if len(first):
                streamed.write(first)
        self.data_set = streamed
    return done


_PREAMBLE = b"\x00" * 128 + b"DICM"


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of the file meta group (0002)."""
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def file_head(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """The preamble, ``DICM`` and file meta group pynetdicom's ``Event.encoded_dataset`` puts
    before a received data set, byte for byte (its encoding through pydicom cost ~1 ms for
    each instance received)."""
    version = PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
    body = b"".join((
        _meta_element(0x0001, b"OB", b"\x00\x01"),
        _meta_element(0x0002, b"UI", uid_value(sop_class)),
        _meta_element(0x0003, b"UI", uid_value(sop_instance)),
        _meta_element(0x0010, b"UI", uid_value(transfer_syntax)),
        _meta_element(0x0012, b"UI", uid_value(str(PYNETDICOM_IMPLEMENTATION_UID))),
        _meta_element(0x0013, b"SH", version + b" " * (len(version) % 2)),
    ))
    return _PREAMBLE + _meta_element(0x0000, b"UL", struct.pack("<I", len(body))) + body


def write_received(event: Any, write: Callable[[bytes | memoryview], Any]) -> None:
    """Hand the instance a C-STORE event carries to ``write`` as ``event.encoded_dataset()``
    would give it (file meta group, then the data set as received), without copying the data
    set out of the message; events of other kinds give their ``encoded_dataset()``."""
    request = getattr(event, "request", None)
    stream = getattr(request, "DataSet", None)
    context = getattr(event, "context", None)
    if type(request) is not C_STORE or not isinstance(stream, BytesIO) or context is None \
            or request.AffectedSOPClassUID is None or request.AffectedSOPInstanceUID is None:
        write(event.encoded_dataset())
        return
    try:
        head = file_head(str(request.AffectedSOPClassUID),
                         str(request.AffectedSOPInstanceUID), str(context.transfer_syntax))
    except (UnicodeEncodeError, struct.error):  # not plain UIDs: pynetdicom encodes them
        write(event.encoded_dataset())
        return
    write(head)
    with stream.getbuffer() as view:
        write(view)


#: The command elements (group 0000) :func:`command_values` reads: element -> keyword, VR.
_COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
}
#: Messages whose primitive :func:`_message_to_primitive` builds: message, primitive, the
#: primitive's data set parameter.
_FAST_MESSAGES: dict[type, tuple[type, str]] = {C_STORE_RQ: (C_STORE, "DataSet"),
                                                C_GET_RSP: (C_GET, "Identifier")}


def command_values(raw: bytes) -> list[tuple[str, int | str]] | None:
    """The elements of an encoded command set (implicit VR little endian) as keyword and
    value, as pydicom gives them; None when it holds anything else (an error comment, an
    offending element, a move originator, an empty or odd value: pydicom decodes it)."""
    values: list[tuple[str, int | str]] = []
    at, end = 0, len(raw)
    while at < end:
        if at + 8 > end:
            return None
        group, element, length = struct.unpack_from("<HHI", raw, at)
        at += 8
        known = _COMMAND_ELEMENTS.get(element) if group == 0 else None
        if known is None or length == 0 or at + length > end:
            return None
        keyword, vr = known
        value = raw[at : at + length]
        at += length
        if vr == "US" and length == 2:
            values.append((keyword, struct.unpack("<H", value)[0]))
        elif vr == "UL" and length == 4:
            values.append((keyword, struct.unpack("<I", value)[0]))
        elif vr == "UI" and value.isascii() and b"\\" not in value:
            uid = value.decode("ascii").rstrip("\x00 ")
            if not uid or uid != uid.lstrip():
                return None
            values.append((keyword, uid))
        else:
            return None
    return values


_original_to_primitive = DIMSEMessage.message_to_primitive


def _message_to_primitive(self: DIMSEMessage) -> Any:
    """pynetdicom's ``message_to_primitive`` for a C-STORE-RQ and a C-GET-RSP whose command
    set :func:`command_values` reads (pydicom's decoding of the elements, one by one, cost
    ~1 ms per message: two per instance of a C-GET)."""
    fast = _FAST_MESSAGES.get(type(self))
    command = self.encoded_command_set
    values = command_values(command.getvalue()) \
        if fast is not None and isinstance(command, BytesIO) else None
    if fast is None or values is None:
        return _original_to_primitive(self)
    kind, data_set = fast
    primitive = kind()
    for keyword, value in values:
        if hasattr(primitive, keyword):
            setattr(primitive, keyword, value)
    setattr(primitive, data_set, self.data_set)
    primitive._context_id = self.context_id
    primitive._dataset_path = self._data_set_path
    primitive._dataset_file = self._data_set_file
    return primitive


def install() -> None:
    """Route pynetdicom's PDU reading through :func:`read_fragments`, its C-STORE answers
    through :func:`store_response`, the C-STOREs and C-GET answers it receives through
    :func:`_message_to_primitive` and the data sets of C-STOREs through :func:`_decode_msg`
    (once per process)."""
    if DIMSEMessage.message_to_primitive is _original_to_primitive:
        DIMSEMessage.message_to_primitive = _message_to_primitive  # type: ignore[method-assign]
    if DIMSEMessage.decode_msg is _original_decode:
        DIMSEMessage.decode_msg = _decode_msg  # type: ignore[method-assign]
    if DULServiceProvider._read_pdu_data is _original_read:
        DULServiceProvider._read_pdu_data = _read_pdu_data  # type: ignore[method-assign]
    if DIMSEServiceProvider.send_msg is _original_send_msg:
        DIMSEServiceProvider.send_msg = _send_msg  # type: ignore[method-assign]
