"""The local-store browser: patients → studies → series, searchable, newest first."""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QIcon, QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QVBoxLayout, QWidget

from app.model import Series, Study
from app.ui.format import format_date, format_name

COLUMNS = ["Patient / study / series", "Patient ID", "Date", "Modality", "Images"]
UID_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_ROLE = Qt.ItemDataRole.UserRole + 2
SORT_ROLE = Qt.ItemDataRole.UserRole + 3


class StudyFilterModel(QSortFilterProxyModel):
    """Keeps a row when it or any of its ancestors or children matches every search word."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self.setRecursiveFilteringEnabled(True)
        self.setSortRole(SORT_ROLE)

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self._words = [w.lower() for w in text.split() if w]
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802 (Qt name)
        if not self._words:
            return True
        model = self.sourceModel()
        index = model.index(row, 0, parent)
        text = []
        while index.isValid():
            r, p = index.row(), index.parent()
            text += [model.index(r, c, p).data() or "" for c in range(model.columnCount())]
            text.append(model.index(r, 0, p).data(Qt.ItemDataRole.ToolTipRole) or "")
            index = p
        haystack = " ".join(text).lower()
        return all(w in haystack for w in self._words)


class StudyBrowserWidget(QWidget):
    """Tree of the store's content. Emits :attr:`series_activated` / :attr:`study_activated`."""

    study_activated = Signal(str)
    series_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        self.proxy = StudyFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self.tree = QTreeView(self)
        self.tree.setModel(self.proxy)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSortingEnabled(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.activated.connect(self._on_activated)
        self.tree.setIconSize(QSize(48, 48))
        self._series_items: dict[str, QStandardItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)

    def set_studies(self, studies: list[Study]) -> None:
        """Replace the content; patients are grouped by (ID, name), newest study first."""
        self.model.removeRows(0, self.model.rowCount())
        self._series_items = {}
        patients: dict[tuple[str, str], list[Study]] = {}
        for study in studies:
            key = (study.patient.patient_id, study.patient.patient_name)
            patients.setdefault(key, []).append(study)
        for (pid, name), its_studies in patients.items():
            newest = max(s.study_date for s in its_studies)
            images = sum(s.instance_count for s in its_studies)
            row = _row([format_name(name), pid or "—", format_date(newest),
                        " ".join(sorted({m for s in its_studies for m in s.modalities})),
                        str(images)], kind="patient", uid=pid, sort_key=newest)
            for study in its_studies:
                row[0].appendRow(self._study_row(study))
            self.model.appendRow(row)
        self.tree.sortByColumn(2, Qt.SortOrder.DescendingOrder)
        if self.model.rowCount() <= 5:
            self.tree.expandAll()
        else:
            self.tree.expandToDepth(0)

    def _study_row(self, study: Study) -> list[QStandardItem]:
        row = _row([study.study_description or "(no description)", study.patient.patient_id,
                    format_date(study.study_date), "/".join(study.modalities),
                    str(study.instance_count)],
                   kind="study", uid=study.study_instance_uid,
                   sort_key=study.study_date + study.study_time)
        for series in study.series:
            series_row = _series_row(series)
            self._series_items[series.series_instance_uid] = series_row[0]
            row[0].appendRow(series_row)
        return row

    def set_thumbnail(self, series_uid: str, image: QImage) -> None:
        """Show a series' thumbnail as its row's icon."""
        item = self._series_items.get(series_uid)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def set_search(self, text: str) -> None:
        self.proxy.set_search(text)
        if text:
            self.tree.expandAll()

    def selected(self) -> tuple[str, str] | None:
        """(kind, uid) of the current row, or None."""
        index = self.tree.currentIndex()
        if not index.isValid():
            return None
        first = index.siblingAtColumn(0)
        return first.data(KIND_ROLE), first.data(UID_ROLE)

    def _on_activated(self, index: QModelIndex) -> None:
        first = index.siblingAtColumn(0)
        kind, uid = first.data(KIND_ROLE), first.data(UID_ROLE)
        if kind == "study":
            self.study_activated.emit(uid)
        elif kind == "series":
            self.series_activated.emit(uid)
        else:
            self.tree.setExpanded(index, not self.tree.isExpanded(index))


def _series_row(series: Series) -> list[QStandardItem]:
    number = f"#{series.series_number} " if series.series_number is not None else ""
    return _row([f"{number}{series.series_description or '(no description)'}", "", "",
                 series.modality, str(series.instance_count)],
                kind="series", uid=series.series_instance_uid,
                sort_key=f"{series.series_number or 0:08d}")


def _row(texts: list[str], *, kind: str, uid: str, sort_key: str) -> list[QStandardItem]:
    items = []
    for col, text in enumerate(texts):
        item = QStandardItem(text)
        item.setData(sort_key if col in (0, 2) else text, SORT_ROLE)
        if col == 4:
            item.setData(int(text or 0), SORT_ROLE)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        items.append(item)
    items[0].setData(kind, KIND_ROLE)
    items[0].setData(uid, UID_ROLE)
    return items
