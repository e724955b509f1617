"""ASPECTS: the template's regions, hit-testing through a moved/scaled/turned guide, scoring."""

from __future__ import annotations

import numpy as np
import pytest

from app.workflow.aspects import REGIONS, Aspects, Guide, polygon, region_at, regions_at


def _centroid(code: str, side: str, guide: Guide) -> tuple[float, float]:
    poly = polygon(code, side, guide)
    x, y = poly.mean(axis=0)
    return float(x), float(y)


def test_ten_regions_over_two_levels() -> None:
    assert len(REGIONS) == 10
    assert regions_at("ganglionic") == ["C", "L", "IC", "I", "M1", "M2", "M3"]
    assert regions_at("supraganglionic") == ["M4", "M5", "M6"]
    with pytest.raises(ValueError, match="level must be"):
        regions_at("pons")


@pytest.mark.parametrize("guide", [Guide(128.0, 120.0), Guide(90.0, 140.0, 55.0, 12.0)])
def test_clicking_a_region_finds_it_on_the_right_side(guide: Guide) -> None:
    for level in ("ganglionic", "supraganglionic"):
        for code in regions_at(level):
            for side in ("right", "left"):
                assert region_at(_centroid(code, side, guide), level, guide) == (side, code)


def test_patient_right_is_on_the_image_left() -> None:
    guide = Guide(100.0, 100.0)
    x, _ = _centroid("M2", "right", guide)
    assert x < 100.0
    x, _ = _centroid("M2", "left", guide)
    assert x > 100.0


def test_moving_and_scaling_the_guide_moves_the_regions() -> None:
    guide = Guide(100.0, 100.0, 60.0)
    moved = guide.moved(10.0, -5.0).scaled(1.5)
    before = np.array(_centroid("L", "left", guide)) - (100, 100)
    after = np.array(_centroid("L", "left", moved)) - (110, 95)
    assert after == pytest.approx(before * 1.5)
    assert region_at((100.0, 100.0 - 200), "ganglionic", guide) is None
    with pytest.raises(ValueError, match="positive"):
        guide.scaled(0)


def test_score_is_ten_minus_affected_per_hemisphere() -> None:
    aspects = Aspects()
    assert aspects.score("right") == aspects.score("left") == 10
    aspects = aspects.toggled("left", "M2").toggled("left", "I").toggled("right", "C")
    assert (aspects.score("left"), aspects.score("right")) == (8, 9)
    assert aspects.text("left") == "ASPECTS 8 (left: I, M2)"
    assert aspects.toggled("left", "M2").score("left") == 9  # a second click unmarks
    with pytest.raises(ValueError, match="unknown ASPECTS region"):
        aspects.toggled("left", "M7")
