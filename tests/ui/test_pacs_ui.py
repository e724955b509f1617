"""PACS in the window, against a real Orthanc with its DICOM port on: Send to PACS… queues a
C-STORE job in the durable queue (shown in Transfers) that ends verified, and what Orthanc holds
is checked through its REST API."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import QToolBar

from app.dicom.synth import SeriesSpec, generate_series
from app.net.devhub import free_port
from app.store.local import Store
from app.ui.format import format_name
from app.ui.main_window import MainWindow
from app.ui.query_dialog import BETWEEN, COLUMNS, KEY_ROLE
from app.ui.transfers import COL, JOB_ROLE
from tests.net import conftest as net
from tests.net import dimse_peers
from tests.net.conftest import hub_sop_uids, import_study, relay
from tests.net.dimse_peers import HeldSeriesPacs, Pacs, SlowFindPacs, relay_home_for
from tests.ui.conftest import shown_window

no_system_keyring = net.no_system_keyring

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

pytestmark = pytest.mark.orthanc


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    spec = SeriesSpec(slices=12, rows=64, columns=64, slice_step=1.0, seed=13)
    return generate_series(tmp_path_factory.mktemp("small_ct"), spec)


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


@pytest.fixture(scope="module")
def markup_ct(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A small CT whose patient name holds markup (shown as plain text, never rendered)."""
    spec = SeriesSpec(slices=8, rows=64, columns=64, slice_step=1.0, seed=17,
                      patient_name="<b>ROE</b>^JANE", patient_id="QR-17")
    return generate_series(tmp_path_factory.mktemp("markup_ct"), spec)


def _on_pacs(tmp_path: Path, pacs: Pacs, files: list[Path]) -> str:
    """Another Relay home sends ``files`` to the PACS (``relay send --pacs``); the study UID."""
    spoke = relay_home_for(tmp_path / "spoke", pacs.relay_port, pacs_port=pacs.dicom_port)
    _, study_uid = import_study(spoke, files)
    sent = relay(spoke, "send", study_uid, "--pacs", "pacs", "--json")
    assert sent.returncode == 0 and json.loads(sent.stdout)["state"] == "verified", sent.stderr
    return study_uid


def test_query_finds_the_study_on_orthanc_and_retrieve_stores_it(qtbot, tmp_path, pacs, home,
                                                                 small_ct, markup_ct):
    study_uid = _on_pacs(tmp_path, pacs, markup_ct)
    _on_pacs(tmp_path, pacs, small_ct)  # another patient, not matched by the name
    window = shown_window(qtbot, home, 1200, 800)
    assert window.query_action in window.menuBar().actions()[0].menu().actions()
    assert any(window.query_action in bar.actions() for bar in window.findChildren(QToolBar))
    dialog = window.query_retrieve()
    assert dialog.pacs_name() == "pacs" and not dialog.retrieve_button.isEnabled()
    dialog.name_edit.setText("roe ja")
    dialog.modality_edit.setText("ct")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.searches == 1, timeout=60_000)
    assert dialog.table.rowCount() == 1, dialog.status.text()
    cells = [dialog.table.item(0, c).text() for c in range(len(COLUMNS))]
    assert cells[:2] == [format_name("<b>ROE</b>^JANE"), "QR-17"]
    assert cells[COLUMNS.index("Images")] == str(len(markup_ct))
    assert dialog.status.textFormat() == Qt.TextFormat.PlainText
    assert dialog.status.text() == "1 study found on pacs."
    assert dialog.selected_studies() == [study_uid] and dialog.retrieve_button.isEnabled()
    assert not Store(home).study(study_uid)
    assert cells[COLUMNS.index("Here")] == ""  # nothing of it here yet

    dialog.retrieve_button.click()
    assert window.transfers_dock.isVisible()
    job_id = window.transfers.selected_job()
    assert job_id is not None
    qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Verified", timeout=120_000)
    assert _row(window, job_id)["Direction"] == "↓ Retrieve"  # as the button says, not Fetch
    table = window.transfers.table  # and the word is whole, not "↓ Retr…"
    direction = table.item(0, 0)
    assert table.columnWidth(0) >= table.fontMetrics().horizontalAdvance(direction.text()) + 12
    store = Store(home)
    assert store.counts()["instances"] == len(markup_ct) and not store.conflicts()
    study = store.study(study_uid)
    assert study is not None and study.patient.patient_name == "<b>ROE</b>^JANE"
    qtbot.waitUntil(lambda: window.browser.select_study(study_uid), timeout=10_000)
    here = COLUMNS.index("Here")  # told as the retrieve ends, without searching again
    qtbot.waitUntil(lambda: dialog.table.item(0, here).text() == f"all {len(markup_ct)}",
                    timeout=10_000)

    dialog.name_edit.setText("")  # the whole PACS: both studies
    dialog.modality_edit.setText("")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.searches == 2, timeout=60_000)
    assert dialog.table.rowCount() == 2
    rows = {dialog.table.item(r, 0).data(KEY_ROLE): r for r in range(2)}
    [other] = [uid for uid in rows if uid != study_uid]
    assert dialog.table.item(rows[study_uid], here).text() == f"all {len(markup_ct)}"
    assert dialog.table.item(rows[other], here).text() == ""
    # each search is one audit event: the kinds of keys, never the name searched for
    from app.workflow import audit

    searches = [e["detail"] for e in audit.read(home) if e["event"] == "query"
                and e["detail"]["level"] == "study"]
    assert [(d["keys"], d["answers"]) for d in searches] == [
        (["ModalitiesInStudy", "PatientName"], 1), ([], 2)]
    assert "ROE" not in audit.audit_path(home).read_text(encoding="utf-8").upper()

    # double-click: a study wholly here opens from the store; another one is retrieved
    jobs = len(window.transfer.queue_runner().jobs())
    dialog.table.doubleClicked.emit(dialog.table.model().index(rows[study_uid], 0))
    assert window.tabs.currentWidget() is window.viewers[study_uid]
    assert window.viewers[study_uid].remote is None
    assert len(window.transfer.queue_runner().jobs()) == jobs  # nothing asked of the PACS
    dialog.table.selectRow(rows[other])
    dialog.table.doubleClicked.emit(dialog.table.model().index(rows[other], 0))
    assert len(window.transfer.queue_runner().jobs()) == jobs + 1
    qtbot.waitUntil(lambda: dialog.table.item(rows[other], here).text()
                    == f"all {len(small_ct)}", timeout=120_000)


def test_query_with_a_date_range_and_an_unreachable_pacs(qtbot, tmp_path, pacs, home, small_ct):
    _on_pacs(tmp_path, pacs, small_ct)
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.query_retrieve()
    dialog.date_box.setCurrentText(BETWEEN)
    assert dialog.from_date.isEnabled()
    dialog.from_date.setDate(QDate(1990, 1, 1))
    dialog.to_date.setDate(QDate(1990, 12, 31))
    assert dialog.filter().date == "19900101-19901231"
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.searches == 1, timeout=60_000)
    assert dialog.table.rowCount() == 0 and dialog.status.text() == "No study on pacs matches."
    pacs.hub.stop()
    dialog.date_box.setCurrentText("Any date")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.searches == 2, timeout=60_000)
    assert dialog.status.text().startswith("Cannot search pacs:")
    assert dialog.search_button.isEnabled() and not dialog.stop_button.isEnabled()
    from app.workflow import audit

    trail = [(e["event"], e["outcome"], e["detail"].get("reason"))
             for e in audit.read(home) if e["event"] in ("login", "query")]
    assert trail == [("login", 0, None), ("query", 0, None),
                     ("login", audit.MINOR_FAILURE, "unreachable"),
                     ("query", audit.SERIOUS_FAILURE, "unreachable")]


def _searched(qtbot, tmp_path: Path, port: int, ae: str):  # type: ignore[no-untyped-def]
    """A window knowing the PACS at ``port`` as "pacs", its Query/Retrieve dialog, a search
    of everything started: (home, window, dialog)."""
    home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=port, ae=ae)
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.query_retrieve()
    dialog.search_button.click()
    return home, window, dialog


def test_results_stream_in_and_stop_cancels_the_query(qtbot, tmp_path):
    peer = SlowFindPacs()
    try:
        home, _window, dialog = _searched(qtbot, tmp_path, peer.port, "SLOW")
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=30_000)
        assert dialog.searching and dialog.stop_button.isEnabled()  # still running: streamed
        assert dialog.table.item(0, 0).text() == "FIRST, ANSWER"
        assert dialog.status.text() == "Searching pacs… 1 study so far"
        dialog.stop_button.click()
        qtbot.waitUntil(lambda: dialog.searches == 1, timeout=20_000)
        assert dialog.status.text() == "Search cancelled. 1 study found on pacs."
        assert dialog.search_button.isEnabled() and dialog.table.rowCount() == 1
        qtbot.waitUntil(lambda: peer.cancelled, timeout=10_000)  # the PACS got a C-CANCEL
        from app.workflow import audit

        (search,) = [e for e in audit.read(home) if e["event"] == "query"]
        assert search["detail"]["stopped"] and search["detail"]["answers"] == 1
    finally:
        peer.stop()


def test_a_series_listing_left_behind_does_not_speak_over_the_next(qtbot, tmp_path):
    """Select a study, then another (or none) before its series are listed: that listing is
    cancelled on the PACS, and its end ("Search cancelled.") is not shown under the next."""
    from app.workflow import audit

    def stopped_listings() -> int:
        return sum(1 for e in audit.read(home) if e["event"] == "query"
                   and e["detail"].get("level") == "series" and e["detail"].get("stopped"))

    peer = HeldSeriesPacs()
    try:
        home, _window, dialog = _searched(qtbot, tmp_path, peer.port, "HELD")
        qtbot.waitUntil(lambda: dialog.searches == 1, timeout=30_000)
        assert dialog.table.rowCount() == 2
        assert dialog.selected_studies() == [peer.HELD]  # the first, selected for the user
        qtbot.waitUntil(lambda: peer.series_asked == 1, timeout=20_000)  # held on the PACS
        assert dialog.series_label.text() == "Series: searching…"

        dialog.table.selectRow(1)  # the user moves on
        qtbot.waitUntil(lambda: peer.cancelled == 1 and stopped_listings() == 1, timeout=20_000)
        qtbot.wait(500)  # the held listing's end has come back by now
        assert dialog.series_table.rowCount() == 1
        assert dialog.series_label.text() == "Series (1): select some to retrieve only those"

        dialog.table.selectRow(0)
        qtbot.waitUntil(lambda: peer.series_asked == 3, timeout=20_000)
        dialog.table.clearSelection()  # no study: no series
        qtbot.waitUntil(lambda: peer.cancelled == 2 and stopped_listings() == 2, timeout=20_000)
        qtbot.wait(500)
        assert dialog.series_table.rowCount() == 0
        assert dialog.series_label.text() == "Series: select one study to list them"
        assert dialog.status.text() == "2 studies found on pacs."
    finally:
        peer.stop()


def test_retrieve_one_series_by_c_move_and_open_a_study_while_it_arrives(
        qtbot, tmp_path, pacs, home, small_ct):
    """The Q/R dialog lists the series of the selected study; Retrieve of one series by C-MOVE
    queues a job that says so and brings that series only; Open reads the study from the PACS
    in a viewer tab while it arrives."""
    study_uid = _on_pacs(tmp_path, pacs, small_ct)
    spec = SeriesSpec(slices=6, rows=64, columns=64, slice_step=1.0, seed=19, series_number=3,
                      series_description="Second (synthetic)", study_instance_uid=study_uid)
    second = generate_series(tmp_path / "second", spec)
    _on_pacs(tmp_path / "again", pacs, second)
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.query_retrieve()
    assert dialog.method() == "get"  # the profile's method first
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.searches == 1, timeout=60_000)
    assert dialog.selected_studies() == [study_uid]
    qtbot.waitUntil(lambda: dialog.series_label.text().startswith("Series (2)"),
                    timeout=60_000)
    rows = {dialog.series_table.item(r, 2).text(): r for r in range(2)}
    dialog.series_table.selectRow(rows["Second (synthetic)"])
    [series_uid] = dialog.selected_series()
    assert dialog.retrieve_button.text() == "Retrieve 1 series"
    dialog.method_box.setCurrentIndex(dialog.method_box.findData("move"))
    dialog.retrieve_button.click()
    job_id = window.transfers.selected_job()
    assert job_id is not None
    qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Verified", timeout=120_000)
    assert _row(window, job_id)["Hub / PACS"] == "pacs (PACS)"
    job = next(j for j in window.transfer.queue_runner().jobs() if j.id == job_id)
    assert (job.kind, job.method, job.series_uids) == ("fetch", "move", (series_uid,))
    store = Store(home)
    assert [s.series_instance_uid for s in store.study(study_uid).series] == [series_uid]
    assert store.counts()["instances"] == len(second)
    here = dialog.table.item(0, COLUMNS.index("Here"))  # one series of two is here
    qtbot.waitUntil(lambda: here.text() == f"{len(second)} of {len(small_ct) + len(second)}",
                    timeout=10_000)

    dialog.open_button.click()  # the whole study now, read while it arrives
    qtbot.waitUntil(lambda: store.counts()["instances"] == len(small_ct) + len(second),
                    timeout=120_000)
    viewer = window.tabs.currentWidget()
    viewport = viewer.viewports[0]  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.image.image is not None,
                    timeout=60_000)
    # who is read, from the PACS's STUDY-level answer (its IMAGE-level one carries no names)
    on_pacs = pydicom.dcmread(small_ct[0], stop_before_pixels=True)
    patient = viewer.study.patient  # type: ignore[union-attr]
    assert (patient.patient_name, patient.patient_id) == (str(on_pacs.PatientName),
                                                           on_pacs.PatientID)
    assert viewer.study.study_description == on_pacs.StudyDescription  # type: ignore[union-attr]
    title = window.tabs.tabText(window.tabs.indexOf(viewer))
    assert title.startswith(format_name(str(on_pacs.PatientName))) and title.endswith("(pacs)")
    qtbot.waitUntil(lambda: "from pacs are local now" in window.statusBar().currentMessage(),
                    timeout=60_000)


def test_settings_add_test_edit_and_remove_a_pacs(qtbot, tmp_path, pacs):
    """Settings → PACS and node…: a PACS added in the form is tested against Orthanc (OK), a
    wrong AE title is told in plain words, an edit keeps its place, remove forgets it; a hub's
    name is refused."""
    from app.settings import load_settings
    from tests.net.conftest import add_hub

    home = tmp_path / "fresh"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"node": {"port": pacs.relay_port}}))
    assert add_hub(home, "http://127.0.0.1:9/dicom-web", name="hub").returncode == 0
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.show_node_dialog()
    qtbot.addWidget(dialog)
    form = dialog.pacs_widget
    assert form.pacs_list.count() == 0 and not form.remove_button.isEnabled()
    form.name_edit.setText("orthanc")
    form.host_edit.setText("127.0.0.1")
    form.port_spin.setValue(pacs.dicom_port)
    form.ae_edit.setText("WRONG")
    worker = form.test_pacs()
    assert worker is not None
    qtbot.waitUntil(lambda: form.last_check is not None, timeout=60_000)
    assert form.last_check is not None and not form.last_check.ok
    assert form.result_label.text().startswith("WRONG AE TITLE")
    form.ae_edit.setText("ORTHANC")
    form.last_check = None
    form.test_pacs()
    qtbot.waitUntil(lambda: form.last_check is not None, timeout=60_000)
    assert form.last_check is not None and form.last_check.ok, form.result_label.text()
    form.retrieve_combo.setCurrentIndex(form.retrieve_combo.findData("move"))
    assert form.save_pacs()
    saved = load_settings(home).pacs_profile("orthanc")
    assert saved is not None and (saved.port, saved.ae_title, saved.retrieve) == (
        pacs.dicom_port, "ORTHANC", "move")
    assert [h.name for h in load_settings(home).hubs] == ["hub", "orthanc"]

    form.name_edit.setText("hub")  # a hub's name
    assert not form.save_pacs() and "a hub is called 'hub'" in form.result_label.text()
    form.name_edit.setText("pacs1")  # renamed in place
    assert form.save_pacs()
    assert [h.name for h in load_settings(home).hubs] == ["hub", "pacs1"]
    assert form.remove_pacs()
    assert [h.name for h in load_settings(home).hubs] == ["hub"]
    assert form.pacs_list.count() == 0


def test_a_study_read_from_the_pacs_takes_the_images_that_reach_the_pacs_after(
        qtbot, tmp_path, pacs, home, small_ct):
    """A study opened from the PACS while the scanner is still sending it there is followed
    as a hub study is: once the rest is on the PACS, it is retrieved and the series on screen
    shows every image, at the slice it showed."""
    from app.render.link import table_positions

    study_uid = _on_pacs(tmp_path / "first", pacs, small_ct[:7])
    window = shown_window(qtbot, home, 1200, 800)
    viewer = window.open_remote_study("pacs", study_uid)
    viewport = viewer.viewports[0]
    qtbot.waitUntil(lambda: "from pacs are local now" in window.statusBar().currentMessage(),
                    timeout=120_000)
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.n_slices == 7,
                    timeout=60_000)
    viewport.show_slice(3)
    z = table_positions(viewport.volume.geometry)[3]
    _on_pacs(tmp_path / "rest", pacs, small_ct[7:])  # the scanner sent the rest to the PACS
    qtbot.waitUntil(lambda: viewport.volume is not None
                    and viewport.n_slices == len(small_ct), timeout=60_000)
    assert Store(home).study(study_uid).instance_count == len(small_ct)
    assert abs(table_positions(viewport.volume.geometry)[viewport.state.k] - z) < 0.01


def test_the_strip_counts_the_images_of_a_series_arriving_from_a_pacs_with_a_long_name(
        qtbot, tmp_path, pacs, small_ct):
    """While a study opened from "hospital-pacs" arrives, the series strip shows how many of
    its images are here ("3 / 12 from hospital‑pa…"): the count comes first, the name is
    what the strip's width cuts; the tooltip has it all."""
    import re

    from app.ui.remote_session import RemoteLoadedSeries
    from tests.proxies import SlowLink

    study_uid = _on_pacs(tmp_path, pacs, small_ct)
    link = SlowLink(pacs.dicom_port, 20_000, shared=True)  # ~100 kB: the C-GET takes seconds
    try:
        home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=link.port,
                              name="hospital-pacs")
        window = shown_window(qtbot, home, 1200, 800)
        viewer = window.open_remote_study("hospital-pacs", study_uid)
        viewport = viewer.viewports[0]
        qtbot.waitUntil(lambda: isinstance(viewport.session, RemoteLoadedSeries), timeout=60_000)
        # name, "CT · 12 im", and the arrival's line
        qtbot.waitUntil(lambda: viewer.strip.item(0).text().count("\n") == 2, timeout=60_000)
        item = viewer.strip.item(0)
        assert not viewport.session.remote.finished
        caption = item.text().split("\n")[-1]
        assert re.match(rf"\d+ / {len(small_ct)} from hosp", caption), caption
        assert re.search(rf"\d+ / {len(small_ct)} from hospital\u2011pacs", item.toolTip())
    finally:
        link.close()


def test_a_study_read_from_the_pacs_takes_every_image_here_when_its_retrieve_ends(
        qtbot, tmp_path, pacs, data):
    """The tech opens a study on the PACS while the scanner sends the rest of it to Relay's
    node: when the retrieve ends, the series on screen shows every image of the study here,
    at the slice it showed. The PACS holds no more than is here, so the follow's C-FIND never
    tells it: the end of the read does (ViewerWidget.remote_finished)."""
    from app.render.link import table_positions
    from tests.net.dimse_node import dcmtk

    files, study_uid, link, home, settings = _ten_on_the_pacs_behind_a_link(
        tmp_path, pacs, data, 1_000_000)  # 10 images of 0.5 MB: 5 s
    try:
        window, viewer, viewport = _reading_from_the_pacs(qtbot, home, study_uid)
        remote = viewport.session.remote
        assert viewport.n_slices == 10
        viewport.show_slice(4)
        z = table_positions(viewport.volume.geometry)[4]
        rest = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1",
                     str(settings.node.port), *map(str, files[10:]))
        assert rest.returncode == 0, rest.stderr
        assert not remote.finished, "the retrieve ended before the rest came: too fast a link"
        qtbot.waitUntil(lambda: remote.finished and not window._openers, timeout=120_000)
        assert remote.wait(0).verified == 10  # the PACS held no more
        qtbot.waitUntil(lambda: viewport.volume is not None
                        and viewport.n_slices == len(files), timeout=30_000)
        assert viewer.study.instance_count == len(files)
        assert abs(table_positions(viewport.volume.geometry)[viewport.state.k] - z) < 0.01
    finally:
        link.close()


def test_a_study_read_from_the_pacs_takes_the_images_here_when_its_retrieve_ends_waiting(
        qtbot, tmp_path, pacs, data):
    """The PACS goes away part way through a retrieve read in a viewer, while the scanner
    sent the rest of the study to Relay's node: the retrieve ends waiting (Transfers reports
    no end, the job is to be tried again), and the series on screen takes every image here
    when the read ends, at once. The Transfers panel's report of a job's end, when it comes,
    does not open it again."""
    from app.net.queue import TransferQueue
    from app.settings import save_settings
    from app.ui.remote_session import RemoteLoadedSeries
    from tests.net.dimse_node import dcmtk

    files, study_uid, link, home, settings = _ten_on_the_pacs_behind_a_link(
        tmp_path, pacs, data, 250_000)  # 10 images of 0.5 MB: 20 s
    try:
        settings.transfer.retry_initial_seconds = 0.2
        settings.transfer.give_up_seconds = 1.0
        save_settings(home, settings)
        window, viewer, viewport = _reading_from_the_pacs(qtbot, home, study_uid)
        remote = viewport.session.remote
        series_uid = viewport.session.series.series_instance_uid
        qtbot.waitUntil(lambda: remote.arrival(series_uid)[0] >= 2, timeout=60_000)
        with qtbot.waitSignal(window.node.received, timeout=30_000,
                              check_params_cb=lambda study: not study.arriving):
            rest = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1",
                         str(settings.node.port), *map(str, files[10:]))
        assert rest.returncode == 0, rest.stderr
        assert not remote.finished, "the retrieve ended before the PACS went: too fast a link"
        link.close()  # the PACS goes away
        qtbot.waitUntil(lambda: remote.finished and not window._openers, timeout=60_000)
        result = remote.wait(0)
        assert result is not None and 2 <= result.verified < 10, result
        assert TransferQueue(home).job(result.job).state == "waiting"  # Transfers: no end
        here = window.store.study(study_uid)
        assert here is not None and here.instance_count == len(files) - 10 + result.verified
        assert viewer.study.instance_count == here.instance_count  # at once, no panel report
        qtbot.waitUntil(lambda: viewport.volume is not None
                        and viewport.n_slices == here.instance_count, timeout=30_000)
        session = viewport.session
        assert not isinstance(session, RemoteLoadedSeries)
        window._on_fetched(result.job)
        assert viewport.session is session  # the panel's report opens nothing again
    finally:
        link.close()


def test_query_results_show_descriptions_and_counts_whole_at_the_dialogs_size(
        qtbot, tmp_path, pacs, home, small_ct):
    """At the size the dialog opens in, the study's description is not cut ("CT HEAD WO
    CONTRAST (synthetic…"), nor is what is here ("5 of 12"): numbers take the width they need
    and the description the rest, with no sideways scrolling."""
    study_uid = _on_pacs(tmp_path, pacs, small_ct)
    import_study(home, small_ct[:5])
    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.query_retrieve()
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.searches == 1, timeout=60_000)
    table = dialog.table
    assert table.rowCount() == 1 and table.item(0, 0).data(KEY_ROLE) == study_uid
    qtbot.waitUntil(lambda: dialog.series_table.rowCount() == 1, timeout=60_000)
    metrics = table.fontMetrics()
    on_pacs = pydicom.dcmread(small_ct[0], stop_before_pixels=True)
    texts = {name: table.item(0, COLUMNS.index(name)).text() for name in COLUMNS}
    assert texts["Description"] == on_pacs.StudyDescription
    assert texts["Here"] == f"5 of {len(small_ct)}"
    for name, text in texts.items():  # each whole in its cell (its margins beside)
        assert table.columnWidth(COLUMNS.index(name)) >= metrics.horizontalAdvance(text) + 6, \
            name
    widths = {name: table.columnWidth(COLUMNS.index(name)) for name in COLUMNS}
    assert sum(widths.values()) <= table.viewport().width()  # no sideways scrolling
    for narrow in ("Series", "Images"):
        assert widths[narrow] < widths["Description"] / 3, widths
    series = dialog.series_table
    description = series.item(0, 2).text()
    assert series.columnWidth(2) >= series.fontMetrics().horizontalAdvance(description) + 6
    assert series.columnWidth(0) < series.columnWidth(2) / 3


def _ten_on_the_pacs_behind_a_link(tmp_path, pacs, data, rate: int):
    """The tilted GE CT's first 10 images on the PACS, reached through a shaped link of
    ``rate`` bytes/s; a Relay home whose node listens (for the rest, from the "scanner")."""
    from app.net.devhub import free_port as _free_port
    from app.settings import load_settings, save_settings
    from tests.net.dimse_node import dcmtk
    from tests.proxies import SlowLink

    files = sorted((data / "ct-head/ge-hispeed-human-gantry-tilt").glob("*.dcm"))
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    first = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "ORTHANC", "127.0.0.1",
                  str(pacs.dicom_port), *map(str, files[:10]))
    assert first.returncode == 0, first.stderr
    link = SlowLink(pacs.dicom_port, rate, shared=True)
    try:
        home = relay_home_for(tmp_path / "relay", _free_port(), pacs_port=link.port)
        settings = load_settings(home)
        settings.node.listen, settings.node.bind = True, "127.0.0.1"
        save_settings(home, settings)
    except BaseException:
        link.close()
        raise
    return files, study_uid, link, home, settings


def _reading_from_the_pacs(qtbot, home, study_uid: str):
    """A window on ``home`` reading ``study_uid`` from its PACS "pacs": the window, the
    viewer and its first viewport once that holds the series being retrieved."""
    from app.ui.remote_session import RemoteLoadedSeries

    window = shown_window(qtbot, home, 1200, 800)
    viewer = window.open_remote_study("pacs", study_uid)
    viewport = viewer.viewports[0]
    qtbot.waitUntil(lambda: isinstance(viewport.session, RemoteLoadedSeries)
                    and viewport.volume is not None, timeout=60_000)
    return window, viewer, viewport
