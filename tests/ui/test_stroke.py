"""The stroke layout, the prior beside today's study, ASPECTS, mirrored regions, key images and
findings that come back when the study is opened again (real mouse events, local store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.imports.importer import import_paths
from app.render.link import table_positions
from app.store.local import Store
from app.tasks import Progress
from app.ui.main_window import MainWindow
from app.workflow.aspects import polygon
from app.workflow.hanging import save_choice
from app.workflow.table_offsets import load_offset
from tests.ui.conftest import reading_window, shown_window
from tests.workflow.stroke_studies import stroke_study


@pytest.fixture(scope="module")
def stroke_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stroke-ui")
    files = (stroke_study(root / "today", date="20261201", seed=61, size=128)
             + stroke_study(root / "prior", date="20250310", seed=62, cta=False, size=128))
    home = root / "home"
    import_paths(Store(home), [str(p) for p in files], Progress("test"))
    return home


@pytest.fixture
def window(qtbot, stroke_home: Path) -> MainWindow:
    yield from reading_window(qtbot, stroke_home, 1500, 800)


def _today(window: MainWindow) -> str:
    return max(window.store.studies(), key=lambda s: s.study_date).study_instance_uid


def _press(widget, kind: QEvent.Type, pos: QPointF, buttons, modifiers) -> None:
    target = widget.canvas.viewport()
    QApplication.sendEvent(target, QMouseEvent(kind, pos, target.mapToGlobal(pos),
                                               Qt.MouseButton.LeftButton, buttons, modifiers))


def click(widget, pos: QPointF, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    left = Qt.MouseButton.LeftButton
    _press(widget, QEvent.Type.MouseButtonPress, pos, left, modifiers)
    _press(widget, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton, modifiers)
    QTest.qWait(300)  # not a double click with the next one


def drag(widget, a: QPointF, b: QPointF, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    left = Qt.MouseButton.LeftButton
    _press(widget, QEvent.Type.MouseButtonPress, a, left, modifiers)
    for i in range(1, 9):
        QTest.qWait(12)  # pyqtgraph drops moves closer than 10 ms
        _press(widget, QEvent.Type.MouseMove, a + (b - a) * (i / 8), left, modifiers)
    _press(widget, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton, modifiers)


def widget_pos(viewport, x: float, y: float) -> QPointF:
    return QPointF(viewport.widget_point(x, y))


def _opened(qtbot, viewer) -> list:
    shown = viewer.visible_viewports()
    qtbot.waitUntil(lambda: all(v.volume is not None and v.image.image is not None
                                for v in shown), timeout=30_000)
    return shown


def test_a_stroke_ct_opens_in_brain_and_stroke_windows_beside_the_prior(qtbot, window) -> None:
    viewer = window.open_study(_today(window))
    today, stroke, prior = _opened(qtbot, viewer)
    assert viewer.protocol is not None and viewer.protocol.name == "stroke-code"
    # on the same screen, under the plain CT: the CTA as axial and coronal 20 mm MIP slabs
    slabs = viewer.slabs
    assert slabs is not None and slabs.isVisible() and viewer.pages.currentWidget() is (
        viewer.grid_host)
    assert slabs.session.series.series_description == "CTA head 2.5mm"
    assert (slabs.mode, slabs.slab_mm, slabs.planes) == ("mip", 20.0, ("axial", "coronal"))
    assert not slabs.panel.isVisible() and not slabs.views["sagittal"].isVisible()
    qtbot.waitUntil(lambda: all(slabs.views[p].shown is not None for p in slabs.planes),
                    timeout=30_000)
    assert slabs.windows["axial"].pair == (150, 600)  # the CTA window, not the plain CT's
    top = max(v.mapTo(viewer, v.rect().bottomLeft()).y() for v in (today, stroke, prior))
    for plane in slabs.planes:
        view = slabs.views[plane]
        assert view.mapTo(viewer, view.rect().topLeft()).y() > top  # under the plain CT
        assert view.height() > 0.6 * today.height()
    assert today.session is stroke.session and today.session.series.modality == "CT"
    assert (today.state.center, today.state.width) == (40, 80)
    assert (stroke.state.center, stroke.state.width) == (40, 40)
    assert prior.session.study.study_date == "20250310"
    assert "Prior" in viewer.strip.item(viewer.strip.count() - 2).text() or any(
        "Prior" in viewer.strip.item(r).text() for r in range(viewer.strip.count()))
    # scrolling today's moves its twin (same frame), the CTA's axial slab (the same frame:
    # one examination) and the prior (by table position)
    today.show_slice(30)
    assert stroke.state.k == 30
    z_slice = today.volume.geometry.index_to_lps(np.array([0.0, 0.0, 30.0]))[2]
    assert slabs.crosshair.center[2] == pytest.approx(z_slice, abs=0.01)
    z_today = table_positions(today.volume.geometry)[30]
    assert table_positions(prior.volume.geometry)[prior.state.k] == pytest.approx(z_today)
    # Alt + drag on the prior scrolls it alone and sets its offset; then they go together
    centre = QPointF(prior.canvas.width() / 2, prior.canvas.height() / 2)
    drag(prior, centre, centre + QPointF(0, 20), Qt.KeyboardModifier.AltModifier)
    assert prior.state.k == 35 and today.state.k == 30
    assert prior.table_offset_mm == pytest.approx(12.5)  # 5 slices of 2.5 mm
    today.show_slice(20)
    assert prior.state.k == 25
    # the offset is kept for this pair of studies (in the home, not in the settings), and
    # is there again when the pair is opened again
    viewer.save_table_offset()
    assert load_offset(window.store.home, viewer.study.study_instance_uid,
                       prior.session.study.study_instance_uid) == pytest.approx(12.5)
    settings = window.store.home / "settings.json"
    assert not settings.exists() or "12.5" not in settings.read_text()
    uid = viewer.study.study_instance_uid
    window.reading.close_study(uid)
    viewer = window.open_study(uid)
    today, stroke, prior = _opened(qtbot, viewer)
    assert prior.table_offset_mm == pytest.approx(12.5) and today.table_offset_mm == 0
    today.show_slice(20)
    assert prior.state.k == 25
    slabs = viewer.slabs
    assert slabs is not None
    # a double-click shows one view alone, and again the whole screen with the slabs
    viewer.toggle_maximised(today)
    assert not slabs.isVisible() and not stroke.isVisible()
    qtbot.waitUntil(lambda: today.height() > 0.9 * viewer.grid_host.height())  # all of it
    viewer.toggle_maximised(today)
    assert slabs.isVisible() and stroke.isVisible()
    # a layout from the tool bar has no slabs
    viewer.set_layout("1×2")
    assert not slabs.isVisible()
    # the third stage: the CTA alone in the MPR layout, axial and coronal MIP slabs
    viewer.show_stage(2)
    mpr = viewer.mpr
    assert mpr is not None and viewer.pages.currentWidget() is mpr
    assert mpr.session.series.series_description == "CTA head 2.5mm"
    assert (mpr.mode, mpr.slab_mm) == ("mip", 20.0)
    assert not mpr.views["sagittal"].isVisible() and mpr.views["coronal"].isVisible()


def test_aspects_midline_key_image_saved_and_shown_again(qtbot, window, tmp_path) -> None:
    viewer = window.open_study(_today(window))
    today, _stroke, _prior = _opened(qtbot, viewer)
    today.show_slice(24)
    viewer.set_tool("aspects")
    guide = viewer.aspects_tool.guide(today)
    assert guide is not None
    # a drag moves the guide; a click in a region marks it
    drag(today, widget_pos(today, guide.cx, guide.cy), widget_pos(today, guide.cx + 12,
                                                                   guide.cy))
    moved = viewer.aspects_tool.guide(today)
    assert moved is not None and moved.cx == pytest.approx(guide.cx + 12, abs=0.5)
    for code in ("M2", "I"):
        x, y = polygon(code, "left", moved).mean(axis=0)
        click(today, widget_pos(today, float(x), float(y)))
    assert viewer.aspects_tool.aspects.score("left") == 8
    assert viewer.aspects_tool.aspects.score("right") == 10
    # the midline by two clicks, then an ellipse on the left MCA infarct
    viewer.set_tool("midline")
    click(today, widget_pos(today, 128.0, 20.0))
    click(today, widget_pos(today, 128.0, 230.0))
    assert viewer.midline_tool.midlines[today.session.series.series_instance_uid] == (
        pytest.approx((128.0, 20.0), abs=0.6), pytest.approx((128.0, 230.0), abs=0.6))
    viewer.set_tool("ellipse")
    drag(today, widget_pos(today, 166.0, 120.0), widget_pos(today, 182.0, 146.0))
    ((_note, mirrored),) = viewer.midline_tool.mirrored(today)
    assert mirrored.difference < -8  # the infarct is darker than its mirror
    viewer.set_tool("arrow")
    drag(today, widget_pos(today, 60.0, 200.0), widget_pos(today, 150.0, 140.0))
    assert [n.kind for n in today.session.annotations[24]] == ["ellipse", "arrow"]
    today.setFocus()
    QTest.keyClick(today, Qt.Key.Key_K)
    assert viewer.key_images == [today.volume.slices[24].sop_instance_uid]
    viewer.key_text = "Left MCA hypodensity"
    today.grab()
    stored = viewer.save_findings()
    assert sorted(s.header.series.modality for s in stored) == ["KO", "PR", "SR"]
    # closed and opened again: the score, the region, the midline and the key image are back
    uid = viewer.study.study_instance_uid
    window.reading.close_study(uid)
    again = window.open_study(uid)
    first, _, _ = _opened(qtbot, again)
    assert again.aspects_tool.aspects.score("left") == 8
    assert again.key_images == [first.volume.slices[24].sop_instance_uid]
    qtbot.waitUntil(lambda: 24 in first.session.annotations, timeout=10_000)
    kinds = sorted(n.kind for n in first.session.annotations[24])
    assert kinds == ["arrow", "ellipse"]
    assert again.midline_tool.midlines.get(first.session.series.series_instance_uid)
    first.show_slice(24)
    ((_note, back),) = again.midline_tool.mirrored(first)
    assert back.here.mean == pytest.approx(mirrored.here.mean, abs=0.01)
    assert np.isfinite(back.difference)

    # opened while the key-image note and the presentation state were still on their way (a
    # study read from the hub): the report is shown; the rest when the download ends, once
    window.reading.close_study(uid)
    late = [f for f in stored if f.header.series.modality in ("KO", "PR")]
    aside = tmp_path / "late"
    aside.mkdir()
    copies = [Path(shutil.copy(window.store.abspath(f.relpath), aside / f"{n}.dcm"))
              for n, f in enumerate(late)]
    window.store.delete_series([f.header.series.series_instance_uid for f in late])
    partly = window.open_study(uid)
    first, _, _ = _opened(qtbot, partly)
    assert partly.aspects_tool.aspects.score("left") == 8 and partly.key_images == []
    qtbot.waitUntil(lambda: 24 in first.session.annotations, timeout=10_000)
    assert [n.kind for n in first.session.annotations[24]] == ["ellipse"]  # the report's
    import_paths(window.store, [str(c) for c in copies], Progress("test"))
    partly.remote_finished()
    assert partly.key_images == [first.volume.slices[24].sop_instance_uid]
    assert partly.key_text == "Left MCA hypodensity"
    assert sorted(n.kind for n in first.session.annotations[24]) == ["arrow", "ellipse"]


def test_the_users_protocol_choice_is_kept_for_the_next_study(qtbot, window) -> None:
    viewer = window.open_study(_today(window))
    _opened(qtbot, viewer)
    try:
        viewer.use_protocol("default")
        assert len(viewer.visible_viewports()) == 1
        uid = viewer.study.study_instance_uid
        window.reading.close_study(uid)
        again = window.open_study(uid)
        assert again.protocol is not None and again.protocol.name == "default"
        assert len(again.visible_viewports()) == 1
    finally:  # the module's home is shared by the other tests
        save_choice(window.store.home, viewer.study, "stroke-code")


@pytest.fixture
def own_window(qtbot, tmp_path: Path) -> MainWindow:
    """A main window on a home of its own (today's study alone, no findings yet)."""
    files = stroke_study(tmp_path / "today", date="20261201", seed=63, size=128)
    import_paths(Store(tmp_path / "home"), [str(p) for p in files], Progress("test"))
    win = shown_window(qtbot, tmp_path / "home", 1500, 800)
    yield win
    for viewer in win.viewers.values():
        viewer.close_all()


def _notes(session, k: int) -> list[tuple[str, str, list[tuple[float, float]]]]:
    return sorted((n.kind, n.text, [(round(x, 1), round(y, 1)) for x, y in n.points])
                  for n in session.annotations.get(k, []))


def test_a_presentation_state_brings_back_window_zoom_pan_and_every_annotation(
        qtbot, own_window) -> None:
    """Drawn with the mouse, saved as a GSPS, the study closed and opened again: the same
    window, the same area in view, every drawing and text where it was."""
    window = own_window
    viewer = window.open_study(_today(window))
    today, stroke, *_ = _opened(qtbot, viewer)
    today.show_slice(24)
    today.set_window(36, 50)
    today.view.setRange(QRectF(90.0, 70.0, 120.0, 100.0), padding=0)
    (x0, x1), (y0, y1) = today.view.viewRange()
    for tool, a, b in (("length", (100.0, 90.0), (150.0, 90.0)),
                       ("arrow", (110.0, 160.0), (150.0, 130.0)),
                       ("ellipse", (160.0, 100.0), (185.0, 130.0)),
                       ("rect", (100.0, 110.0), (125.0, 140.0))):
        viewer.set_tool(tool)
        drag(today, widget_pos(today, *a), widget_pos(today, *b))
    viewer.set_tool("angle")
    for point in ((120.0, 80.0), (140.0, 100.0), (170.0, 80.0)):
        click(today, widget_pos(today, *point))
    viewer.set_tool("probe")
    click(today, widget_pos(today, 130.0, 120.0))
    viewer.set_tool("text")
    today.ask_text = lambda: "Hyperdense left MCA"
    click(today, widget_pos(today, 170.0, 150.0))
    drawn = _notes(today.session, 24)
    assert [kind for kind, _, _ in drawn] == [
        "angle", "arrow", "ellipse", "length", "probe", "rect", "text"]
    stored = viewer.save_findings()
    assert sorted(s.header.series.modality for s in stored) == ["PR", "SR"]
    uid = viewer.study.study_instance_uid
    window.reading.close_study(uid)
    again = window.open_study(uid)
    first, second, *_ = _opened(qtbot, again)
    qtbot.waitUntil(lambda: len(first.session.annotations.get(24, [])) == len(drawn),
                    timeout=10_000)
    qtbot.waitUntil(lambda: first.state.window.pair == (36, 50), timeout=10_000)
    back = _notes(first.session, 24)
    assert [(kind, text) for kind, text, _ in back] == [(k, t) for k, t, _ in drawn]
    for (_, _, got), (_, _, want) in zip(back, drawn, strict=True):
        assert np.allclose(got, want, atol=0.05), (got, want)
    spacing = first.volume.spacing[2]  # the area is kept in whole pixels
    (u0, u1), (v0, v1) = first.view.viewRange()
    assert abs(u0 - x0) <= spacing and abs(u1 - x1) <= spacing or (  # one axis fits exactly,
        abs(v0 - y0) <= spacing and abs(v1 - y1) <= spacing)  # the other holds the area
    assert u0 <= x0 + spacing and u1 >= x1 - spacing and v0 <= y0 + spacing and v1 >= y1 - spacing
    assert (second.state.center, second.state.width) == (40, 40)  # the protocol's stroke window
    first.show_slice(24)
    texts = [item.label.toPlainText() for item in first._items]
    assert "Hyperdense left MCA" in texts and any(t.endswith("°") for t in texts)
