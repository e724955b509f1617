"""Patient and study text from outside is shown as text: a crafted name cannot hide or restyle.

The name below renders as a 1-pixel "X" followed by "REAL" when Qt takes it for HTML; shown as
text, the user sees it exactly as it is.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from PySide6.QtGui import Qt, QTextDocument
from PySide6.QtWidgets import QLabel, QWidget

from app.imports.importer import ImportReport, import_paths
from app.imports.media import Problem
from app.imports.summary import summarize
from app.settings import HubProfile, Settings
from app.store.local import Store
from app.ui.import_report import ImportReportDialog
from app.ui.mpr_panel import MprPanelWidget
from app.ui.send_dialog import SendDialog

CRAFTED = '<b style="font-size:1px">X</b>REAL'
#: A person name cannot hold "=" (it separates the name's alphabets): tags without attributes.
CRAFTED_PN = "<small><small>X</small></small>REAL"


def _shown(text: str, fmt: Qt.TextFormat = Qt.TextFormat.AutoText) -> str:
    """What Qt puts on screen for ``text`` in a widget of this text format."""
    rich = fmt == Qt.TextFormat.RichText or (
        fmt == Qt.TextFormat.AutoText and Qt.mightBeRichText(text))
    if not rich:
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def _labels_shown(widget: QWidget) -> list[str]:
    return [_shown(label.text(), label.textFormat()) for label in widget.findChildren(QLabel)]


def _crafted_study(data: Path, tmp_path: Path):
    ds = pydicom.dcmread(data / "ct-head" / "ge-hispeed-human-gantry-tilt" / "01.dcm")
    ds.PatientName = CRAFTED_PN
    ds.StudyDescription = CRAFTED
    (tmp_path / "media").mkdir()
    ds.save_as(tmp_path / "media" / "crafted.dcm")
    store = Store(tmp_path / "home")
    import_paths(store, [str(tmp_path / "media")])
    return store.studies()[0]


def test_send_dialog_shows_a_crafted_name_as_text(qtbot, data: Path, tmp_path: Path) -> None:
    study = _crafted_study(data, tmp_path)
    settings = Settings(hubs=[HubProfile(name="hub", url="https://hub.example.org/dicom-web")])
    dialog = SendDialog(study, settings)
    qtbot.addWidget(dialog)
    shown = _labels_shown(dialog)
    assert any(CRAFTED_PN in t for t in shown), shown  # tags and all
    assert any(CRAFTED in t for t in shown), shown


def test_mpr_panel_title_shows_a_crafted_name_as_text(qtbot) -> None:
    panel = MprPanelWidget()
    qtbot.addWidget(panel)
    panel.set_title(f"{CRAFTED} · CT")
    panel.set_notes([CRAFTED], [CRAFTED])
    shown = _labels_shown(panel)
    assert f"{CRAFTED} · CT" in shown
    assert any(s.count(CRAFTED) == 2 for s in shown)


def test_import_report_shows_media_names_as_text(qtbot, tmp_path: Path) -> None:
    report = ImportReport(failed=[Problem(f"/media/{CRAFTED}/a.dcm", "not DICOM")])
    dialog = ImportReportDialog(report, summarize(Store(tmp_path / "home"), report))
    qtbot.addWidget(dialog)
    group = dialog.problems.topLevelItem(0)
    assert CRAFTED in _shown(group.toolTip(0))


def test_status_labels_are_plain(qtbot, tmp_path: Path) -> None:
    from app.ui.main_window import MainWindow

    window = MainWindow(Store(tmp_path / "home"))
    qtbot.addWidget(window)
    for label in (window.importer.label, window.counts_label):
        label.setText(f"Importing {CRAFTED}")
        assert _shown(label.text(), label.textFormat()) == f"Importing {CRAFTED}"
