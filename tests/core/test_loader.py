"""Progressive loading: equals pydicom, focus first, bad slices marked, cancel, late files."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from app.errors import GeometryError
from app.tasks import Progress
from app.volume.loader import VolumeLoader, check_size, load_stack
from app.volume.stack import Stack
from tests.core.volume_helpers import only_series, plan_of, store_with, synth_plan
from tests.reference import reference_frames


def _reference_volume(stack: Stack) -> np.ndarray:
    cache: dict[Path, np.ndarray] = {}
    out = []
    for ref in stack.slices:
        if ref.path not in cache:
            cache[ref.path] = reference_frames(ref.path)
        out.append(cache[ref.path][ref.frame])
    return np.stack(out)


@pytest.mark.parametrize("folder", [
    "ct-head/visible-human-male-head-1mm",
    "ct-head/ge-hispeed-human-gantry-tilt",
    "mr-brain/philips-elition-t1-mprage-sag",
    "multiframe/siemens-xa30-enhanced-mr-t1w",
    "multiframe/small-enhanced-ct-mr",
])
def test_loaded_volume_equals_pydicom(data: Path, tmp_path: Path, folder: str) -> None:
    store = store_with(tmp_path, data / folder)
    for study in store.studies():
        for series in study.series:
            stack = plan_of(store, series.series_instance_uid).main
            volume, loader = load_stack(stack)
            assert volume.failed_slices == []
            assert volume.ready.all()
            assert np.array_equal(volume.array, _reference_volume(stack))
            assert loader.first_slice_seconds <= loader.seconds


def test_compressed_series_uses_codec_workers_and_matches(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path / "ls", slices=12, transfer_syntax="jpegls")
    _, plain = synth_plan(tmp_path / "ex", slices=12)
    volume, _ = load_stack(plan.main, workers=2)
    expected, _ = load_stack(plain.main)
    assert volume._owner is not None  # a shared buffer the workers wrote into
    assert np.array_equal(volume.array, expected.array)
    assert volume.modality_slice(0).min() == -1000  # stored + (-1024): air in HU


class _Watched(VolumeLoader):
    """A loader that notes which slices it decoded in its own process."""

    here: list[int]

    def _read_here(self, k: int) -> str | None:
        self.here.append(k)
        return super()._read_here(k)


def test_a_loader_without_codecs_leaves_every_compressed_frame_to_the_pool(
        tmp_path: Path) -> None:
    """``codecs_here=False`` (``relay load``): the slice in view comes first, from the pool;
    nothing compressed is decoded in the loading process; the volume is the same."""
    _, plan = synth_plan(tmp_path / "ls", slices=16, transfer_syntax="jpegls")
    _, plain = synth_plan(tmp_path / "ex", slices=16)
    loader = _Watched.for_stack(plan.main, focus=5, workers=2, codecs_here=False)
    loader.here = []
    order: list[int] = []
    loader.volume.subscribe(lambda k, ok: order.append(k))
    volume = loader.run()
    assert loader.here == []
    assert order[0] == 5 and sorted(order) == list(range(16))
    assert volume.failed_slices == []
    assert np.array_equal(volume.array, load_stack(plain.main)[0].array)
    # the same loader on an uncompressed series still reads in this process (no codec needed)
    watched = _Watched.for_stack(plain.main, focus=3, workers=2, codecs_here=False)
    watched.here = []
    watched.run()
    assert watched.here[0] == 3 and sorted(watched.here) == list(range(16))


def test_focus_slice_comes_first_and_refocus_takes_effect(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=40)
    loader = VolumeLoader.for_stack(plan.main, focus=10, workers=1)
    order: list[int] = []

    def on_slice(k: int, ok: bool) -> None:
        order.append(k)
        if len(order) == 1:
            loader.set_focus(35)

    loader.volume.subscribe(on_slice)
    loader.run()
    assert order[0] == 10
    assert order.index(35) < order.index(0)
    assert sorted(order) == list(range(40))


def test_uncompressed_slices_are_read_by_the_loader_itself_into_zeroed_memory(
        tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=12)
    loader = VolumeLoader.for_stack(plan.main)
    assert not loader.volume.array.any()  # not yet read: background, never old memory
    loader.run()
    assert loader._threads is None  # no thread pool for plain reads
    assert loader.volume.ready.all()
    assert np.array_equal(loader.volume.array, _reference_volume(plan.main))


def test_bad_slice_is_marked_and_the_rest_loads(tmp_path: Path) -> None:
    files = tmp_path / "files"
    _, plan = synth_plan(tmp_path / "gen", slices=8, transfer_syntax="j2k")
    shutil.copytree(tmp_path / "gen" / "files", files)
    victim = files / "IM00004.dcm"
    raw = bytearray(victim.read_bytes())
    soc = raw.index(b"\xff\x4f\xff\x51")  # J2K start of codestream + image size marker
    raw[soc + 2:soc + 40] = b"\x00" * 38  # the size marker is gone: a corrupt codestream
    victim.write_bytes(bytes(raw))
    store = store_with(tmp_path / "home", files)
    volume, _ = load_stack(plan_of(store).main, workers=2)
    failed = volume.failed_slices
    assert len(failed) == 1 and failed[0].index == 3
    assert "JPEG 2000" in failed[0].reason and "\n" not in failed[0].reason
    assert Path(failed[0].path).read_bytes() == victim.read_bytes()
    assert volume.ready.sum() == 7 and not volume.ready[3]
    assert not volume.array[3].any()


def test_cancel_stops_the_load(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=30)
    progress = Progress()
    loader = VolumeLoader.for_stack(plan.main, progress=progress, workers=1)
    loader.volume.subscribe(lambda k, ok: progress.cancel())
    loader.run()
    assert loader.done and 1 <= loader.volume.ready.sum() < 30


def test_slices_arriving_later_are_filled(tmp_path: Path) -> None:
    store, plan = synth_plan(tmp_path, slices=10)
    stack = plan.main
    # as during a download: geometry known, half the files not there yet
    missing = dataclasses.replace(stack, slices=tuple(
        dataclasses.replace(s, path=None) if k % 2 else s for k, s in enumerate(stack.slices)))
    loader = VolumeLoader.for_stack(missing, wait_for_files=True, workers=1).start()
    assert loader.volume.wait(0, timeout=30)
    assert not loader.done
    by_uid = {i.sop_instance_uid: i for i in store.instances(only_series(store))}
    for k in range(1, 10, 2):
        assert loader.supply(by_uid[stack.slices[k].sop_instance_uid]) == [k]
    loader.finish_supply()
    assert loader.join(timeout=30)
    assert loader.volume.ready.all()
    expected, _ = load_stack(stack)
    assert np.array_equal(loader.volume.array, expected.array)


def test_never_arriving_files_are_failed_at_finish(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=4)
    stack = dataclasses.replace(plan.main, slices=tuple(
        dataclasses.replace(s, path=None) if k == 2 else s for k, s in enumerate(plan.main.slices)))
    loader = VolumeLoader.for_stack(stack, wait_for_files=True, workers=1).start()
    threading.Timer(0.2, loader.finish_supply).start()
    assert loader.join(timeout=30)
    assert [f.index for f in loader.volume.failed_slices] == [2]


def test_a_lying_header_cannot_allocate_gigabytes(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=2)
    ref = plan.main.slices[0]
    huge = dataclasses.replace(ref, info=dataclasses.replace(ref.info, rows=60000,
                                                              columns=60000))
    lying = dataclasses.replace(plan.main, slices=(huge,) * 2000)
    with pytest.raises(GeometryError, match="GiB"):
        check_size(lying)


def test_a_held_loader_waits_after_the_slice_in_view_until_released(tmp_path: Path) -> None:
    """A viewer draws its first image before the readers start (they would compete with it)."""
    _, plan = synth_plan(tmp_path, slices=20)
    loader = VolumeLoader.for_stack(plan.main, focus=7, hold=30.0).start()
    volume = loader.volume
    assert volume.wait(7, 10)
    assert not loader.join(0.3)  # held: nothing but the slice in view
    assert int(volume.ready.sum()) == 1 and volume.ready[7]
    loader.release()
    assert loader.join(10) and volume.ready.all()

    held = VolumeLoader.for_stack(plan.main, hold=30.0).start()
    assert held.volume.wait(10, 10)
    held.cancel()  # closing the viewer while held ends the load at once
    assert held.join(5)
