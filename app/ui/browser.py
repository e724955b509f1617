"""The local-store browser: patients → studies → series, searchable, newest first.

The columns are those a technologist checks before sending: patient ID, birth date, sex, study
date, accession number, institution, modality, images, when the study came in, and whether it
was sent (and verified on a hub). Under the tree, a strip shows the selected study's series as
thumbnails (double-click one to read it).
"""

from __future__ import annotations

import datetime

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.model import Series, Study
from app.ui.format import format_date, format_name

COLUMNS = ["Patient / study / series", "Patient ID", "Birth date", "Sex", "Date", "Accession",
           "Institution", "Modality", "Images", "Received", "Sent"]
COL = {name: i for i, name in enumerate(COLUMNS)}
SENT_COLOURS = {"verified": "#1b7f3b", "failed": "#b3261e", "stuck": "#b3261e"}
UID_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_ROLE = Qt.ItemDataRole.UserRole + 2
SORT_ROLE = Qt.ItemDataRole.UserRole + 3
#: A row's first-column text without its note, and the note (see :meth:`set_marks`).
BASE_ROLE = Qt.ItemDataRole.UserRole + 4
MARK_ROLE = Qt.ItemDataRole.UserRole + 5


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
    #: The study whose series the strip shows now (its thumbnails are wanted).
    study_selected = Signal(object)

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
        #: patient key (ID, name) -> its row's items, and the texts they show
        self._patient_rows: dict[tuple[str, str], list[QStandardItem]] = {}
        self._patient_texts: dict[tuple[str, str], dict[str, str]] = {}
        #: study UID -> (what its row was made from: the study, sent, received; its first item)
        self._study_rows: dict[str, tuple[tuple[Study, str, float | None], QStandardItem]] = {}
        self._received: dict[str, float] = {}
        self._sent: dict[str, str] = {}
        self._studies: dict[str, Study] = {}
        self._thumbs: dict[str, QImage] = {}
        self.strip = SeriesThumbStrip(self)
        self.strip.itemActivated.connect(
            lambda item: self.series_activated.emit(item.data(UID_ROLE)))
        self.strip.hide()
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.strip)

    def set_studies(self, studies: list[Study], received: dict[str, float] | None = None,
                    sent: dict[str, str] | None = None) -> None:
        """Show these studies; patients are grouped by (ID, name), newest study first.
        ``received``: when each study came in (epoch seconds); ``sent``: its send state in a
        word ("verified", "failed", …; absent: never sent).

        Called again on every arrival, import and send, so it changes only what changed, in
        place: a store of hundreds of studies is not rebuilt on the GUI thread each time
        (300 studies took 105-270 ms), and the reader's selection, expanded rows, sort order and
        series strip stay as they were.
        """
        first = not self._study_rows
        self._received = received or {}
        self._sent = sent or {}
        new = {s.study_instance_uid: s for s in studies}
        for uid in [u for u, (made_from, _) in self._study_rows.items()
                    if u not in new or _patient_key(new[u]) != _patient_key(made_from[0])]:
            self._remove_study(uid)
        patients: dict[tuple[str, str], list[Study]] = {}
        for study in studies:
            patients.setdefault(_patient_key(study), []).append(study)
        added: list[QStandardItem] = []
        for key, its_studies in patients.items():
            cells = self._patient_rows.get(key)
            if cells is None:
                cells = _row(kind="patient", uid=key[0])
                self.model.appendRow(cells)
                self._patient_rows[key] = cells
                added.append(cells[0])
            texts = _patient_texts(key, its_studies)
            if self._patient_texts.get(key) != texts:
                self._patient_texts[key] = texts
                self._fill(cells, texts, max(s.study_date for s in its_studies))
            for study in its_studies:
                self._put_study(cells[0], study)
        for key in [k for k, cells in self._patient_rows.items() if not cells[0].rowCount()]:
            self._patient_texts.pop(key, None)
            self.model.removeRow(self._patient_rows.pop(key)[0].row())
        self._studies = new
        shown = self.strip.study
        if shown is not None and new.get(shown.study_instance_uid) != shown:
            self.strip.show_study(new.get(shown.study_instance_uid), self._thumbs)
        if first:
            self.tree.sortByColumn(COL["Date"], Qt.SortOrder.DescendingOrder)
        small = self.model.rowCount() <= 5
        for patient in added:
            index = self.proxy.mapFromSource(patient.index())
            self.tree.expand(index)
            if small:  # a small store: every study open too
                for n in range(self.proxy.rowCount(index)):
                    self.tree.expand(self.proxy.index(n, 0, index))

    def _put_study(self, patient: QStandardItem, study: Study) -> None:
        """Add the study's row under ``patient``, or bring its row and series up to date."""
        uid = study.study_instance_uid
        sent = self._sent.get(uid, "")
        made_from = (study, sent, self._received.get(uid))
        known = self._study_rows.get(uid)
        if known is not None and known[0] == made_from:
            return
        if known is None:
            cells = _row(kind="study", uid=uid)
            patient.appendRow(cells)
            item = cells[0]
        else:
            item = known[1]
        self._study_rows[uid] = (made_from, item)
        items = self._row_items(item)
        self._fill(items, self._study_texts(study), study.study_date + study.study_time)
        colour = SENT_COLOURS.get(sent)
        items[COL["Sent"]].setData(QBrush(QColor(colour)) if colour else None,
                                   Qt.ItemDataRole.ForegroundRole)
        wanted = {s.series_instance_uid for s in study.series}
        for row in reversed(range(item.rowCount())):  # series gone from the study
            if item.child(row, 0).data(UID_ROLE) not in wanted:
                self._forget_series(item.child(row, 0))
                item.removeRow(row)
        have = {item.child(r, 0).data(UID_ROLE): item.child(r, 0) for r in range(item.rowCount())}
        for series in study.series:
            series_uid = series.series_instance_uid
            series_item = have.get(series_uid)
            if series_item is None:
                cells = _row(kind="series", uid=series_uid)
                item.appendRow(cells)
                series_item = cells[0]
                self._series_items[series_uid] = series_item
                thumb = self._thumbs.get(series_uid)
                if thumb is not None:
                    series_item.setIcon(QIcon(QPixmap.fromImage(thumb)))
            self._fill(self._row_items(series_item), _series_texts(series),
                       f"{series.series_number or 0:08d}")

    def _remove_study(self, uid: str) -> None:
        _, item = self._study_rows.pop(uid)
        for r in range(item.rowCount()):
            self._forget_series(item.child(r, 0))
        parent = item.parent()
        if parent is not None:
            parent.removeRow(item.row())

    def _forget_series(self, item: QStandardItem) -> None:
        uid = item.data(UID_ROLE)
        if self._series_items.get(uid) is item:
            del self._series_items[uid]

    def _row_items(self, first: QStandardItem) -> list[QStandardItem]:
        """Every column's item of the row whose first column is ``first``."""
        parent = first.parent()
        row = first.row()
        if parent is None:
            return [self.model.item(row, c) for c in range(len(COLUMNS))]
        return [parent.child(row, c) for c in range(len(COLUMNS))]

    def _fill(self, items: list[QStandardItem], texts: dict[str, str], sort_key: str) -> None:
        """Set a row's texts and sort keys where they differ (an unchanged item is not
        touched, so the view repaints nothing for it)."""
        for name, item in zip(COLUMNS, items, strict=True):
            text = texts.get(name, "")
            if name == COLUMNS[0]:
                mark = item.data(MARK_ROLE)
                if item.data(BASE_ROLE) != text:
                    item.setData(text, BASE_ROLE)
                    item.setText(f"{text}  [{mark}]" if mark else text)
            elif item.text() != text:
                item.setText(text)
            key: object = int(text or 0) if name == "Images" else (
                sort_key if name in (COLUMNS[0], "Date") else text)
            if item.data(SORT_ROLE) != key:
                item.setData(key, SORT_ROLE)

    def _study_texts(self, study: Study) -> dict[str, str]:
        received = self._received.get(study.study_instance_uid)
        return {"Patient / study / series": study.study_description or "(no description)",
                "Patient ID": study.patient.patient_id, "Date": format_date(study.study_date),
                "Accession": study.accession_number,
                "Institution": study.institution_name, "Modality": "/".join(study.modalities),
                "Images": str(study.instance_count),
                "Received": datetime.datetime.fromtimestamp(received).strftime(
                    "%Y-%m-%d %H:%M") if received else "",
                "Sent": self._sent.get(study.study_instance_uid, "").capitalize()}

    def set_marks(self, marks: dict[str, str]) -> None:
        """A note (e.g. "reconciled · outside original kept") on these studies' rows; the
        others have none."""
        for uid, (_, item) in self._study_rows.items():
            note = marks.get(uid) or None
            if item.data(MARK_ROLE) != note:
                item.setData(note, MARK_ROLE)
                base = item.data(BASE_ROLE) or ""
                item.setText(f"{base}  [{note}]" if note else base)
                item.setToolTip(note or "")

    def set_thumbnail(self, series_uid: str, image: QImage) -> None:
        """Show a series' thumbnail as its row's icon."""
        self._thumbs[series_uid] = image
        item = self._series_items.get(series_uid)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))
        self.strip.set_thumbnail(series_uid, image)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """Show the strip of the study of the current row (a series row: its study)."""
        first = current.siblingAtColumn(0)
        if first.data(KIND_ROLE) == "series":
            first = first.parent()
        study = self._studies.get(first.data(UID_ROLE)) if (
            first.data(KIND_ROLE) == "study") else None
        if study is None or study is self.strip.study:
            if study is None:
                self.strip.show_study(None, self._thumbs)
            return
        self.strip.show_study(study, self._thumbs)
        self.study_selected.emit(study)

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

    def select_study(self, study_uid: str) -> bool:
        """Make the study's row current and visible (False when it is filtered out or absent)."""
        for p in range(self.proxy.rowCount()):
            patient = self.proxy.index(p, 0)
            for s in range(self.proxy.rowCount(patient)):
                index = self.proxy.index(s, 0, patient)
                if index.data(UID_ROLE) == study_uid:
                    self.tree.expand(patient)
                    self.tree.setCurrentIndex(index)
                    self.tree.scrollTo(index)
                    return True
        return False

    def _on_activated(self, index: QModelIndex) -> None:
        first = index.siblingAtColumn(0)
        kind, uid = first.data(KIND_ROLE), first.data(UID_ROLE)
        if kind == "study":
            self.study_activated.emit(uid)
        elif kind == "series":
            self.series_activated.emit(uid)
        else:
            self.tree.setExpanded(index, not self.tree.isExpanded(index))


class SeriesThumbStrip(QListWidget):
    """The selected study's series, one thumbnail each, in a row under the browser."""

    ICON = 96

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.study: Study | None = None
        #: Series shown with their thumbnail (the others with a black square, for now).
        self.thumbed: set[str] = set()
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(self.ICON, self.ICON))
        self.setGridSize(QSize(self.ICON + 64, self.ICON + 60))
        self.setWordWrap(True)
        self.setFixedHeight(self.ICON + 84)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setToolTip("Double-click a series to read it")

    def show_study(self, study: Study | None, thumbs: dict[str, QImage]) -> None:
        """Show ``study``'s series (hidden when None), with the thumbnails known so far."""
        self.study = study
        self.thumbed = set()
        self.clear()
        self.setVisible(study is not None)
        for series in study.series if study is not None else []:
            number = f"#{series.series_number} " if series.series_number is not None else ""
            text = (f"{number}{series.series_description or series.modality}\n"
                    f"{series.modality} · {series.instance_count} im")
            item = QListWidgetItem(text, self)
            item.setData(UID_ROLE, series.series_instance_uid)
            item.setToolTip(text.replace("\n", " — "))
            image = thumbs.get(series.series_instance_uid)
            item.setIcon(_blank_icon(self.ICON))
            if image is not None:
                self.set_thumbnail(series.series_instance_uid, image)

    def set_thumbnail(self, series_uid: str, image: QImage) -> None:
        for row in range(self.count()):
            item = self.item(row)
            if item.data(UID_ROLE) == series_uid:  # small images too fill the square
                pixmap = QPixmap.fromImage(image).scaled(
                    self.ICON, self.ICON, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation)
                item.setIcon(QIcon(pixmap))
                self.thumbed.add(series_uid)

    def series_uids(self) -> list[str]:
        return [self.item(row).data(UID_ROLE) for row in range(self.count())]


def _blank_icon(size: int) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.black)
    return QIcon(pixmap)


def _patient_key(study: Study) -> tuple[str, str]:
    return study.patient.patient_id, study.patient.patient_name


def _patient_texts(key: tuple[str, str], studies: list[Study]) -> dict[str, str]:
    patient = studies[0].patient
    return {"Patient / study / series": format_name(key[1]), "Patient ID": key[0] or "—",
            "Birth date": format_date(patient.patient_birth_date), "Sex": patient.patient_sex,
            "Date": format_date(max(s.study_date for s in studies)),
            "Modality": " ".join(sorted({m for s in studies for m in s.modalities})),
            "Images": str(sum(s.instance_count for s in studies))}


def _series_texts(series: Series) -> dict[str, str]:
    number = f"#{series.series_number} " if series.series_number is not None else ""
    return {"Patient / study / series":
            f"{number}{series.series_description or '(no description)'}",
            "Modality": series.modality, "Images": str(series.instance_count)}


def _row(*, kind: str, uid: str) -> list[QStandardItem]:
    """An empty row (its texts and sort keys come from :meth:`StudyBrowserWidget._fill`)."""
    items = [QStandardItem("") for _ in COLUMNS]
    items[COL["Images"]].setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
    items[0].setData(kind, KIND_ROLE)
    items[0].setData(uid, UID_ROLE)
    return items
