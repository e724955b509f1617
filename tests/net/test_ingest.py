"""Downloaded parts into the store: batches made durable before they are indexed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import app.net.ingest as ingest
from app.net.ingest import MemoryPart, PartIngest
from app.store import Store
from app.synth import SeriesSpec, generate_series


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("ct")
    return [p.read_bytes() for p in generate_series(out, SeriesSpec(slices=12, rows=32,
                                                                     columns=32))]


def _part(data: bytes) -> MemoryPart:
    part = MemoryPart({"content-length": str(len(data))}, len(data))
    part.write(data)
    return part


def test_parts_are_indexed_with_their_bytes_and_reported_once(tmp_path: Path,
                                                              slices: list[bytes]) -> None:
    store = Store(tmp_path / "home")
    heard: list[str] = []
    parts = PartIngest(store, lambda sop, series: heard.append(sop), batch=5)
    for data in slices:
        parts.submit(_part(data))
    parts.submit(_part(b"not dicom at all" * 20))
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
    parts.submit(_part(slices[0]), urgent=True)
    parts.close()
    assert torn.read_bytes() == slices[0]
    assert store.counts()["instances"] == 1


def test_a_part_larger_than_the_memory_budget_passes(tmp_path: Path, slices: list[bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MEMORY_BUDGET", 10)
    store = Store(tmp_path / "home")
    parts = PartIngest(store, workers=1)
    for data in slices[:3]:
        parts.submit(_part(data))
    parts.close()
    assert store.counts()["instances"] == 3
