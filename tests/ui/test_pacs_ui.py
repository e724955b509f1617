"""PACS in the window, against a real Orthanc with its DICOM port on: Send to PACS… queues a
C-STORE job in the durable queue (shown in Transfers) that ends verified, and what Orthanc holds
is checked through its REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.ui.main_window import MainWindow
from app.ui.transfers import COL, JOB_ROLE
from tests.net import conftest as net
from tests.net.conftest import hub_sop_uids, import_study
from tests.net.dimse_peers import Pacs, make_pacs, relay_home_for
from tests.ui.conftest import shown_window

no_system_keyring = net.no_system_keyring

pytestmark = pytest.mark.orthanc


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    spec = SeriesSpec(slices=12, rows=64, columns=64, slice_step=1.0, seed=13)
    return generate_series(tmp_path_factory.mktemp("small_ct"), spec)


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[Pacs]:
    p = make_pacs(tmp_path / "pacs").start()
    try:
        yield p
    finally:
        p.hub.stop()


@pytest.fixture
def home(tmp_path: Path, pacs: Pacs) -> Path:
    return relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)


def _row(window: MainWindow, job_id: str) -> dict[str, str]:
    table = window.transfers.table
    for r in range(table.rowCount()):
        if table.item(r, 0).data(JOB_ROLE) == job_id:
            return {name: table.item(r, col).text() for name, col in COL.items() if name}
    return {}


def _sop_uids(files: list[Path]) -> list[str]:
    return sorted(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files)


def test_send_to_pacs_from_the_browser_ends_verified_in_orthanc(qtbot, pacs, home, small_ct):
    _, study_uid = import_study(home, small_ct)
    window = shown_window(qtbot, home, 1200, 800)
    assert window.send_pacs_action.text() == "Send to PACS…"
    window.browser.select_study(study_uid)
    dialog = window.send_to_pacs()
    assert dialog is not None and dialog.windowTitle() == "Send to PACS"
    assert dialog.hub() == "pacs" and dialog.series_uids() is None
    assert "ORTHANC@127.0.0.1" in dialog.hub_combo.currentText()
    dialog.accept()
    assert window.transfers_dock.isVisible()
    job_id = window.transfers.selected_job()
    assert job_id is not None
    qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Verified", timeout=120_000)
    row = _row(window, job_id)
    n = len(small_ct)
    assert row["Images"] == f"{n} / {n}", row
    assert sorted(hub_sop_uids(pacs.hub)) == _sop_uids(small_ct)  # every one, exactly once


def test_send_to_pacs_is_in_the_toolbar_menus_and_right_click(qtbot, home):
    window = shown_window(qtbot, home, 1200, 800)
    from PySide6.QtWidgets import QToolBar

    bars = window.findChildren(QToolBar)
    assert any(window.send_pacs_action in bar.actions() for bar in bars)
    menus = [a.menu() for a in window.menuBar().actions() if a.menu() is not None]
    assert sum(window.send_pacs_action in m.actions() for m in menus) >= 2  # Hub and Study


def test_send_to_pacs_without_a_profile_offers_to_set_one_up(qtbot, tmp_path, small_ct):
    home = tmp_path / "bare"
    _, study_uid = import_study(home, small_ct)
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.send_to_pacs(study_uid)
    assert dialog is not None and not dialog.send_button.isEnabled()
    assert dialog.hub_combo.count() == 0
    from app.ui.node_dialog import PacsNodeDialog

    dialog._on_setup()  # "Set up a PACS…": Settings → PACS and node
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(PacsNodeDialog)))
