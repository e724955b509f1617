"""The one window/level model (render/window_level) and the opening window of a series,
against values computed by hand; reference lines (render/scout) on known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.render.scout import reference_line
from app.render.voi import voi_linear, voi_sigmoid
from app.render.window_level import WindowLevel, series_window
from app.render.window_presets import body_width_mm, default_preset, presets_for
from app.volume.geometry import VolumeGeometry


def test_display_uses_the_files_function_and_inversion() -> None:
    stored = np.array([[0, 1024, 1064, 1104]], dtype=np.int16)  # HU -1024, 0, 40, 80
    hu = stored * 1.0 - 1024.0
    sigmoid = WindowLevel(40, 80, function="SIGMOID")
    np.testing.assert_array_equal(sigmoid.display(stored, 1.0, -1024.0),
                                  np.rint(voi_sigmoid(hu, 40, 80)).astype(np.uint8))
    mono1 = WindowLevel(40, 80, invert=True)
    np.testing.assert_array_equal(mono1.display(stored, 1.0, -1024.0),
                                  255 - np.rint(voi_linear(hu, 40, 80)).astype(np.uint8))


def test_drag_and_lut_cache() -> None:
    window = WindowLevel(40, 80)
    window.drag(30, -60)  # 300 px across change the width by its own size
    assert window.pair == pytest.approx((40 - 60 * 80 / 300, 80 + 30 * 80 / 300))
    stored = np.zeros((4, 4), np.int16)
    for i in range(20):
        window.set(40 + i, 80)
        window.display(stored, 1.0, 0.0)
    assert len(window._luts) <= 8  # bounded while dragging
    unknown = WindowLevel()
    unknown.drag(10, 10)
    assert not unknown.known and math.isnan(unknown.center)


def test_unknown_window_falls_back_to_the_values() -> None:
    window = WindowLevel()
    window.display(np.arange(100, dtype=np.int16).reshape(10, 10), 1.0, 0.0)
    assert window.known and 0 < window.center < 100


def _head_slice(width_mm: float, pixel: float = 1.0) -> np.ndarray:
    n = 512
    yy, xx = np.mgrid[:n, :n]
    r = width_mm / pixel / 2
    return np.where((xx - n / 2) ** 2 + (yy - n / 2) ** 2 <= r * r, 40.0, -1000.0)


def test_series_window_order_file_preset_head_auto() -> None:
    assert series_window(file_window=(35, 100), modality="CT", body_part="", texts=(),
                         values=None, pixel_mm=1) == (35, 100)
    assert series_window(file_window=None, modality="CT", body_part="HEAD", texts=(),
                         values=None, pixel_mm=1) == (40, 80)
    assert series_window(file_window=None, modality="CT", body_part="",
                         texts=("CTA Circle of Willis",), values=None, pixel_mm=1) == (150, 600)
    # a CT naming no body part waits for a slice, then a head-sized body means the brain
    assert series_window(file_window=None, modality="CT", body_part="", texts=(), values=None,
                         pixel_mm=1) is None
    assert series_window(file_window=None, modality="CT", body_part="", texts=(),
                         values=_head_slice(160), pixel_mm=1) == (40, 80)
    chest = series_window(file_window=None, modality="CT", body_part="", texts=(),
                          values=_head_slice(340), pixel_mm=1)
    assert chest is not None and chest != (40, 80)  # from its values
    assert body_width_mm(_head_slice(160), 1.0) == pytest.approx(160, abs=2)
    assert default_preset("MR", "BRAIN") is None  # HU presets mean nothing for MR


def test_preset_labels_read_like_the_overlay() -> None:
    brain = next(p for p in presets_for("CT") if p.name == "Brain")
    assert brain.label == "1  Brain  (W 80 / L 40)"


def _axial(n: int = 10) -> VolumeGeometry:
    return VolumeGeometry(affine=np.diag([0.5, 0.5, 2.0, 1.0]), shape=(n, 100, 80))


def _coronal() -> VolumeGeometry:
    # rows along +x, columns along -z (down the patient), slices along +y
    affine = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, -1.0, 0, 10.0], [0, 0, 0, 1]])
    return VolumeGeometry(affine=affine, shape=(50, 20, 40))


def test_reference_line_of_a_coronal_plane_on_an_axial_slice() -> None:
    axial, coronal = _axial(), _coronal()
    (a, b) = reference_line(axial, 3, coronal, 12)  # coronal slice 12 is at y = 12 mm
    assert a[1] == pytest.approx(b[1]) == pytest.approx(12.0 / 0.5 * 0.5 + 0.25)
    assert sorted([a[0], b[0]]) == pytest.approx([0.0, 40.0])  # across the whole slice
    (c, d) = reference_line(coronal, 12, axial, 3)  # axial slice 3 is at z = 6 mm
    assert c[1] == pytest.approx(d[1]) == pytest.approx(10.0 - 6.0 + 0.5)
    assert reference_line(axial, 3, axial, 5) is None  # parallel
