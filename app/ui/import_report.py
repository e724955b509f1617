"""The import report shown when an import ends: what came in (patients, studies, series with
counts, new or already there, series without images), the problems grouped by reason and folder,
and Open / Send buttons for the study that came in. Every value from a file is plain text.
"""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.imports.importer import ImportReport
from app.imports.summary import (
    ImportSummary,
    SeriesLine,
    StudyLine,
    is_media_index,
    nothing_words,
)
from app.ui.format import count, format_date, format_name
from app.ui.labels import plain_label, tooltip

UID_ROLE = Qt.ItemDataRole.UserRole + 1
FLAG_COLOUR = "#a15c00"
FAIL_COLOUR = "#b3261e"


def summary_text(report: ImportReport) -> str:
    """One plain line for the status bar: "31 images imported, 2 already in the store."."""
    if nothing_words(report):
        return nothing_words(report)
    parts = [f"{count(report.imported, 'image')} imported"]
    if report.duplicates:
        parts.append(f"{report.duplicates} already in the store")
    if report.conflicts:
        parts.append(f"{report.conflicts} conflicting (same UID, different content; both kept)")
    if report.failed:
        parts.append(f"{len(report.failed)} could not be imported")
    not_dicom = [p for p in report.skipped if not is_media_index(p)]
    if not_dicom:
        parts.append(f"{len(not_dicom)} skipped (not DICOM)")
    text = ", ".join(parts) + "."
    return _prefix(report) + text


def _prefix(report: ImportReport) -> str:
    """Why the import ended early, as the sentence before the counts."""
    if report.stopped:
        return f"Import stopped: {report.stopped}. "
    return "Import cancelled. " if report.cancelled else ""


def headline(summary: ImportSummary, report: ImportReport) -> str:
    """"81 images imported: 2 patients, 7 studies, 12 series."; why, when nothing came in."""
    nothing = nothing_words(report)
    if nothing:
        return nothing
    series = sum(len(s.series) for s in summary.studies)
    what = (f"{count(summary.patients, 'patient')}, "
            f"{count(len(summary.studies), 'study', 'studies')}, "
            f"{count(series, 'series', 'series')}")
    text = f"{count(report.imported, 'image')} imported: {what}."
    if report.duplicates:
        verb = "was" if report.duplicates == 1 else "were"
        text += f" {report.duplicates} {verb} already in the store."
    return _prefix(report) + text


def details_text(summary: ImportSummary, report: ImportReport) -> str:
    parts = []
    if summary.media_indexes:
        parts.append(f"{count(summary.media_indexes, 'DICOMDIR')} read")
    if summary.failed:
        parts.append(f"{count(summary.failed, 'file')} could not be imported")
    if summary.not_dicom:
        parts.append(f"{count(summary.not_dicom, 'file')} not DICOM (skipped)")
    if report.conflicts:
        parts.append(f"{report.conflicts} conflicting (same UID, different content; both kept)")
    no_images = summary.series_without_images
    if no_images:
        parts.append(f"{count(len(no_images), 'series', 'series')} without images")
    return " · ".join(parts)


def series_title(s: SeriesLine) -> str:
    number = f"#{s.number} " if s.number is not None else ""
    return f"{number}{s.description or '(no description)'} — {s.modality or '?'}"


class ImportReportDialog(QDialog):
    """Emits :attr:`open_study` / :attr:`send_study` with the chosen study's UID."""

    open_study = Signal(str)
    send_study = Signal(str)

    def __init__(self, report: ImportReport, summary: ImportSummary,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report, self.summary = report, summary
        self.setWindowTitle("Import report")
        layout = QVBoxLayout(self)
        self.headline = plain_label(headline(summary, report), self)
        font = self.headline.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.headline.setFont(font)
        self.headline.setWordWrap(True)  # a long path in "Nothing imported: ..." wraps
        layout.addWidget(self.headline)
        self.details = plain_label(details_text(summary, report), self)
        self.details.setWordWrap(True)
        self.details.setVisible(bool(self.details.text()))
        layout.addWidget(self.details)
        self.studies = self._studies_tree()
        layout.addWidget(self.studies, 3)
        self.problems_title = QLabel("Problems", self)
        self.problems = self._problems_tree()
        for widget in (self.problems_title, self.problems):
            widget.setVisible(bool(summary.problems))
        layout.addWidget(self.problems_title)
        layout.addWidget(self.problems, 2)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.open_button = QPushButton("Open", self)
        self.send_button = QPushButton("Send to hub…", self)
        for button in (self.open_button, self.send_button):
            self.buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
            button.setEnabled(bool(summary.studies))
        self.open_button.clicked.connect(lambda: self._act(self.open_study))
        self.send_button.clicked.connect(lambda: self._act(self.send_study))
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._size_to_content()

    # -- content -----------------------------------------------------------------------------
    def _studies_tree(self) -> QTreeWidget:
        tree = QTreeWidget(self)
        tree.setHeaderLabels(["Patient / study / series", "Images", "Status"])
        tree.setRootIsDecorated(True)
        patients: dict[tuple[str, str], QTreeWidgetItem] = {}
        for study in self.summary.studies:
            key = (study.patient_id, study.patient_name)
            if key not in patients:
                patients[key] = QTreeWidgetItem(
                    tree, [f"{format_name(study.patient_name)}   ID {study.patient_id or '—'}"])
            item = QTreeWidgetItem(patients[key], [_study_title(study), str(study.instances),
                                                   study.status])
            item.setData(0, UID_ROLE, study.study_uid)
            for series in study.series:
                status = series.status if series.images else f"{series.status} · no images"
                child = QTreeWidgetItem(item, [series_title(series), str(series.instances),
                                               status])
                child.setData(0, UID_ROLE, study.study_uid)
                if not series.images:
                    child.setForeground(2, QBrush(QColor(FLAG_COLOUR)))
                    child.setToolTip(2, "This series holds no image (a report, a presentation "
                                        "state or a key-object note): nothing to view")
        tree.expandAll()
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        first = tree.topLevelItem(0)
        current = first.child(0) if first is not None else None
        if current is not None:
            tree.setCurrentItem(current)
        return tree

    def _problems_tree(self) -> QTreeWidget:
        tree = QTreeWidget(self)
        tree.setHeaderHidden(True)
        for group in self.summary.problems:
            item = QTreeWidgetItem(tree, [group.sentence()])
            item.setToolTip(0, tooltip(f"{group.reason}\nin {group.folder}"))
            if group.kind == "failed":
                item.setForeground(0, QBrush(QColor(FAIL_COLOUR)))
            elif group.kind in ("conflict", "unsendable"):
                item.setForeground(0, QBrush(QColor(FLAG_COLOUR)))
            for path in group.paths:
                QTreeWidgetItem(item, [path])
            if group.count > len(group.paths):
                QTreeWidgetItem(item, [f"… and {group.count - len(group.paths)} more"])
        return tree

    def problem_lines(self) -> list[str]:
        """The grouped problem sentences, as shown."""
        items = (self.problems.topLevelItem(i) for i in range(self.problems.topLevelItemCount()))
        return [item.text(0) for item in items if item is not None]

    def chosen_study(self) -> str | None:
        """The study of the selected row, else the first study that came in."""
        item = self.studies.currentItem()
        uid = item.data(0, UID_ROLE) if item is not None else None
        if uid:
            return str(uid)
        return self.summary.studies[0].study_uid if self.summary.studies else None

    def _act(self, signal: SignalInstance) -> None:
        uid = self.chosen_study()
        if uid:
            self.accept()
            signal.emit(uid)

    def _size_to_content(self) -> None:
        """As tall as the rows need and wide enough for the longest line, within the screen."""
        rows = sum(1 for _ in _all_items(self.studies))
        row_height = max(18, self.studies.sizeHintForRow(0) if rows else 18)
        problem_rows = self.problems.topLevelItemCount()
        self.studies.setMinimumHeight(row_height * (min(rows, 24) + 2))
        self.problems.setMaximumHeight(row_height * (min(problem_rows, 10) + 1) + 8)
        widest = max(self.studies.sizeHintForColumn(0) + 260,
                     self.problems.sizeHintForColumn(0) + 60 if problem_rows else 0)
        width = max(720, min(1200, widest))
        height = self.sizeHint().height()
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            avail = screen.availableGeometry()
            width, height = min(width, avail.width() - 80), min(height, avail.height() - 80)
        self.resize(width, height)


def _study_title(study: StudyLine) -> str:
    date = format_date(study.study_date) or "no date"
    return f"{date} · {study.description or '(no description)'}"


def _all_items(tree: QTreeWidget) -> Iterator[QTreeWidgetItem]:
    stack = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        yield item
        stack.extend(item.child(i) for i in range(item.childCount()))
