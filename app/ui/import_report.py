"""The import report shown when an import ends: counts, then every failed and skipped file."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.imports.importer import ImportReport
from app.ui.plaintext import tooltip


def summary_text(report: ImportReport) -> str:
    parts = [f"<b>{report.imported}</b> image(s) imported"]
    if report.duplicates:
        parts.append(f"{report.duplicates} already in the store")
    if report.conflicts:
        parts.append(f"<b>{report.conflicts} conflicting</b> (same UID, different content; "
                     "both kept)")
    if report.failed:
        parts.append(f"<b style='color:#c0392b'>{len(report.failed)} could not be imported</b>")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped (not DICOM)")
    text = ", ".join(parts) + "."
    if report.cancelled:
        text = "Import cancelled. " + text
    return text


class ImportReportDialog(QDialog):
    def __init__(self, report: ImportReport, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import report")
        self.resize(820, 420)
        layout = QVBoxLayout(self)
        label = QLabel(summary_text(report), self)  # counts only: no outside text
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setWordWrap(True)
        layout.addWidget(label)
        rows = [("failed", p.path, p.reason) for p in report.failed]
        rows += [("skipped", p.path, p.reason) for p in report.skipped]
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["", "File", "Reason"])
        self.table.verticalHeader().hide()
        for r, (kind, path, reason) in enumerate(rows):
            for c, text in enumerate((kind, path, reason)):
                item = QTableWidgetItem(text)
                item.setToolTip(tooltip(text))
                self.table.setItem(r, c, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setVisible(bool(rows))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
