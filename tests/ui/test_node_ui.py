"""Relay's node in the window: Settings → PACS and node saves and (re)starts it; studies that
dcmtk's storescu sends appear in Incoming as local, with one notice per study."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from app.net.devhub import free_port
from app.net.incoming import arrivals
from app.settings import load_settings, save_settings
from app.ui.annotations import Annotation
from app.ui.incoming import COL, node_source
from app.workflow import audit
from tests.net.dimse_node import dcmtk
from tests.ui.conftest import shown_window

GE = "ct-head/ge-hispeed-human-gantry-tilt"
needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None, reason="needs dcmtk")


def _views(home: Path, study_uid: str) -> int:
    return len([e for e in audit.read(home)
                if e["event"] == "view" and e.get("study_uid") == study_uid])


def _opened(qtbot, window, study_uid: str):
    """The study opened in the window: its first viewport, once its series has loaded."""
    viewport = window.open_study(study_uid).viewports[0]
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.volume.finished,
                    timeout=30_000)
    return viewport


def _enable_node(home: Path, port: int) -> None:
    settings = load_settings(home)
    settings.node.listen = True
    settings.node.bind = "127.0.0.1"
    settings.node.port = port
    save_settings(home, settings)


def test_node_dialog_saves_checks_and_starts_the_node(qtbot, home):
    window = shown_window(qtbot, home, 1200, 800)
    assert window.node.listener is None  # off by default
    dialog = window.show_node_dialog()
    qtbot.addWidget(dialog)
    form = dialog.node_widget
    assert form.ae_edit.text() == "RELAY" and form.port_spin.value() == 11112
    port = free_port()
    form.ae_edit.setText("STROKE")
    form.port_spin.setValue(port)
    form.bind_combo.setCurrentIndex(form.bind_combo.findData("127.0.0.1"))
    form.callers_edit.setText("CT1, MR1")
    form.listen_check.setChecked(True)
    form._add_row("VIEWER", "10.0.0.9", "104")
    assert dialog.save()
    node = load_settings(home).node
    assert (node.ae_title, node.port, node.bind) == ("STROKE", port, "127.0.0.1")
    assert node.allowed_callers == ["CT1", "MR1"] and node.listen
    assert [(d.ae_title, d.host, d.port) for d in node.move_destinations] == [
        ("VIEWER", "10.0.0.9", 104)]
    assert window.node.listener is not None and window.node.listener.address[1] == port
    assert "receiving on port" in dialog.status_label.text()
    assert dcmtk("echoscu", "-aet", "CT1", "-aec", "STROKE", "127.0.0.1",
                 str(port)).returncode == 0
    form.ae_edit.setText("BAD\\AE")
    assert not dialog.save()
    assert "AE title" in dialog.message.text()
    assert load_settings(home).node.ae_title == "STROKE"  # nothing saved
    form.ae_edit.setText("STROKE")
    form.listen_check.setChecked(False)
    assert dialog.save()
    assert window.node.listener is None


def test_enter_in_the_pacs_form_saves_the_pacs_not_the_node(qtbot, home):
    """The tech types the PACS's AE title and presses Enter, as in any form: the PACS is
    saved. Before, Enter pressed the dialog's default button, Save node: the dialog said
    "Saved." and the PACS was lost at Close."""
    from PySide6.QtCore import Qt

    window = shown_window(qtbot, home, 1200, 800)
    dialog = window.show_node_dialog()
    qtbot.addWidget(dialog)
    form = dialog.pacs_widget
    form.name_edit.setText("hospital")
    form.host_edit.setText("10.0.0.9")
    form.port_spin.setValue(4242)
    form.ae_edit.setFocus()
    qtbot.keyClicks(form.ae_edit, "ORTHANC")
    qtbot.keyClick(form.ae_edit, Qt.Key.Key_Return)
    saved = load_settings(home).pacs_profile("hospital")
    assert saved is not None and (saved.host, saved.port, saved.ae_title) == (
        "10.0.0.9", 4242, "ORTHANC")
    assert form.result_label.text() == "Saved PACS 'hospital' (ORTHANC@10.0.0.9:4242)."
    assert dialog.message.text() == ""  # the node's own "Saved." is not said for it
    assert dialog.isVisible()


def test_check_now_without_a_hub_says_so_instead_of_checking_for_ever(qtbot, home):
    """A spoke with a PACS and no hub: Incoming says there is no hub to check; Check now said
    "Checking the hub…" for ever (nothing was polled, so nothing ended it)."""
    window = shown_window(qtbot, home, 1200, 800)
    incoming = window.incoming
    assert incoming.status_label.text().startswith("No hub to check: add one in Settings")
    incoming.check_button.click()
    qtbot.wait(1500)
    assert incoming.status_label.text().startswith("No hub to check: add one in Settings")


def test_the_node_starting_with_the_window_is_said_over_the_counts_not_through_them(qtbot, home):
    """The node's first message comes before the window shows; it must cover the status bar's
    counts, not be drawn over them (Qt hides them only if they are visible at that moment)."""
    _enable_node(home, free_port())
    window = shown_window(qtbot, home, 1200, 800)
    bar = window.statusBar()
    assert "is receiving on port" in bar.currentMessage()
    assert window.counts_label.text() and not window.counts_label.isVisible()
    bar.clearMessage()  # as its time running out does
    assert window.counts_label.isVisible()
    window._show_message("Another message.", 5000)  # later ones, as always
    assert not window.counts_label.isVisible()


@needs_dcmtk
def test_received_studies_appear_in_incoming_with_one_notice_each(qtbot, home, data):
    port = free_port()
    _enable_node(home, port)
    window = shown_window(qtbot, home, 1200, 800)
    assert window.node.listener is not None
    files = sorted((data / GE).glob("*.dcm"))
    first = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1", str(port),
                  *map(str, files[:10]))
    assert first.returncode == 0, first.stderr
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    key = (node_source("CT_SCANNER"), study_uid)
    qtbot.waitUntil(lambda: key in window.incoming.studies, timeout=20000)
    # The rest of the same study in a second association: counted, not announced again.
    second = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1", str(port),
                   *map(str, files[10:]))
    assert second.returncode == 0, second.stderr
    qtbot.waitUntil(lambda: window.incoming.studies[key].instances == len(files)
                    and window.incoming.status_of(study_uid) == "Local", timeout=20000)
    notices = [n for n in window.incoming.notices if "CT_SCANNER" in n]
    assert len(notices) == 1 and "New CT study received from CT_SCANNER" in notices[0]
    table = window.incoming.table
    assert table.item(0, COL["From"]).text() == "DICOM CT_SCANNER"
    assert window.store.study(study_uid) is not None  # in the browser's store as well
    window.incoming.select(*key)
    window.incoming.open_selected()
    qtbot.waitUntil(lambda: window.tabs.count() >= 3, timeout=20000)  # Studies, Incoming, it


def test_a_study_the_scanner_is_still_sending_is_listed_as_receiving_from_its_first_image(
        qtbot, home, data, monkeypatch):
    """A scanner sending a whole exam in one long association: the tech sees the study in
    Incoming (one notice) from its first image, counting up, and "Local" once it has ended;
    opened meanwhile, its series takes the images that come after, the association still
    open."""
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import build_context

    from app.net.dimse import receive
    from app.net.dimse.association import Endpoint, associate, make_ae

    monkeypatch.setattr(receive, "PROGRESS_SECONDS", 0.0)  # a report with every image
    port = free_port()
    _enable_node(home, port)
    window = shown_window(qtbot, home, 1200, 800)
    datasets = [pydicom.dcmread(p) for p in sorted((data / GE).glob("*.dcm"))[:9]]
    study_uid = datasets[0].StudyInstanceUID
    key = (node_source("CT_SCANNER"), study_uid)
    ae = make_ae("CT_SCANNER", requested=[build_context(datasets[0].SOPClassUID,
                                                        ExplicitVRLittleEndian)])
    status = window.incoming.status_of
    assoc = associate(ae, Endpoint("127.0.0.1", port, "RELAY"))
    try:
        assert [assoc.send_c_store(d).Status for d in datasets[:6]] == [0] * 6
        qtbot.waitUntil(lambda: key in window.incoming.studies, timeout=20_000)
        assert status(study_uid).startswith("Receiving…")
        assert window.incoming.table.item(0, COL["From"]).text() == "DICOM CT_SCANNER"
        assert [n for n in window.incoming.notices if "CT_SCANNER" in n] == [
            "New CT study received from CT_SCANNER: "
            f"{datasets[0].StudyDescription or 'no description'}"]
        qtbot.waitUntil(lambda: status(study_uid) == "Receiving… 6 images", timeout=20_000)
        viewport = _opened(qtbot, window, study_uid)
        assert viewport.n_slices == 6
        viewport.show_slice(1)
        measured = viewport.volume.slices[1].sop_instance_uid
        line = Annotation("length", [(20.0, 20.0), (60.0, 45.0)])
        viewport.session.annotations.setdefault(1, []).append(line)
        qtbot.waitUntil(lambda: _views(home, study_uid) == 1, timeout=10_000)

        def send_one(i: int) -> None:
            assert assoc.send_c_store(datasets[i]).Status == 0
            qtbot.waitUntil(lambda: status(study_uid) == f"Receiving… {i + 1} images",
                            timeout=20_000)

        opened = viewport.session
        send_one(6)  # 7 < 6 x 1.25: not read again for one image more
        assert viewport.session is opened
        send_one(7)  # 8: a quarter more, read again
        qtbot.waitUntil(lambda: viewport.volume is not None and viewport.n_slices == 8,
                        timeout=30_000)
        # the series opened again, grown, goes on: the measurement on its image, and the
        # view recorded once, not once per reopening
        session = viewport.session
        (k,) = [k for k, ref in enumerate(viewport.volume.slices)
                if ref.sop_instance_uid == measured]
        assert session.annotations.get(k) == [line]
        assert sum(len(v) for v in session.annotations.values()) == 1
        assert viewport.state.k == k  # the image it showed, and its measurement drawn
        assert [item.note for item in viewport._items] == [line]
        send_one(8)  # 9 < 8 x 1.25
        assert viewport.session is session
    finally:
        assoc.release()
    qtbot.waitUntil(lambda: status(study_uid) == "Local", timeout=20_000)
    # the association's end: what came after the last reading is taken too
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.n_slices == 9,
                    timeout=30_000)
    assert window.incoming.studies[key].instances == 9
    assert len([n for n in window.incoming.notices if "CT_SCANNER" in n]) == 1
    qtbot.wait(300)  # an audit thread would have written by now
    assert _views(home, study_uid) == 1
    assert len(arrivals(home, "DICOM ", 0.0)) == 1  # kept for a restart from the first image


@needs_dcmtk
def test_a_study_open_while_the_scanner_still_sends_takes_the_images_that_come_after(
        qtbot, home, data):
    """The tech opens a study received from the scanner while the scanner is still sending
    it: when the next association has brought more, the series on screen shows them all, at
    the slice it showed."""
    from app.render.link import table_positions

    port = free_port()
    _enable_node(home, port)
    window = shown_window(qtbot, home, 1200, 800)
    files = sorted((data / GE).glob("*.dcm"))
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    first = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1", str(port),
                  *map(str, files[:10]))
    assert first.returncode == 0, first.stderr
    qtbot.waitUntil(lambda: (node_source("CT_SCANNER"), study_uid) in window.incoming.studies,
                    timeout=20_000)
    viewport = _opened(qtbot, window, study_uid)
    viewer = window.viewers[study_uid]
    assert viewport.n_slices == 10
    viewport.show_slice(4)
    z = table_positions(viewport.volume.geometry)[4]
    rest = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1", str(port),
                 *map(str, files[10:]))
    assert rest.returncode == 0, rest.stderr
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.n_slices == len(files),
                    timeout=30_000)
    assert viewer.study.instance_count == len(files)
    assert abs(table_positions(viewport.volume.geometry)[viewport.state.k] - z) < 0.01


@needs_dcmtk
def test_studies_the_node_received_are_still_in_incoming_after_a_restart(qtbot, home, data):
    port = free_port()
    _enable_node(home, port)
    window = shown_window(qtbot, home, 1200, 800)
    files = sorted((data / GE).glob("*.dcm"))
    sent = dcmtk("storescu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1", str(port),
                 *map(str, files))
    assert sent.returncode == 0, sent.stderr
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    key = (node_source("CT_SCANNER"), study_uid)
    qtbot.waitUntil(lambda: key in window.incoming.studies, timeout=20000)
    window.close()
    settings = load_settings(home)
    settings.node.listen = False  # the list comes from what was kept, not from the node
    save_settings(home, settings)

    again = shown_window(qtbot, home, 1200, 800)
    assert again.node.listener is None
    assert key in again.incoming.studies
    listed = again.incoming.studies[key]
    ((_, _, kept),) = arrivals(home, "DICOM ", 0.0)  # when it first arrived, as kept
    assert listed.instances == len(files) and listed.received == kept
    assert not listed.new and not [n for n in again.incoming.notices if "CT_SCANNER" in n]
    assert again.incoming.table.item(0, COL["From"]).text() == "DICOM CT_SCANNER"
    assert again.incoming.status_of(study_uid) == "Local"
