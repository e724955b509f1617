"""What the reading window writes over real images agrees with their files: orientation letters
and slice positions only where the files give them, units only where the files mean them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.dicom.header import read_header, value_unit
from app.imports.importer import import_paths
from app.store.local import Store
from app.ui.main_window import MainWindow
from tests.ui.conftest import reading_window

pytestmark = pytest.mark.usefixtures("data")

WHOLE_BODY = "compressed/jpeg-lossless/JPEG-LL.dcm"  # NM, no Image Position/Orientation
SMALL_EMR = "multiframe/small-enhanced-ct-mr/emri_small.dcm"  # 10 frames, no plane data
HEAD_CT = "ct-head/visible-human-male-head-1mm"
PERFUSION = "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm"  # rCBF, Rescale Type US
DWI = "multiframe/siemens-xa30-enhanced-mr-dwi-adc"  # ADC and trace: 39 frames in each file
TILTED = "ct-head/ge-hispeed-human-gantry-tilt"  # window 35/100 and 35/85 in its files


@pytest.fixture(scope="module")
def truth_home(tmp_path_factory, data: Path) -> Path:
    home = tmp_path_factory.mktemp("overlay-truth")
    import_paths(Store(home), [str(data / WHOLE_BODY), str(data / SMALL_EMR),
                               str(data / HEAD_CT), str(data / PERFUSION), str(data / DWI),
                               str(data / TILTED)])
    return home


@pytest.fixture
def window(qtbot, truth_home: Path) -> MainWindow:
    yield from reading_window(qtbot, truth_home, 1000, 700)


def _open(qtbot, window: MainWindow, path: Path):
    """The study of the file ``path`` opened; its first viewport once its image is drawn."""
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    viewer = window.open_study(uid)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.image.image is not None, timeout=30_000)
    return viewer, vp


def _on_each_frame(qtbot, window: MainWindow, data: Path, draw):
    """The 2-frame rCBF map opened, and on each frame k the annotations ``draw(k, dx, dy)``
    gives (once the frame's values are known)."""
    viewer, vp = _open(qtbot, window, data / PERFUSION)
    assert vp.n_slices == 2
    _, dy, dx = vp.volume.spacing
    for k in (0, 1):
        vp.show_slice(k)
        qtbot.waitUntil(lambda k=k: vp.session.slice_values(k) is not None, timeout=10_000)
        for note in draw(k, dx, dy):
            vp._add_note(note)
    return viewer, vp


def _hover(vp, row: int, col: int) -> str:
    """The value under a real mouse move to pixel (``row``, ``col``) of the slice in view."""
    _, dy, dx = vp.volume.spacing
    scene = vp.view.mapViewToScene(QPointF((col + 0.5) * dx, (row + 0.5) * dy))
    pos = QPointF(vp.canvas.mapFromScene(scene))
    target = vp.canvas.viewport()
    QApplication.sendEvent(target, QMouseEvent(
        QEvent.Type.MouseMove, pos, target.mapToGlobal(pos), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    return str(vp.probe_text)


@pytest.mark.parametrize("name", [WHOLE_BODY, SMALL_EMR])
def test_images_without_orientation_show_no_letters_and_no_position(
        qtbot, window: MainWindow, data: Path, name: str) -> None:
    """A whole-body bone scan (head at the top) said "A" at the top and "R"/"L" at the sides, and
    a slice position in mm: none of it is in the files (no Image Orientation / Position)."""
    ds = pydicom.dcmread(data / name, stop_before_pixels=True)
    assert "ImageOrientationPatient" not in ds and "PerFrameFunctionalGroupsSequence" not in ds
    _, vp = _open(qtbot, window, data / name)
    for k in range(vp.n_slices):
        vp.show_slice(k)
        assert vp.edge_labels() == {}
        assert "mm" not in vp.corners().bottom_left[1], vp.corners().bottom_left
    vp.flip()
    vp.rotate_90()
    assert vp.edge_labels() == {}
    vp.grab()  # paints without letters and without error


def test_mpr_of_images_without_orientation_shows_no_letters(
        qtbot, window: MainWindow, data: Path) -> None:
    """MPR of a stack without plane data said R/L, A/P and H/F, as if it were an axial stack."""
    viewer, _ = _open(qtbot, window, data / SMALL_EMR)
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None, timeout=30_000)
    assert any("no position data" in note for note in mpr.source.notes)
    for view in mpr.views.values():
        assert view.grid is not None and view.edge_labels() == {}
        view.grab()


def test_mpr_of_a_positioned_head_ct_keeps_its_letters(
        qtbot, window: MainWindow, data: Path) -> None:
    viewer, _ = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None, timeout=30_000)
    assert mpr.views["axial"].edge_labels() == {"left": "R", "right": "L", "top": "A",
                                                "bottom": "P"}
    assert mpr.views["coronal"].edge_labels()["top"] == "H"


def test_a_positioned_head_ct_keeps_its_letters_and_positions(
        qtbot, window: MainWindow, data: Path) -> None:
    files = sorted((data / HEAD_CT).iterdir())
    _, vp = _open(qtbot, window, files[0])
    assert vp.edge_labels() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    vp.show_slice(0)
    z = min(float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
            for f in files)
    assert f"{z:+.1f} mm" in vp.corners().bottom_left[1]


def test_an_mpr_plane_and_the_2d_slice_it_cuts_say_the_same_position(
        qtbot, window: MainWindow, data: Path) -> None:
    """The axial MPR plane through slice z = 1122 mm of the head CT said "Position +0.0 mm"
    (its distance from the volume's centre) while the 2D view of that slice said +1122.0 mm."""
    viewer, vp = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None, timeout=30_000)
    z = float(mpr.crosshair.plane("axial").center[2])
    assert z == pytest.approx(1122.0, abs=0.6)  # the middle of 1000…1244
    assert mpr.corner_lines("axial")[1] == f"Position {z:+.1f} mm"
    viewer.set_layout("1×1")
    vp.show_slice(round(z - 1000.0))
    assert f"{z:+.1f} mm" in vp.corners().bottom_left[1]
    x = float(mpr.crosshair.plane("sagittal").center[0])
    assert mpr.corner_lines("sagittal")[1] == f"Position {-x:+.1f} mm"  # normal: to the right
    # no position data: no position
    viewer2, _ = _open(qtbot, window, data / SMALL_EMR)
    mpr2 = viewer2.show_mpr()
    qtbot.waitUntil(lambda: mpr2.source is not None, timeout=30_000)
    assert not any("Position" in line for line in mpr2.corner_lines("axial"))


def test_a_ct_perfusion_map_is_not_read_out_in_hounsfield_units(
        qtbot, window: MainWindow, data: Path) -> None:
    """An enhanced CT rCBF map (Rescale Type "US", values in ml/100ml/s) was read out, and its
    regions measured, in "HU" like a plain CT."""
    viewer, vp = _open(qtbot, window, data / PERFUSION)
    text = _hover(vp, 256, 256)
    assert text.startswith("(256, 256)") and "HU" not in text, text
    header = read_header((data / PERFUSION).read_bytes())
    assert header.instance.image is not None and header.instance.image.rescale_type == "US"
    assert vp.session.modality == "CT" and vp.session.value_unit == ""
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None and mpr.views["axial"].shown is not None,
                    timeout=30_000)
    assert "HU" not in mpr.value_text("axial", 10, 10)


@pytest.mark.parametrize(("name", "unit"), [
    ("mr-brain/philips-elition-t1-mprage-sag", ""),  # Rescale Type "normalized"
    ("multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm", ""),  # "US"
    ("ct-head/ge-hispeed-human-gantry-tilt", "HU"),  # none: a CT's values are HU
])
def test_only_hounsfield_units_are_printed_as_a_unit(data: Path, name: str, unit: str) -> None:
    path = data / name
    first = sorted(path.iterdir())[0] if path.is_dir() else path
    header = read_header(first.read_bytes())
    assert header.instance.image is not None
    assert value_unit(header.series.modality, header.instance.image.rescale_type) == unit


def test_a_plain_ct_is_read_out_in_hounsfield_units(qtbot, window: MainWindow,
                                                     data: Path) -> None:
    _, vp = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    assert vp.session.value_unit == "HU"
    assert _hover(vp, 256, 256).endswith(" HU")


def test_the_series_strip_counts_the_frames_of_multi_frame_objects(
        qtbot, window: MainWindow, data: Path) -> None:
    """The ADC and trace-weighted DWI (one enhanced MR file of 39 images each) were listed as
    "MR · 1 im" beside a view that says "Im 20 / 39"."""
    adc = next((data / DWI).rglob("*ADC*/*"))
    assert int(pydicom.dcmread(adc, stop_before_pixels=True).NumberOfFrames) == 39
    viewer, vp = _open(qtbot, window, adc)
    labels = [viewer.strip.item(row).text() for row in range(viewer.strip.count())]
    assert len(labels) == 2 and all(label.endswith("MR · 39 im") for label in labels), labels
    assert vp.corners().bottom_left[1].startswith(f"Im {vp.state.k + 1} / 39")
    # single-frame series are counted as before
    ct_viewer, _ = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    assert ct_viewer.strip.item(0).text().endswith("CT · 245 im")


def test_enhanced_objects_show_the_slice_thickness_of_their_frames(
        qtbot, window: MainWindow, data: Path) -> None:
    """The DWI (3 mm, per frame) and the CT perfusion map (10 mm, shared) showed no thickness:
    enhanced objects keep it in their Pixel Measures functional group, not at the top level."""
    adc = next((data / DWI).rglob("*ADC*/*"))
    ds = pydicom.dcmread(adc, stop_before_pixels=True)
    assert "SliceThickness" not in ds
    frame = ds.PerFrameFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(frame.SliceThickness) == 3.0
    _, vp = _open(qtbot, window, adc)
    assert vp.corners().bottom_left[1].endswith("th 3 mm"), vp.corners().bottom_left
    _, ct = _open(qtbot, window, data / PERFUSION)
    assert ct.corners().bottom_left[1].endswith("th 10 mm"), ct.corners().bottom_left
    _, head = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    assert head.corners().bottom_left[1].endswith("th 1 mm")  # a classic file's, as before


def test_key_0_gives_the_files_window_and_keeps_the_zoom_and_turns(
        qtbot, window: MainWindow, data: Path) -> None:
    """Help says "0 = file's window"; in 2D it also threw away the zoom, pan, flips and turns
    the reader had set (MPR's 0 only changes the window)."""
    viewer, vp = _open(qtbot, window, sorted((data / TILTED).iterdir())[0])
    opening = vp.session.opening_window(vp.state.k)
    assert opening is not None
    vp.set_window(300.0, 1500.0)
    vp.view.scaleBy((0.5, 0.5))
    vp.flip()
    vp.rotate_90()
    zoom, letters, turns = vp.zoom_factor(), vp.edge_labels(), vp.quarter_turns
    assert turns != 0
    QTest.keyClick(vp, "0")
    assert (vp.state.center, vp.state.width) == opening
    assert vp.zoom_factor() == pytest.approx(zoom) and vp.edge_labels() == letters
    assert vp.flipped_h and vp.quarter_turns == turns
    vp.set_window(300.0, 1500.0)
    viewer._reset_to_file_window()  # the presets menu's "0  File's window"
    assert (vp.state.center, vp.state.width) == opening
    assert vp.zoom_factor() == pytest.approx(zoom)
    QTest.keyClick(vp, "r")  # R still resets everything
    assert not vp.flipped_h and vp.quarter_turns == 0


def test_orientation_letters_stay_clear_of_the_corner_texts_in_narrow_views(
        qtbot, window: MainWindow, data: Path) -> None:
    """In three views side by side on a laptop the bottom "P" was written over the end of
    "Im 71 / 140   +764.2 mm   th 1 mm" (read "th 1 mP")."""
    viewer, vp = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    viewer.set_layout("1×3")
    for other in viewer.visible_viewports()[1:]:
        other.set_series(vp.session, vp.state.k)
    qtbot.waitUntil(lambda: all(v.volume is not None for v in viewer.visible_viewports()))
    for view in viewer.visible_viewports():
        rect = QRectF(view.canvas.viewport().rect())
        assert rect.width() < 400  # narrow: the texts would meet in the middle
        blocks, letters = view.overlay_boxes(rect)
        assert set(letters) == {"left", "right", "top", "bottom"}
        for edge, box in letters.items():
            assert rect.contains(box), edge
            assert not any(box.intersects(block) for block in blocks), (edge, box, blocks)
        assert letters["bottom"].center().x() == pytest.approx(rect.center().x(), abs=1)
        view.grab()
    viewer.set_layout("1×1")  # wide: the letters sit on the edges as before
    rect = QRectF(vp.canvas.viewport().rect())
    _, letters = vp.overlay_boxes(rect)
    assert letters["bottom"].bottom() == pytest.approx(rect.bottom() - 8, abs=0.5)
    assert letters["top"].top() == pytest.approx(rect.top() + 8, abs=0.5)


def test_a_perfusion_map_is_shown_in_its_palette_with_its_real_world_values(
        qtbot, window: MainWindow, data: Path) -> None:
    """The rCBF map (Pixel Presentation COLOR, a Supplemental Palette Color LUT for stored
    values 1024…1123, Real World Value Mapping "RCBF" in ml/100ml/s) was shown in grey, and
    read out as a bare modality value; a workstation shows it in its colours with a colour bar
    and reads "RCBF 42 ml/100ml/s"."""
    ds = pydicom.dcmread(data / PERFUSION, stop_before_pixels=True)
    red = np.frombuffer(ds.RedPaletteColorLookupTableData, "<u2") >> 8
    green = np.frombuffer(ds.GreenPaletteColorLookupTableData, "<u2") >> 8
    _, vp = _open(qtbot, window, data / PERFUSION)
    qtbot.waitUntil(lambda: vp.image.image is not None and vp.image.image.ndim == 3,
                    timeout=10_000)
    stored = vp.volume.array[vp.state.k]
    shown = vp.image.image
    j, i = map(int, np.argwhere((stored >= 1024) & (stored < 1124))[len(stored) // 2])
    index = int(stored[j, i]) - 1024
    assert (int(shown[j, i, 0]), int(shown[j, i, 1])) == (red[index], green[index])
    j0, i0 = map(int, np.argwhere(stored == 0)[0])  # outside the palette: grey
    assert len(set(shown[j0, i0].tolist())) == 1
    assert _hover(vp, j, i) == f"({i}, {j})  RCBF {int(stored[j, i]) - 1024} ml/100ml/s"
    assert vp.colour_bar_texts() == ("0", "99", "RCBF ml/100ml/s")
    vp.grab()  # paints the colour bar without error


def test_a_region_on_a_perfusion_map_is_measured_and_saved_in_its_real_world_unit(
        qtbot, window: MainWindow, data: Path) -> None:
    """A region on the rCBF map said "mean 42.3 SD 5.1" (modality values, no unit) and the
    findings SR wrote it in "no units"; a reader writes down "RCBF mean … ml/100ml/s"."""
    from app.ui.annotations import Annotation
    from app.ui.stroke import collect_findings
    from app.workflow.findings import build_sr, source_headers

    viewer, vp = _open(qtbot, window, data / PERFUSION)
    k = vp.state.k
    qtbot.waitUntil(lambda: vp.session.real_world(k) is not None, timeout=10_000)
    stored = vp.volume.array[k]
    j, i = map(int, np.argwhere((stored >= 1024) & (stored < 1124))[len(stored) // 2])
    _, dy, dx = vp.volume.spacing
    item = vp._add_note(Annotation("rect", [((i - 4) * dx, (j - 4) * dy),
                                            ((i + 4) * dx, (j + 4) * dy)]))
    rcbf = stored[j - 4:j + 4, i - 4:i + 4].astype(np.float64) - 1024  # RCBF = stored - 1024
    first = f"RCBF mean {rcbf.mean():.1f} SD {rcbf.std():.1f} ml/100ml/s"
    assert item.text().splitlines()[0] == first
    assert item.text().splitlines()[1] == f"min {rcbf.min():.0f} max {rcbf.max():.0f}"
    vp._add_note(Annotation("probe", [((i + 0.5) * dx, (j + 0.5) * dy)]))
    assert vp._items[-1].text() == f"RCBF {int(stored[j, i]) - 1024} ml/100ml/s"
    findings = collect_findings(viewer)
    (region,) = findings.regions
    assert region.unit == "ml/100ml/s" and region.mean == pytest.approx(rcbf.mean())
    assert [m.label for m in findings.marks] == [first, vp._items[-1].text()]
    sr = build_sr(findings, source_headers(window.store, [region.sop_instance_uid]))
    units = {e.value[0].CodeValue for e in sr.iterall()
             if e.keyword == "MeasurementUnitsCodeSequence"}
    assert units == {"ml/100ml/s"}


def test_mpr_of_a_perfusion_map_reads_its_real_world_values(
        qtbot, window: MainWindow, data: Path) -> None:
    """MPR's value under the mouse on the rCBF map was a bare modality value ("42"); the 2D
    view of the same map says "RCBF 42 ml/100ml/s", and so does MPR now."""
    viewer, vp = _open(qtbot, window, data / PERFUSION)
    qtbot.waitUntil(lambda: vp.session.real_world(0) is not None, timeout=10_000)
    qtbot.waitUntil(lambda: vp.session.volume.finished, timeout=30_000)  # both frames decoded
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None and mpr.views["axial"].shown is not None
                    and mpr.views["axial"].full_quality, timeout=30_000)
    pixels = mpr.views["axial"].shown.pixels
    row, col = map(int, np.argwhere((pixels >= 1024) & (pixels < 1124))[0])
    assert mpr.value_text("axial", row, col) == f"RCBF {int(pixels[row, col]) - 1024} ml/100ml/s"


def test_a_plain_ct_stays_grey(qtbot, window: MainWindow, data: Path) -> None:
    _, vp = _open(qtbot, window, sorted((data / HEAD_CT).iterdir())[0])
    qtbot.wait(200)
    assert vp.session.palette is None and vp.image.image.ndim == 2


def test_regions_on_each_frame_of_a_perfusion_map_go_back_to_their_frame(
        qtbot, window: MainWindow, data: Path) -> None:
    """A region on each frame of the 2-frame rCBF map: the SR's region did not name its frame
    (RegionFinding had none), and read back, both regions were put on the last frame. Each
    names its frame (counted from 1) and comes back on it."""
    from app.ui.annotations import Annotation
    from app.ui.stroke import collect_findings, place_regions
    from app.workflow.findings import build_sr, parse_sr, source_headers

    viewer, vp = _on_each_frame(qtbot, window, data, lambda k, dx, dy: [
        Annotation("rect", [((100 + 10 * k) * dx, 100 * dy), ((120 + 10 * k) * dx, 120 * dy)])])
    _, dy, dx = vp.volume.spacing
    findings = collect_findings(viewer)
    frames = {k: vp.volume.slices[k].frame + 1 for k in (0, 1)}
    assert sorted((r.p0[0] / dx, r.frame) for r in findings.regions) == [
        (100.0, frames[0]), (110.0, frames[1])]
    sr = build_sr(findings, source_headers(window.store, [findings.regions[0].sop_instance_uid]))
    session = vp.session
    session.annotations.clear()
    viewer.pending_findings = parse_sr(sr)
    place_regions(viewer, session)
    assert {k: round(notes[0].points[0][0] / dx) for k, notes in session.annotations.items()
            if notes} == {0: 100, 1: 110}


def test_drawings_on_each_frame_of_a_perfusion_map_go_back_to_their_frame(
        qtbot, window: MainWindow, data: Path) -> None:
    """An arrow and a text on each frame of the 2-frame rCBF map, saved in the presentation
    state and read back: the drawings did not name their frame (Mark had none), and all came
    back on the last frame. Each names its frame (counted from 1) and comes back on it; a
    presentation state written without frames still puts them on the image."""
    from dataclasses import replace

    from app.ui.annotations import Annotation
    from app.ui.stroke import collect_findings, place_regions
    from app.workflow.findings import read_findings, save_findings

    viewer, vp = _on_each_frame(qtbot, window, data, lambda k, dx, dy: [
        Annotation("arrow", [((100 + 10 * k) * dx, 100 * dy), ((120 + 10 * k) * dx, 120 * dy)]),
        Annotation("text", [((50 + 10 * k) * dx, 60 * dy)], text=f"slice {k}")])
    _, dy, dx = vp.volume.spacing
    findings = collect_findings(viewer)
    frames = {k: vp.volume.slices[k].frame + 1 for k in (0, 1)}
    assert sorted((m.kind, m.points[0][0] / dx, m.frame) for m in findings.marks) == [
        ("arrow", 100.0, frames[0]), ("arrow", 110.0, frames[1]),
        ("text", 50.0, frames[0]), ("text", 60.0, frames[1])]
    save_findings(window.store, findings)
    study = window.store.study(findings.study_instance_uid)
    assert study is not None
    back = read_findings(window.store, study)
    assert back is not None and len(back.marks) == 4
    session = vp.session

    def placed() -> dict[int, list[tuple[str, int]]]:
        return {k: sorted((n.kind, round(n.points[0][0] / dx)) for n in notes)
                for k, notes in session.annotations.items() if notes}

    session.annotations.clear()
    viewer.pending_findings = back
    place_regions(viewer, session)
    assert placed() == {0: [("arrow", 100), ("text", 50)], 1: [("arrow", 110), ("text", 60)]}
    session.annotations.clear()  # an older presentation state: no frames, on the image
    viewer.pending_findings = replace(back, marks=tuple(replace(m, frame=None)
                                                        for m in back.marks))
    place_regions(viewer, session)
    assert sum(len(v) for v in placed().values()) == 4


def test_mpr_of_a_perfusion_map_is_shown_in_its_palette(
        qtbot, window: MainWindow, data: Path) -> None:
    """MPR showed the rCBF map in grey, though the 2D view beside it shows the map in its
    Supplemental Palette Color LUT; every plane is in its colours now, values outside the
    palette grey through the window, as in the 2D view."""
    ds = pydicom.dcmread(data / PERFUSION, stop_before_pixels=True)
    rgb = np.stack([np.frombuffer(getattr(ds, f"{c}PaletteColorLookupTableData"), "<u2") >> 8
                    for c in ("Red", "Green", "Blue")], axis=-1)
    viewer, vp = _open(qtbot, window, data / PERFUSION)
    qtbot.waitUntil(lambda: vp.session.palette is not None, timeout=10_000)
    qtbot.waitUntil(lambda: vp.session.volume.finished, timeout=30_000)  # both frames decoded
    mpr = viewer.show_mpr()
    for name in ("axial", "coronal"):
        view = mpr.views[name]
        qtbot.waitUntil(lambda v=view: v.shown is not None and v.full_quality, timeout=30_000)
        stored = np.rint(view.shown.pixels).astype(np.int64)
        shown = view.image.image
        assert shown.ndim == 3, f"{name} is grey"
        inside = (stored >= 1024) & (stored < 1024 + len(rgb))
        assert inside.any()
        assert (shown[inside] == rgb[stored[inside] - 1024]).all()
        outside = shown[~inside]
        assert (outside[:, 0] == outside[:, 1]).all() and (outside[:, 1] == outside[:, 2]).all()
