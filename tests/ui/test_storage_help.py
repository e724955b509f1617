"""Settings -> Storage (rule, preview, purge off the UI thread), the open-study registry the
window keeps for purges in other processes, Help -> User guide and Help -> About."""

from __future__ import annotations

import time
from pathlib import Path

from app import __version__
from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.settings import load_settings
from app.store.local import Store
from app.store.opened import open_studies
from app.ui.main_window import MainWindow

STUDY = "1.2.826.0.1.3680043.8.498.77"


def small_study(home: Path, tmp_path: Path, days_old: float) -> Store:
    store = Store(home)
    generate_series(tmp_path / "src", SeriesSpec(slices=4, rows=32, columns=32,
                                                 study_instance_uid=STUDY))
    import_paths(store, [tmp_path / "src"])
    with store.transaction() as conn:
        conn.execute("UPDATE studies SET added_at=?", (time.time() - days_old * 86400,))
    return store


def test_a_study_open_in_the_window_is_known_to_other_processes(qtbot, home: Path,
                                                                  tmp_path: Path) -> None:
    window = MainWindow(small_study(home, tmp_path, 1))
    qtbot.addWidget(window)
    window.open_study(STUDY)
    assert open_studies(home) == {STUDY}
    window.reading.close_study(STUDY)
    assert open_studies(home) == set()


def test_storage_dialog_previews_saves_and_purges(qtbot, home: Path, tmp_path: Path) -> None:
    store = small_study(home, tmp_path, 30)
    window = MainWindow(store)
    qtbot.addWidget(window)
    dialog = window.show_storage_dialog()
    dialog.keep_days.setValue(7)
    assert "not verified on any hub or PACS" in dialog.preview.toPlainText()
    assert not dialog.purge_button.isEnabled()  # nothing may go: unverified
    dialog.only_verified.setChecked(False)
    text = dialog.preview.toPlainText()
    assert "Would purge 1 studies" in text and "received 30 days ago" in text
    assert "DEMO" not in text  # descriptions and dates, never patient names
    window.open_study(STUDY)
    dialog.refresh_preview()
    assert "open in a Relay window" in dialog.preview.toPlainText()
    window.reading.close_study(STUDY)
    dialog.refresh_preview()
    with qtbot.waitSignal(dialog.purged, timeout=30_000):
        dialog.purge_now()
    assert store.study(STUDY) is None
    rule = load_settings(home).storage
    assert (rule.keep_days, rule.only_verified) == (7, False)


def test_help_menu_opens_the_user_guide_and_about_tells_the_version(qtbot, home: Path) -> None:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    guide = window.show_user_guide()
    text = guide.browser.toPlainText()
    for chapter in ("technologist", "neurologist", "IT"):
        assert chapter.lower() in text.lower()
    window.about_action.trigger()
    from app.ui.help_dialogs import about_text

    assert f"Relay {__version__}" in about_text()
