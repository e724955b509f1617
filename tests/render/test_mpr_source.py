"""What MPR reslices: the live volume for a regular stack, a resampled copy for an uneven one;
full-quality reslices on a worker, newest request per view."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from app.errors import RelayError
from app.render.crosshair import Crosshair
from app.render.grid import fit_grid
from app.render.mpr import mpr_source, wait_reason
from app.render.reslice import Reslicer
from app.render.reslice_queue import ResliceJob, ResliceQueue
from app.volume.loader import VolumeLoader
from tests.core.volume_helpers import plan_of, store_with, synth_plan
from tests.render import phantom as ph


def test_regular_stack_is_resliced_live(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=12)
    loader = VolumeLoader.for_stack(plan.main)
    volume = loader.volume
    assert wait_reason(volume) is None
    source = mpr_source(volume, modality="CT")  # before a single pixel was read
    assert source.live and source.array is volume.array and source.notes == ()
    assert source.background == pytest.approx((-1024 - source.intercept) / source.slope)
    loader.run()
    assert source.array is volume.array  # fills in where MPR looks


@pytest.mark.slow
def test_uneven_tilted_stack_waits_then_resamples(data: Path, tmp_path: Path) -> None:
    store = store_with(tmp_path / "home", data / "ct-head" / "ge-hispeed-human-gantry-tilt")
    plan = plan_of(store)
    loader = VolumeLoader.for_stack(plan.main)
    reason = wait_reason(loader.volume)
    assert reason is not None and "unevenly spaced" in reason
    with pytest.raises(RelayError, match="not every slice"):
        mpr_source(loader.volume)
    loader.run()
    source = mpr_source(loader.volume, modality="CT")
    assert not source.live and source.array.shape[0] > 28
    assert source.array.dtype == loader.volume.array.dtype  # no float copy
    text = " ".join(source.notes)
    assert "resampled" in text and "Gantry tilt of 18.5°" in text


def test_queue_keeps_the_newest_request_per_view(sagittal) -> None:
    reslicer = Reslicer(sagittal.array, sagittal.geometry)
    crosshair = Crosshair(sagittal.geometry)
    done: list[tuple[str, int]] = []
    gate, started = threading.Event(), threading.Event()

    def on_done(job: ResliceJob, result) -> None:
        started.set()
        gate.wait(5)
        assert result.grid is job.grid
        done.append((job.key, job.token))

    queue = ResliceQueue(reslicer, on_done)
    try:
        grid = fit_grid(sagittal.geometry, crosshair.plane("axial"))
        queue.submit(ResliceJob("axial", grid, token=1))  # runs, then waits on the gate
        assert started.wait(5)
        for token in range(2, 6):  # each replaces the one before: only the newest runs
            queue.submit(ResliceJob("axial", grid, slab_mm=10.0, token=token))
        queue.submit(ResliceJob("coronal", fit_grid(sagittal.geometry,
                                                    crosshair.plane("coronal")), token=9))
        gate.set()
        assert queue.wait_idle(10)
        assert done[0] == ("axial", 1)
        assert sorted(done[1:]) == [("axial", 5), ("coronal", 9)]
    finally:
        queue.close()


def test_unloaded_slices_read_as_background(tilted) -> None:
    """A live array that has not filled in shows the background, not noise."""
    empty = np.zeros_like(tilted.array)
    grid = fit_grid(tilted.geometry, Crosshair(tilted.geometry).plane("coronal"))
    out = Reslicer(empty, tilted.geometry, background=0).slice(grid)
    assert not out.pixels.any()
    assert ph.INTERCEPT == -1024.0
