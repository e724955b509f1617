"""Findings as DICOM objects: an SR measurement report, a KOS and a GSPS that dciodvfy
accepts, stored in the study, read back as they were written."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from app.imports.importer import import_paths
from app.render.roi import mirror_stats
from app.store.local import Store
from app.tasks import Progress
from app.volume.loader import load_stack
from app.volume.plans import series_plan
from app.workflow.aspects import Aspects
from app.workflow.findings import (
    Display,
    Findings,
    Mark,
    RegionFinding,
    in_view_mm,
    read_findings,
    save_findings,
)
from tests.workflow.stroke_studies import stroke_study

#: dciodvfy compares the Displayed Area corners (SL: signed) as unsigned numbers: a corner left
#: of or above the image (-9 read as 4294967287) is called "not above and to the left of" the
#: other one. PS3.3 C.10.4 lets the area reach past the image (hence SL); the values written
#: are checked by the test itself.
DCIODVFY_UNSIGNED_CORNER = "DisplayedAreaSelectionSequence is internally inconsistent - " \
                           "DisplayedAreaTopLeftHandCorner = (429496"


def dciodvfy_errors(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    assert tool, "dciodvfy (dicom3tools) is needed"
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines()
            if line.startswith("Error") and DCIODVFY_UNSIGNED_CORNER not in line]


@pytest.fixture
def stroke_store(tmp_path: Path) -> Store:
    files = stroke_study(tmp_path / "s", date="20261201", seed=51, cta=False, size=128)
    store = Store(tmp_path / "home")
    import_paths(store, [str(p) for p in files], Progress("test"))
    return store


def test_findings_saved_validate_and_read_back(stroke_store: Store) -> None:
    store = stroke_store
    (study,) = store.studies()
    (series,) = study.series
    sops = [i.sop_instance_uid for i in sorted(store.instances(series.series_instance_uid),
                                               key=lambda i: i.instance_number or 0)]
    # a real measurement on the phantom's left MCA infarct, mirrored across the midline
    volume, _ = load_stack(series_plan(store, series.series_instance_uid).main)
    k = 24
    values = volume.array[k] * float(volume.slope[k]) + float(volume.intercept[k])
    midline = ((128.0, 0.0), (128.0, 256.0))  # 2 mm pixels, 128 columns
    mirrored = mirror_stats(values, "ellipse", (164.0, 120.0), (184.0, 150.0), (2.0, 2.0),
                            midline)
    assert mirrored is not None and mirrored.difference < -8  # the infarct is darker
    region = RegionFinding(sops[k], "ellipse", (164.0, 120.0), (184.0, 150.0),
                           mirrored.here.mean, mirrored.here.sd, mirrored.there.mean,
                           mirrored.there.sd, midline)
    findings = Findings(
        study.study_instance_uid, aspects=Aspects.of([], ["M2", "M5", "I"]),
        aspects_images=(sops[k], sops[k + 8]), regions=(region,), key_images=(sops[k],),
        key_text="Left MCA territory hypodensity, ASPECTS 7",
        marks=(Mark(sops[k], "length", ((20.0, 30.0), (60.0, 30.0)), "40.0 mm"),
               Mark(sops[k], "ellipse", ((164.0, 120.0), (184.0, 150.0))),
               Mark(sops[k], "arrow", ((100.0, 200.0), (150.0, 140.0)))))
    stored = save_findings(store, findings, window=(40.0, 40.0))
    assert len(stored) == 3
    for item in stored:
        path = store.abspath(item.relpath)
        assert dciodvfy_errors(path) == [], pydicom.dcmread(path).Modality
    fresh = store.study(study.study_instance_uid)
    assert fresh is not None
    assert sorted(s.modality for s in fresh.series) == ["CT", "KO", "PR", "SR"]
    back = read_findings(store, fresh)
    assert back is not None and back.aspects is not None
    assert back.aspects.score("left") == 7 and back.aspects.score("right") == 10
    assert back.aspects.affected["left"] == {"M2", "M5", "I"}
    assert back.aspects_images == (sops[k], sops[k + 8])
    (got,) = back.regions
    got = in_view_mm(got, (2.0, 2.0))
    assert (got.p0, got.p1, got.midline) == (region.p0, region.p1, midline)
    assert got.mean == pytest.approx(region.mean) and got.difference == pytest.approx(
        mirrored.difference)
    assert back.key_images == (sops[k],) and back.key_text.startswith("Left MCA")
    assert sorted((m.kind, m.label) for m in back.marks) == [
        ("arrow", ""), ("ellipse", ""), ("length", "40.0 mm")]  # the label with its line
    arrow = next(m for m in back.marks if m.kind == "arrow")
    assert arrow.points == ((50.0, 100.0), (75.0, 70.0))  # tail and tip, in 2 mm pixels


def _pixels(points, mm: float = 2.0):
    return tuple((x / mm, y / mm) for x, y in points)


def test_a_presentation_state_keeps_every_drawing_the_windows_and_the_areas_in_view(
        stroke_store: Store) -> None:
    """Written, read back from the stored file, compared: lengths, arrows, angles, ellipses,
    rectangles, probes and texts with their labels; each series' window and zoom / pan."""
    store = stroke_store
    (study,) = store.studies()
    (series,) = study.series
    sops = [i.sop_instance_uid for i in sorted(store.instances(series.series_instance_uid),
                                               key=lambda i: i.instance_number or 0)]
    marks = (Mark(sops[10], "length", ((20.0, 30.0), (60.0, 30.0)), "40.0 mm"),
             Mark(sops[10], "arrow", ((100.0, 200.0), (150.0, 140.0))),
             Mark(sops[10], "angle", ((10.0, 10.0), (40.0, 40.0), (80.0, 10.0)), "90.0°"),
             Mark(sops[10], "ellipse", ((164.0, 120.0), (184.0, 150.0)),
                  "mean 22.0 SD 3.0 HU"),
             Mark(sops[10], "rect", ((60.0, 60.0), (90.0, 100.0)), "mean 30.1 SD 2.0 HU"),
             Mark(sops[12], "probe", ((128.0, 128.0),), "31 HU"),
             Mark(sops[12], "text", ((40.0, 200.0),), "Hyperdense left MCA"))
    # shown at W 40 / L 36, zoomed on the left hemisphere; another slice at the file's window
    displays = (Display((sops[10], sops[12]), (36.0, 40.0), ((120.0, 60.0), (250.0, 190.0))),
                Display((sops[20],), (40.0, 80.0), ((-20.0, 0.0), (276.0, 256.0))))
    stored = save_findings(store, Findings(study.study_instance_uid, marks=marks,
                                           displays=displays))
    (pr,) = stored
    path = store.abspath(pr.relpath)
    assert dciodvfy_errors(path) == []
    written = pydicom.dcmread(path).DisplayedAreaSelectionSequence
    assert [(list(i.DisplayedAreaTopLeftHandCorner), list(i.DisplayedAreaBottomRightHandCorner))
            for i in written] == [([61, 31], [125, 95]), ([-9, 1], [138, 128])]
    fresh = store.study(study.study_instance_uid)
    assert fresh is not None
    back = read_findings(store, fresh)
    assert back is not None
    assert sorted(back.marks, key=lambda m: (m.sop_instance_uid, m.kind)) == sorted(
        (Mark(m.sop_instance_uid, m.kind, _pixels(m.points), m.label) for m in marks),
        key=lambda m: (m.sop_instance_uid, m.kind))
    got = {d.sop_instance_uids: d for d in back.displays}
    assert set(got) == {(sops[10], sops[12]), (sops[20],)}
    assert got[(sops[10], sops[12])].window == (36.0, 40.0)
    assert got[(sops[10], sops[12])].area == ((60.0, 30.0), (125.0, 95.0))  # pixels
    assert got[(sops[20],)].window == (40.0, 80.0)
    assert got[(sops[20],)].area == ((-10.0, 0.0), (138.0, 128.0))
    # saved again later (another reading): the newest presentation state is the one read
    save_findings(store, Findings(study.study_instance_uid, marks=marks[:1],
                                  displays=displays[1:]))
    again = read_findings(store, store.study(study.study_instance_uid))
    assert again is not None and [m.kind for m in again.marks] == ["length"]
    assert [d.sop_instance_uids for d in again.displays] == [(sops[20],)]


def test_no_findings_in_a_plain_study(stroke_store: Store) -> None:
    (study,) = stroke_store.studies()
    assert read_findings(stroke_store, study) is None


def _units(ds: pydicom.Dataset) -> set[str]:
    """The UCUM codes of every numeric value in an SR."""
    found: set[str] = set()
    for item in ds.get("ContentSequence", []):
        for value in item.get("MeasuredValueSequence", []):
            found.add(value.MeasurementUnitsCodeSequence[0].CodeValue)
        found |= _units(item)
    return found


@pytest.mark.parametrize(("path", "unit"), [
    ("ct-head/visible-human-male-head-1mm", "[hnsf'U]"),
    ("mr-brain/philips-elition-t1-mprage-sag", "1"),
    ("multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm", "1"),  # rCBF, Rescale Type US
], ids=["ct", "mr", "ct-perfusion-map"])
def test_region_values_are_reported_in_hounsfield_units_only_for_ct_that_says_so(
        data: Path, path: str, unit: str) -> None:
    """A region measured on an MR or on a CT perfusion map is not reported in Hounsfield
    units in the SR (they were, whatever the image)."""
    from app.workflow.findings import build_sr

    source = data / path
    file = source if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())[0]
    ds = pydicom.dcmread(file, stop_before_pixels=True)
    region = RegionFinding(ds.SOPInstanceUID, "ellipse", (1.0, 1.0), (5.0, 5.0), 80.0, 4.0,
                           70.0, 5.0)
    sr = build_sr(Findings(ds.StudyInstanceUID, regions=(region,)), {ds.SOPInstanceUID: ds})
    assert _units(sr) == {unit}


def test_a_region_on_a_perfusion_map_is_reported_in_its_real_world_unit(data: Path) -> None:
    """A region measured in a map's real-world values (RCBF in ml/100ml/s) says so in the SR;
    it said "no units"."""
    from app.workflow.findings import build_sr

    ds = pydicom.dcmread(data / "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm",
                         stop_before_pixels=True)
    region = RegionFinding(ds.SOPInstanceUID, "ellipse", (1.0, 1.0), (5.0, 5.0), 42.0, 4.0,
                           unit="ml/100ml/s")
    sr = build_sr(Findings(ds.StudyInstanceUID, regions=(region,)), {ds.SOPInstanceUID: ds})
    assert _units(sr) == {"ml/100ml/s"}
    hu = RegionFinding(ds.SOPInstanceUID, "ellipse", (1.0, 1.0), (5.0, 5.0), 42.0, 4.0, unit="HU")
    sr = build_sr(Findings(ds.StudyInstanceUID, regions=(hu,)), {ds.SOPInstanceUID: ds})
    assert _units(sr) == {"[hnsf'U]"}


def _graphic_data(ds: pydicom.Dataset) -> list[list[float]]:
    """Every GraphicData in an SR or a presentation state, in the order written."""
    return [[float(v) for v in e.value] for e in ds.iterall() if e.keyword == "GraphicData"]


def test_a_region_on_an_enhanced_image_is_written_in_its_pixels(data: Path) -> None:
    """The rCBF map (an enhanced CT) gives its Pixel Spacing (0.388672 mm) in its functional
    groups, not at the top of the file: the SR and the presentation state took 1 mm pixels, so
    a rectangle over pixels 10…30 was written over pixels 3.9…11.7. They are written in the
    image's pixels now."""
    from app.workflow.findings import build_gsps, build_sr

    ds = pydicom.dcmread(data / "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm",
                         stop_before_pixels=True)
    mm = 0.388672
    p0, p1 = (10 * mm, 20 * mm), (30 * mm, 40 * mm)
    region = RegionFinding(ds.SOPInstanceUID, "rect", p0, p1, 42.0, 4.0)
    sr = build_sr(Findings(ds.StudyInstanceUID, regions=(region,)), {ds.SOPInstanceUID: ds})
    rectangle = [10, 20, 30, 20, 30, 40, 10, 40, 10, 20]
    assert _graphic_data(sr) == [pytest.approx(rectangle, abs=1e-3)]
    pr = build_gsps([Mark(ds.SOPInstanceUID, "rect", (p0, p1))], {ds.SOPInstanceUID: ds})
    assert _graphic_data(pr) == [pytest.approx(rectangle, abs=1e-3)]


def _region_image_refs(sr: pydicom.Dataset) -> list[pydicom.Dataset]:
    """The image references of every region outline (SCOORD) in an SR."""
    out: list[pydicom.Dataset] = []
    for item in sr.get("ContentSequence", []):
        if item.get("ValueType") == "SCOORD":
            out += [c.ReferencedSOPSequence[0] for c in item.ContentSequence]
        out += _region_image_refs(item)
    return out


@pytest.mark.parametrize(("path", "frame"), [
    ("multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm", 2),  # rCBF map, 2 frames
    ("multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm", 1),
    ("ct-head/visible-human-male-head-1mm", None),  # classic CT, one image a file
], ids=["map-frame-2", "map-frame-1", "ct"])
def test_a_region_on_a_multi_frame_image_names_its_frame_in_the_sr(
        data: Path, path: str, frame: int | None) -> None:
    """A region drawn on frame 2 of the 2-frame rCBF map was referenced as the whole image (no
    Referenced Frame Number): a reader of the SR could not tell which frame it outlines. It
    names its frame now, and reads back with it; a single-frame image's reference names none."""
    from app.workflow.findings import build_sr, parse_sr

    source = data / path
    file = source if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())[0]
    ds = pydicom.dcmread(file, stop_before_pixels=True)
    region = RegionFinding(ds.SOPInstanceUID, "rect", (1.0, 1.0), (5.0, 5.0), 42.0, 4.0,
                           frame=frame)
    sr = build_sr(Findings(ds.StudyInstanceUID, regions=(region,)), {ds.SOPInstanceUID: ds})
    (ref,) = _region_image_refs(sr)
    assert ref.ReferencedSOPInstanceUID == ds.SOPInstanceUID
    if frame is None:
        assert "ReferencedFrameNumber" not in ref
    else:
        assert int(ref.ReferencedFrameNumber) == frame
    sr = pydicom.dcmread(BytesIO(_bytes(sr)))
    (back,) = parse_sr(sr).regions
    assert (back.sop_instance_uid, back.frame) == (ds.SOPInstanceUID, frame)


def _bytes(ds: pydicom.Dataset) -> bytes:
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize(("path", "frames"), [
    ("multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm", (1, 2)),  # rCBF map, 2 frames
    ("ct-head/visible-human-male-head-1mm", (None,)),  # classic CT, one image a file
], ids=["map", "ct"])
def test_a_drawing_on_a_multi_frame_image_names_its_frame_in_the_presentation_state(
        data: Path, tmp_path: Path, path: str, frames: tuple[int | None, ...]) -> None:
    """Drawings on frames 1 and 2 of the 2-frame rCBF map were referenced as the whole image
    (Mark had no frame; no Referenced Frame Number): read back, nobody could tell which frame
    they were on. Each graphic annotation names its frame now, and reads back with it; a
    single-frame image's reference names none."""
    source = data / path
    file = source if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())[0]
    store = Store(tmp_path / "home")
    import_paths(store, [str(file)], Progress("test"))
    ds = pydicom.dcmread(file, stop_before_pixels=True)
    sop = ds.SOPInstanceUID
    marks = tuple(m for n, frame in enumerate(frames) for m in (
        Mark(sop, "arrow", ((10.0, 20.0), (30.0, 40.0)), frame=frame),
        Mark(sop, "text", ((5.0, 6.0),), f"frame {frame}", frame=frame)))
    (pr,) = save_findings(store, Findings(ds.StudyInstanceUID, marks=marks))
    written = store.abspath(pr.relpath)
    assert dciodvfy_errors(written) == []
    refs = [a.ReferencedImageSequence
            for a in pydicom.dcmread(written).GraphicAnnotationSequence]
    assert all(len(r) == 1 and r[0].ReferencedSOPInstanceUID == sop for r in refs)
    named = sorted({int(r[0].ReferencedFrameNumber) if "ReferencedFrameNumber" in r[0]
                    else 0 for r in refs})
    assert named == sorted(f or 0 for f in frames)
    study = store.study(ds.StudyInstanceUID)
    assert study is not None
    back = read_findings(store, study)
    assert back is not None
    got = sorted(((m.frame or 0), m.kind, m.label) for m in back.marks)
    assert got == sorted((f or 0, k, label) for f in frames
                         for k, label in (("arrow", ""), ("text", f"frame {f}")))
