"""The main window on an empty and a filled store, driven offscreen."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.store.local import Store
from app.ui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("data")


def _wait_task(qtbot, window: MainWindow, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: window._task is not None and not window._task.is_running(),
                    timeout=timeout)
    qtbot.waitUntil(lambda: window.last_report is not None, timeout=5000)


def test_empty_store_offers_open_and_demo(qtbot, home: Path) -> None:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    assert window.pages.currentWidget() is window.empty
    assert window.empty.open_button.text() == "Open CD / folder…"
    assert "demo" in window.empty.demo_button.text().lower()


def test_import_in_background_fills_the_browser(qtbot, home: Path, data: Path) -> None:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.show()
    window.import_paths([str(data / "cd" / "pydicom-dicomdirtests")])
    assert window.task_cancel.isVisible()  # the window stays live while importing
    _wait_task(qtbot, window)
    assert window.last_report.imported == 31
    assert window.pages.currentWidget() is window.browser
    model = window.browser.model
    assert model.rowCount() == 2  # two patients
    studies = sum(model.item(r).rowCount() for r in range(model.rowCount()))
    assert studies == 6
    window.search.setText("carotids")
    proxy = window.browser.proxy
    assert proxy.rowCount() == 1
    patient = proxy.index(0, 0)
    assert proxy.rowCount(patient) == 1
    assert proxy.index(0, 0, patient).data() == "Carotids"
    assert not window.task_cancel.isVisible()


def test_demo_study_is_generated_and_imported(qtbot, home: Path) -> None:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.load_demo()
    _wait_task(qtbot, window, timeout=300_000)
    studies = window.store.studies()
    assert len(studies) == 1
    assert [s.instance_count for s in studies[0].series] == [160, 160]
    assert {s.modality for s in studies[0].series} == {"CT"}


def test_a_folder_given_at_start_is_opened_once_imported(qtbot, home: Path, data: Path) -> None:
    """``relay PATH``: the window imports PATH, then opens the study it brought."""
    from app.ui.main import create_window

    window = create_window(home, [str(data / "ct-head" / "ge-hispeed-human-gantry-tilt")])
    qtbot.addWidget(window)
    window.show()
    _wait_task(qtbot, window)
    (study,) = window.last_report.study_uids
    qtbot.waitUntil(lambda: study in window.viewers, timeout=30_000)
    assert window.tabs.currentWidget() is window.viewers[study]
