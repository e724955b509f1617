"""Query/Retrieve…: search a PACS (C-FIND, Study Root) and retrieve or open what is chosen.

The search runs on a thread; each C-FIND answer is listed as it arrives (a slow PACS shows its
first studies at once), and Cancel sends a C-CANCEL. Selecting one study lists its series
(SERIES-level C-FIND). Retrieve queues one job per chosen study, or one job for the chosen
series of a study, in the durable transfer queue (progress in Transfers), by C-GET or C-MOVE as
chosen (the PACS profile's method first). Open reads the study while it arrives, the slice in
view first, as "Open from hub" does. Each study says how much of it is here already (from the
local store's index). Names, IDs and descriptions from the PACS are shown as plain text.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QDate, QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import Cancelled
from app.net.dimse import pacs as pacs_profiles
from app.net.dimse.client import DimseClient
from app.net.dimse.query import SeriesRow, StudyFilter, StudyRow, find_series, find_studies
from app.settings import load_settings
from app.store.local import Store
from app.tasks import Progress
from app.ui.crossthread import ThreadPost
from app.ui.format import count, format_date, format_name
from app.ui.labels import plain_label
from app.ui.remote_dialog import DATE_RANGES, study_query
from app.ui.tables import fit_column, list_table, set_row

log = logging.getLogger(__name__)

#: The date choice that enables the From / To fields.
BETWEEN = "Between…"
COLUMNS = ["Patient", "Patient ID", "Study date", "Description", "Modalities", "Accession",
           "Series", "Images", "Here"]
SERIES_COLUMNS = ["Series", "Modality", "Series description", "Images"]
#: The most a patient's name, an ID, an accession number or the modalities take of a row
#: once a search ends, in widths of "M": the description keeps the rest (a longer one is cut
#: with "…"; the tech can widen its column).
NAME_WIDTH = 14
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
#: The retrieve choices: (label, method).
METHODS = [("C-GET (through firewalls)", "get"), ("C-MOVE to Relay's node", "move")]
Search = Callable[[DimseClient, Progress], Iterator[object]]


def here_text(local: int, on_pacs: int | None) -> str:
    """How much of a study on the PACS is here: "" (none), "all 245", "12 of 245", or "12"
    when the PACS does not say how many it holds."""
    if local <= 0:
        return ""
    if on_pacs is None:
        return str(local)
    return f"all {on_pacs}" if local >= on_pacs else f"{local} of {on_pacs}"


def pacs_filter(name: str = "", patient_id: str = "", dates: str = "Any date",
                modality: str = "", accession: str = "",
                between: tuple[datetime.date, datetime.date] | None = None,
                today: datetime.date | None = None) -> StudyFilter:
    """The C-FIND filter for what the user typed: a name matches any part ("doe jo" finds
    ``DOE^JOHN``), an ID exactly unless it holds ``*`` or ``?``; ``between`` is used when
    ``dates`` is :data:`BETWEEN`."""
    common = study_query(name, patient_id, dates if dates in DATE_RANGES else "Any date", today)
    date = common.get("StudyDate", "")
    if dates == BETWEEN and between is not None:
        start, end = sorted(between)
        date = f"{start:%Y%m%d}-{end:%Y%m%d}"
    return StudyFilter(patient_id=common.get("PatientID", ""),
                       name=common.get("PatientName", ""), date=date,
                       modality=modality.strip().upper(), accession=accession.strip())


class _Finder(QObject):
    """A C-FIND on a thread; each answer, then the end, back on the GUI thread. Only the
    newest search is heard: what one :meth:`drop` left, or a later :meth:`run` replaced, may
    still send (its cancel message, an answer already on its way) and is not delivered."""

    found = Signal(object)  # StudyRow or SeriesRow
    ended = Signal(str)  # "" when complete, else a plain message (cancelled, failed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.progress: Progress | None = None
        self._post = ThreadPost(self)  # the dialog may go while the search runs

    def run(self, home: Path, pacs: str, search: Search) -> None:
        progress = self.progress = Progress(f"Searching {pacs}")
        number = self._post.new_run()

        def work() -> None:
            message = ""
            try:
                # the search is one audit event (110112), its association another (110114)
                client = pacs_profiles.connect(load_settings(home), pacs, home)
                for row in search(client, progress):
                    self._emit(progress, "found", row, run=number)
            except Cancelled:
                message = "Search cancelled."
            except Exception as exc:  # shown in the dialog, never a traceback
                log.info("PACS search failed: %s", type(exc).__name__)
                message = f"Cannot search {pacs}: {exc or type(exc).__name__}"
            self._emit(progress, "ended", message, run=number)

        threading.Thread(target=work, name="search-pacs", daemon=True).start()

    def cancel(self) -> None:
        """Stop the search (C-CANCEL); its end is still heard ("Search cancelled.")."""
        if self.progress is not None:
            self.progress.cancel()

    def drop(self) -> None:
        """Stop the search and hear nothing more of it (another one replaces it, or none)."""
        self.cancel()
        self._post.drop_run()

    def _emit(self, progress: Progress, signal: str, *args: object, run: int) -> None:
        if not self._post.emit(signal, *args, run=run):  # the dialog is gone: stop the search
            progress.cancel()


class QueryRetrieveDialog(QDialog):
    """PACS, search fields, streamed results and the series of the selected study;
    :attr:`retrieve` carries the PACS, the chosen study UIDs, the chosen series UIDs (of one
    study; empty: whole studies) and the method when Retrieve is pressed; :attr:`open_study`
    the PACS and the study to read while it arrives."""

    retrieve = Signal(str, list, list, str)  # PACS, study UIDs, series UIDs, "get" | "move"
    open_study = Signal(str, str)  # PACS, study instance UID
    open_local = Signal(str)  # study instance UID: wholly here, double-clicked

    def __init__(self, home: Path, parent: QWidget | None = None, *,
                 store: Store | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Query / Retrieve")
        self.home = Path(home)
        #: Where the Here column counts what is local (None: not counted).
        self.store = store
        self._on_pacs_counts: dict[str, int | None] = {}  # study -> images the PACS holds
        self.searches = 0
        self.searching = False
        self.pacs_box = QComboBox(self)
        self._methods: dict[str, str] = {}
        for p in load_settings(self.home).pacs:
            self.pacs_box.addItem(f"{p.name}  ({p.address})", p.name)
            self._methods[p.name] = p.retrieve
        self.method_box = QComboBox(self)
        for label, method in METHODS:
            self.method_box.addItem(label, method)
        self.method_box.setToolTip("C-GET brings the images on Relay's own connection; C-MOVE "
                                   "asks the PACS to send them to Relay's node (the PACS must "
                                   "know Relay's AE title, address and port)")
        self.pacs_box.currentIndexChanged.connect(self._on_pacs)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("Family or given name, any part (e.g. doe jo)")
        self.id_edit = QLineEdit(self)
        self.id_edit.setPlaceholderText("Exact, or with * as a wildcard")
        self.modality_edit = QLineEdit(self)
        self.modality_edit.setPlaceholderText("e.g. CT")
        self.accession_edit = QLineEdit(self)
        self.date_box = QComboBox(self)
        self.date_box.addItems([*DATE_RANGES, BETWEEN])
        self.from_date, self.to_date = QDateEdit(self), QDateEdit(self)
        for day in (self.from_date, self.to_date):
            day.setCalendarPopup(True)
            day.setDisplayFormat("yyyy-MM-dd")
            day.setDate(QDate.currentDate())
        self.date_box.currentTextChanged.connect(self._on_dates)
        self.search_button = QPushButton("Search", self)
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Cancel the search (C-CANCEL)")
        self.stop_button.clicked.connect(self.cancel_search)
        for edit in (self.name_edit, self.id_edit, self.modality_edit, self.accession_edit):
            edit.returnPressed.connect(self.search)
        self.table = list_table(self, COLUMNS)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.horizontalHeader().setSectionResizeMode(
            COLUMNS.index("Description"), QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(self._on_double_click)
        here = self.table.horizontalHeaderItem(COLUMNS.index("Here"))
        if here is not None:
            here.setToolTip("Images of the study already on this computer")
        # numbers and codes as narrow as they need, never cut ("12 of 245", not "12 …"); the
        # description takes the rest
        for name, widest in (("Study date", "2026-12-31"), ("Modalities", "CT/MR"),
                             ("Series", "999"), ("Images", "99999"), ("Here", "9999 of 9999")):
            fit_column(self.table, COLUMNS.index(name), widest)
        self.series_table = list_table(self, SERIES_COLUMNS)
        self.series_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.series_table.horizontalHeader().setSectionResizeMode(
            SERIES_COLUMNS.index("Series description"), QHeaderView.ResizeMode.Stretch)
        for name, widest in (("Series", "99999"), ("Modality", "SEG"), ("Images", "99999")):
            fit_column(self.series_table, SERIES_COLUMNS.index(name), widest)
        self.series_table.itemSelectionChanged.connect(self._on_series_selection)
        self.series_label = plain_label("Series: select one study to list them", self)
        self._series_of = ""  # the study whose series are listed
        self.status = plain_label("", self)
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.retrieve_button = self.buttons.addButton(
            "Retrieve", QDialogButtonBox.ButtonRole.ActionRole)
        self.retrieve_button.setToolTip("Copy the selected studies (or the selected series of "
                                        "one study) to this computer; progress in Transfers")
        self.retrieve_button.clicked.connect(self._on_retrieve)
        self.open_button = self.buttons.addButton(
            "Open", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setToolTip("Read the selected study while it arrives, the images in "
                                    "view first")
        self.open_button.clicked.connect(self._on_open)
        self.buttons.rejected.connect(self.reject)
        self._layout()
        self._finder = _Finder(self)
        self._finder.found.connect(self._on_found)
        self._finder.ended.connect(self._on_ended)
        self._series_finder = _Finder(self)
        self._series_finder.found.connect(self._on_series_found)
        self._series_finder.ended.connect(self._on_series_ended)
        self._on_pacs()
        self._on_dates(self.date_box.currentText())
        self._set_searching(False)
        self._on_selection()
        if self.pacs_box.count() == 0:
            self.status.setText("No PACS is set up yet: add one in Settings → PACS and node….")
            self.search_button.setEnabled(False)
        self.resize(1000, 560)

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("PACS", self.pacs_box)
        form.addRow("Patient name", self.name_edit)
        form.addRow("Patient ID", self.id_edit)
        dates = QHBoxLayout()
        dates.addWidget(self.date_box, 1)
        dates.addWidget(QLabel("from", self))
        dates.addWidget(self.from_date)
        dates.addWidget(QLabel("to", self))
        dates.addWidget(self.to_date)
        form.addRow("Study date", dates)
        more = QHBoxLayout()
        more.addWidget(self.modality_edit)
        more.addWidget(QLabel("Accession", self))
        more.addWidget(self.accession_edit, 1)
        more.addWidget(self.search_button)
        more.addWidget(self.stop_button)
        form.addRow("Modality", more)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.series_label)
        layout.addWidget(self.series_table, 2)
        layout.addWidget(self.status)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Retrieve by", self))
        bottom.addWidget(self.method_box)
        bottom.addStretch(1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)

    def pacs_name(self) -> str:
        return str(self.pacs_box.currentData() or "")

    def filter(self) -> StudyFilter:
        between = (self.from_date.date().toPython(), self.to_date.date().toPython())
        return pacs_filter(self.name_edit.text(), self.id_edit.text(),
                           self.date_box.currentText(), self.modality_edit.text(),
                           self.accession_edit.text(), between)  # type: ignore[arg-type]

    def method(self) -> str:
        """``get`` or ``move``: how the PACS is asked."""
        return str(self.method_box.currentData() or "get")

    def selected_series(self) -> list[str]:
        """The UIDs of the selected series (of the one selected study), top to bottom."""
        if self._series_of not in self.selected_studies()[:1] or len(
                self.selected_studies()) != 1:
            return []
        rows = sorted(i.row() for i in self.series_table.selectionModel().selectedRows())
        items = [self.series_table.item(r, 0) for r in rows]
        return [str(i.data(KEY_ROLE)) for i in items if i is not None]

    def selected_studies(self) -> list[str]:
        """The UIDs of the selected result rows, top to bottom."""
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        items = [self.table.item(r, 0) for r in rows]
        return [str(i.data(KEY_ROLE)) for i in items if i is not None]

    def search(self) -> None:
        if not self.pacs_name() or self.searching:
            return
        self.table.setRowCount(0)
        self.status.setText(f"Searching {self.pacs_name()}…")
        self._set_searching(True)
        where = self.filter()
        self._finder.run(self.home, self.pacs_name(),
                         lambda client, progress: find_studies(client, where, progress))

    def cancel_search(self) -> None:
        self._finder.cancel()

    def _on_found(self, row: StudyRow) -> None:
        if not row.study_instance_uid:
            return
        r = self.table.rowCount()
        self.table.setRowCount(r + 1)
        texts = [format_name(row.patient_name), row.patient_id or "—",
                 format_date(row.study_date), row.study_description or "(no description)",
                 "/".join(row.modalities), row.accession_number,
                 "" if row.series_count is None else str(row.series_count),
                 "" if row.instances is None else str(row.instances)]
        self._on_pacs_counts[row.study_instance_uid] = row.instances
        texts.append(self._here(row.study_instance_uid))
        set_row(self.table, r, texts, KEY_ROLE, row.study_instance_uid)
        self.status.setText(f"Searching {self.pacs_name()}… "
                            f"{count(r + 1, 'study', 'studies')} so far")

    def _on_ended(self, message: str) -> None:
        self.searches += 1
        self._set_searching(False)
        n = self.table.rowCount()
        found = (f"{count(n, 'study', 'studies')} found on {self.pacs_name()}."
                 if n else f"No study on {self.pacs_name()} matches.")
        self.status.setText(f"{message} {found}" if message and n else message or found)
        if n and not self.selected_studies():
            self.table.selectRow(0)
        widest = self.table.fontMetrics().horizontalAdvance("M") * NAME_WIDTH
        for col in ("Patient", "Patient ID", "Accession", "Modalities"):
            self.table.resizeColumnToContents(COLUMNS.index(col))  # a long one is cut: "…"
            self.table.setColumnWidth(COLUMNS.index(col),
                                      min(self.table.columnWidth(COLUMNS.index(col)), widest))
        self._on_selection()

    def _here(self, study_uid: str, local: dict[str, int] | None = None) -> str:
        if self.store is None:
            return ""
        if local is None:
            local = self.store.instance_counts([study_uid])
        return here_text(local.get(study_uid, 0), self._on_pacs_counts.get(study_uid))

    def refresh_here(self, _why: str = "") -> None:
        """Count again what is here of each listed study (a retrieve or an open ended): one
        query of the local store's index for the whole list."""
        if self.store is None:
            return
        firsts = {r: self.table.item(r, 0) for r in range(self.table.rowCount())}
        uids = {r: str(i.data(KEY_ROLE)) for r, i in firsts.items() if i is not None}
        local = self.store.instance_counts(uids.values())
        col = COLUMNS.index("Here")
        for r, uid in uids.items():
            item = self.table.item(r, col)
            if item is not None:
                item.setText(self._here(uid, local))

    def wholly_here(self, study_uid: str) -> bool:
        """Is every image the PACS listed for the study here already?"""
        return self._here(study_uid).startswith("all ")

    def _on_double_click(self, index: QModelIndex) -> None:
        """A study wholly here opens (the local copy, at once); any other is retrieved."""
        item = self.table.item(index.row(), 0)
        uid = str(item.data(KEY_ROLE)) if item is not None else ""
        if uid and self.wholly_here(uid):
            self.open_local.emit(uid)
            self.status.setText("Opened the copy here: every image of the study is here.")
            return
        self._on_retrieve()

    def _on_retrieve(self) -> None:
        studies = self.selected_studies()
        series = self.selected_series()
        if studies and self.pacs_name():
            self.retrieve.emit(self.pacs_name(), studies, series, self.method())
            what = (count(len(series), "series", "series") if series
                    else count(len(studies), "study", "studies"))
            self.status.setText(f"Retrieving {what} from {self.pacs_name()}: progress in "
                                "Transfers.")

    def _on_open(self) -> None:
        studies = self.selected_studies()
        if len(studies) == 1 and self.pacs_name():
            self.open_study.emit(self.pacs_name(), studies[0])
            self.status.setText(f"Opening the study from {self.pacs_name()}: the images in "
                                "view come first.")

    def _on_pacs(self, _index: int = 0) -> None:
        method = self._methods.get(self.pacs_name(), "get")
        self.method_box.setCurrentIndex(max(0, self.method_box.findData(method)))

    # -- the series of the selected study -----------------------------------------------------
    def _list_series(self) -> None:
        studies = self.selected_studies()
        study = studies[0] if len(studies) == 1 else ""
        if study == self._series_of:
            return
        self._series_finder.drop()  # the study's series replace what it was listing
        self._series_of = study
        self.series_table.setRowCount(0)
        if not study or not self.pacs_name():
            self.series_label.setText("Series: select one study to list them")
            return
        self.series_label.setText("Series: searching…")
        self._series_finder.run(self.home, self.pacs_name(),
                                lambda client, progress: find_series(client, study, progress))

    def _on_series_found(self, row: SeriesRow) -> None:
        if row.study_instance_uid != self._series_of or not row.series_instance_uid:
            return  # an answer for a study no longer selected
        r = self.series_table.rowCount()
        self.series_table.setRowCount(r + 1)
        texts = ["" if row.series_number is None else str(row.series_number), row.modality,
                 row.series_description or "(no description)",
                 "" if row.instances is None else str(row.instances)]
        set_row(self.series_table, r, texts, KEY_ROLE, row.series_instance_uid)

    def _on_series_ended(self, message: str) -> None:
        n = self.series_table.rowCount()
        words = (f"Series ({n}): select some to retrieve only those" if n
                 else "Series: none listed")
        self.series_label.setText(f"{words}. {message}".strip() if message else words)

    def _on_series_selection(self) -> None:
        self._on_selection()

    def _on_dates(self, text: str) -> None:
        for day in (self.from_date, self.to_date):
            day.setEnabled(text == BETWEEN)

    def _on_selection(self) -> None:
        studies = self.selected_studies()
        self.retrieve_button.setEnabled(bool(studies))
        self.open_button.setEnabled(len(studies) == 1)
        series = self.selected_series()
        self.retrieve_button.setText(f"Retrieve {len(series)} series" if series else "Retrieve")
        self._list_series()

    def _set_searching(self, on: bool) -> None:
        self.searching = on
        self.search_button.setEnabled(not on and bool(self.pacs_name()))
        self.stop_button.setEnabled(on)

    def done(self, result: int) -> None:
        self._finder.cancel()  # a search still running stops (C-CANCEL)
        self._series_finder.cancel()
        super().done(result)
