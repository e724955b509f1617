"""DICOM JSON metadata into headers and slice plans (no hub needed)."""

from __future__ import annotations

import numpy as np

from app.net.metadata import header_of, headers_of, plan_of, strip_binary, study_of


def _item(k: int, **extra) -> dict:
    item = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00080018": {"vr": "UI", "Value": [f"1.2.3.4.{k}"]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "0008103E": {"vr": "LO", "Value": ["Axial"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00200011": {"vr": "IS", "Value": [3]},
        "00200013": {"vr": "IS", "Value": [k + 1]},
        "00200032": {"vr": "DS", "Value": [-10.0, -20.0, 5.0 - 2.5 * k]},
        "00200037": {"vr": "DS", "Value": [1, 0, 0, 0, 1, 0]},
        "00200052": {"vr": "UI", "Value": ["1.2.3.9"]},
        "00280002": {"vr": "US", "Value": [1]},
        "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
        "00280010": {"vr": "US", "Value": [64]},
        "00280011": {"vr": "US", "Value": [32]},
        "00280030": {"vr": "DS", "Value": [0.5, 0.75]},
        "00280100": {"vr": "US", "Value": [16]},
        "00280101": {"vr": "US", "Value": [12]},
        "00280103": {"vr": "US", "Value": [1]},
        "00281050": {"vr": "DS", "Value": [40, 400]},
        "00281051": {"vr": "DS", "Value": [80, 2000]},
        "00281052": {"vr": "DS", "Value": [-1024]},
        "00281053": {"vr": "DS", "Value": [1]},
        "00291010": {"vr": "OB", "InlineBinary": "AAEC"},
        "00081140": {"vr": "SQ", "Value": [{"00081150": {"vr": "UI", "Value": ["1.2"]},
                                            "00091001": {"vr": "OB",
                                                         "BulkDataURI": "http://x/1"}}]},
        "7FE00010": {"vr": "OW", "BulkDataURI": "http://hub/studies/1.2.3/bulk/7FE00010"},
    }
    item.update(extra)
    return item


def test_binary_values_are_left_out_also_in_sequences():
    clean = strip_binary(_item(0))
    assert "7FE00010" not in clean and "00291010" not in clean
    assert clean["00081140"]["Value"] == [{"00081150": {"vr": "UI", "Value": ["1.2"]}}]


def test_header_from_dicom_json():
    h = header_of(_item(2))
    info = h.instance.image
    assert info is not None
    assert (info.rows, info.columns, info.bits_stored, info.pixel_representation) == (64, 32, 12,
                                                                                       1)
    assert info.position == (-10.0, -20.0, 0.0)
    assert info.pixel_spacing == (0.5, 0.75)
    assert (info.window_center, info.window_width) == (40.0, 80.0)  # first of multi-valued DS
    assert (info.rescale_slope, info.rescale_intercept) == (1.0, -1024.0)
    assert info.pixel_offset is None  # where the pixels sit is known once the file is here
    assert h.patient.patient_name == "DOE^JANE"
    assert h.series.series_number == 3 and h.instance.instance_number == 3
    assert h.series.frame_of_reference_uid == "1.2.3.9"


def test_plan_from_metadata_sorts_along_the_normal():
    items = [_item(k) for k in (3, 0, 2, 1)]
    plan = plan_of(headers_of(items))
    stack = plan.main
    assert stack is not None and not plan.issues
    assert stack.shape == (4, 64, 32)
    assert [s.sop_instance_uid for s in stack.slices] == [f"1.2.3.4.{k}" for k in (3, 2, 1, 0)]
    assert np.allclose(np.diff(stack.positions[:, 2]), 2.5)
    assert stack.geometry.frame_of_reference_uid == "1.2.3.9"


def test_unreadable_items_are_skipped_and_study_built_from_listing():
    bad = {"00080018": {"vr": "UI", "Value": ["1.9"]}, "00280010": {"vr": "US", "Value": [0]},
           "00280011": {"vr": "US", "Value": [0]}}
    headers = headers_of([_item(0), bad, "junk"])  # type: ignore[list-item]
    assert [h.instance.sop_instance_uid for h in headers] == ["1.2.3.4.0"]
    listing = [{"0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
                "00201209": {"vr": "IS", "Value": [4]}},
               {"0020000E": {"vr": "UI", "Value": ["1.2.3.5"]},
                "00080060": {"vr": "CS", "Value": ["SR"]}}]
    study = study_of("1.2.3", listing, {"1.2.3.4": headers})
    assert [s.instance_count for s in study.series] == [4, 0]
    assert study.series[0].series_description == "Axial" and study.series[1].modality == "SR"
    assert study.patient.patient_name == "DOE^JANE" and study.modalities == ("CT", "SR")


def test_enhanced_multiframe_geometry_from_functional_groups():
    def sq(*items):
        return {"vr": "SQ", "Value": list(items)}

    def frame(z):
        return {"00209113": sq({"00200032": {"vr": "DS", "Value": [0, 0, z]}})}

    item = _item(0)
    for tag in ("00200032", "00200037", "00280030"):
        del item[tag]
    item["00280008"] = {"vr": "IS", "Value": [3]}
    item["52009229"] = sq({"00289110": sq({"00280030": {"vr": "DS", "Value": [0.6, 0.6]},
                                           "00180050": {"vr": "DS", "Value": [2]}}),
                           "00209116": sq({"00200037": {"vr": "DS",
                                                        "Value": [1, 0, 0, 0, 1, 0]}})})
    item["52009230"] = sq(frame(4.0), frame(0.0), frame(2.0))
    plan = plan_of(headers_of([item]))
    stack = plan.main
    assert stack is not None and stack.shape == (3, 64, 32)
    assert [s.frame for s in stack.slices] == [1, 2, 0]
    assert stack.slices[0].pixel_spacing == (0.6, 0.6)
    assert np.allclose(stack.positions[:, 2], [0.0, 2.0, 4.0])
