"""Hub exchange in the window, against a real Orthanc: Hubs dialog, Send, Transfers, Incoming."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pydicom
import pytest

from app.settings import load_settings, save_settings
from app.store.local import Store
from app.ui.main_window import MainWindow
from app.ui.transfers import COL, JOB_ROLE
from tests.net import conftest as net
from tests.net.conftest import (
    HUB_PASSWORD,
    HUB_USER,
    SlowLink,
    add_hub,
    hub_sop_uids,
    import_study,
    relay,
)

# the exchange fixtures: a real Orthanc, Relay homes, a generated CT, no system keyring
hub, relay_home, ct_files = net.hub, net.relay_home, net.ct_files
no_system_keyring = net.no_system_keyring

pytestmark = pytest.mark.orthanc


def _fast_retries(home: Path, **incoming) -> None:
    settings = load_settings(home)
    settings.transfer.retry_initial_seconds = 0.2
    settings.transfer.retry_max_seconds = 1.0
    settings.transfer.batch_instances = 10
    settings.transfer.in_flight = 1
    for key, value in incoming.items():
        setattr(settings.incoming, key, value)
    save_settings(home, settings)


def _window(qtbot, home: Path) -> MainWindow:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.show()
    return window


def _row(window: MainWindow, job_id: str) -> dict[str, str]:
    table = window.transfers.table
    for r in range(table.rowCount()):
        if table.item(r, 0).data(JOB_ROLE) == job_id:
            return {name: table.item(r, col).text() for name, col in COL.items() if name}
    return {}


def _wait_state(qtbot, window: MainWindow, job_id: str, states: tuple[str, ...],
                timeout: float = 30.0) -> None:
    """Wait until the job's row shows one of ``states``; on a timeout, say which states it
    went through (a flake on a busy machine must leave its evidence)."""
    seen: list[str] = []
    end = time.monotonic() + timeout
    while True:
        row = _row(window, job_id)
        state = row.get("State", "")
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in states:
            return
        assert time.monotonic() < end, \
            f"not {states} after {timeout:.0f} s; went through {seen}; now {row}"
        qtbot.wait(50)


def _sop_uids(files: list[Path]) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


def _sent_by_another_site(tmp_path: Path, hub, files: list[Path]) -> str:
    """A spoke's own home imports ``files`` and sends them with ``relay send``; the study UID."""
    spoke = tmp_path / "spoke"
    spoke.mkdir()
    _, study_uid = import_study(spoke, files)
    assert add_hub(spoke, hub.url).returncode == 0
    sent = relay(spoke, "send", study_uid, "--hub", "hub", "--json")
    assert sent.returncode == 0 and json.loads(sent.stdout)["state"] == "verified"
    return study_uid


def _select_study(window: MainWindow, study_uid: str) -> None:
    from app.ui.browser import UID_ROLE

    proxy = window.browser.proxy
    for p in range(proxy.rowCount()):
        patient = proxy.index(p, 0)
        for s in range(proxy.rowCount(patient)):
            index = proxy.index(s, 0, patient)
            if index.data(UID_ROLE) == study_uid:
                window.browser.tree.setCurrentIndex(index)
                return
    raise AssertionError("study not in the browser")


def test_hubs_dialog_adds_tests_and_keeps_the_password_out_of_settings(qtbot, hub, relay_home):
    from app.ui.hubs_dialog import HubsDialog

    dialog = HubsDialog(relay_home)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("main")
    dialog.url_edit.setText(hub.url)
    dialog.auth_combo.setCurrentIndex(dialog.auth_combo.findData("basic"))
    dialog.user_edit.setText(HUB_USER)
    dialog.secret_edit.setText("wrong-password")
    assert dialog.save_hub()
    assert dialog.result_label.text().startswith("Saved the hub main. Its password is kept in ")
    assert "secret" not in dialog.result_label.text()
    assert dialog.test_hub() is not None
    qtbot.waitUntil(lambda: dialog.last_check is not None, timeout=30_000)
    assert not dialog.last_check.ok and dialog.last_check.kind == "auth"
    assert "NOT AUTHORISED" in dialog.result_label.text() and "401" in dialog.result_label.text()

    dialog.secret_edit.setText(HUB_PASSWORD)
    assert dialog.save_hub()
    dialog.last_check = None
    dialog.secret_edit.clear()  # the stored secret is used
    dialog.test_hub()
    qtbot.waitUntil(lambda: dialog.last_check is not None, timeout=30_000)
    assert dialog.last_check.ok, dialog.last_check.message
    assert dialog.result_label.text().startswith("OK: ")

    dialog.interval_spin.setValue(7)
    dialog.prefetch_check.setChecked(True)
    dialog.quick_spin.setValue(3)
    dialog.stroke_check.setChecked(True)
    settings = load_settings(relay_home)
    assert settings.incoming.quick_seconds == 3 and settings.incoming.open_stroke
    assert [h.name for h in settings.hubs] == ["main"]
    assert settings.hubs[0].auth == "basic" and settings.hubs[0].user == HUB_USER
    assert settings.incoming.interval_seconds == 7 and settings.incoming.prefetch
    text = (relay_home / "settings.json").read_text()
    assert HUB_PASSWORD not in text and "wrong-password" not in text

    dialog.remove_hub()
    assert load_settings(relay_home).hubs == []


def test_send_from_the_browser_ends_verified_on_the_hub(qtbot, hub, relay_home, ct_files):
    _, study_uid = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home)
    window = _window(qtbot, relay_home)
    _select_study(window, study_uid)
    dialog = window.send_to_hub()
    assert dialog is not None and dialog.hub() == "hub" and dialog.series_uids() is None
    dialog.accept()
    assert window.transfers_dock.isVisible()
    job_id = window.transfers.selected_job()
    assert job_id is not None
    qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Verified", timeout=120_000)
    row = _row(window, job_id)
    n = len(ct_files)
    assert row["Images"] == f"{n} / {n}" and row["Details"] == f"{n} of {n} verified"
    assert row["Direction"] == "↑ Send" and row["Hub / PACS"] == "hub (Hub)"
    on_hub = hub_sop_uids(hub)
    assert sorted(on_hub) == sorted(_sop_uids(ct_files))  # every one, exactly once
    assert window.transfers.repaints < 200  # throttled, not one repaint per instance

    again = window.send_to_hub(study_uid)  # the same study to the same hub: a warning first
    assert again.warning.isVisibleTo(again) and again.send_button.text() == "Send again"
    assert again.warning.text().startswith("This study was already sent to hub on ")
    assert f"verified ({n} of {n} images on the hub)" in again.warning.text()
    again.reject()

    assert re.fullmatch(r"\d\d:\d\d", row["Started"])  # queued today: the time
    from app.ui.browser import COL as BROWSER_COL

    qtbot.waitUntil(lambda: window.browser.select_study(study_uid) and window.browser.tree
                    .currentIndex().siblingAtColumn(BROWSER_COL["Sent"]).data() == "Verified",
                    timeout=10_000)  # the browser shows the study went out and was verified
    window.transfers.clear_button.click()  # the verified job leaves the list, not the history
    assert _row(window, job_id) == {} and window.transfers.table.rowCount() == 0
    assert window.view_state.transfers_cleared > 0
    assert window.send_to_hub(study_uid).warning.text().startswith("This study was already")


def test_pause_resume_cancel_and_retry(qtbot, hub, relay_home, ct_files):
    _, study_uid = import_study(relay_home, ct_files)
    link = SlowLink(hub.config.http_port, rate=300_000)  # ~4 MB study: ~13 s
    try:
        assert add_hub(relay_home, link.url).returncode == 0
        _fast_retries(relay_home)
        window = _window(qtbot, relay_home)
        job_id = window.queue_send("hub", study_uid, None)
        transfers = window.transfers
        qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Sending", timeout=30_000)
        qtbot.waitUntil(lambda: _row(window, job_id).get("Speed", "").endswith("MB/s")
                        and _row(window, job_id).get("ETA", "").endswith("s"), timeout=30_000)
        transfers.select_job(job_id)
        transfers.pause_button.click()
        qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Paused", timeout=30_000)
        assert transfers.explanation.text() == "Paused — press Resume to continue"
        assert transfers.resume_button.isEnabled()
        transfers.resume_button.click()
        # a paused job's requests on the wire end first (at 300 kB/s, seconds): then it resumes
        _wait_state(qtbot, window, job_id, ("Sending", "Verifying"), timeout=60)
        transfers.cancel_button.click()
        qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Cancelled", timeout=30_000)
        assert transfers.retry_button.isEnabled()
        transfers.retry_button.click()
        qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Verified", timeout=120_000)
        assert sorted(hub_sop_uids(hub)) == sorted(_sop_uids(ct_files))
    finally:
        link.close()


def test_stuck_job_explains_and_completes_when_the_hub_is_back(qtbot, hub, relay_home, ct_files):
    _, study_uid = import_study(relay_home, ct_files[:20])
    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home)
    hub.stop()
    window = _window(qtbot, relay_home)
    job_id = window.queue_send("hub", study_uid, None)
    qtbot.waitUntil(lambda: _row(window, job_id).get("Details", "").startswith(
        "Hub unreachable — retrying"), timeout=30_000)
    assert _row(window, job_id)["State"] == "Waiting for hub"
    hub.start()
    qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Verified", timeout=120_000)
    assert sorted(hub_sop_uids(hub)) == sorted(_sop_uids(ct_files[:20]))


def test_incoming_lists_a_new_study_notifies_and_fetch_makes_it_local(qtbot, hub, tmp_path,
                                                                      relay_home, ct_files):
    study_uid = _sent_by_another_site(tmp_path, hub, ct_files[:30])

    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home, lookback_days=0)
    window = _window(qtbot, relay_home)
    incoming = window.incoming
    qtbot.waitUntil(lambda: incoming.status_of(study_uid) == "On hub only", timeout=30_000)
    assert incoming.notices[0].startswith("New CT study on hub 'hub'")
    assert len(incoming.notices) == 1
    assert window.tabs.tabText(1) == "Incoming (1 new)"  # the Studies tab was in front
    window.tabs.setCurrentWidget(incoming)
    assert window.tabs.tabText(1) == "Incoming"
    incoming.check_now()  # a second poll: nothing new, no second notice
    polls = incoming.polls
    qtbot.waitUntil(lambda: incoming.polls > polls, timeout=30_000)
    assert len(incoming.notices) == 1

    incoming.select("hub", study_uid)
    job_id = incoming.fetch_selected()
    assert job_id is not None
    qtbot.waitUntil(lambda: incoming.status_of(study_uid) == "Local", timeout=120_000)
    assert window.store.study(study_uid).instance_count == 30
    # the browser shows it when the job has ended (Incoming may see it local a poll earlier)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.browser, timeout=30_000)
    incoming.open_selected()
    assert study_uid in window.viewers


def test_prefetch_queues_new_studies_automatically(qtbot, hub, tmp_path, relay_home, ct_files):
    study_uid = _sent_by_another_site(tmp_path, hub, ct_files[:10])

    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home, lookback_days=0, prefetch=True)
    window = _window(qtbot, relay_home)
    qtbot.waitUntil(lambda: window.store.study(study_uid) is not None
                    and window.store.study(study_uid).instance_count == 10, timeout=120_000)
    jobs = window.queue_runner().jobs()
    assert [(j.kind, j.study_uid) for j in jobs] == [("fetch", study_uid)]
    qtbot.waitUntil(lambda: window.incoming.status_of(study_uid) == "Local", timeout=30_000)


def test_send_dialog_offers_the_selected_series_and_a_hub_setup(qtbot, relay_home, ct_files):
    store, study_uid = import_study(relay_home, ct_files[:5])
    window = _window(qtbot, relay_home)
    series_uid = store.study(study_uid).series[0].series_instance_uid
    dialog = window.send_to_hub(study_uid, series_uid)
    assert dialog is not None
    assert not dialog.send_button.isEnabled()  # no hub yet: the dialog says so
    dialog.reject()

    settings = load_settings(relay_home)
    from app.settings import HubProfile

    settings.hubs = [HubProfile(name="a", url="http://127.0.0.1:9/dicom-web"),
                     HubProfile(name="b", url="http://127.0.0.1:9/dicom-web")]
    save_settings(relay_home, settings)
    dialog = window.send_to_hub(study_uid, series_uid)
    assert [dialog.hub_combo.itemData(i) for i in range(dialog.hub_combo.count())] == ["a", "b"]
    assert dialog.series_uids() == [series_uid] and dialog.send_button.isEnabled()
    dialog.whole.setChecked(True)
    assert dialog.series_uids() is None
    dialog.reject()
    assert [a.text() for a in window.menuBar().actions()] == ["&File", "&Study", "&Hub",
                                                              "&Settings", "&View", "&Help"]
    hubs = window.show_hubs_dialog()
    assert hubs.hub_list.count() == 2
    hubs.reject()


def test_open_on_a_study_only_on_the_hub_reads_it_while_it_downloads(
        qtbot, hub, tmp_path, relay_home, ct_files):
    study_uid = _sent_by_another_site(tmp_path, hub, ct_files[:10])

    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home, lookback_days=0)
    window = _window(qtbot, relay_home)
    incoming = window.incoming
    qtbot.waitUntil(lambda: incoming.status_of(study_uid) == "On hub only", timeout=30_000)
    incoming.select("hub", study_uid)
    incoming.open_selected()
    assert study_uid in window.viewers  # the viewer is there at once, images arrive into it
    assert incoming.status_of(study_uid) == "Fetching…"
    qtbot.waitUntil(lambda: incoming.status_of(study_uid) == "Local", timeout=120_000)
    store = window.store
    local = [i.sop_instance_uid for s in store.study(study_uid).series
             for i in store.instances(s.series_instance_uid)]
    assert sorted(local) == sorted(hub_sop_uids(hub))  # each instance once


def test_a_job_that_ends_between_two_repaints_still_refreshes_the_browser(qtbot, relay_home):
    """A short fetch can be queued and finished before the panel first sees it: its end still
    counts (the browser must show the study), while jobs that ended before the panel was
    watching do not."""
    from app.net.queue import TransferQueue

    queue = TransferQueue(relay_home)
    old = queue.create("fetch", "hub", "1.2.3.1", [], [])
    queue.set_state(old.id, "verified")
    window = _window(qtbot, relay_home)
    ended: list[str] = []
    window.transfers.job_finished.connect(lambda job_id, state: ended.append(job_id))
    window.queue_runner()  # the panel starts watching
    assert ended == []  # the old job ended before
    job = queue.create("fetch", "hub", "1.2.3.2", [], [])
    queue.set_state(job.id, "verified")  # queued and done before any repaint
    window.transfers.refresh()
    assert ended == [job.id]


def test_incoming_counts_two_old_studies_right_after_they_were_sent(qtbot, hub, tmp_path,
                                                                     relay_home):
    from tests.net.test_incoming import _study_dated

    studies = [import_study(relay_home, _study_dated(tmp_path / str(n), date, n))[1]
               for n, date in ((21, "20140305"), (22, "19991231"))]
    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home)  # the default window: studies that arrived in the last 3 days
    window = _window(qtbot, relay_home)
    incoming = window.incoming
    qtbot.waitUntil(lambda: incoming.polls >= 1, timeout=30_000)
    assert incoming.status_label.text().startswith("0 studies arrived in the last 3 days · "
                                                   "0 studies on hub")
    jobs = [window.queue_send("hub", uid, None) for uid in studies]
    for job_id in jobs:
        qtbot.waitUntil(lambda j=job_id: _row(window, j).get("State") == "Verified",
                        timeout=120_000)
    polls = incoming.polls
    incoming.check_now()
    qtbot.waitUntil(lambda: incoming.polls > polls, timeout=30_000)
    assert incoming.status_label.text().startswith("2 studies arrived in the last 3 days · "
                                                   "2 studies on hub")
    assert {incoming.status_of(uid) for uid in studies} == {"Local"}
    header = [incoming.table.horizontalHeaderItem(c).text()
              for c in range(incoming.table.columnCount())]
    assert "First seen" in header and "Received" not in header


def test_send_dialog_confirms_the_patient_in_plain_text_with_thumbnails(qtbot, tmp_path,
                                                                        relay_home, ct_files):
    from PySide6.QtCore import Qt

    from app.settings import HubProfile

    files = []
    for n, path in enumerate(ct_files[:4]):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = "<b>DOE</b>^<img src>", "<i>P-42</i>"
        ds.PatientBirthDate, ds.PatientSex, ds.AccessionNumber = "19500214", "F", "ACC-7"
        files.append(tmp_path / f"{n}.dcm")
        ds.save_as(files[-1])
    _, study_uid = import_study(relay_home, files)
    settings = load_settings(relay_home)
    settings.hubs = [HubProfile(name="a", url="http://127.0.0.1:9/dicom-web")]
    save_settings(relay_home, settings)
    window = _window(qtbot, relay_home)
    dialog = window.send_to_hub(study_uid)
    shown = {name: label.text() for name, label in dialog.patient_labels.items()}
    assert shown["Patient"] == "<b>DOE</b>, <img src>" and shown["Patient ID"] == "<i>P-42</i>"
    assert shown["Birth date"] == "1950-02-14" and shown["Sex"] == "Female"
    assert shown["Accession"] == "ACC-7" and "4 images" in shown["Study"]
    assert all(label.textFormat() == Qt.TextFormat.PlainText
               for label in dialog.patient_labels.values())
    assert not dialog.warning.isVisibleTo(dialog) and dialog.send_button.text() == "Send"
    item = dialog.series_list.item(0)
    assert item.text().endswith("CT, 4 images")
    qtbot.waitUntil(lambda: not item.icon().isNull(), timeout=30_000)  # the series' thumbnail
    dialog.reject()


def test_delete_is_refused_while_a_running_send_uses_the_study(qtbot, hub, relay_home,
                                                               ct_files):
    store, study_uid = import_study(relay_home, ct_files)
    link = SlowLink(hub.config.http_port, rate=300_000)  # ~4 MB study: ~13 s
    try:
        assert add_hub(relay_home, link.url).returncode == 0
        _fast_retries(relay_home)
        window = _window(qtbot, relay_home)
        job_id = window.queue_send("hub", study_uid, None)
        qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Sending", timeout=30_000)
        window.manage.confirm_answer = True  # the user would say yes: it is still refused
        series = store.study(study_uid).series[0].series_instance_uid
        assert window.manage.delete(study_uid) is None
        assert window.manage.delete(study_uid, [series]) is None
        assert window.statusBar().currentMessage().startswith(
            "Not deleted: a send to hub of this study is not finished")
        assert window.store.study(study_uid).instance_count == len(ct_files)
        window.transfers.select_job(job_id)
        window.transfers.cancel_button.click()
        qtbot.waitUntil(lambda: _row(window, job_id).get("State") == "Cancelled", timeout=30_000)
        assert window.manage.delete(study_uid) == len(ct_files)  # nothing uses it now
        assert window.store.study(study_uid) is None
    finally:
        link.close()


def test_open_from_hub_searches_by_patient_name_id_and_date(qtbot, hub, tmp_path, relay_home,
                                                            ct_files):
    import datetime

    from app.ui.remote_dialog import OpenRemoteDialog, study_query

    today = datetime.date(2026, 12, 3)
    assert study_query("doe jo", " P-1 ", "Last 7 days", today) == {
        "PatientName": "*doe*jo*", "PatientID": "P-1", "StudyDate": "20261127-20261203"}
    assert study_query(dates="Yesterday", today=today) == {"StudyDate": "20261202"}
    assert study_query() == {}

    files = []
    for n, path in enumerate(ct_files[:3]):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = "<b>SMITH</b>^JANE", "ID-77"
        ds.PatientBirthDate, ds.StudyDate = "19610102", datetime.date.today().strftime("%Y%m%d")
        ds.StudyInstanceUID = ds.SeriesInstanceUID + ".7"
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".7"
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.7"
        files.append(tmp_path / f"s{n}.dcm")
        ds.save_as(files[-1])
    smith = _sent_by_another_site(tmp_path, hub, files)
    other = tmp_path / "other"
    other.mkdir()
    doe = _sent_by_another_site(other, hub, ct_files[:2])  # DEMO^STROKE, dated 2026-11-28
    assert add_hub(relay_home, hub.url).returncode == 0
    dialog = OpenRemoteDialog(relay_home)
    qtbot.addWidget(dialog)

    def search(**fields) -> list[list[str]]:
        dialog.name_edit.setText(fields.get("name", ""))
        dialog.id_edit.setText(fields.get("patient_id", ""))
        dialog.date_box.setCurrentText(fields.get("dates", "Any date"))
        done = dialog.searches
        dialog.search_button.click()
        qtbot.waitUntil(lambda: dialog.searches > done, timeout=30_000)
        return [[dialog.table.item(r, c).text() for c in range(dialog.table.columnCount())]
                for r in range(dialog.table.rowCount())]

    rows = search(name="smi ja")
    assert [r[:4] for r in rows] == [["<b>SMITH</b>, JANE", "ID-77", "1961-01-02",
                                      datetime.date.today().isoformat()]]
    assert dialog.study_uid() == smith and dialog.open_button.isEnabled()
    assert [r[1] for r in search(patient_id="ID-77")] == ["ID-77"]
    assert search(patient_id="ID-7") == []  # an ID matches exactly
    assert [r[1] for r in search(dates="Today")] == ["ID-77"]
    assert len(search()) == 2
    assert search(name="stroke")[0][0] == "DEMO, STROKE" and dialog.study_uid() == doe
    assert search(name="nobody") == [] and dialog.status.text().startswith("No study on hub")
    # each search is one audit event with the kinds of keys, never the name or ID searched for
    from app.workflow import audit

    searches = [e["detail"] for e in audit.read(relay_home) if e["event"] == "query"]
    assert [d["keys"] for d in searches] == [["PatientName"], ["PatientID"], ["PatientID"],
                                             ["StudyDate"], [], ["PatientName"],
                                             ["PatientName"]]
    trail = audit.audit_path(relay_home).read_text(encoding="utf-8").upper()
    assert "*SMI*JA*" not in trail and "ID-77" not in trail and "*NOBODY*" not in trail


def test_open_from_hub_shows_the_newest_search_not_the_one_that_answered_last(
        qtbot, hub, tmp_path, relay_home, ct_files):
    """A search started again with Enter while the first is still waiting for the hub: when the
    first answers at last, the table keeps what the newest search found."""
    from PySide6.QtCore import Qt

    from app.ui.remote_dialog import OpenRemoteDialog
    from app.workflow import audit
    from tests.proxies import HoldLink

    _sent_by_another_site(tmp_path, hub, ct_files[:2])  # DEMO^STROKE
    link = HoldLink(hub.config.http_port, hold="nobody")
    try:
        assert add_hub(relay_home, link.url).returncode == 0
        dialog = OpenRemoteDialog(relay_home)
        qtbot.addWidget(dialog)
        dialog.name_edit.setText("nobody")
        qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(link.held.is_set, timeout=20_000)  # the hub's answer is held
        dialog.name_edit.setText("")
        qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)  # the whole hub, meanwhile
        qtbot.waitUntil(lambda: dialog.searches == 1, timeout=30_000)
        assert dialog.table.rowCount() == 1 and dialog.status.text() == "1 study found on hub."
        link.release()  # "nobody" answers at last: nothing found
        qtbot.waitUntil(lambda: len([e for e in audit.read(relay_home)
                                     if e["event"] == "query"]) == 2, timeout=30_000)
        qtbot.wait(500)  # its answer has come back by now
        assert dialog.searches == 1 and dialog.table.rowCount() == 1
        assert dialog.status.text() == "1 study found on hub." and dialog.study_uid()
    finally:
        link.close()


def test_a_study_read_while_it_grows_on_the_hub_shows_every_image_that_came_later(
        qtbot, hub, tmp_path, relay_home, ct_files):
    """A neurologist opens a study while the scanner's images are still reaching the hub: what
    reaches the hub afterwards is fetched as the Incoming polls see it, and the series on
    screen takes every image, at the slice it showed."""
    from app.render.link import table_positions

    study_uid = _sent_by_another_site(tmp_path, hub, ct_files[:12])
    assert add_hub(relay_home, hub.url).returncode == 0
    _fast_retries(relay_home, lookback_days=0, interval_seconds=5.0)
    window = _window(qtbot, relay_home)
    qtbot.waitUntil(lambda: window.incoming.status_of(study_uid) == "On hub only",
                    timeout=30_000)
    viewer = window.open_remote_study("hub", study_uid)
    viewport = viewer.viewports[0]
    qtbot.waitUntil(lambda: not window.remote.openers and viewport.volume is not None,
                    timeout=120_000)
    assert window.store.study(study_uid).instance_count == 12 and viewport.n_slices == 12
    viewport.show_slice(5)
    z = table_positions(viewport.volume.geometry)[5]

    later = tmp_path / "later"
    later.mkdir()
    assert _sent_by_another_site(later, hub, ct_files[12:40]) == study_uid  # the rest
    qtbot.waitUntil(lambda: window.store.study(study_uid).instance_count == 40,
                    timeout=120_000)
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.n_slices == 40,
                    timeout=60_000)
    assert viewer.study.instance_count == 40  # the strip counts them too
    k = viewport.state.k
    assert abs(table_positions(viewport.volume.geometry)[k] - z) < 0.01  # the same slice
    assert [(j.kind, j.study_uid) for j in window.queue_runner().jobs()] == [
        ("fetch", study_uid), ("fetch", study_uid)]  # the read, then the rest
    qtbot.waitUntil(lambda: window.incoming.status_of(study_uid) == "Local", timeout=30_000)
