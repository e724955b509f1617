"""VOI LUT functions against values computed by hand from PS3.3 C.11.2.1.2."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.voi import apply_voi, to_uint8, voi_linear, voi_linear_exact, voi_sigmoid


def test_linear_window_40_80() -> None:
    # c - 0.5 = 39.5, w - 1 = 79: the ramp runs from 0 (exclusive) to 79
    x = np.array([-100, 0, 39.5, 40, 79, 80, 1000])
    expected = [0, 0, 127.5, (0.5 / 79 + 0.5) * 255, 255, 255, 255]
    np.testing.assert_allclose(voi_linear(x, 40, 80), expected)
    assert pytest.approx(129.11392405) == (0.5 / 79 + 0.5) * 255


def test_linear_width_one_is_a_threshold() -> None:
    np.testing.assert_allclose(voi_linear([-1, -0.5, -0.4, 3], 0, 1), [0, 0, 255, 255])


def test_linear_exact() -> None:
    x = np.array([-10, 0, 20, 40, 60, 80, 90])
    np.testing.assert_allclose(voi_linear_exact(x, 40, 80), [0, 0, 63.75, 127.5, 191.25, 255, 255])


def test_sigmoid() -> None:
    x = np.array([0, 40, 80])
    # 255 / (1 + e^2) and 255 / (1 + e^-2)
    np.testing.assert_allclose(voi_sigmoid(x, 40, 80), [30.39670, 127.5, 224.60330], atol=1e-4)


def test_output_range_and_names() -> None:
    np.testing.assert_allclose(apply_voi([40], 40, 80, "LINEAR_EXACT", 0, 1000), [500])
    np.testing.assert_allclose(apply_voi([40], 40, 80, "", 0, 1000), voi_linear([40], 40, 80, 0,
                                                                                  1000))
    with pytest.raises(ValueError, match="LINEAR_EXACT needs a window width above 0"):
        voi_linear_exact([0], 0, 0)


def test_monochrome1_is_inverted() -> None:
    assert list(to_uint8([0, 40, 80], 40, 80, "LINEAR_EXACT")) == [0, 128, 255]
    assert list(to_uint8([0, 40, 80], 40, 80, "LINEAR_EXACT", invert=True)) == [255, 128, 0]
