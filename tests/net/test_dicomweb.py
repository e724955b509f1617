"""The DICOMweb layers: multipart framing, QIDO paging, STOW answers, refused instances."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pydicom
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.errors import HubError
from app.net.dicomweb import DicomWebClient
from app.net.http import HubSession
from app.net.multipart import MultipartBody, boundary_of, read_parts
from app.net.queue import TransferQueue
from app.net.send import run_send
from app.settings import HubProfile, TransferSettings
from tests.net.conftest import HUB_PASSWORD, HUB_USER, hub_sop_uids, import_study


class _Trickle(io.RawIOBase):
    """A stream handing out its bytes in small random pieces (as a network does)."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data, self.pos, self.rng = data, 0, random.Random(seed)

    def read(self, amt: int = -1) -> bytes:
        n = self.rng.randint(1, 7) if self.rng.random() < 0.7 else self.rng.randint(1, 5000)
        out = self.data[self.pos : self.pos + min(n, amt if amt > 0 else n)]
        self.pos += len(out)
        return out


def _parse(data: bytes, boundary: str, seed: int = 0) -> list[bytes]:
    return list(read_parts(_Trickle(data, seed), boundary, lambda h: io.BytesIO(),
                           lambda sink: sink.getvalue()))


def test_multipart_roundtrip(tmp_path: Path):
    bodies = [b"", b"\r\n--not-the-boundary\r\n", bytes(range(256)) * 40, b"DICM" * 3]
    files = []
    for i, body in enumerate(bodies):
        p = tmp_path / f"{i}.dcm"
        p.write_bytes(body)
        files.append((p, len(body)))
    mb = MultipartBody(files)
    assert "=" not in mb.boundary
    assert mb.content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    raw = b"".join(mb)
    assert len(raw) == len(mb)
    assert raw.count(b"Content-Type: application/dicom\r\n") == len(bodies)
    for seed in range(20):
        assert _parse(raw, mb.boundary, seed) == bodies


def test_multipart_with_content_length_and_preamble():
    boundary = "abc-123"
    parts = [b"first", b"second\r\n--abc-12"]
    raw = b"preamble\r\n" + b"".join(
        b"--abc-123\r\nContent-Type: application/dicom\r\nContent-Length: "
        + str(len(p)).encode() + b"\r\n\r\n" + p + b"\r\n" for p in parts) + b"--abc-123--\r\n"
    for seed in range(10):
        assert _parse(raw, boundary, seed) == parts


def test_multipart_cut_short_is_an_error():
    raw = b"--b\r\nContent-Type: application/dicom\r\n\r\nhalf a part"
    with pytest.raises(HubError, match="ended early"):
        _parse(raw, "b")
    with pytest.raises(HubError, match="multipart"):
        boundary_of("text/html")


def _client(hub) -> DicomWebClient:
    return DicomWebClient(HubSession(HubProfile("h", hub.url, "basic", HUB_USER), HUB_PASSWORD))


@pytest.mark.orthanc
def test_qido_pages_and_stow_failed_sequence(hub, tmp_path):
    a = generate_series(tmp_path / "a", SeriesSpec(slices=7, rows=32, columns=32, seed=1))
    b = generate_series(tmp_path / "b", SeriesSpec(slices=2, rows=32, columns=32, seed=2))
    study_a = pydicom.dcmread(a[0], stop_before_pixels=True).StudyInstanceUID
    client = _client(hub)
    # Instances of study B posted to study A's URL: Orthanc answers 200 and lists them in
    # FailedSOPSequence; both sequences are read.
    result = client.store([(p, p.stat().st_size) for p in a + b], study_a)
    assert len(result.stored) == 7
    assert len(result.failed) == 2 and all("0x0110" in r for r in result.failed.values())
    assert len(hub_sop_uids(hub)) == 7
    paged = list(client.search(f"/studies/{study_a}/instances", page=3))
    assert len(paged) == 7
    assert client.instance_uids(study_a) == set(hub_sop_uids(hub))


@pytest.mark.orthanc
def test_refused_instance_is_retried_then_reported(hub, relay_home, tmp_path, ct_files):
    """An instance the hub keeps refusing ends as failed with the hub's reason, never dropped."""
    store, study = import_study(relay_home, ct_files[:10])
    stranger = generate_series(tmp_path / "s", SeriesSpec(slices=1, rows=32, columns=32, seed=3))
    other_store, _ = import_study(tmp_path / "other", stranger)
    inst = other_store.instances(other_store.studies()[0].series[0].series_instance_uid)[0]
    digest, rel = store.put(inst.path.read_bytes())
    queue = TransferQueue(relay_home)
    items = [(i.sop_instance_uid, i.series_instance_uid,
              str(i.path.relative_to(store.root)), i.size)
             for s in store.study(study).series for i in store.instances(s.series_instance_uid)]
    items.append((inst.sop_instance_uid, inst.series_instance_uid, rel, inst.size))
    job = queue.create("send", "hub", study, [], items)
    settings = TransferSettings(batch_instances=4, max_attempts=2)
    result = run_send(store, queue, _client(hub), job.id, settings)
    assert result.state == "failed"
    assert result.verified == 10 and result.instances == 11
    assert result.missing == [inst.sop_instance_uid]
    failed = queue.items(job.id, ("failed",))
    assert [f.sop_uid for f in failed] == [inst.sop_instance_uid]
    assert failed[0].attempts == 2 and "processing failure" in failed[0].reason
    assert "refused" in result.message
    assert len(hub_sop_uids(hub)) == 10
