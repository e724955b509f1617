"""Region statistics and the mirrored region across a user-set midline, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.roi import mirror_stats, reflect, roi_stats


def test_reflect_across_a_vertical_and_a_tilted_line() -> None:
    assert reflect(np.array([[10.0, 5.0]]), (50.0, 0.0), (50.0, 100.0)).tolist() == [[90.0, 5.0]]
    out = reflect(np.array([[1.0, 0.0]]), (0.0, 0.0), (1.0, 1.0))
    assert out == pytest.approx(np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="two different points"):
        reflect(np.zeros((1, 2)), (1.0, 1.0), (1.0, 1.0))


def test_mirrored_region_reads_the_other_hemisphere() -> None:
    values = np.full((100, 100), 40.0)
    values[:, 50:] = 20.0  # the image's right half is darker (an infarct on the patient's left)
    values[40:60, 70:80] = 10.0
    midline = ((50.0, 0.0), (50.0, 100.0))  # 1 mm pixels: x = 50 mm is the middle
    result = mirror_stats(values, "rect", (70.0, 40.0), (80.0, 60.0), (1.0, 1.0), midline)
    assert result is not None
    assert (result.here.mean, result.here.pixels) == (10.0, 200)
    assert (result.there.mean, result.there.pixels) == (40.0, 200)
    assert result.difference == -30.0
    assert result.here.sd == result.there.sd == 0.0


def test_a_tilted_midline_mirrors_in_patient_space_not_along_the_rows() -> None:
    values = np.zeros((200, 200))
    yy, xx = np.mgrid[0:200, 0:200] + 0.5
    values[(xx - 150) ** 2 + (yy - 100) ** 2 <= 100] = 50.0  # a disc, right of a tilted line
    # a midline through (100, 100) turned by 45 degrees: the disc's mirror is at (100, 150)
    midline = ((100.0, 100.0), (200.0, 200.0))
    values[(xx - 100) ** 2 + (yy - 150) ** 2 <= 100] = 30.0
    result = mirror_stats(values, "ellipse", (145.0, 95.0), (155.0, 105.0), (1.0, 1.0), midline)
    assert result is not None
    assert result.here.mean == pytest.approx(50.0)
    assert result.there.mean == pytest.approx(30.0)


def test_off_image_mirror_is_none_and_ellipse_stats_match_annotations() -> None:
    values = np.arange(100.0).reshape(10, 10)
    assert mirror_stats(values, "rect", (1.0, 1.0), (3.0, 3.0), (1.0, 1.0),
                        ((50.0, 0.0), (50.0, 10.0))) is None
    stats = roi_stats(values, "rect", (0.0, 0.0), (2.0, 2.0), (1.0, 1.0))
    assert stats is not None and stats.mean == (0 + 1 + 10 + 11) / 4 and stats.pixels == 4


def test_pixels_without_a_value_are_left_out_of_a_region() -> None:
    """A perfusion map's stored values outside its real-world mapping have no quantity (NaN):
    the region's mean is over the others, not NaN."""
    values = np.full((10, 10), 40.0, np.float32)
    values[:, :5] = np.nan
    stats = roi_stats(values, "rect", (0.0, 0.0), (10.0, 10.0), (1.0, 1.0))
    assert stats is not None and (stats.mean, stats.pixels, stats.area_mm2) == (40.0, 50, 100.0)
    assert roi_stats(values, "rect", (0.0, 0.0), (4.0, 4.0), (1.0, 1.0)) is None
