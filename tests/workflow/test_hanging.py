"""Hanging protocols: the shipped files parse, the stroke study gets the stroke-code layout
with its prior, bad files are named and left out, the user's choice is kept per kind."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from app.imports.importer import import_paths
from app.model import Series, Study
from app.store.local import Store
from app.tasks import Progress
from app.workflow import hanging
from app.workflow.hanging import ProtocolError, choose, hang, parse, save_choice, series_kind
from tests.workflow.stroke_studies import stroke_study


def _series(description: str, modality: str = "CT", count: int = 40, number: int = 2) -> Series:
    return Series(f"1.2.{number}", "1.2", number, modality, description, "HEAD",
                  instance_count=count)


def test_every_shipped_protocol_parses() -> None:
    names = {p.name for p in hanging.builtin_protocols()}
    assert {"stroke-code", "default"} <= names
    assert len(names) == len(list(Path(hanging.resource_path("hanging")).glob("*.json")))


def test_series_kinds_from_modality_and_description() -> None:
    assert series_kind(_series("CTA head 0.625mm")) == "cta"
    assert series_kind(_series("Axial 5mm brain")) == "plain"
    assert series_kind(_series("Topogram", count=1)) == "localizer"
    assert series_kind(_series("CBF map")) == "perfusion"
    assert series_kind(_series("Relay stroke findings", "SR", 1)) == "nonimage"
    assert series_kind(_series("T1", "MR")) == "mr"


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Study, Study]:
    root = tmp_path_factory.mktemp("stroke")
    today = stroke_study(root / "today", date="20261201", seed=11)
    prior = stroke_study(root / "prior", date="20250310", seed=12, cta=False)
    store = Store(root / "home")
    import_paths(store, [str(p) for p in today + prior], Progress("test"))
    studies = sorted(store.studies(), key=lambda s: s.study_date)
    return store, studies[1], studies[0]


def test_stroke_study_hangs_plain_ct_in_two_windows_the_prior_and_the_cta_slabs(
        two_studies: tuple[Store, Study, Study]) -> None:
    store, today, prior = two_studies
    protocol = choose(today)
    assert protocol is not None and protocol.name == "stroke-code"
    code, plain, mpr = hang(protocol, today, prior)
    # one screen: the plain CT (brain, stroke window, the prior) over the CTA's MIP slabs
    assert code.stage.link == "position"
    assert [(c.series.series_description, c.preset, c.prior) for c in code.image_cells] == [
        ("Axial 2.5mm brain", "Brain", False), ("Axial 2.5mm brain", "Stroke", False),
        ("Axial 2.5mm brain", "Brain", True)]
    assert [(series_kind(c.series), c.plane, c.slab_mode, c.slab_mm, c.preset)
            for c in code.slab_cells] == [("cta", "axial", "mip", 20.0, "CTA / angio"),
                                          ("cta", "coronal", "mip", 20.0, "CTA / angio")]
    assert hanging.stage_shape(code) == ((1, 3), True)
    assert [c.preset for c in plain.cells] == ["Brain", "Stroke", "Brain"]
    assert plain.cells[2].study.study_instance_uid == prior.study_instance_uid
    assert hanging.grid_shape(plain.cells) == (1, 3)
    assert hanging.stage_shape(plain) == ((1, 3), False)
    assert mpr.mpr_series is not None and series_kind(mpr.mpr_series) == "cta"
    assert (mpr.stage.slab_mode, mpr.stage.slab_mm, mpr.stage.planes) == (
        "mip", 20.0, ("axial", "coronal"))
    # no prior: the brain and stroke windows over the two slabs, a 2×2 screen
    alone = hang(protocol, today, None)[0]
    assert hanging.stage_shape(alone) == ((1, 2), True) and len(alone.slab_cells) == 2


def test_without_prior_or_cta_the_cells_and_stages_are_left_out(
        two_studies: tuple[Store, Study, Study]) -> None:
    _, _, prior = two_studies  # plain CT only
    protocol = choose(prior)
    assert protocol is not None and protocol.name == "stroke-code"
    stages = hang(protocol, prior, None)
    assert [len(s.cells) for s in stages] == [2, 2]  # no CTA: no slabs, no MPR stage
    assert [s.stage.name for s in stages] == ["Stroke code", "Plain CT"]
    assert hanging.stage_shape(stages[0]) == ((1, 2), False)


def test_a_chest_ct_does_not_get_the_stroke_protocol() -> None:
    chest = Study("1.2", study_description="CT CHEST", modalities=("CT",),
                  series=(replace(_series("Lung 1mm"), body_part_examined="CHEST"),))
    protocol = choose(chest)
    assert protocol is not None and protocol.name == "default"


def test_users_choice_is_saved_per_kind_of_study(tmp_path: Path,
                                                 two_studies: tuple[Store, Study, Study]) -> None:
    _, today, _ = two_studies
    assert hanging.study_key(today) == "CT/HEAD"
    save_choice(tmp_path, today, "default")
    chosen = choose(today, tmp_path)
    assert chosen is not None and chosen.name == "default"
    assert json.loads((tmp_path / "settings.json").read_text())["reading"]["hanging"] == {
        "CT/HEAD": "default"}


def test_a_users_own_protocol_file_and_a_broken_one(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "hanging"
    folder.mkdir()
    (folder / "mine.json").write_text(json.dumps({
        "schema": 1, "name": "mine", "priority": 99, "match": {"modalities": ["CT"]},
        "stages": [{"name": "one", "cells": [{"series": "largest", "preset": "Bone"}]}]}))
    (folder / "broken.json").write_text('{"schema": 1, "name": "x", "stages": [{"cells": '
                                        '[{"series": "knee"}]}]}')
    names = {p.name for p in hanging.protocols(tmp_path)}
    assert "mine" in names and "x" not in names
    assert "broken.json" in caplog.text and "knee" in caplog.text


@pytest.mark.parametrize(("raw", "words"), [
    ([], "JSON object"),
    ({"schema": 2, "name": "a", "stages": []}, "schema must be 1"),
    ({"schema": 1, "name": "a", "stages": []}, "non-empty list"),
    ({"schema": 1, "name": "a", "stages": [{"view": "3d"}]}, "'view' must be"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [{"series": "plain"}] * 5}]},
     "1 to 4 cells when none"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [{"series": "plain"}] * 7}]},
     "1 to 6 cells"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [{"series": "cta", "plane": "oblique"}]}]},
     "'plane' must be one of"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [{"series": "cta", "slab": {"mm": 5}}]}]},
     "needs a 'plane'"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [
        {"series": "cta", "plane": "axial", "slab": {"mode": "mip", "mm": 20}},
        {"series": "cta", "plane": "coronal", "slab": {"mode": "mip", "mm": 10}}]}]},
     "one series in one MPR"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [
        {"series": "cta", "plane": "axial"}, {"series": "cta", "plane": "axial"}]}]},
     "asked for once"),
    ({"schema": 1, "name": "a", "stages": [{"cells": [
        *[{"series": "plain"}] * 4, {"series": "cta", "plane": "axial"}]}]}, "at most 3 cells"),
    ({"schema": 1, "name": "a", "stages": [{"view": "mpr", "series": "cta",
                                            "slab": {"mm": 90}}]}, "0 to 50"),
])
def test_bad_protocols_say_what_is_wrong(raw: object, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        parse(raw, "test.json")
