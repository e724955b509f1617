"""The MPR and 3D layouts driven offscreen: open from the tool bar, click and drag the
crosshair, rotate, slabs, window presets, geometry notes, 3D presets and clipping."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.store.local import Store
from app.ui.main_window import MainWindow
from app.ui.mpr_widget import MprWidget
from tests.ui.conftest import reading_window

pytestmark = pytest.mark.usefixtures("data")

SYNTH = "CT HEAD WO CONTRAST (synthetic demo)"


@pytest.fixture(scope="module")
def mpr_home(tmp_path_factory, data: Path) -> Path:
    """A synthetic CTA head (regular stack, 1.5 mm slices) and the tilted, uneven GE head CT."""
    home = tmp_path_factory.mktemp("mpr-home")
    synth = home.parent / "mpr-synth"
    generate_series(synth, SeriesSpec(slices=70, rows=128, columns=128, pixel_spacing=1.4,
                                      slice_step=1.5, noise_hu=0, seed=5, phantom="cta",
                                      series_description="CTA 1.5mm (synthetic)"))
    import_paths(Store(home), [str(synth), str(data / "ct-head" / "ge-hispeed-human-gantry-tilt")])
    return home


@pytest.fixture
def window(qtbot, mpr_home: Path) -> MainWindow:
    yield from reading_window(qtbot, mpr_home, 1300, 900)


def _open_mpr(qtbot, window: MainWindow, description: str) -> MprWidget:
    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == description)
    viewer = window.open_study(uid)
    qtbot.waitUntil(lambda: viewer.viewports[0].session is not None, timeout=10_000)
    action = next(a for a in viewer.layout_group.actions() if a.text() == "MPR")
    action.trigger()  # the tool bar button
    mpr = viewer.mpr
    assert mpr is not None and viewer.pages.currentWidget() is mpr and action.isChecked()
    qtbot.waitUntil(lambda: mpr.source is not None and mpr.session.volume.finished,
                    timeout=60_000)
    _settle(qtbot, mpr)
    return mpr


def _settle(qtbot, mpr: MprWidget) -> None:
    """Wait for the full-quality pictures of the planes as they are now."""
    qtbot.waitUntil(lambda: all(v.full_quality and v.shown is not None
                                for v in mpr.views.values()) and mpr._queue.idle,
                    timeout=20_000)


def _mouse(widget, kind, pos: QPointF, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    target = widget.canvas.viewport()
    QApplication.sendEvent(target, QMouseEvent(kind, pos, target.mapToGlobal(pos), button,
                                               buttons, modifiers))


def _click(view, pos: QPointF) -> None:
    left = Qt.MouseButton.LeftButton
    _mouse(view, QEvent.Type.MouseButtonPress, pos, left, left)
    _mouse(view, QEvent.Type.MouseButtonRelease, pos, left, Qt.MouseButton.NoButton)


def _drag(view, a: QPointF, b: QPointF, steps: int = 10,
          modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    left = Qt.MouseButton.LeftButton
    _mouse(view, QEvent.Type.MouseButtonPress, a, left, left, modifiers)
    for i in range(1, steps + 1):
        time.sleep(0.011)  # pyqtgraph drops moves closer than 10 ms (its mouseRateLimit)
        _mouse(view, QEvent.Type.MouseMove, a + (b - a) * (i / steps), Qt.MouseButton.NoButton,
               left, modifiers)
    _mouse(view, QEvent.Type.MouseButtonRelease, b, left, Qt.MouseButton.NoButton, modifiers)


def _screen(view, point: np.ndarray) -> QPointF:
    return view.widget_of_scene(*view.scene_of_lps(point))


def test_mpr_opens_with_letters_and_a_live_volume(qtbot, window: MainWindow) -> None:
    mpr = _open_mpr(qtbot, window, SYNTH)
    assert mpr.source.live and mpr.source.array is mpr.session.volume.array  # no copy
    labels = {name: (v.grid.labels.left, v.grid.labels.right, v.grid.labels.top,
                     v.grid.labels.bottom) for name, v in mpr.views.items()}
    assert labels == {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "H", "F"),
                      "sagittal": ("A", "P", "H", "F")}
    centre = mpr.source.geometry.center_lps()
    assert np.allclose(mpr.crosshair.center, centre)
    for view in mpr.views.values():
        assert view.shown.pixels.dtype == np.int16  # stored values, rescale applied later
        assert view.image.image is not None and view.image.image.dtype == np.uint8
        view.grab()  # letters, scale bar, crosshair and corner texts paint without error
    assert mpr.corner_lines("axial")[0] == "Thin slice"


def test_click_moves_the_other_planes_to_that_point(qtbot, window: MainWindow) -> None:
    mpr = _open_mpr(qtbot, window, SYNTH)
    axial, coronal, sagittal = (mpr.views[n] for n in ("axial", "coronal", "sagittal"))
    before = coronal.shown
    target = mpr.crosshair.center + np.array([14.0, -20.0, 0.0])  # patient left, anterior
    pos = _screen(axial, target)
    expected = axial.lps_of_scene(*axial.scene_of_widget(pos))  # what that pixel is
    assert np.linalg.norm(expected - target) < 1.0
    _click(axial, pos)
    assert np.allclose(mpr.crosshair.center, expected, atol=1e-6)
    assert abs(float(coronal.grid.plane.distance(expected))) < 1e-6
    assert abs(float(sagittal.grid.plane.distance(expected))) < 1e-6
    assert abs(float(axial.grid.plane.distance(expected))) < 1e-6
    assert coronal.shown is not before  # redrawn (a preview first)
    _settle(qtbot, mpr)
    # the coronal picture is the phantom's coronal section through the new point
    row, col = np.rint(coronal.shown.grid.lps_to_pixel(expected)).astype(int)
    assert 0 <= row < coronal.shown.pixels.shape[0] and 0 <= col < coronal.shown.pixels.shape[1]
    # dragging in the coronal view moves the point within the coronal plane: axial follows
    start = _screen(coronal, mpr.crosshair.center)
    _drag(coronal, start, start + QPointF(0, -40))  # up = towards the head
    moved = mpr.crosshair.center
    assert moved[2] > expected[2] + 5 and abs(moved[1] - expected[1]) < 1e-6
    assert abs(float(axial.grid.plane.distance(moved))) < 1e-6
    # wheel / arrow keys move a plane along its normal by whole voxel layers
    z = mpr.crosshair.center[2]
    axial.scroll_steps(2)
    assert mpr.crosshair.center[2] == pytest.approx(z + 3.0)  # 2 × 1.5 mm towards the head


def test_drag_a_line_to_rotate_and_reset(qtbot, window: MainWindow) -> None:
    mpr = _open_mpr(qtbot, window, SYNTH)
    axial = mpr.views["axial"]
    axial_normal = axial.grid.normal.copy()
    centre = _screen(axial, mpr.crosshair.center)
    # the coronal plane cuts the axial view as a horizontal line; grab it 80 px right of the
    # point and drag it 80 px up: a 45° counter-clockwise turn on screen
    grab = centre + QPointF(80, 0)
    assert axial._grab(grab) == "rotate"
    _drag(axial, grab, centre + QPointF(80, -80), steps=20)
    direction = mpr.crosshair.lines("axial")["coronal"]  # (right, down) on screen
    angle = math.degrees(math.atan2(-direction[1], direction[0]))
    assert angle == pytest.approx(45.0, abs=1.0)
    assert np.allclose(axial.grid.normal, axial_normal)  # the view itself stays put
    coronal = mpr.views["coronal"].grid
    assert abs(coronal.normal @ np.array([0.0, 1.0, 0.0])) == pytest.approx(
        math.cos(math.radians(45)), abs=0.02)
    assert coronal.labels.left in ("RA", "AR") or coronal.labels.left.startswith(("R", "A"))
    _settle(qtbot, mpr)
    assert mpr.views["coronal"].same_orientation(mpr.views["coronal"].shown.grid)
    mpr.panel.reset_acquisition.click()
    assert np.allclose(mpr.crosshair.frame, np.eye(3))
    assert np.allclose(mpr.crosshair.center, mpr.source.geometry.center_lps())


def test_slab_thickness_and_mode_change_every_plane(qtbot, window: MainWindow) -> None:
    mpr = _open_mpr(qtbot, window, SYNTH)
    thin = {n: v.shown.pixels.astype(np.int32) for n, v in mpr.views.items()}
    panel = mpr.panel
    panel.mode.setCurrentIndex(panel.mode.findData("mip"))
    panel.thickness.setValue(20)
    assert (mpr.slab_mm, mpr.mode) == (20.0, "mip")
    _settle(qtbot, mpr)
    mip = {n: v.shown.pixels.astype(np.int32) for n, v in mpr.views.items()}
    for name in mpr.views:
        assert mpr.views[name].shown.slab_mm == 20.0
        assert mip[name].sum() > thin[name].sum()
        assert (mip[name] >= thin[name] - 2).mean() > 0.99  # a MIP is not darker
    panel.slider.setValue(40)  # thicker slab: at least as bright
    _settle(qtbot, mpr)
    assert mpr.views["axial"].shown.slab_mm == 40.0
    assert mpr.views["axial"].shown.pixels.astype(np.int32).sum() >= mip["axial"].sum()
    panel.mode.setCurrentIndex(panel.mode.findData("minip"))
    _settle(qtbot, mpr)
    assert mpr.views["axial"].shown.pixels.astype(np.int32).sum() < thin["axial"].sum()
    assert mpr.corner_lines("axial")[0] == "MinIP slab 40 mm"
    panel.mode.setCurrentIndex(panel.mode.findData(""))
    _settle(qtbot, mpr)
    assert mpr.slab_mm == 0.0 and mpr.views["axial"].shown.samples == 1
    # previews coarsen when one change took too long, and come back when quick (from a known
    # start: the real previews above may already have coarsened on a busy machine)
    mpr.preview_coarsen = 2
    mpr._adapt_preview(0.2)
    assert mpr.preview_coarsen == 3
    mpr.crosshair.scroll("axial", 3.0)
    assert mpr.views["axial"].shown.grid.pixel_mm == pytest.approx(
        3 * mpr.views["axial"].grid.pixel_mm)
    assert "1/3 resolution" in " ".join(mpr.corner_lines("axial"))
    mpr.preview_coarsen = 3  # the scroll's own preview adapted it to this machine's speed
    mpr._adapt_preview(0.001)
    assert mpr.preview_coarsen == 2


def test_window_presets_shared_or_per_view(qtbot, window: MainWindow) -> None:
    mpr = _open_mpr(qtbot, window, SYNTH)
    panel = mpr.panel
    assert {w.pair for w in mpr.windows.values()} == {(150.0, 600.0)}  # the file's CTA window
    brain = next(i for i in range(panel.presets.count())
                 if panel.presets.itemData(i) is not None and
                 panel.presets.itemData(i).name == "Brain")
    before = mpr.views["coronal"].image.image.copy()
    panel.presets.activated.emit(brain)
    assert {w.pair for w in mpr.windows.values()} == {(40.0, 80.0)}
    assert (mpr.views["coronal"].image.image != before).any()  # re-windowed, not resliced
    panel.shared.setChecked(False)
    mpr._on_view_activated(mpr.views["sagittal"])
    mpr.apply_preset_key("6", "sagittal")  # bone, in the sagittal view only
    assert mpr.windows["sagittal"].pair == (600.0, 2800.0)
    assert mpr.windows["axial"].pair == (40.0, 80.0)
    # shift-drag is window/level in the crosshair mode too
    sag = mpr.views["sagittal"]
    centre = mpr.crosshair.center.copy()
    start = QPointF(sag.width() * 0.2, sag.height() * 0.2)
    _drag(sag, start, start + QPointF(30, 20), modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert mpr.windows["sagittal"].pair != (600.0, 2800.0)
    assert np.allclose(mpr.crosshair.center, centre)


def test_mpr_opens_in_the_window_of_the_view_it_is_opened_from(qtbot,
                                                               window: MainWindow) -> None:
    # The GE head CT (files: W 100 L 35) hangs in the stroke protocol: the plain CT in the
    # brain window (active) beside the stroke window. MPR opened in the stroke window, the
    # one the protocol set last, not the one the reader was looking at.
    mpr = _open_mpr(qtbot, window, "HEAD")
    viewer = window.viewers[mpr.session.study.study_instance_uid]
    active, other = viewer.viewports[0], viewer.viewports[1]
    assert viewer.active is active and other.session is active.session
    assert active.state.window.pair == (40.0, 80.0) and other.state.window.pair == (40.0, 40.0)
    assert {w.pair for w in mpr.windows.values()} == {(40.0, 80.0)}
    assert mpr.window_lines("axial") == ["W 80  L 40"]
    # from the other view of the series: its window
    viewer.set_layout("1×2")
    viewer.set_active_viewport(other)
    viewer.show_mpr()
    assert {w.pair for w in mpr.windows.values()} == {(40.0, 40.0)}
    # the file's window (0) in 2D: MPR opens in it too
    viewer.set_layout("1×2")
    other.file_window()
    assert other.state.window.pair == (35.0, 100.0)
    viewer.show_mpr()
    assert {w.pair for w in mpr.windows.values()} == {(35.0, 100.0)}


def test_uneven_tilted_ct_is_resampled_and_the_user_told(qtbot, window: MainWindow) -> None:
    mpr = _open_mpr(qtbot, window, "HEAD")
    assert not mpr.source.live and mpr.source.array.shape[0] > 28
    notes = mpr.panel.notes.text()
    assert "tilt of 18.5°" in notes and "uneven slice spacing" in notes  # the series' issues
    assert "need the tilt corrected" not in notes  # the messages agree: MPR corrects it
    assert "correct it by resampling" in notes
    # the tilt said once, in the series' warning (amber, at the top), not again under it
    assert notes.lower().count("tilt of 18.5°") == 1, notes
    assert notes.index("tilt of 18.5°") < notes.index("Slices are unevenly spaced")
    assert mpr.source.tilt_note in mpr.source.notes  # 3D, which shows no issues, still says it
    assert "resampled" in notes and "linear interpolation in patient coordinates" in notes
    # one spacing, across the slices: the issues' steps of 1.08, 4 and 7 mm; MPR said "1.14 to
    # 7.38 mm apart" (the distances along the tilted stack, 1 / cos 18.5° longer)
    assert "steps of 1.08, 4 and 7 mm between slices" in notes
    assert "(1.08 to 7 mm apart)" in notes
    assert "1.14" not in notes and "7.38" not in notes
    g = mpr.source.geometry  # the resampled planes, as far apart as the note says
    across = abs(np.cross(g.row_direction, g.column_direction) @ g.affine[:3, 2])
    assert f"slices {across:.2f}".rstrip("0").rstrip(".") + " mm apart" in notes
    # acquisition planes: the axial view shows the tilted stored slices, letters say so
    assert mpr.views["axial"].grid.labels.top in ("AH", "A")
    mpr.panel.reset_patient.click()
    assert np.allclose(mpr.crosshair.frame, np.eye(3))
    assert mpr.views["axial"].grid.labels.top == "A"


@pytest.mark.gl
def test_3d_layout_presets_clip_and_level_of_detail(qtbot, window: MainWindow) -> None:
    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == SYNTH)
    viewer = window.open_study(uid)
    qtbot.waitUntil(lambda: viewer.viewports[0].session is not None, timeout=10_000)
    action = next(a for a in viewer.layout_group.actions() if a.text() == "3D")
    action.trigger()
    view3d = viewer.view3d
    assert view3d is not None and viewer.pages.currentWidget() is view3d
    qtbot.waitUntil(lambda: view3d.scene is not None, timeout=60_000)
    scene = view3d.scene
    assert scene.preset.name == "bone"
    bone = view3d.snapshot()
    assert bone.max() > 60
    buttons = {b.property("preset"): b for b in view3d.preset_group.buttons()}
    assert all(b.isEnabled() for b in buttons.values())  # CT: every preset
    buttons["cta"].click()
    assert scene.preset.name == "cta" and buttons["cta"].isChecked()
    cta = view3d.snapshot()
    assert np.abs(cta.astype(int) - bone).mean() > 1
    buttons["mip"].click()
    assert scene.preset.blend == "mip"
    # cut away the front half: the picture changes, and "Show all" brings it back
    full = view3d.snapshot()
    b = scene.bounds()
    view3d.set_clip_box(np.array([b[0], (b[2] + b[3]) / 2, b[4]]), np.array([b[1], b[3], b[5]]))
    assert len(scene.clip_planes) == 6
    assert np.abs(view3d.snapshot().astype(int) - full).mean() > 0.5
    view3d.clip_button.click()
    assert view3d.box.GetEnabled()  # the box to drag, drawn over the volume
    view3d.clip_button.click()
    view3d.unclip_button.click()
    assert scene.clip_planes == [] and np.array_equal(view3d.snapshot(), full)
    # dragging the camera lowers the quality, letting go restores it
    view3d.style.InvokeEvent("StartInteractionEvent")
    assert scene.interacting and scene.image_sample_distance > 1
    view3d.style.InvokeEvent("EndInteractionEvent")
    assert not scene.interacting
    # the orientation cube turns with the camera
    marker = view3d.orientation
    assert marker is not None and marker.GetEnabled()
    for side in ("left", "anterior"):
        view3d.reset_camera(side)
        assert view3d.camera.currentData() == side  # the list says where the camera is
        view3d.snapshot()
        cam, cube_cam = scene.renderer.GetActiveCamera(), marker.GetRenderer().GetActiveCamera()
        view = np.subtract(cam.GetFocalPoint(), cam.GetPosition())
        cube_view = np.subtract(cube_cam.GetFocalPoint(), cube_cam.GetPosition())
        assert np.dot(view / np.linalg.norm(view),
                      cube_view / np.linalg.norm(cube_view)) > 0.999, side
    viewer.set_layout("1×1")
    assert viewer.pages.currentWidget() is viewer.grid_host


@pytest.mark.gl
def test_3d_export_saves_the_rendered_view_as_png_jpeg_and_to_the_study(
        qtbot, window: MainWindow, tmp_path: Path, monkeypatch) -> None:
    """Export in the 3D layout saves the 3D picture on screen (not the hidden 2D slice), with
    a patient-free name, as PNG (pixel-exact), JPEG, and a Secondary Capture in the study."""
    import pydicom
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QFileDialog

    from app.ui.view_export import to_rgb

    uid = next(s.study_instance_uid for s in window.store.studies()
               if s.study_description == SYNTH)
    viewer = window.open_study(uid)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.volume is not None and vp.volume.finished, timeout=30_000)
    slice_2d = to_rgb(vp.grab_view())
    viewer.show_3d()
    view3d = viewer.view3d
    qtbot.waitUntil(lambda: view3d.scene is not None, timeout=60_000)
    view3d.reset_camera("left")
    on_screen = view3d.snapshot()
    proposed: list[str] = []
    suffix = ".png"

    def save_as(_parent, _title, start, filters):
        proposed.append(start)
        return str(tmp_path / Path(start).name.replace(".png", suffix)), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    png = viewer.export_dialog()
    assert Path(proposed[-1]).name == "S2_CTA-1.5mm-synthetic_3D.png"  # series, no patient
    saved = to_rgb(QImage(png))
    assert saved.shape == on_screen.shape and on_screen.shape[:2] == (
        view3d.vtk.height() * view3d.vtk.devicePixelRatio(),
        view3d.vtk.width() * view3d.vtk.devicePixelRatio())
    assert np.array_equal(saved, on_screen)  # what is on screen, pixel for pixel
    assert saved.shape != slice_2d.shape or not np.array_equal(saved, slice_2d)
    assert saved.mean() > 5  # the rendered head, not a black frame
    suffix = ".jpg"
    jpeg = viewer.export_dialog(whole=True)  # the 3D layout is one view: the same picture
    assert jpeg.endswith(".jpg") and Path(jpeg).read_bytes()[:2] == b"\xff\xd8"
    assert np.abs(to_rgb(QImage(jpeg)).astype(int) - on_screen).mean() < 3
    stored = viewer.save_to_study()
    assert stored is not None
    ds = pydicom.dcmread(window.store.abspath(stored.relpath))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert "3D" in ds.DerivationDescription
    assert np.array_equal(ds.pixel_array, on_screen)
