"""The reading window's correctness (issue 19): the value under the mouse follows the slice and
the plane in view, export saves what is on screen (and a Secondary Capture into the study), the
viewer takes the keyboard when a study opens, windows are carried into MPR and chosen once per
series (head CTs without window tags open in the brain window), and MPR honours the file's VOI
LUT function (SIGMOID)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QEvent, QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.render.voi import voi_sigmoid
from app.store.local import Store
from app.ui.browser import UID_ROLE
from app.ui.main_window import MainWindow
from tests.ui.conftest import reading_window

pytestmark = pytest.mark.usefixtures("data")

HEAD = "Visible Human Male"
SIGMOID = "SIGMOID demo"
NO_WINDOW = "MR without window"
CORONAL = "CORONAL demo"


def _rewrite(paths: list[Path], out: Path, **changes: object) -> None:
    """Copies of ``paths`` in ``out`` with attributes changed (None deletes), new UIDs."""
    out.mkdir(parents=True)
    series_uid = pydicom.uid.generate_uid()
    study_uid = pydicom.uid.generate_uid()
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series_uid, study_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword, value in changes.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        ds.save_as(out / path.name)


@pytest.fixture(scope="module")
def reading_home(tmp_path_factory, data: Path) -> Path:
    """The real Visible Human head CT (no window tags, no body part), a synthetic CT whose
    files ask for a SIGMOID VOI LUT function, and a synthetic MR without window tags."""
    home = tmp_path_factory.mktemp("reading-home")
    work = home.parent / "reading-synth"
    base = generate_series(work / "base", SeriesSpec(slices=40, rows=96, columns=96,
                                                      pixel_spacing=1.0, slice_step=2.0,
                                                      noise_hu=0, seed=11))
    _rewrite(base, work / "sigmoid", VOILUTFunction="SIGMOID", StudyDescription=SIGMOID)
    _rewrite(base, work / "mr", Modality="MR", WindowCenter=None, WindowWidth=None,
             BodyPartExamined=None, StudyDescription=NO_WINDOW)
    _rewrite(base, work / "coronal", StudyDescription=CORONAL)
    for path in sorted((work / "coronal").iterdir()):  # the same stack, standing up: coronal
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [x, z, 48.0]
        ds.save_as(path)
    shutil.rmtree(work / "base")
    import_paths(Store(home), [str(work), str(data / "ct-head" / "visible-human-male-head-1mm")])
    return home


@pytest.fixture
def window(qtbot, reading_home: Path) -> MainWindow:
    yield from reading_window(qtbot, reading_home, 1300, 900)


def _open(qtbot, window: MainWindow, description: str):
    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == description)
    viewer = window.open_study(uid)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.image.image is not None, timeout=30_000)
    return viewer, vp


def _move(widget, pos: QPointF) -> None:
    """A real mouse move (no button) over ``widget``'s image."""
    target = widget.canvas.viewport()
    QApplication.sendEvent(target, QMouseEvent(
        QEvent.Type.MouseMove, pos, target.mapToGlobal(pos), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def _wheel(widget, notches: int) -> None:
    target = widget.canvas.viewport()
    pos = QPointF(target.width() / 2, target.height() / 2)
    from PySide6.QtGui import QWheelEvent
    QApplication.sendEvent(target, QWheelEvent(
        pos, target.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120 * notches),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
        False))


def _hu_from_file(path: Path, row: int, col: int) -> float:
    ds = pydicom.dcmread(path)
    return float(ds.pixel_array[row, col]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _probe_hu(text: str) -> float:
    match = re.search(r"(-?\d+) HU", text)
    assert match, text
    return float(match.group(1))


def test_hu_readout_follows_the_slice_in_view_scroll_and_cine(qtbot, window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: vp.volume.finished, timeout=60_000)
    _, dy, dx = vp.volume.spacing
    row, col = 300, 256
    scene = vp.view.mapViewToScene(QPointF((col + 0.5) * dx, (row + 0.5) * dy))
    _move(vp, QPointF(vp.canvas.mapFromScene(scene)))
    assert vp.probe_text.startswith(f"({col}, {row})")
    seen = set()
    for notches in (0, 5, 22, -140):
        if notches:
            _wheel(vp, notches)  # the mouse does not move
        k = vp.state.k
        expected = _hu_from_file(vp.volume.slices[k].path, row, col)
        assert _probe_hu(vp.probe_text) == pytest.approx(expected, abs=0.6), k
        seen.add(expected)
    assert len(seen) >= 3  # the slices differ there: a stale value would have been caught
    QTest.keyClick(vp, Qt.Key.Key_Space)  # cine
    start = vp.state.k
    qtbot.waitUntil(lambda: vp.state.k != start, timeout=5_000)
    QTest.keyClick(vp, Qt.Key.Key_Space)
    k = vp.state.k
    assert _probe_hu(vp.probe_text) == pytest.approx(
        _hu_from_file(vp.volume.slices[k].path, row, col), abs=0.6)


def _trilinear_from_files(volume, lps: np.ndarray) -> float:
    """The value at ``lps`` interpolated from the files themselves (read with pydicom)."""
    i, j, k = (float(v) for v in volume.geometry.lps_to_index(lps))
    out = 0.0
    for kk, wk in ((int(np.floor(k)), 1 - (k - np.floor(k))), (int(np.floor(k)) + 1,
                                                               k - np.floor(k))):
        if wk < 1e-6:
            continue
        ds = pydicom.dcmread(volume.slices[kk].path)
        values = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept)
        j0, i0 = int(np.floor(j)), int(np.floor(i))
        fj, fi = j - j0, i - i0
        patch = values[j0:j0 + 2, i0:i0 + 2]
        out += wk * ((1 - fj) * ((1 - fi) * patch[0, 0] + fi * patch[0, 1])
                     + fj * ((1 - fi) * patch[1, 0] + fi * patch[1, 1]))
    return out


def _shown_pixel_centre(view, pos: QPointF) -> tuple[float, float]:
    """Scene mm of the centre of the picture's pixel under the screen point ``pos`` (a real
    mouse is on whole screen pixels, smaller or larger than the picture's)."""
    x, y = view.scene_of_widget(pos)
    tx, ty, size = view._placed
    col, row = np.floor((x - tx) / size), np.floor((y - ty) / size)
    return tx + (col + 0.5) * size, ty + (row + 0.5) * size


def test_hu_readout_follows_every_mpr_plane(qtbot, window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: vp.volume.finished, timeout=60_000)
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None, timeout=30_000)

    def settle() -> None:
        qtbot.waitUntil(lambda: all(v.full_quality and v.shown is not None
                                    for v in mpr.views.values()) and mpr._queue.idle,
                        timeout=30_000)

    settle()
    for name, view in mpr.views.items():
        values = []
        for notches in (0, 7, -19):
            if notches:
                _wheel(view, notches)
                settle()
            tx, ty, size = view._placed
            row, col = view.shown.pixels.shape[0] // 2 + 20, view.shown.pixels.shape[1] // 2 + 9
            x, y = tx + (col + 0.5) * size, ty + (row + 0.5) * size
            pos = view.widget_of_scene(x, y)  # a whole screen pixel, as a real mouse
            _move(view, pos)
            x, y = _shown_pixel_centre(view, pos)
            expected = _trilinear_from_files(mpr.session.volume, view.lps_of_scene(x, y))
            assert _probe_hu(view.probe_text) == pytest.approx(expected, abs=1.0), name
            values.append(expected)
        # scroll once more without moving the mouse: the text follows the new plane
        before = view.probe_text
        _wheel(view, 11)
        settle()
        x, y = _shown_pixel_centre(view, pos)  # the mouse has not moved
        expected = _trilinear_from_files(mpr.session.volume, view.lps_of_scene(x, y))
        assert _probe_hu(view.probe_text) == pytest.approx(expected, abs=1.0), name
        assert len({round(v) for v in values} | {round(expected)}) >= 2, (name, before)


def _frame_pixels(image: QImage) -> np.ndarray:
    from app.ui.view_export import to_rgb
    rgb = to_rgb(image)
    return np.concatenate([rgb[0:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                           rgb[:, 0:2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])


def test_export_saves_what_is_on_screen_in_mpr_and_to_the_study(
        qtbot, window: MainWindow, tmp_path: Path, monkeypatch) -> None:
    viewer, vp = _open(qtbot, window, SIGMOID)
    qtbot.waitUntil(lambda: vp.volume.finished, timeout=30_000)
    proposed: list[str] = []

    def save_as(_parent, _title, start, filters):
        proposed.append(start)
        return str(tmp_path / Path(start).name.replace(".png", suffix)), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    suffix = ".png"
    axial_2d = viewer.export_dialog()
    assert Path(proposed[-1]).name == f"S2_Axial-0.5mm-synthetic_im{vp.state.k + 1}.png"
    assert "DEMO" not in proposed[-1] and "STROKE" not in proposed[-1]  # no patient name
    away = vp.grab_view()
    for dx in (0, 7):  # the value under the mouse is on screen, not in the export
        _move(vp, QPointF(vp.canvas.width() / 2 + dx, vp.canvas.height() / 2))
    qtbot.waitUntil(lambda: bool(vp.probe_text), timeout=5_000)
    assert vp.grab_view() == away
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None and all(
        v.full_quality for v in mpr.views.values()) and mpr._queue.idle, timeout=30_000)
    mpr._on_view_activated(mpr.views["coronal"])
    plain = mpr.views["coronal"].grab_view()
    for dx in (0, 7):
        _move(mpr.views["coronal"], QPointF(120 + dx, 120))
    qtbot.waitUntil(lambda: bool(mpr.views["coronal"].probe_text), timeout=5_000)
    assert mpr.views["coronal"].grab_view() == plain
    suffix = ".jpg"
    coronal = viewer.export_dialog()
    assert Path(proposed[-1]).stem.endswith("MPR-coronal") and coronal.endswith(".jpg")
    shot = QImage(coronal)
    assert shot.size() == mpr.views["coronal"].canvas.size()
    assert not (QImage(axial_2d).size() == shot.size()
                and QImage(axial_2d) == QImage(coronal))  # not the hidden 2D slice
    # no active frame: the coronal view's green frame is not in the picture
    edge = _frame_pixels(viewer.grab()[0])
    assert not ((edge[:, 1] > 150) & (edge[:, 0] < 140)).any()
    suffix = ".png"
    layout = QImage(viewer.export_dialog(whole=True))
    views = mpr.views.values()
    assert layout.width() >= sum(v.canvas.width() for v in list(views)[:2])
    assert layout.height() >= sum(v.canvas.height() for v in (mpr.views["axial"],
                                                              mpr.views["sagittal"]))
    # a Secondary Capture of the coronal plane in the same study, new series
    before = {s.series_instance_uid for s in viewer.study.series}
    stored = viewer.save_to_study()
    path = window.store.abspath(stored.relpath)
    ds = pydicom.dcmread(path)
    src = pydicom.dcmread(mpr.session.volume.slices[0].path, stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    assert ds.SeriesInstanceUID not in before and ds.Modality == "OT"
    assert (ds.Rows, ds.Columns) == (shot.height(), shot.width())
    assert ds.pixel_array.shape == (shot.height(), shot.width(), 3)
    assert ds.SeriesInstanceUID in {s.series_instance_uid for s in viewer.study.series}
    if shutil.which("dciodvfy"):
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                               timeout=60)
        errors = [line for line in (check.stdout + check.stderr).splitlines()
                  if line.startswith("Error")]
        assert not errors, errors


def test_the_viewer_takes_the_keyboard_when_a_study_opens_from_the_browser(
        qtbot, window: MainWindow) -> None:
    window.activateWindow()
    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == SIGMOID)
    tree = window.browser.tree
    model = tree.model()
    def rows(parent):
        for r in range(model.rowCount(parent)):
            index = model.index(r, 0, parent)
            yield index
            yield from rows(index)

    index = next(i for i in rows(QModelIndex()) if i.data(UID_ROLE) == uid)
    tree.setFocus()
    tree.setCurrentIndex(index)
    QTest.keyClick(tree, Qt.Key.Key_Return)  # open it with the keyboard, as a user would
    viewer = window.viewers[uid]
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.image.image is not None, timeout=30_000)
    assert QApplication.focusWidget() is vp
    k = vp.state.k
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
    assert vp.state.k == k + 1


def test_windows_are_chosen_once_per_series_and_carried_into_mpr(qtbot,
                                                                 window: MainWindow) -> None:
    window.view_state.last_slice.clear()  # opens on the middle slice
    viewer, vp = _open(qtbot, window, HEAD)
    assert (vp.state.center, vp.state.width) == (40.0, 80.0)  # no tags: a head, brain window
    QTest.keyClick(vp, "3")  # the stroke window
    assert (vp.state.center, vp.state.width) == (40.0, 40.0)
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None, timeout=30_000)
    assert {w.pair for w in mpr.windows.values()} == {(40.0, 40.0)}  # carried
    viewer.set_layout("1×1")
    QTest.keyClick(vp, "6")  # bone, then back to MPR
    viewer.show_mpr()
    assert {w.pair for w in mpr.windows.values()} == {(600.0, 2800.0)}
    # an MR without window tags: one auto window for the series, whatever slice a view shows
    viewer2, first = _open(qtbot, window, NO_WINDOW)
    viewer2.set_layout("1×2")
    second = viewer2.viewports[1]
    second.set_series(first.session, 3)
    first.show_slice(first.n_slices - 5)
    qtbot.waitUntil(lambda: second.image.image is not None, timeout=10_000)
    assert first.state.window.known
    assert first.state.window.pair == second.state.window.pair


def test_a_head_ct_reopened_at_a_shoulder_slice_still_opens_in_the_brain_window(
        qtbot, window: MainWindow) -> None:
    """No window tags, no body part: the window is judged from the middle slice (the head),
    read at once when the loader starts at the shoulders, never from the slice that happens
    to arrive first."""
    viewer, vp = _open(qtbot, window, HEAD)
    uid = vp.session.series.series_instance_uid
    shoulder = 0 if vp.volume.positions[0, 2] < vp.volume.positions[-1, 2] else vp.n_slices - 1
    window.view_state.last_slice[uid] = shoulder
    window.reading.close_study(vp.session.study.study_instance_uid)
    qtbot.waitUntil(lambda: not window.viewers, timeout=10_000)
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: vp.volume is not None and vp.image.image is not None,
                    timeout=30_000)
    assert vp.state.k == shoulder
    assert (vp.state.center, vp.state.width) == (40.0, 80.0)


def test_mpr_and_2d_honour_a_sigmoid_voi_lut_function(qtbot, window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, SIGMOID)
    qtbot.waitUntil(lambda: vp.volume.finished, timeout=30_000)
    volume = vp.volume
    assert volume.voi_lut_function == "SIGMOID"
    k = vp.state.k
    values = volume.array[k] * volume.slope[k] + volume.intercept[k]
    expected = np.rint(voi_sigmoid(values, 40.0, 80.0)).astype(np.uint8)
    np.testing.assert_array_equal(vp.image.image, expected)
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None and all(
        v.full_quality for v in mpr.views.values()) and mpr._queue.idle, timeout=30_000)
    apart = 0.0
    for name, view in mpr.views.items():
        shown = view.shown.pixels.astype(np.float64) * mpr.source.slope + mpr.source.intercept
        center, width = mpr.windows[name].pair
        np.testing.assert_array_equal(
            view.image.image, np.rint(voi_sigmoid(shown, center, width)).astype(np.uint8),
            err_msg=name)
        linear = np.clip((shown - center + 0.5) / (width - 1) + 0.5, 0, 1) * 255
        apart = max(apart, float(np.abs(view.image.image - np.rint(linear)).max()))
    assert apart > 15  # not what LINEAR would show



def _double_click(widget, pos: QPointF) -> None:
    target = widget.canvas.viewport()
    left = Qt.MouseButton.LeftButton
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left),
                          (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton),
                          (QEvent.Type.MouseButtonDblClick, left),
                          (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(target, QMouseEvent(kind, pos, target.mapToGlobal(pos), left,
                                                   buttons, Qt.KeyboardModifier.NoModifier))


def test_double_click_maximises_a_view_and_back_in_2d_and_mpr(qtbot, window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, SIGMOID)
    viewer.set_layout("2×2")
    second = viewer.viewports[1]
    qtbot.waitUntil(lambda: all(v.isVisible() for v in viewer.viewports[:4]), timeout=5_000)
    _double_click(second, QPointF(50, 50))
    assert viewer.maximised is second and viewer.active is second
    assert [v.isVisible() for v in viewer.viewports[:4]] == [False, True, False, False]
    _double_click(second, QPointF(50, 50))
    assert viewer.maximised is None
    assert all(v.isVisible() for v in viewer.viewports[:4])
    viewer.set_layout("1×1")
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None and mpr.views["coronal"].shown is not None,
                    timeout=30_000)
    centre = mpr.crosshair.center.copy()
    coronal = mpr.views["coronal"]
    _double_click(coronal, QPointF(coronal.width() / 2, coronal.height() / 2))
    assert mpr.maximised is coronal and mpr.active is coronal
    assert not mpr.views["axial"].isVisible() and not mpr.panel.isVisible()
    _double_click(coronal, QPointF(coronal.width() / 2, coronal.height() / 2))
    assert mpr.maximised is None and mpr.panel.isVisible()
    assert all(v.isVisible() for v in mpr.views.values())
    del centre


def test_cine_speed_toolbar_per_layout_and_the_same_drag_modifier(qtbot,
                                                                  window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, SIGMOID)
    viewer.cine_fps.setValue(40)
    assert vp._cine.interval() == 25  # 40 slices per second
    viewer.set_layout("1×2")
    assert viewer.viewports[1]._cine.interval() == 25  # new viewports too

    def shown(label: str) -> bool:
        return any(a.isVisible() for a in viewer.toolbar.actions() if a.text() == label)

    assert shown("Length") and shown("Cine") and shown("Invert")
    viewer.show_mpr()
    assert not shown("Length") and not shown("Angle") and not shown("Cine")
    assert shown("Invert") and shown("Reset") and viewer.export_button.isVisible()
    viewer.set_layout("1×1")
    assert shown("Length")
    # Shift + left drag is window/level in 2D whatever the tool, as it is in MPR
    viewer.set_tool("length")
    before = vp.state.window.pair
    target = vp.canvas.viewport()
    left, shift = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier
    a, b = QPointF(200, 200), QPointF(260, 240)
    QApplication.sendEvent(target, QMouseEvent(QEvent.Type.MouseButtonPress, a,
                                               target.mapToGlobal(a), left, left, shift))
    for i in range(1, 9):
        QTest.qWait(12)  # pyqtgraph drops moves closer than 10 ms
        p = a + (b - a) * (i / 8)
        QApplication.sendEvent(target, QMouseEvent(QEvent.Type.MouseMove, p,
                                                   target.mapToGlobal(p), Qt.MouseButton.NoButton,
                                                   left, shift))
    QApplication.sendEvent(target, QMouseEvent(QEvent.Type.MouseButtonRelease, b,
                                               target.mapToGlobal(b), left,
                                               Qt.MouseButton.NoButton, shift))
    assert vp.state.window.pair != before
    assert not vp.session.annotations.get(vp.state.k)  # no length drawn


def test_user_window_presets_are_saved_and_listed_like_the_overlay(
        qtbot, window: MainWindow, reading_home: Path) -> None:
    from app.settings import load_settings

    viewer, vp = _open(qtbot, window, SIGMOID)
    vp.set_window(55, 350)
    preset = viewer.save_window_preset("Neck soft tissue")
    assert preset is not None
    saved = load_settings(reading_home).reading.window_presets
    assert [(p.name, p.center, p.width, p.modality) for p in saved] == [
        ("Neck soft tissue", 55.0, 350.0, "CT")]
    vp.set_window(40, 80)
    viewer._fill_preset_menu()
    labels = [a.text() for a in viewer.preset_menu.actions()]
    assert "1  Brain  (W 80 / L 40)" in labels  # W then L, as the overlay says "W 80  L 40"
    assert "Neck soft tissue  (W 350 / L 55)" in labels
    next(a for a in viewer.preset_menu.actions() if a.text().startswith("Neck")).trigger()
    assert vp.state.window.pair == (55.0, 350.0)
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None, timeout=30_000)
    items = [mpr.panel.presets.itemText(i) for i in range(mpr.panel.presets.count())]
    assert "Neck soft tissue  (W 350 / L 55)" in items


def test_series_strip_labels_are_one_line_each(qtbot, window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: vp.volume.finished, timeout=60_000)
    viewer._on_progress(vp.session.series.series_instance_uid)
    item = viewer.strip.item(0)
    lines = item.text().split("\n")
    metrics = viewer.strip.fontMetrics()
    assert len(lines) == 2 and lines[0].startswith("#1 Resampled") and lines[0].endswith("…")
    assert all(metrics.horizontalAdvance(line) <= viewer.strip.width() for line in lines)
    assert "Resampled to 1mm voxels" in item.toolTip()


def test_reference_lines_show_the_other_viewports_slices(qtbot, window: MainWindow) -> None:
    viewer, axial = _open(qtbot, window, SIGMOID)
    viewer.set_layout("1×2")
    coronal_uid = next(s.series_instance_uid for st in viewer.priors for s in st.series
                       if st.study_description == CORONAL)
    viewer.show_series(coronal_uid, viewer.viewports[1])
    coronal = viewer.viewports[1]
    qtbot.waitUntil(lambda: coronal.volume is not None and coronal.image.image is not None,
                    timeout=30_000)
    viewer._set_active(axial)

    def line_in_coronal() -> float:
        [(a, b, from_active)] = coronal.reference_lines()
        assert from_active and a[1] == pytest.approx(b[1])  # horizontal: an axial plane
        assert {round(a[0], 6), round(b[0], 6)} == {0.0, 96.0}  # across the whole image
        return a[1]

    def expected(k: int) -> float:  # the axial slice's height, in the coronal view's mm
        z = float(pydicom.dcmread(axial.volume.slices[k].path).ImagePositionPatient[2])
        return 48.0 - z + 0.5

    assert line_in_coronal() == pytest.approx(expected(axial.state.k), abs=1e-6)
    _wheel(axial, 5)
    assert line_in_coronal() == pytest.approx(expected(axial.state.k), abs=1e-6)
    [(a, b, from_active)] = axial.reference_lines()  # and the coronal slice on the axial
    assert not from_active and a[1] == pytest.approx(b[1])
    coronal.canvas.viewport().repaint()  # drawn without error
    viewer.show_reference_lines = False
    assert axial.reference_lines() == []


def test_measurement_labels_do_not_overlap_at_small_zoom(qtbot, window: MainWindow) -> None:
    from app.ui.annotations import Annotation

    viewer, vp = _open(qtbot, window, SIGMOID)
    for dy in (0.0, 1.5, 3.0):  # three lengths a millimetre or two apart
        vp._add_note(Annotation("length", [(30.0, 40.0 + dy), (50.0, 40.0 + dy)]))
    vp.view.scaleBy((3.0, 3.0))  # zoom out: the labels keep their size on screen
    qtbot.wait(50)
    rects = [item.label.sceneBoundingRect() for item in vp._items]
    assert len(rects) == 3
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b)
    assert [i.label.toPlainText() for i in vp._items] == ["20.0 mm"] * 3


def _left_drag(widget, a: QPointF, b: QPointF,
               modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A real left-button drag from ``a`` to ``b`` over a 2D viewport or an MPR plane."""
    target = widget.canvas.viewport()
    left = Qt.MouseButton.LeftButton
    QApplication.sendEvent(target, QMouseEvent(QEvent.Type.MouseButtonPress, a,
                                               target.mapToGlobal(a), left, left, modifiers))
    for i in range(1, 9):
        QTest.qWait(12)  # pyqtgraph drops moves closer than 10 ms
        p = a + (b - a) * (i / 8)
        QApplication.sendEvent(target, QMouseEvent(QEvent.Type.MouseMove, p, target.mapToGlobal(p),
                                                   Qt.MouseButton.NoButton, left, modifiers))
    QApplication.sendEvent(target, QMouseEvent(QEvent.Type.MouseButtonRelease, b,
                                               target.mapToGlobal(b), left,
                                               Qt.MouseButton.NoButton, modifiers))


def test_one_mouse_model_for_2d_and_mpr_saved_in_the_settings(
        qtbot, window: MainWindow, reading_home: Path) -> None:
    from app.ui.mouse_model import load_left_drag
    ctrl = Qt.KeyboardModifier.ControlModifier
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: bool(vp.volume.ready[vp.state.k]), timeout=30_000)
    viewer.set_tool("length")
    starts = iter(QPointF(120 + 60 * i, 120 + 70 * i) for i in range(6))

    def drag_2d(modifiers=Qt.KeyboardModifier.NoModifier) -> tuple[bool, bool]:
        """(window changed, a length drawn) by one left drag in the 2D viewport."""
        before, notes = vp.state.window.pair, len(vp.session.annotations.get(vp.state.k, []))
        a = next(starts)  # clear of the lengths drawn before (their handles would take it)
        _left_drag(vp, a, a + QPointF(50, 20), modifiers)
        return (vp.state.window.pair != before,
                len(vp.session.annotations.get(vp.state.k, [])) > notes)

    def drag_mpr(modifiers=Qt.KeyboardModifier.NoModifier) -> tuple[bool, bool]:
        """(window changed, crosshair moved) by one left drag in every MPR plane."""
        results = []
        for plane in mpr.views.values():
            window_before = mpr.windows[plane.view].pair
            centre = mpr.crosshair.center.copy()
            c = plane.widget_of_scene(*plane.scene_of_lps(centre))
            start = QPointF(c.x() + 45, c.y() + 45)  # off the lines: a move, not a tilt
            mid = QPointF(plane.canvas.viewport().rect().center())
            side = -1 if c.x() > mid.x() else 1  # towards the middle: never clamped at an edge
            _left_drag(plane, start, mid + QPointF(30 * side, 20 * side), modifiers)
            results.append((mpr.windows[plane.view].pair != window_before,
                            not np.allclose(mpr.crosshair.center, centre)))
        assert len(set(results)) == 1  # the same in every plane
        return results[0]

    # "tool" (the default): left drag is the tool in 2D and the crosshair in MPR
    assert viewer.left_drag == "tool"
    assert drag_2d() == (False, True)
    mpr = viewer.show_mpr()
    qtbot.waitUntil(lambda: mpr.source is not None
                    and all(v.shown is not None for v in mpr.views.values()), timeout=30_000)
    assert drag_mpr() == (False, True)
    # View ▸ "Left drag = window / level": window / level in 2D and every plane, Ctrl the tool
    next(a for a in viewer.mouse_group.actions() if a.data() == "window").trigger()
    assert load_left_drag(reading_home) == "window"  # saved in the settings' reading section
    assert mpr.panel.window_mode.isChecked()
    assert drag_mpr() == (True, False)
    assert drag_mpr(ctrl) == (False, True)
    viewer.set_layout("1×1")
    qtbot.waitUntil(lambda: vp.isVisible() and vp.canvas.viewport().width() > 300)
    qtbot.wait(50)
    assert vp.left_drag == "window"
    assert drag_2d() == (True, False)
    assert drag_2d(ctrl) == (False, True)
    # the MPR panel's own choice is the same setting
    viewer.show_mpr()
    mpr.panel.crosshair_mode.setChecked(True)
    assert viewer.left_drag == "tool" and load_left_drag(reading_home) == "tool"
    viewer.set_layout("1×1")
    qtbot.wait(50)
    assert drag_2d() == (False, True)


def test_rotate_90_turns_letters_measurements_lines_and_probe(qtbot,
                                                             window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: bool(vp.volume.ready[vp.state.k]), timeout=30_000)
    from app.ui.annotations import Annotation
    vp._add_note(Annotation("length", [(30.0, 40.0), (50.0, 40.0)]))  # near the top left
    assert vp.edge_labels() == {"top": "A", "right": "L", "bottom": "P", "left": "R"}
    QTest.keyClick(vp, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # clockwise
    assert vp.quarter_turns == 1
    assert vp.edge_labels() == {"top": "R", "right": "A", "bottom": "L", "left": "P"}
    # the measurement (image millimetres) is now at the top right, its length unchanged
    rect = vp.canvas.viewport().rect()
    item = vp._items[0]
    end = vp.canvas.mapFromScene(item.roi.mapToScene(item.roi.boundingRect().center()))
    assert end.x() > rect.width() / 2 and end.y() < rect.height() / 2
    assert item.label.toPlainText() == "20.0 mm"
    # reference lines are drawn through the same mapping: image left column → screen top
    top = vp.canvas.mapFromScene(vp.view.mapViewToScene(QPointF(5.0, 125.0)))
    assert top.y() < rect.height() * 0.2
    # the value under the mouse is read from the pixel shown there
    pos = QPointF(rect.width() * 0.5, rect.height() * 0.3)
    _move(vp, pos)
    col, row = (int(v) for v in re.match(r"\((\d+), (\d+)\)", vp.probe_text).groups())
    assert col < 200 and 200 < row < 312  # screen top: the image's left (patient's right)
    assert _probe_hu(vp.probe_text) == pytest.approx(
        _hu_from_file(vp.volume.slices[vp.state.k].path, row, col), abs=0.6)
    # counter-clockwise from the menu (with its tooltip) turns it back; the help lists the keys
    ccw = next(a for a in viewer.orient_button.menu().actions()
               if a.text().startswith("Rotate 90° counter"))
    assert ccw.toolTip()
    ccw.trigger()
    assert vp.quarter_turns == 0 and vp.edge_labels()["left"] == "R"
    from app.ui.viewer import SHORTCUTS
    assert any("Ctrl+R" in keys for keys, _ in SHORTCUTS)
    QTest.keyClick(vp, "h")  # one flip, then a clockwise turn on screen
    QTest.keyClick(vp, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert vp.edge_labels() == {"top": "L", "right": "A", "bottom": "R", "left": "P"}
    QTest.keyClick(vp, "r")
    assert vp.quarter_turns == 0 and not vp.flipped_h


def test_flip_keeps_anatomy_under_the_mouse_and_swaps_the_letters(qtbot,
                                                                  window: MainWindow) -> None:
    viewer, vp = _open(qtbot, window, HEAD)
    qtbot.waitUntil(lambda: bool(vp.volume.ready[vp.state.k]), timeout=30_000)
    letters = vp.edge_labels()
    assert (letters["left"], letters["right"]) == ("R", "L")
    pos = QPointF(vp.canvas.width() * 0.4, vp.canvas.height() * 0.55)
    QTest.keyClick(vp, "h")  # flip left-right
    assert vp.flipped_h and (vp.edge_labels()["left"], vp.edge_labels()["right"]) == ("L", "R")
    _move(vp, pos)
    col, row = (int(v) for v in re.match(r"\((\d+), (\d+)\)", vp.probe_text).groups())
    assert col > 256  # the left of the screen shows the patient's left half now
    assert _probe_hu(vp.probe_text) == pytest.approx(
        _hu_from_file(vp.volume.slices[vp.state.k].path, row, col), abs=0.6)
    QTest.keyClick(vp, "v")
    assert vp.edge_labels()["top"] == "P"
    next(a for a in viewer.orient_button.menu().actions()
         if a.text().startswith("Rotate 180")).trigger()  # both flipped back: turned twice by 180
    assert not vp.flipped_h and not vp.flipped_v
    QTest.keyClick(vp, "h")
    QTest.keyClick(vp, "r")  # reset straightens it
    assert not vp.flipped_h and vp.edge_labels()["left"] == "R"
