"""Geometry from the index: order along the normal and the sentences about irregular stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.core.volume_helpers import plan_of, store_with, synth_plan
from tests.reference import reference_affine


def test_gantry_tilt_and_uneven_spacing_of_the_ge_head(data: Path, tmp_path: Path) -> None:
    store = store_with(tmp_path, data / "ct-head" / "ge-hispeed-human-gantry-tilt")
    plan = plan_of(store)
    text = " | ".join(plan.issues)
    assert "18.5° tilt" in text.replace("tilt of 18.5°", "18.5° tilt")
    assert "uneven slice spacing" in text
    assert len(plan.stacks) == 1 and plan.main.shape == (28, 512, 512)


def test_visible_human_is_regular_and_matches_pydicom_geometry(data: Path, tmp_path: Path) -> None:
    folder = data / "ct-head" / "visible-human-male-head-1mm"
    plan = plan_of(store_with(tmp_path, folder))
    assert plan.issues == ()
    stack = plan.main
    assert stack.shape == (245, 512, 512)
    affine, _ = reference_affine(sorted(folder.iterdir()))
    np.testing.assert_allclose(stack.geometry.affine, affine, atol=1e-6)
    assert np.all(np.diff(stack.positions[:, 2]) > 0)  # neck to vertex along +z (head)


def test_same_position_nine_times_is_nine_stacks(data: Path, tmp_path: Path) -> None:
    plan = plan_of(store_with(tmp_path, data / "compressed" / "same-image-9-syntaxes"))
    assert len(plan.stacks) == 9
    assert any("9 images at the same position" in s for s in plan.issues)


def test_sorted_along_normal_not_instance_number(tmp_path: Path) -> None:
    # instance numbers run head to feet here; slices must still go along the normal (+z)
    _, plan = synth_plan(tmp_path, slices=6, z_positions=(10.0, 8.0, 6.0, 4.0, 2.0, 0.0))
    z = plan.main.positions[:, 2]
    assert list(np.round(z, 3)) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert [s.order[2] for s in plan.main.slices] == [6, 5, 4, 3, 2, 1]
    assert plan.issues == ()
    assert plan.main.geometry.spacing[0] == pytest.approx(2.0)


def test_synthetic_tilt_is_reported_with_its_angle(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=5, slice_step=2.0, tilt_deg=12.0)
    assert any("tilt of 12.0°" in s for s in plan.issues)


def test_gap_is_a_missing_slice(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=5, z_positions=(0.0, 1.0, 2.0, 4.0, 5.0))
    assert plan.issues == ("1 missing slice (gaps in a stack spaced 1 mm: after slice 3)",)


def test_uneven_spacing(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=5, z_positions=(0.0, 1.0, 2.0, 3.5, 4.5))
    assert plan.issues == ("uneven slice spacing: steps of 1 and 1.5 mm between slices",)


def test_positions_times_repeats_is_several_stacks(tmp_path: Path) -> None:
    # perfusion style: the same 4 positions scanned 3 times
    _, plan = synth_plan(tmp_path, slices=12, z_positions=(0.0, 5.0, 10.0, 15.0) * 3)
    assert len(plan.stacks) == 3 and all(s.shape[0] == 4 for s in plan.stacks)
    assert plan.issues[0].startswith("3 stacks of the same 4 positions")
    # each stack holds one repeat, in acquisition (instance) order
    assert [s.order[2] for s in plan.stacks[1].slices] == [5, 6, 7, 8]


def test_duplicate_positions(tmp_path: Path) -> None:
    _, plan = synth_plan(tmp_path, slices=5, z_positions=(0.0, 1.0, 1.0, 2.0, 3.0))
    assert plan.issues[0].startswith("duplicate positions: 1 of 4 positions")
    assert plan.main.shape[0] == 4


def test_mixed_sizes_and_missing_positions(data: Path, tmp_path: Path) -> None:
    # two NM images (JPEG lossless and extended copies) without Image Position Patient
    store = store_with(tmp_path / "nm", data / "compressed" / "jpeg-lossless",
                       data / "compressed" / "jpeg-baseline-extended")
    issues = [i for st in store.studies() for s in st.series
              for i in plan_of(store, s.series_instance_uid).issues]
    assert any(i.startswith("no position data") for i in issues)
    store = store_with(tmp_path / "cd", data / "cd" / "pydicom-dicomdirtests")
    issues = [i for st in store.studies() for s in st.series
              for i in plan_of(store, s.series_instance_uid).issues]
    # the scouts: coronal, sagittal and axial images in one series
    assert any(i.startswith("mixed image orientations") for i in issues)
