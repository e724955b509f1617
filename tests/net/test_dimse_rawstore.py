"""C-STORE written straight to the socket (app/net/dimse/rawstore.py): what a real pynetdicom
storage SCP receives is the stored data set byte for byte, whatever PDU size it negotiates and
however large the file; a file it cannot send so goes through pynetdicom; a peer that stops
reading ends the C-STORE within the network timeout; dcmtk's storescp takes what it sends."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AllStoragePresentationContexts, evt

from app.dicom.synth import SeriesSpec, generate_series
from app.errors import DimseError
from app.net.devhub import free_port
from app.net.dimse.association import Endpoint, Timeouts, make_ae, start_server
from app.net.dimse.client import DimseClient
from app.net.dimse.rawstore import NotRaw, dataset_offset, file_meta, store_command

CT = "1.2.840.10008.5.1.4.1.1.2"


class BytesScp:
    """A pynetdicom storage SCP keeping the encoded data set of each C-STORE it gets."""

    def __init__(self, *, max_pdu: int = 16384, hold: threading.Event | None = None) -> None:
        self.port = free_port()
        self.received: dict[str, bytes] = {}
        self.commands: list[Dataset] = []
        ae = make_ae("BYTES", max_pdu=max_pdu)
        for cx in AllStoragePresentationContexts:
            assert cx.abstract_syntax is not None
            ae.add_supported_context(cx.abstract_syntax,
                                     [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        handlers: list = [(evt.EVT_C_STORE, self._on_store)]
        if hold is not None:  # once a C-STORE's data flows, the peer stops reading
            self._hold, self._got = hold, 0
            handlers.append((evt.EVT_DATA_RECV, self._on_data))
        self.server = start_server(ae, "127.0.0.1", self.port, evt_handlers=handlers)

    def _on_data(self, event: evt.Event) -> None:
        self._got += len(event.data)
        if self._got > 1 << 20:
            self._hold.wait(30)

    def _on_store(self, event: evt.Event) -> int:
        self.commands.append(event.request)
        data = event.request.DataSet
        assert data is not None
        self.received[str(event.request.AffectedSOPInstanceUID)] = data.getvalue()
        return 0x0000

    def stop(self) -> None:
        self.server.shutdown()


def _stored_dataset(path: Path) -> bytes:
    with open(path, "rb", buffering=0) as f:
        offset = dataset_offset(f)
    return path.read_bytes()[offset:]


def _big_ct(folder: Path, frames_mb: float) -> Path:
    """An explicit VR LE CT of about ``frames_mb`` MB (several of the sender's 1 MB reads)."""
    side = int((frames_mb * 1e6 / 2) ** 0.5)
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.random.default_rng(3).integers(0, 4096, side * side, np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _send(port: int, files: list[Path], *, timeouts: Timeouts | None = None
          ) -> tuple[bool, list[int]]:
    client = DimseClient(Endpoint("127.0.0.1", port, "BYTES"), "RELAY", timeouts)
    metas = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    pairs = [(str(m.SOPClassUID), str(m.file_meta.TransferSyntaxUID)) for m in metas]
    with client.sending(pairs) as sender, sender.holding():
        codes = [sender.send(p, cls, ts, msg_id=n, sop_instance=str(m.SOPInstanceUID)).status
                 for n, (p, m, (cls, ts)) in enumerate(zip(files, metas, pairs, strict=True), 1)]
        return sender.raw.usable, codes


@pytest.mark.parametrize("max_pdu", [16384, 4096, 0])
def test_the_peer_receives_the_stored_data_set_byte_for_byte(tmp_path: Path, max_pdu: int):
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=3, rows=64, columns=64, seed=2))
    files.append(_big_ct(tmp_path / "big", 3.5))
    scp = BytesScp(max_pdu=max_pdu)
    try:
        raw, codes = _send(scp.port, files)
        assert raw and codes == [0] * len(files)
        for path in files:
            sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            assert scp.received[sop] == _stored_dataset(path)
        assert [int(c.MessageID) for c in scp.commands] == [1, 2, 3, 4]
        assert {int(c.Priority) for c in scp.commands} == {2}
    finally:
        scp.stop()


def test_the_command_set_is_what_pynetdicom_encodes():
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    req = C_STORE()
    req.MessageID, req.Priority = 7, 2
    req.AffectedSOPClassUID = CT
    req.AffectedSOPInstanceUID = "1.2.3.45"
    msg = C_STORE_RQ()
    msg.primitive_to_message(req)
    msg.command_set.CommandDataSetType = 0x0001  # set by pynetdicom when a data set follows
    msg.command_set.CommandGroupLength = 0
    msg.command_set.CommandGroupLength = len(encode(msg.command_set, True, True)) - 12
    assert store_command(CT, "1.2.3.45", 7) == encode(msg.command_set, True, True)


def test_a_file_without_a_meta_group_length_goes_through_pynetdicom(tmp_path: Path):
    [path] = generate_series(tmp_path / "ct", SeriesSpec(slices=1, rows=32, columns=32, seed=5))
    data = path.read_bytes()
    assert data[132:138] == b"\x02\x00\x00\x00UL"
    odd = tmp_path / "odd.dcm"
    odd.write_bytes(data[:132] + data[144:])  # the same file without (0002,0000)
    with open(odd, "rb", buffering=0) as f, pytest.raises(NotRaw):
        dataset_offset(f)
    scp = BytesScp()
    try:
        raw, codes = _send(scp.port, [odd])
        assert raw and codes == [0]
        sop = str(pydicom.dcmread(odd, stop_before_pixels=True).SOPInstanceUID)
        assert scp.received[sop] == _stored_dataset(path)
    finally:
        scp.stop()


def test_a_peer_that_stops_reading_ends_the_store_within_the_network_timeout(tmp_path: Path):
    big = _big_ct(tmp_path / "big", 40)  # more than the loopback socket buffers hold
    hold = threading.Event()
    scp = BytesScp(hold=hold)
    try:
        started = time.monotonic()
        with pytest.raises(DimseError) as failed:
            _send(scp.port, [big], timeouts=Timeouts(network=2.0, dimse=2.0))
        assert failed.value.kind in ("aborted", "timeout")
        assert time.monotonic() - started < 15
    finally:
        hold.set()
        scp.stop()


@pytest.mark.skipif(shutil.which("storescp") is None, reason="needs dcmtk's storescp")
def test_dcmtk_storescp_receives_the_files_identical(tmp_path: Path):
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=4, rows=128, columns=128, seed=6))
    files.append(_big_ct(tmp_path / "big", 2.5))
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "BYTES", "-od", str(out), "-uf", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                raw, codes = _send(port, files)
                break
            except DimseError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert raw and codes == [0] * len(files)
        for path in files:
            sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            [got] = list(out.glob(f"*{sop}*"))
            assert _stored_dataset(got) == _stored_dataset(path)
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_file_meta_is_read_as_pydicom_reads_it(tmp_path: Path):
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=2, rows=32, columns=32, seed=8))
    files += generate_series(tmp_path / "ls", SeriesSpec(slices=1, rows=32, columns=32, seed=9,
                                                         transfer_syntax="jpegls"))
    for path in files:
        meta = pydicom.filereader.read_file_meta_info(path)
        assert file_meta(path) == (meta.MediaStorageSOPClassUID,
                                   meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID)
    odd = tmp_path / "odd.dcm"
    odd.write_bytes(files[0].read_bytes()[:132] + files[0].read_bytes()[144:])
    with pytest.raises(NotRaw):
        file_meta(odd)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(files[0].read_bytes()[:150])
    with pytest.raises(NotRaw):
        file_meta(cut)


def test_each_accepted_association_gets_its_own_copy_of_the_contexts():
    from copy import deepcopy

    from app.net.dimse.association import _CheapCopy

    ae = make_ae("COPY")
    ae.add_supported_context(CT, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    [original] = ae.supported_contexts
    cheap = _CheapCopy.of(original)
    copied = deepcopy([cheap])[0]
    assert vars(copied) == vars(original)
    copied.transfer_syntax.append("1.2.840.10008.1.2.4.80")
    copied.context_id = 9
    assert vars(cheap) == vars(original)
