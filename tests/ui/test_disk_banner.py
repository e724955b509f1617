"""The low-disk banner: before an import or a retrieve starts in the window, the user is told
plainly when the store's disk has less free space than the storage rule's threshold, and the
work goes on. The threshold is data: set above the disk's real free space, not a mocked disk."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.dicom.synth import SeriesSpec, generate_series
from app.settings import load_settings, save_settings
from app.store.space import GB, free_bytes
from tests.ui.conftest import shown_window

STUDY = "1.2.826.0.1.3680043.8.498.91"


def set_low_disk_gb(home: Path, gb: float) -> None:
    settings = load_settings(home)
    save_settings(home, dataclasses.replace(
        settings, storage=dataclasses.replace(settings.storage, low_disk_gb=gb)))


def test_an_import_below_the_threshold_shows_the_banner_and_still_runs(
        qtbot, home: Path, tmp_path: Path) -> None:
    generate_series(tmp_path / "cd", SeriesSpec(slices=3, rows=16, columns=16,
                                                study_instance_uid=STUDY))
    set_low_disk_gb(home, free_bytes(home) / GB + 50)  # 50 GB more than this disk has free
    window = shown_window(qtbot, home, 1100, 700)
    banner = window.disk_banner
    assert not banner.isVisible()

    task = window.import_paths([str(tmp_path / "cd")])
    assert banner.isVisible()
    text = banner.label.text()
    assert text.startswith("Low disk space:") and "GB free" in text and "import goes on" in text
    assert task is not None  # not blocked: the import runs
    qtbot.waitUntil(lambda: window.store.study(STUDY) is not None, timeout=30_000)
    window.grab().save(str(tmp_path / "banner.png"))

    with qtbot.waitSignal(banner.storage_settings):  # the window opens Settings -> Storage
        banner.settings_button.click()


def test_a_retrieve_below_the_threshold_warns_and_dismiss_hides_it(qtbot, home: Path) -> None:
    set_low_disk_gb(home, free_bytes(home) / GB + 50)
    window = shown_window(qtbot, home, 1100, 700)
    dialog = window.query_retrieve()
    dialog.retrieve.emit("no-such-pacs", [STUDY], [], "get")  # as the Retrieve button does
    assert window.disk_banner.isVisible()
    assert "retrieve goes on" in window.disk_banner.label.text()
    dialog.close()
    window.disk_banner.dismiss_button.click()
    assert not window.disk_banner.isVisible()


def test_with_room_on_the_disk_no_banner_shows(qtbot, home: Path) -> None:
    set_low_disk_gb(home, 0)
    window = shown_window(qtbot, home, 1100, 700)
    assert window.warn_if_low_disk("fetch") is None
    assert not window.disk_banner.isVisible()
