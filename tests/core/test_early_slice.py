"""The slice in view decoded before the plan: the plan's middle slice, used only when it is."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from app.volume.early_slice import early_slice, middle_instance
from app.volume.loader import VolumeLoader, load_stack
from tests.core.volume_helpers import only_series, plan_of, store_with, synth_plan


def _shuffled(n: int, step: float = 2.0) -> tuple[float, ...]:
    z = [i * step - 7.0 for i in range(n)]
    random.Random(4).shuffle(z)  # instance numbers follow the files, not the positions
    return tuple(z)


def test_the_early_slice_is_the_plans_middle_and_the_loader_takes_it(tmp_path: Path) -> None:
    store, plan = synth_plan(tmp_path, slices=11, z_positions=_shuffled(11))
    uid = only_series(store)
    stack = plan.main
    early = early_slice(store, uid)
    assert early is not None
    assert (early.sop_instance_uid, early.frame) == (stack.slices[5].sop_instance_uid, 0)
    expected, _ = load_stack(stack)
    assert np.array_equal(early.pixels, expected.array[5])

    marked = dataclasses.replace(early, pixels=np.full_like(early.pixels, 1234))
    loader = VolumeLoader.for_stack(stack, early=marked)
    volume = loader.run()
    assert (volume.array[5] == 1234).all()  # taken, not decoded again
    assert np.array_equal(np.delete(volume.array, 5, axis=0), np.delete(expected.array, 5, 0))
    assert volume.ready.all() and volume.failed_slices == []
    assert loader.first_slice_seconds == pytest.approx(early.ready_at - loader.started)


def test_an_early_slice_that_is_not_in_view_is_ignored(tmp_path: Path) -> None:
    store, plan = synth_plan(tmp_path, slices=9, z_positions=_shuffled(9))
    early = early_slice(store, only_series(store))
    assert early is not None
    marked = dataclasses.replace(early, pixels=np.full_like(early.pixels, 1234))
    volume = VolumeLoader.for_stack(plan.main, focus=0, early=marked).run()  # reader is at 0
    expected, _ = load_stack(plan.main)
    assert np.array_equal(volume.array, expected.array)


def test_a_compressed_middle_slice_is_decoded_here_only_where_codecs_are(
        tmp_path: Path) -> None:
    """``relay load`` leaves compressed frames to the codec processes: no early slice there."""
    store, plan = synth_plan(tmp_path, slices=9, transfer_syntax="jpegls")
    uid = only_series(store)
    assert early_slice(store, uid, codecs=False) is None
    early = early_slice(store, uid)
    assert early is not None and early.sop_instance_uid == plan.main.slices[4].sop_instance_uid
    plain_store, _ = synth_plan(tmp_path / "plain", slices=9)
    assert early_slice(plain_store, only_series(plain_store), codecs=False) is not None


def test_repeated_positions_give_no_guess(tmp_path: Path) -> None:
    z = (0.0, 2.0, 4.0, 6.0, 0.0, 2.0, 4.0, 6.0)  # two stacks in one series
    store, plan = synth_plan(tmp_path, slices=8, z_positions=z)
    assert len(plan.stacks) == 2
    assert middle_instance(store, only_series(store)) is None
    assert early_slice(store, only_series(store)) is None


@pytest.mark.parametrize("folder", [
    "ct-head/visible-human-male-head-1mm",
    "ct-head/ge-hispeed-human-gantry-tilt",
    "mr-brain/philips-elition-t1-mprage-sag",
    "multiframe/small-enhanced-ct-mr",
    "compressed/same-image-9-syntaxes",
])
def test_on_real_series_a_guess_is_always_the_plans_middle(data: Path, tmp_path: Path,
                                                            folder: str) -> None:
    store = store_with(tmp_path, data / folder)
    guessed = 0
    for study in store.studies():
        for series in study.series:
            uid = series.series_instance_uid
            sop = middle_instance(store, uid)
            if sop is None:
                continue
            stack = plan_of(store, uid).main
            assert sop == stack.slices[len(stack.slices) // 2].sop_instance_uid, folder
            guessed += 1
    if folder.startswith("ct-head"):
        assert guessed == 1  # plain axial stacks, tilted or not, are guessed
    if folder.startswith(("multiframe", "compressed")):
        assert guessed == 0  # multi-frame objects and repeats are left to the plan
