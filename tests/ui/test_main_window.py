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


def _imported(qtbot, home: Path, path: Path) -> MainWindow:
    """The window on ``home`` once it has imported ``path`` and shows its report."""
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.show()
    window.import_paths([str(path)])
    _wait_task(qtbot, window)
    qtbot.waitUntil(lambda: window.report_dialog is not None, timeout=5000)
    return window


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


def _cd_with_missing_series(tmp_path: Path, data: Path) -> Path:
    """The pydicom DICOMDIR test disc with one series' files gone (a disc burnt half way)."""
    import shutil

    cd = tmp_path / "disc"
    shutil.copytree(data / "cd" / "pydicom-dicomdirtests", cd)
    shutil.rmtree(cd / "77654033" / "CT2")
    return cd


def _report_only_images(tmp_path: Path, data: Path) -> Path:
    """A CT slice turned into an image-less object of its own series (like an SR or a KO)."""
    import pydicom

    source = next(p for p in sorted((data / "ct-head").rglob("*")) if p.is_file())
    ds = pydicom.dcmread(source)
    del ds.PixelData
    ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".99"
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".99"
    ds.SeriesDescription, ds.SeriesNumber = "Dose report", 999
    folder = tmp_path / "noimage"
    folder.mkdir()
    ds.save_as(folder / "dose.dcm")
    return folder


def test_import_report_says_what_came_in_and_groups_problems(qtbot, home: Path, data: Path,
                                                             tmp_path: Path) -> None:
    window = _imported(qtbot, home, _cd_with_missing_series(tmp_path, data))
    dialog = window.report_dialog
    report = window.last_report
    assert dialog.headline.text() == (f"{report.imported} images imported: 2 patients, "
                                      f"{len(report.study_uids)} studies, "
                                      f"{sum(len(s.series) for s in dialog.summary.studies)} "
                                      "series.")
    lines = dialog.problem_lines()
    missing = [line for line in lines if "listed in the DICOMDIR are missing from the disc" in line]
    assert len(missing) == 1 and missing[0].endswith("77654033/CT2)")  # one line, not 1 per file
    assert int(missing[0].split()[0]) > 1
    details = dialog.details.text()
    assert "DICOMDIR" in details and "1 file not DICOM (skipped)" in details  # README only
    assert {s.status for s in dialog.summary.studies} == {"new"}
    chosen = window.browser.selected()
    assert chosen == ("study", report.study_uids[0])  # the new study is selected
    assert dialog.width() >= 640 and dialog.height() <= 1000
    dialog.open_button.click()
    assert report.study_uids[0] in window.viewers


def test_a_dicomdir_dropped_on_the_window_imports_the_cd(qtbot, home: Path, data: Path) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(data / "cd" / "pydicom-tiny-alpha" / "DICOMDIR"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    _wait_task(qtbot, window)
    qtbot.waitUntil(lambda: window.report_dialog is not None, timeout=5000)
    assert window.report_dialog.headline.text().startswith("50 images imported: 1 patient")


def test_import_report_names_the_conflicting_file(qtbot, home: Path, data: Path,
                                                  tmp_path: Path) -> None:
    import shutil

    usb = tmp_path / "usb"
    usb.mkdir()
    for name in ("ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm"):
        shutil.copyfile(data / "malformed" / name, usb / name)
    window = _imported(qtbot, home, usb)
    dialog = window.report_dialog
    assert "1 conflicting" in dialog.details.text()
    assert dialog.problems.isVisibleTo(dialog)
    (line,) = dialog.problem_lines()
    assert line.startswith("1 file: same SOP Instance UID as an image already in the store")
    group = dialog.problems.topLevelItem(0)
    assert group.child(0).text(0) == str(usb / "ExplVR_LitEndNoMeta.dcm")


def test_import_report_flags_a_series_without_images_and_what_was_already_there(
        qtbot, home: Path, data: Path, tmp_path: Path) -> None:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.show()
    folder = _report_only_images(tmp_path, data)
    window.import_paths([str(folder)])
    _wait_task(qtbot, window)
    qtbot.waitUntil(lambda: window.report_dialog is not None, timeout=5000)
    first = window.report_dialog
    (series,) = [s for st in first.summary.studies for s in st.series]
    assert series.images == 0 and series.status == "new"
    assert "1 series without images" in first.details.text()
    item = first.studies.topLevelItem(0).child(0).child(0)
    assert item.text(2) == "new · no images"
    first.send_button.click()  # Send to hub…: the send dialog for the study that came in
    from app.ui.send_dialog import SendDialog

    (send,) = [d for d in window.findChildren(SendDialog) if d.isVisible()]
    assert send.study.study_instance_uid == first.summary.studies[0].study_uid
    send.reject()
    window.report_dialog = None
    window.import_paths([str(folder)])  # the same again
    qtbot.waitUntil(lambda: window.report_dialog is not None, timeout=120_000)
    again = window.report_dialog
    assert again.summary.studies[0].status == "already there"
    assert again.headline.text().endswith("1 was already in the store.")


def test_tag_viewer_lists_sequences_and_private_tags_and_searches(qtbot, tmp_path: Path,
                                                                  data: Path) -> None:
    import pydicom
    from pydicom.dataset import Dataset

    from app.ui.tag_viewer import TagViewerDialog

    source = next(p for p in sorted((data / "ct-head").rglob("*")) if p.is_file())
    ds = pydicom.dcmread(source)
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedImageSequence = [item, Dataset()]
    block = ds.private_block(0x0029, "RELAY TEST", create=True)
    block.add_new(0x10, "LO", "<b>private words</b>")
    path = tmp_path / "tags.dcm"
    ds.save_as(path)

    dialog = TagViewerDialog(path)
    qtbot.addWidget(dialog)
    rows = dialog.rows()
    assert ["(0008,1140)", "Referenced Image Sequence", "SQ", "2 item(s)"] in rows
    assert any(r[0] == "(0008,1155)" and r[3] == "1.2.3.4.5" for r in rows)  # inside item 1
    private = next(r for r in rows if r[0] == "(0029,1010)")
    assert private[1].endswith("[RELAY TEST]") and private[3] == "<b>private words</b>"
    assert dialog.filter("0008,1155") == 1  # the nested element, its parents kept
    shown = dialog.rows()
    assert [r[0] for r in shown] == ["(0008,1140)", "", "(0008,1155)"]
    assert dialog.filter("relay test") >= 1
    assert dialog.filter("") == 0 and len(dialog.rows()) == len(rows)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" * 3)
    dialog.load(broken)  # garbage read with force=True: the bad element says so, no crash
    assert [r[1] for r in dialog.rows()] == ["Unreadable element"]


def test_browser_columns_copy_details_export_and_delete(qtbot, home: Path, data: Path,
                                                        tmp_path: Path) -> None:
    from PySide6.QtGui import QGuiApplication

    from app.ui.browser import COL, COLUMNS

    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.show()
    window.import_paths([str(data / "cd" / "pydicom-dicomdirtests")])
    _wait_task(qtbot, window)
    window.report_dialog.reject()
    assert COLUMNS[1:] == ["Patient ID", "Birth date", "Sex", "Date", "Accession",
                           "Institution", "Modality", "Images", "Received", "Sent"]
    study = next(s for s in window.store.studies() if len(s.series) > 1)
    window.browser.select_study(study.study_instance_uid)
    index = window.browser.tree.currentIndex()
    received = index.siblingAtColumn(COL["Received"]).data()
    assert received and received[:4].isdigit()  # when it came in
    assert index.siblingAtColumn(COL["Sent"]).data() == ""  # never sent

    text = window.manage.copy_details(study.study_instance_uid)
    assert QGuiApplication.clipboard().text() == text
    assert f"Patient ID: {study.patient.patient_id}" in text

    task = window.manage.export(study.study_instance_uid, None, str(tmp_path / "out"))
    qtbot.waitUntil(lambda: not task.is_running(), timeout=60_000)
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == study.instance_count

    viewer = window.open_study(study.study_instance_uid)
    assert viewer is not None
    window.manage.confirm_answer = False  # the user presses Cancel
    assert window.manage.delete(study.study_instance_uid) is None
    assert window.store.study(study.study_instance_uid) is not None
    window.manage.confirm_answer = True
    one = study.series[0]
    assert window.manage.delete(study.study_instance_uid,
                                [one.series_instance_uid]) == one.instance_count
    assert window.store.series(one.series_instance_uid) is None
    assert study.study_instance_uid not in window.viewers  # its reading tab was closed first
    assert window.manage.delete(study.study_instance_uid) is not None
    assert window.store.study(study.study_instance_uid) is None
    assert not window.browser.select_study(study.study_instance_uid)


def test_folder_dialog_lists_cd_and_usb_drives_and_remembers_the_last_folder(
        qtbot, home: Path, tmp_path: Path) -> None:
    from PySide6.QtCore import QUrl

    from app.imports.drives import Volume
    from app.ui.controllers.imports import folder_dialog, mounted_volumes
    from app.ui.view_state import ViewState

    assert all(isinstance(v, Volume) for v in mounted_volumes())  # the real system's list
    volumes = [Volume("/", "/dev/sda1"), Volume("/media/tech/CD", "/dev/sr0", "CD")]
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    dialog = folder_dialog(window, str(tmp_path), volumes)
    assert QUrl.fromLocalFile("/media/tech/CD") in dialog.sidebarUrls()
    assert dialog.fileMode() == dialog.FileMode.Directory
    last = tmp_path / "last"
    last.mkdir()
    dialog = folder_dialog(window, str(last), [Volume("/", "/dev/sda1")])
    assert Path(dialog.directory().absolutePath()) == last  # no disc in: the last folder
    assert QUrl.fromLocalFile(str(last)) in dialog.sidebarUrls()
    state = ViewState(last_folder=str(last))
    state.save(home)
    assert ViewState.load(home).last_folder == str(last)

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


def test_institution_column_and_tag_viewer_picks_another_image(qtbot, home: Path,
                                                               data: Path) -> None:
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    window.import_paths([str(data / "ct-head")])
    _wait_task(qtbot, window)
    window.report_dialog.reject()
    series = max((s for st in window.store.studies() for s in st.series),
                 key=lambda s: window.store.image_count(s.series_instance_uid))
    instances = window.store.instances(series.series_instance_uid)
    assert len(instances) > 2
    from app.ui.browser import COL
    window.browser.select_study(series.study_instance_uid)
    row = window.browser.tree.currentIndex()
    import pydicom
    named = pydicom.dcmread(instances[0].path, stop_before_pixels=True).InstitutionName
    assert named and row.siblingAtColumn(COL["Institution"]).data() == named  # as the file says
    dialog = window.manage.show_tags(series.series_instance_uid)
    assert dialog is not None
    qtbot.addWidget(dialog)
    middle = len(instances) // 2
    assert dialog.picker.value() == middle + 1 and dialog.picker.maximum() == len(instances)

    def sop_uid() -> str:
        return next(r[3] for r in dialog.rows() if r[0] == "(0008,0018)")

    assert sop_uid() == instances[middle].sop_instance_uid
    dialog.search.setText("0020,0013")  # the search stays applied across images
    dialog.picker.setValue(1)
    assert [r[0] for r in dialog.rows()] == ["(0020,0013)"]
    assert dialog.rows()[0][3] == str(instances[0].instance_number)
    assert dialog.picker_label.text() == f"Instance Number {instances[0].instance_number}"
    dialog.search.clear()
    assert sop_uid() == instances[0].sop_instance_uid
    dialog.picker.setValue(len(instances))
    assert sop_uid() == instances[-1].sop_instance_uid


def test_an_import_that_finds_nothing_says_why(qtbot, home: Path, tmp_path: Path) -> None:
    """An empty folder (a disc not in the drive, a USB stick not mounted): the report says
    so, not a bare "0 images imported: 0 patients, 0 studies, 0 series."."""
    empty = tmp_path / "cdrom"
    empty.mkdir()
    window = _imported(qtbot, home, empty)
    assert window.report_dialog.headline.text() == (
        f"Nothing imported: no files found in {empty}. Is the disc in the drive, or the USB "
        "stick plugged in?")
    assert window.statusBar().currentMessage() == window.report_dialog.headline.text()
    window.report_dialog.reject()
    window.report_dialog = None
    (empty / "autorun.inf").write_text("[autorun]\n")
    (empty / "REPORT.PDF").write_bytes(b"%PDF-1.4\n")
    window.import_paths([str(empty)])
    _wait_task(qtbot, window)
    qtbot.waitUntil(lambda: window.report_dialog is not None, timeout=5000)
    assert window.report_dialog.headline.text() == (
        "Nothing imported: none of the 2 files found is a DICOM image.")
