"""C-STORE data sets read straight off the socket (app/net/dimse/rawreceive.py): Relay's node,
sent P-DATA PDUs written by hand on a real association, stores exactly the bytes sent however
the data set is cut into PDUs and TCP segments (odd sizes, a command and a fragment in one PDU,
several fragments in one PDU, the last-fragment bit anywhere); a peer gone in the middle of a
data set leaves no file and the node up; Relay's own C-GET reads the same way."""

from __future__ import annotations

import hashlib
import io
import itertools
import socket
import struct
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import UID
from pynetdicom import build_context
from pynetdicom.dimse_messages import C_GET_RSP, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_GET, C_STORE
from pynetdicom.dsutils import create_file_meta, encode_file_meta
from pynetdicom.pdu_primitives import P_DATA

from app.dicom.synth import SeriesSpec, generate_series
from app.net import hubs
from app.net.dimse import rawreceive
from app.net.dimse.association import Endpoint, associate, make_ae
from app.net.dimse.rawstore import RawStore, command_element, file_meta, store_command
from app.store.local import Store
from tests.net import dimse_peers
from tests.net.conftest import import_study
from tests.net.dimse_node import dataset_bytes, running_node, stored_hashes
from tests.net.dimse_peers import relay_home_for

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

DATA, LAST, COMMAND_LAST = 0x00, 0x02, 0x03


def _pdu(*pdvs: tuple[int, int, bytes]) -> bytes:
    """A P-DATA-TF PDU holding ``(context ID, message control header, fragment)`` PDVs."""
    items = b"".join(struct.pack(">IBB", len(d) + 2, cx, flags) + d for cx, flags, d in pdvs)
    return struct.pack(">BBI", 0x04, 0, len(items)) + items


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in itertools.cycle(sizes):
        if at >= len(data):
            return out
        out.append(data[at:at + size])
        at += size
    return out


def _whole(cx: int, command: bytes, fragments: list[bytes]) -> list[bytes]:
    """The PDUs of one C-STORE: its command, then its data set in ``fragments``."""
    return ([_pdu((cx, COMMAND_LAST, command))] + [_pdu((cx, DATA, f)) for f in fragments[:-1]]
            + [_pdu((cx, LAST, fragments[-1]))])


class HandSender:
    """An association with Relay's node on which C-STORE PDUs are written by hand; pynetdicom
    still reads the answers."""

    def __init__(self, port: int, sop_class: str, syntax: str) -> None:
        ae = make_ae("HAND", requested=[build_context(sop_class, syntax)], max_pdu=16384)
        self.assoc = associate(ae, Endpoint("127.0.0.1", port, "RELAY"))
        self.raw = RawStore(self.assoc)
        assert self.raw.usable
        self.sock = self.raw.sock
        assert self.sock is not None
        self.context_id = self.assoc.accepted_contexts[0].context_id

    def store(self, pdus: list[bytes], *, segments: list[int] | None = None) -> int | None:
        """Write ``pdus`` (TCP writes of ``segments`` bytes each, a pause between them so the
        node reads partial headers); the status answered (None: no answer)."""
        assert self.sock is not None
        stream = b"".join(pdus)
        with self.raw.holding():
            for piece in _cut(stream, segments or [len(stream)]):
                self.sock.sendall(piece)
                if segments:
                    time.sleep(0.0005)
            _, rsp = self.assoc.dimse.get_msg(block=True)
        return None if rsp is None else int(rsp.Status)

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()


def _send_whole(port: int, sop_class: str, syntax: str, command: bytes,
                fragments: list[bytes]) -> int | None:
    """One C-STORE on an association of its own; the status answered."""
    sender = HandSender(port, sop_class, syntax)
    try:
        return sender.store(_whole(sender.context_id, command, fragments))
    finally:
        sender.close()


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_series(tmp_path_factory.mktemp("ct"), SeriesSpec(slices=3, seed=5))


def _request(path: Path, msg_id: int) -> tuple[bytes, bytes, str, str]:
    sop_class, sop_instance, syntax = file_meta(path)
    return store_command(sop_class, sop_instance, msg_id), dataset_bytes(path), sop_class, syntax


def _stored_data_set_sha(store: Store, sop_uid: str) -> str:
    inst = store.instance(sop_uid)
    assert inst is not None and inst.path is not None
    return hashlib.sha256(dataset_bytes(inst.path)).hexdigest()


def test_fragments_of_odd_sizes_in_odd_tcp_segments_are_stored_byte_exact(home, ct):
    command, data, sop_class, syntax = _request(ct[0], 1)
    fragments = _cut(data, [1, 7, 16370, 4093, 3, 16384, 999])
    with running_node(home) as listener:
        sender = HandSender(listener.address[1], sop_class, syntax)
        cx = sender.context_id
        before = rawreceive.fragments_read
        pdus = _whole(cx, command, fragments)
        try:
            assert sender.store(pdus, segments=[5, 1, 13, 8191, 2, 65536, 17]) == 0x0000
        finally:
            sender.close()
        read_here = rawreceive.fragments_read - before
        store = Store(home)
        sop = file_meta(ct[0])[1]
        assert _stored_data_set_sha(store, sop) == hashlib.sha256(data).hexdigest()
    # every fragment but the last read off the socket by rawreceive, none by pynetdicom
    assert read_here == len(fragments) - 1


def test_a_command_with_a_fragment_and_several_fragments_in_one_pdu(home, ct):
    command, data, sop_class, syntax = _request(ct[1], 7)
    a, b, c, d = _cut(data, [3000, 200000, 5, 10 ** 9])
    with running_node(home) as listener:
        sender = HandSender(listener.address[1], sop_class, syntax)
        cx = sender.context_id
        pdus = [_pdu((cx, COMMAND_LAST, command), (cx, DATA, a))]  # command + data in one PDU
        pdus += [_pdu((cx, DATA, f)) for f in _cut(b, [16378])]
        pdus.append(_pdu((cx, DATA, c), (cx, LAST, d)))  # the last fragment behind another
        try:
            assert sender.store(pdus) == 0x0000
        finally:
            sender.close()
        store = Store(home)
        assert _stored_data_set_sha(store, file_meta(ct[1])[1]) == \
            hashlib.sha256(data).hexdigest()


def test_instances_one_after_another_on_one_association_each_stored_exact(home, ct):
    with running_node(home) as listener:
        _, _, sop_class, syntax = _request(ct[0], 1)
        sender = HandSender(listener.address[1], sop_class, syntax)
        cx = sender.context_id
        try:
            for n, path in enumerate(ct, 1):
                command, data, _, _ = _request(path, n)
                pieces = _cut(data, [16378])
                pdus = _whole(cx, command, pieces)
                assert sender.store(pdus) == 0x0000
        finally:
            sender.close()
        # the association ended: the index rows of its instances are made durable and the
        # marker that says they might not be is gone (app/store/deferred.py)
        deadline = time.monotonic() + 10
        while list((home / "store").glob("unindexed-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not list((home / "store").glob("unindexed-*"))
        hashes = stored_hashes(Store(home))
    assert len(hashes) == len(ct)
    store = Store(home)
    for path in ct:
        assert _stored_data_set_sha(store, file_meta(path)[1]) == \
            hashlib.sha256(dataset_bytes(path)).hexdigest()


def test_a_peer_gone_in_the_middle_of_a_data_set_leaves_no_file_and_the_node_up(home, ct):
    command, data, sop_class, syntax = _request(ct[2], 1)
    with running_node(home) as listener:
        port = listener.address[1]
        sender = HandSender(port, sop_class, syntax)
        cx = sender.context_id
        pieces = _cut(data, [16378])
        half = [_pdu((cx, COMMAND_LAST, command))]
        half += [_pdu((cx, DATA, f)) for f in pieces[: len(pieces) // 2]]
        cut = _pdu((cx, DATA, pieces[len(pieces) // 2]))
        stream = b"".join(half) + cut[: len(cut) // 2]  # and half of one more PDU
        assert sender.sock is not None
        with sender.raw.holding():
            sender.sock.sendall(stream)
            time.sleep(0.2)
            sender.sock.shutdown(socket.SHUT_RDWR)  # the modality is switched off
        deadline = time.monotonic() + 10
        while listener.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.active_associations == 0
        store = Store(home)
        assert not list((store.root / "objects").rglob("*.dcm"))
        assert not list((store.root / "tmp").iterdir())
        assert store.instance(file_meta(ct[2])[1]) is None
        # the node still takes the whole instance from the next caller
        assert _send_whole(port, sop_class, syntax, command, pieces) == 0x0000
        assert _stored_data_set_sha(Store(home), file_meta(ct[2])[1]) == \
            hashlib.sha256(data).hexdigest()
    assert listener.tally.snapshot().get("stored") == 1


def _parts(store: Store) -> list[Path]:
    return [f for f in (store.root / "tmp").iterdir() if f.is_file()]


def test_a_data_set_is_written_and_hashed_into_the_store_while_it_still_arrives(home, ct):
    """The node's C-STOREs go through the pipeline every download goes through: the first
    fragments are in the store's temp file before the last has come; then the instance is
    stored byte for byte, and Success goes back only once it is indexed."""
    command, data, sop_class, syntax = _request(ct[0], 1)
    sop_uid = file_meta(ct[0])[1]
    with running_node(home) as listener:
        sender = HandSender(listener.address[1], sop_class, syntax)
        cx = sender.context_id
        pieces = _cut(data, [16378])
        first = [_pdu((cx, COMMAND_LAST, command))] + [_pdu((cx, DATA, f))
                                                       for f in pieces[:-4]]
        store = Store(home)
        assert sender.sock is not None
        try:
            with sender.raw.holding():
                sender.sock.sendall(b"".join(first))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any(
                        f.stat().st_size >= 256 * 1024 for f in _parts(store)):
                    time.sleep(0.01)
                (part,) = _parts(store)
                assert part.stat().st_size >= 256 * 1024  # on the disk already
                assert store.instance(sop_uid) is None
            rest = [_pdu((cx, DATA, f)) for f in pieces[-4:-1]]
            assert sender.store(rest + [_pdu((cx, LAST, pieces[-1]))]) == 0x0000
            assert store.instance(sop_uid) is not None  # indexed before the answer
        finally:
            sender.close()
        assert _stored_data_set_sha(store, sop_uid) == hashlib.sha256(data).hexdigest()
        assert not _parts(store)


def test_a_data_set_naming_another_instance_is_refused_and_not_kept(home, ct):
    """The request says one SOP Instance UID and the data set holds another: 0xA900, and
    nothing of it is left in the store (not even a file no row names)."""
    _, data, sop_class, syntax = _request(ct[1], 1)
    command = store_command(sop_class, "1.2.826.0.1.3680043.8.498.1", 1)  # not its UID
    with running_node(home) as listener:
        sender = HandSender(listener.address[1], sop_class, syntax)
        pdus = _whole(sender.context_id, command, _cut(data, [16378]))
        try:
            assert sender.store(pdus) == 0xA900
        finally:
            sender.close()
        store = Store(home)
        assert not list((store.root / "objects").rglob("*.dcm"))
        assert not _parts(store)
    assert listener.tally.snapshot().get("failed") == 1


def test_many_peers_gone_mid_data_set_leave_the_node_its_buffers(home, ct):
    """More peers than the node has buffers for each leave in the middle of a data set: what
    each had sent is dropped with it, and the next caller is stored at once."""
    command, data, sop_class, syntax = _request(ct[2], 1)
    with running_node(home, max_associations=4) as listener:
        port = listener.address[1]
        pieces = _cut(data, [16378])
        for _ in range(28):  # the node's buffers: 4 associations + 16
            sender = HandSender(port, sop_class, syntax)
            cx = sender.context_id
            head = [_pdu((cx, COMMAND_LAST, command))] + [_pdu((cx, DATA, f))
                                                          for f in pieces[:12]]
            assert sender.sock is not None
            with sender.raw.holding():
                sender.sock.sendall(b"".join(head))
                time.sleep(0.02)
                sender.sock.shutdown(socket.SHUT_RDWR)
            deadline = time.monotonic() + 10
            while listener.active_associations and time.monotonic() < deadline:
                time.sleep(0.01)
        assert _send_whole(port, sop_class, syntax, command, pieces) == 0x0000
        assert not _parts(Store(home))
    assert listener.tally.snapshot().get("stored") == 1


def test_a_full_disk_refuses_what_comes_then_and_the_node_streams_again_once_there_is_room(
        home, ct, monkeypatch):
    """While the store's disk is full each C-STORE is answered "out of resources" (0xA700)
    and nothing of it is kept; once there is room the next ones are stored, streamed as
    before (one failed write does not spoil the node's pipeline for the rest)."""
    from app.store import local

    requests = [_request(path, i + 1) for i, path in enumerate(ct)]
    with running_node(home) as listener:
        port = listener.address[1]

        def send_all() -> list[int | None]:
            statuses = []
            for command, data, sop_class, syntax in requests:
                statuses.append(_send_whole(port, sop_class, syntax, command,
                                            _cut(data, [16378])))
            return statuses

        monkeypatch.setattr(local, "RESERVE_BYTES", 1 << 60)  # the disk is full
        assert send_all() == [0xA700] * len(ct)
        store = Store(home)
        assert not list((store.root / "objects").rglob("*.dcm")) and not _parts(store)
        monkeypatch.setattr(local, "RESERVE_BYTES", 16 << 20)  # room again
        assert send_all() == [0x0000] * len(ct)
        assert listener._ingest is not None and listener._ingest.stored == len(ct)
    for path in ct:
        assert _stored_data_set_sha(Store(home), file_meta(path)[1]) == \
            hashlib.sha256(dataset_bytes(path)).hexdigest()


@pytest.mark.orthanc
def test_relay_c_get_from_orthanc_reads_the_instances_off_the_socket(tmp_path: Path, pacs, ct):
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    store, study = import_study(home, ct)
    series_uid = store.study(study).series[0].series_instance_uid
    peer = hubs.connect(home, "pacs")
    try:
        sent = {i.sop_instance_uid: i.path for i in store.instances(series_uid)}
        assert peer.store([(Path(p), Path(p).stat().st_size) for p in sent.values()],
                          study).stored == set(sent)
        before = rawreceive.fragments_read
        got = list(peer.retrieve(study, series_uid, open_part=lambda headers: io.BytesIO(),
                                 close_part=lambda part: part.getvalue()))
    finally:
        peer.close()
    # a 512x512 CT slice spans several PDUs whatever their size (Orthanc: 128 kB): all but
    # the last fragment of each read off the socket here
    assert rawreceive.fragments_read - before >= 3 * len(ct)
    received = {str(pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID): b for b in got}
    assert set(received) == set(sent)
    for sop, path in sent.items():
        assert pydicom.dcmread(io.BytesIO(received[sop])).PixelData == \
            pydicom.dcmread(path).PixelData


@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xC000, 0xB000, 0xFFFF])
@pytest.mark.parametrize("sop_instance", ["1.2.3", "1.2.840.113619.2.55.3.604688.12"])
def test_the_c_store_answer_is_what_pynetdicom_encodes(status: int, sop_instance: str):
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 65535
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rsp.AffectedSOPInstanceUID = sop_instance
    rsp.Status = status
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    [pdata] = list(message.encode_msg(1, 16384))
    [(context_id, pdv)] = pdata.presentation_data_value_list
    assert (context_id, pdv[:1]) == (1, b"\x03")
    assert rawreceive.store_response(rsp) == pdv[1:]
    rsp.ErrorComment = "no room"  # more than a status: pynetdicom encodes it
    assert rawreceive.store_response(rsp) is None


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2",
                                    "1.2.840.10008.1.2.4.201"])
@pytest.mark.parametrize("sop_instance", ["1.2.3", "1.2.840.113619.2.55.3.604688.12"])
def test_the_file_head_of_a_received_instance_is_what_pynetdicom_encodes(syntax: str,
                                                                        sop_instance: str):
    meta = create_file_meta(sop_class_uid=UID("1.2.840.10008.5.1.4.1.1.2"),
                            sop_instance_uid=UID(sop_instance), transfer_syntax=UID(syntax))
    assert rawreceive.file_head("1.2.840.10008.5.1.4.1.1.2", sop_instance, syntax) == \
        b"\x00" * 128 + b"DICM" + encode_file_meta(meta)


def _received(encoded_command: bytes) -> DIMSEMessage:
    """A DIMSE message as pynetdicom assembles it from P-DATA PDVs (a small data set after
    the command set when it says one follows)."""
    message = DIMSEMessage()
    for pdv in (b"\x03" + encoded_command, b"\x02\x08\x00\x18\x00UI\x06\x001.2.3\x00"):
        pdata = P_DATA()
        pdata.presentation_data_value_list = [[1, pdv]]  # type: ignore[list-item]
        if message.decode_msg(pdata):
            return message
    raise AssertionError("the message is not complete")


def _get_response(status: int, counts: tuple[int, ...], comment: str | None) -> bytes:
    rsp = C_GET()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.3"
    rsp.Status = status
    for name, n in zip(("Remaining", "Completed", "Failed", "Warning"), counts, strict=False):
        setattr(rsp, f"NumberOf{name}Suboperations", n)
    if comment is not None:
        rsp.ErrorComment = comment
    message = C_GET_RSP()
    message.primitive_to_message(rsp)
    [pdata] = list(message.encode_msg(1, 0))
    return bytes(pdata.presentation_data_value_list[0][1][1:])


_PRIMITIVE_FIELDS = ("AffectedSOPClassUID", "AffectedSOPInstanceUID", "MessageID",
                     "MessageIDBeingRespondedTo", "Priority", "Status",
                     "NumberOfRemainingSuboperations", "NumberOfCompletedSuboperations",
                     "NumberOfFailedSuboperations", "NumberOfWarningSuboperations",
                     "ErrorComment", "DataSet", "Identifier", "_context_id")


@pytest.mark.parametrize("command", [
    store_command("1.2.840.10008.5.1.4.1.1.2", "1.2.3", 1),
    store_command("1.2.840.10008.5.1.4.1.1.2", "1.2.840.113619.2.55.3.604688.12", 65535, 0),
    store_command("1.2.840.10008.5.1.4.1.1.4", "1.2.34", 3, 1),
    _get_response(0xFF00, (399, 1, 0, 0), None),
    _get_response(0x0000, (0, 400, 0, 0), None),
    _get_response(0xB000, (0, 398, 2, 0), None),
    _get_response(0xA701, (), "no room"),  # an error comment: pynetdicom decodes it
    _get_response(0x0000, (), None),
])
def test_a_received_c_store_or_c_get_answer_decodes_as_pynetdicom_decodes_it(command: bytes):
    assert (rawreceive.command_values(command) is None) == (b"no room" in command)
    message = _received(command)
    fast, slow = rawreceive._message_to_primitive(message), \
        rawreceive._original_to_primitive(message)
    assert type(fast) is type(slow)
    for field in _PRIMITIVE_FIELDS:
        got, want = getattr(fast, field, None), getattr(slow, field, None)
        assert got == want and type(got) is type(want), field


def test_command_values_leave_what_they_do_not_know_to_pynetdicom():
    good = command_element(0x0002, b"1.2.3\x00")
    assert rawreceive.command_values(good) == [("AffectedSOPClassUID", "1.2.3")]
    assert rawreceive.command_values(good + command_element(0x0902, b"no room ")) is None
    assert rawreceive.command_values(command_element(0x0002, b"")) is None
    assert rawreceive.command_values(command_element(0x0002, b"1.2\\3.4\x00")) is None
    assert rawreceive.command_values(good[:-1]) is None  # cut short
