"""Downloaded parts into the store: batches made durable before they are indexed."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

import app.store.part_ingest as ingest
from app.dicom.synth import SeriesSpec, generate_series
from app.errors import StoreError
from app.store.local import Store
from app.store.part_ingest import PartIngest, PipedPart


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("ct")
    return [p.read_bytes() for p in generate_series(out, SeriesSpec(slices=12, rows=32,
                                                                     columns=32))]


def _part(parts: PartIngest, data: bytes) -> PipedPart:
    part = parts.open_part({"content-length": str(len(data))})
    part.write(data)
    return part


def test_parts_are_indexed_with_their_bytes_and_reported_once(tmp_path: Path,
                                                              slices: list[bytes]) -> None:
    store = Store(tmp_path / "home")
    heard: list[str] = []
    parts = PartIngest(store, lambda sop, series: heard.append(sop), batch=5)
    for data in slices:
        parts.submit(_part(parts, data))
    parts.submit(_part(parts, b"not dicom at all" * 20))
    parts.close()
    assert len(heard) == len(set(heard)) == len(slices)
    assert [p.kind for p in parts.problems] == ["skipped"]
    for sop in heard:
        inst = store.instance(sop)
        assert inst is not None and inst.path is not None
        assert hashlib.sha256(Path(inst.path).read_bytes()).hexdigest() == inst.sha256
    assert sorted(hashlib.sha256(d).hexdigest() for d in slices) == sorted(
        store.instance(s).sha256 for s in heard)  # type: ignore[union-attr]
    assert not list(store.tmp.iterdir())


def test_a_torn_file_left_in_place_is_replaced(tmp_path: Path, slices: list[bytes]) -> None:
    """A power cut after the rename, before the sync, can leave a store file with wrong bytes
    and no index row; the next download of it writes it again."""
    store = Store(tmp_path / "home")
    digest = hashlib.sha256(slices[0]).hexdigest()
    torn = store.root / "objects" / digest[:2] / f"{digest}.dcm"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(slices[0][: len(slices[0]) // 2] + bytes(len(slices[0]) // 2 + 1))
    parts = PartIngest(store)
    parts.submit(_part(parts, slices[0]), urgent=True)
    parts.close()
    assert torn.read_bytes() == slices[0]
    assert store.counts()["instances"] == 1


def test_the_network_thread_waits_when_too_many_parts_wait(
        tmp_path: Path, slices: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_WAITING", 1)
    store = Store(tmp_path / "home")
    parts = PartIngest(store, workers=1)
    gate = threading.Event()
    parts.pool.submit(gate.wait, 30)  # the only worker is busy: parts pile up

    def receive() -> None:
        for data in slices[:3]:
            parts.submit(_part(parts, data))

    network = threading.Thread(target=receive)
    network.start()
    network.join(0.5)
    assert network.is_alive() and parts._waiting == 1  # the second part waits for room
    gate.set()
    network.join(30)
    assert not network.is_alive()
    parts.close()
    assert store.counts()["instances"] == 3


def test_a_part_handed_in_small_pieces_is_written_whole(tmp_path: Path,
                                                        slices: list[bytes]) -> None:
    """The reader fills the part's buffer piece by piece; the file holds every piece in order."""
    store = Store(tmp_path / "home")
    data = slices[0]
    parts = PartIngest(store)
    parts.submit(_piped(parts, data, 100), urgent=True)
    parts.close()
    inst = store.instances(store.studies()[0].series[0].series_instance_uid)[0]
    assert inst.path is not None and Path(inst.path).read_bytes() == data
    assert inst.sha256 == hashlib.sha256(data).hexdigest()


def test_a_discarded_part_leaves_nothing(tmp_path: Path, slices: list[bytes]) -> None:
    store = Store(tmp_path / "home")
    parts = PartIngest(store)
    part = _part(parts, slices[0][:1000])
    part.discard()
    parts.close()
    assert not list(store.tmp.iterdir())


def _piped(parts: PartIngest, data: bytes, piece: int) -> PipedPart:
    part = parts.open_part({"content-length": str(len(data))})
    for at in range(0, len(data), piece):
        chunk = data[at : at + piece]
        with part.free() as free:
            k = min(len(free), len(chunk))
            free[:k] = chunk[:k]
        part.filled(k)
        if k < len(chunk):
            part.write(chunk[k:])
    return part


def test_piped_parts_are_written_hashed_and_checked_on_the_writer(
        tmp_path: Path, slices: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts over one buffer, within one, handed as bytes (a C-GET's data set) and not DICOM:
    each stored byte-exact with its SHA-256, the bad one reported, no temp file left."""
    monkeypatch.setattr(ingest, "PART_BUFFER", 1000)  # a slice spans several buffers
    monkeypatch.setattr(ingest, "MAX_BUFFERS", 2)  # the reader waits for the writer
    from_files: list[Path] = []
    check_part = ingest.check_part  # type: ignore[attr-defined]

    def checked_from_file(path: Path, *args: Any) -> Any:
        from_files.append(path)
        return check_part(path, *args)

    monkeypatch.setattr(ingest, "check_part", checked_from_file)
    store = Store(tmp_path / "home")
    heard: list[str] = []
    parts = PartIngest(store, lambda sop, series: heard.append(sop), batch=4)
    for k, data in enumerate(slices[:-1]):
        parts.submit(_piped(parts, data, 100 + 37 * k), urgent=k == 3)
    whole = parts.open_part({})
    monkeypatch.setattr(ingest, "PART_BUFFER", 4 * len(slices[-1]))
    whole.write(slices[-1])  # bytes of a quarter buffer or more: handed on as they are
    parts.submit(whole)
    parts.submit(_piped(parts, b"not dicom at all" * 20, 64))
    parts.close()
    assert sorted(heard) == sorted(set(heard)) and len(heard) == len(slices)
    assert [p.kind for p in parts.problems] == ["skipped"]
    assert len(from_files) == len(slices) - 1  # the bytes and the small part: from memory
    for data in slices:
        digest = hashlib.sha256(data).hexdigest()
        (inst,) = [store.instance(s) for s in heard
                   if store.instance(s).sha256 == digest]  # type: ignore[union-attr]
        assert inst is not None and inst.path is not None
        assert Path(inst.path).read_bytes() == data
    assert not list(store.tmp.iterdir())


def test_a_piped_part_the_disk_refuses_stops_the_reader(
        tmp_path: Path, slices: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "home")
    parts = PartIngest(store)
    parts.submit(_piped(parts, slices[0], 4096))
    parts.drain()

    def full(where: Path, nbytes: int) -> None:
        raise StoreError("the disk is full")

    monkeypatch.setattr(ingest, "ensure_room", full)
    parts.submit(_piped(parts, slices[1], 4096))
    with pytest.raises(StoreError, match="full"):
        parts.drain()  # raised once, on the caller's thread
    parts.drain()
    parts.submit(_piped(parts, slices[2], 4096))
    parts.writer_idle()  # the writer met the full disk
    with pytest.raises(StoreError, match="full"):
        _piped(parts, slices[3], 4096)  # the next part's reader hears of it
    with pytest.raises(StoreError):
        parts.close()
    assert store.counts()["instances"] == 1
    assert not list(store.tmp.iterdir())


def test_a_discarded_piped_part_leaves_nothing(tmp_path: Path, slices: list[bytes]) -> None:
    store = Store(tmp_path / "home")
    parts = PartIngest(store)
    part = _piped(parts, slices[0][:3000], 1000)
    part.discard()
    parts.close()
    assert not list(store.tmp.iterdir()) and store.counts()["instances"] == 0
