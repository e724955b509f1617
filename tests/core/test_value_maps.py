"""Palettes and real-world values read from real files (PS3.3 C.7.6.19, C.7.6.16.2.11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.dicom.value_maps import read_value_maps

pytestmark = pytest.mark.usefixtures("data")

PERFUSION = "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm"
PHILIPS_T1 = "mr-brain/philips-elition-t1-mprage-sag/1301_0001.dcm"
PLAIN_CT = "ct-head/visible-human-male-head-1mm/vhm.1001.dcm"


def test_the_rcbf_map_has_its_palette_and_its_unit(data: Path) -> None:
    ds = pydicom.dcmread(data / PERFUSION, stop_before_pixels=True)
    assert ds.PixelPresentation == "COLOR"
    entries, first, bits = ds.RedPaletteColorLookupTableDescriptor
    maps = read_value_maps(str(data / PERFUSION))
    assert maps.palette is not None and maps.palette.first == first == 1024
    red = np.frombuffer(ds.RedPaletteColorLookupTableData, "<u2")
    assert bits == 16 and len(maps.palette.rgb) == entries == 100
    assert list(maps.palette.rgb[:, 0]) == [v >> 8 for v in red]
    # every frame: RCBF = stored - 1024, in ml/100ml/s (UCUM), from the shared groups
    assert len(maps.real_world) == 2
    rcbf = maps.of_frame(1)
    assert rcbf is not None
    assert rcbf.readout(1066) == "RCBF 42 ml/100ml/s"
    assert rcbf.readout(5000) == ""  # past Real World Value Last Value Mapped (4095)


def test_the_palette_colours_its_range_and_leaves_the_rest_grey(data: Path) -> None:
    palette = read_value_maps(str(data / PERFUSION)).palette
    assert palette is not None
    stored = np.array([[0, 1023, 1024], [1070, 1123, 1124]], np.uint16)
    grey = np.array([[0, 10, 20], [30, 40, 50]], np.uint8)
    rgb = palette.colour(stored, grey)
    assert rgb.shape == (2, 3, 3)
    for j, i in ((0, 0), (0, 1), (1, 2)):  # outside 1024..1123: the window's grey
        assert list(rgb[j, i]) == [grey[j, i]] * 3
    for j, i in ((0, 2), (1, 0), (1, 1)):
        assert list(rgb[j, i]) == list(palette.rgb[stored[j, i] - 1024])


def test_a_mapping_without_a_unit_reads_as_a_bare_number(data: Path) -> None:
    """Philips writes a "no units" (UCUM "1") mapping labelled "Philips" on every MR: the
    readout is the value, not "Philips 1181"."""
    maps = read_value_maps(str(data / PHILIPS_T1))
    assert maps.palette is None
    mapping = maps.of_frame(0)
    assert mapping is not None and mapping.unit == "" and mapping.label == ""
    assert mapping.readout(500) == f"{500 * 2.36166056166056:.0f}"


def test_a_plain_ct_has_neither(data: Path) -> None:
    maps = read_value_maps(str(data / PLAIN_CT))
    assert maps.palette is None and maps.real_world == ()


def test_real_world_values_of_a_slice_computed_by_hand() -> None:
    """A whole slice in the mapping's quantity, as the probe reads one value: what a region's
    mean is taken over. A stored value outside the values mapped has no quantity (NaN)."""
    from app.dicom.value_maps import Quantity, RealWorldValues

    linear = RealWorldValues("RCBF", "ml/100ml/s", first=1024, last=2047, slope=0.5,
                             intercept=-512)
    stored = np.array([[1000, 1024, 1100], [2047, 2048, 1066]], np.uint16)
    out = linear.values(stored)
    assert out.dtype == np.float32
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1])
    assert out[0, 1] == 0.0 and out[0, 2] == 38.0 and out[1, 0] == 511.5 and out[1, 2] == 21.0
    assert linear.quantity == Quantity("RCBF", "ml/100ml/s", 1)  # steps of 0.5: one decimal
    assert linear.readout(1100) == linear.quantity.text(38.0) == "RCBF 38.0 ml/100ml/s"
    table = RealWorldValues("T", "s", first=10, last=12, lut=(1.0, 2.5, 4.0))
    assert table.values(np.array([9, 10, 11, 12, 13])).tolist()[1:4] == [1.0, 2.5, 4.0]
    assert np.isnan(table.values(np.array([9, 13]))).all()
    assert Quantity(unit="HU").text(35.0) == "35 HU"
