"""The reading-room look (issue 18): a dark reading area, an icon and a tool tip (with the keys)
on every tool bar entry in every layout, and light or dark chrome as the user chose, kept for
the next start."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QToolButton

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.settings import load_settings
from app.store.local import Store
from app.ui.main_window import MainWindow
from app.ui.view_export import to_rgb
from tests.ui.conftest import shown_window


@pytest.fixture(scope="module")
def theme_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("theme-home")
    synth = home.parent / "theme-synth"
    generate_series(synth, SeriesSpec(slices=20, rows=64, columns=64, pixel_spacing=2.0,
                                      slice_step=2.0, noise_hu=0, seed=2))
    import_paths(Store(home), [str(synth)])
    return home


def _entries(viewer) -> list[tuple[str, object, str]]:
    """(text, icon, tool tip) of every visible tool bar entry, buttons added as widgets too."""
    out = []
    for action in viewer.toolbar.actions():
        if action.isSeparator() or not action.isVisible():
            continue
        button = viewer.toolbar.widgetForAction(action)
        if isinstance(button, QToolButton) and not action.text():
            out.append((button.text(), button.icon(), button.toolTip()))
        elif action.text():
            out.append((action.text(), action.icon(), action.toolTip()))
    return out


def test_every_tool_has_an_icon_and_a_tip_with_its_keys_in_every_layout(
        qtbot, theme_home: Path) -> None:
    window = shown_window(qtbot, theme_home, 1300, 850)
    viewer = window.open_study(window.store.studies()[0].study_instance_uid)
    qtbot.waitUntil(lambda: viewer.viewports[0].volume is not None, timeout=30_000)
    for layout in ("1×1", "MPR"):
        if layout == "MPR":
            viewer.show_mpr()
        else:
            viewer.set_layout(layout)
        entries = _entries(viewer)
        assert len(entries) >= (15 if layout == "1×1" else 8), layout
        for text, icon, tip in entries:
            if text.endswith(" fps"):
                continue
            assert not icon.isNull(), (layout, text)
            assert tip and tip != text, (layout, text)
    tips = {text: tip for text, _icon, tip in _entries(viewer)}
    assert tips["Invert"].endswith("(I)") and tips["Reset"].endswith("(R)")
    assert "Ctrl+E" in tips["Export"]
    viewer.set_layout("1×1")
    assert _entries(viewer)[0][2]  # "1×1": one viewport
    # the reading area is dark, whatever the chrome: its tool bar and the strip behind the
    # thumbnails
    from PySide6.QtWidgets import QWidget
    shot = to_rgb(QWidget.grab(viewer).toImage())
    toolbar_y = viewer.toolbar.geometry().center().y()
    assert shot[toolbar_y, -5].max() < 60
    strip = viewer.strip.geometry()
    assert shot[strip.bottom() - 5, strip.center().x()].max() < 40
    for v in window.viewers.values():
        v.close_all()


def test_dark_chrome_is_chosen_and_remembered(qtbot, theme_home: Path) -> None:
    app = QApplication.instance()
    light = app.palette().color(QPalette.ColorRole.Window).lightness()
    window = shown_window(qtbot, theme_home, 1000, 700)
    assert not window.dark_chrome_action.isChecked()
    window.dark_chrome_action.trigger()  # View ▸ Dark chrome
    try:
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 60 < light
        assert load_settings(theme_home).reading.dark_chrome
        again = MainWindow(Store(theme_home))  # the next start
        qtbot.addWidget(again)
        assert again.dark_chrome_action.isChecked()
        again.dark_chrome_action.trigger()  # back to light
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 150
        assert not load_settings(theme_home).reading.dark_chrome
    finally:
        from app.ui.theme import apply_chrome
        apply_chrome(False)


@pytest.fixture(scope="module")
def two_series_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("strip-home")
    work = home.parent / "strip-synth"
    for number, phantom, desc in ((2, "head", "Axial brain"), (3, "cta", "CTA arterial")):
        generate_series(work / str(number), SeriesSpec(
            slices=16, rows=64, columns=64, pixel_spacing=3.0, slice_step=3.0, noise_hu=0,
            seed=4, phantom=phantom, series_number=number, series_description=desc,
            study_instance_uid="1.2.826.0.1.3680043.8.498.77"))
    import_paths(Store(home), [str(work)])
    return home


def test_the_browser_shows_the_selected_studys_series_as_thumbnails(
        qtbot, two_series_home: Path) -> None:
    window = shown_window(qtbot, two_series_home, 1200, 800)
    browser = window.browser
    assert not browser.strip.isVisible()  # nothing selected yet
    study = window.store.studies()[0]
    assert browser.select_study(study.study_instance_uid)
    strip = browser.strip
    assert strip.isVisible() and strip.study is not None
    uids = [s.series_instance_uid for s in sorted(study.series,
                                                  key=lambda s: s.series_number or 0)]
    assert sorted(strip.series_uids()) == sorted(uids)
    qtbot.waitUntil(lambda: strip.thumbed == set(uids), timeout=20_000)
    texts = [strip.item(row).text() for row in range(strip.count())]
    assert any("#3 CTA arterial" in t and "16 im" in t for t in texts)
    icon = strip.item(0).icon().pixmap(strip.iconSize()).toImage()
    assert to_rgb(icon).max() > 100  # an image, not the black placeholder
    # double-click a thumbnail: the series opens for reading
    item = next(strip.item(r) for r in range(strip.count())
                if strip.item(r).data(Qt.ItemDataRole.UserRole + 1) == uids[1])
    strip.itemActivated.emit(item)
    viewer = window.viewers[study.study_instance_uid]
    qtbot.waitUntil(lambda: viewer.active is not None and viewer.active.session is not None
                    and viewer.active.session.series.series_instance_uid == uids[1],
                    timeout=20_000)
    for v in window.viewers.values():
        v.close_all()
