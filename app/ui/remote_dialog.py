""""Open from hub…": find a study on a hub by patient name, patient ID or study date, and pick it.

The search runs as a QIDO-RS study query on a thread (at most :data:`LIST_LIMIT` answers); a
name matches anywhere and in any case ("doe jo" finds ``DOE^JOHN``), an ID matches exactly
unless it holds ``*`` or ``?``. Values from the hub are shown as plain text.
"""

from __future__ import annotations

import datetime
import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.net import hubs
from app.net.peer import STUDY_UID, DicomJson, value
from app.settings import load_settings
from app.ui.crossthread import ThreadPost
from app.ui.format import count, format_date, format_name
from app.ui.labels import plain_label
from app.ui.tables import list_table, set_row
from app.workflow import audit

log = logging.getLogger(__name__)

#: Studies listed at most (as the hub answers).
LIST_LIMIT = 200
#: Study-date choices: label -> (days back from today to start, days back to end); None: any.
DATE_RANGES: dict[str, tuple[int, int] | None] = {
    "Any date": None, "Today": (0, 0), "Yesterday": (1, 1), "Last 3 days": (2, 0),
    "Last 7 days": (6, 0), "Last 30 days": (29, 0), "Last 365 days": (364, 0)}
COLUMNS = ["Patient", "Patient ID", "Birth date", "Study date", "Description", "Modalities",
           "Images"]
KEY_ROLE = Qt.ItemDataRole.UserRole + 1


def study_query(name: str = "", patient_id: str = "", dates: str = "Any date",
                today: datetime.date | None = None) -> dict[str, str]:
    """QIDO-RS study filters for what the user typed (empty: every study)."""
    filters: dict[str, str] = {}
    words = [w for w in name.replace(",", " ").replace("^", " ").split() if w]
    if words:
        filters["PatientName"] = "*" + "*".join(words) + "*"
    if patient_id.strip():
        filters["PatientID"] = patient_id.strip()
    span = DATE_RANGES.get(dates)
    if span is not None:
        today = today or datetime.date.today()
        start, end = (today - datetime.timedelta(days=d) for d in span)
        filters["StudyDate"] = (start.strftime("%Y%m%d") if start == end
                                else f"{start:%Y%m%d}-{end:%Y%m%d}")
    return filters


class _Lister(QObject):
    """QIDO study search on a thread; rows or a plain message back on the GUI thread. Only the
    newest search is heard (a search started again with Enter replaces the one running)."""

    listed = Signal(list)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._post = ThreadPost(self)  # the dialog may go while the search runs

    def run(self, home: Path, hub: str, filters: dict[str, str]) -> None:
        used = [key for key, value in filters.items() if value]
        post = self._post
        number = post.new_run()

        def work() -> None:
            try:
                peer = hubs.connect(home, hub)
                rows = []
                for i, d in enumerate(peer.studies(**filters)):
                    if i >= LIST_LIMIT:
                        break
                    rows.append(d)
                # the kinds of keys searched on, never their values (they may name the patient)
                audit.query(home, f"{hub}@{peer.where}", len(rows), keys=used)
                post.emit("listed", rows, run=number)
            except Exception as exc:
                audit.query(home, hub, 0, failed=type(exc).__name__, keys=used)
                post.emit("failed", str(exc) or type(exc).__name__, run=number)

        threading.Thread(target=work, name="search-hub", daemon=True).start()


class OpenRemoteDialog(QDialog):
    """Hub, then a search by name / ID / date; the chosen row gives :meth:`study_uid`."""

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from hub")
        self.home = Path(home)
        self.searches = 0
        self.hub_box = QComboBox(self)
        for hub in load_settings(self.home).web_hubs:
            self.hub_box.addItem(hub.name)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("Family or given name, any part (e.g. doe jo)")
        self.id_edit = QLineEdit(self)
        self.id_edit.setPlaceholderText("Exact, or with * as a wildcard")
        self.date_box = QComboBox(self)
        self.date_box.addItems(list(DATE_RANGES))
        self.search_button = QPushButton("Search", self)
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        for edit in (self.name_edit, self.id_edit):
            edit.returnPressed.connect(self.search)
        self.table = list_table(self, COLUMNS)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COLUMNS.index("Description"), QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _index: self.accept())
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.status = plain_label("", self)
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Hub", self.hub_box)
        form.addRow("Patient name", self.name_edit)
        form.addRow("Patient ID", self.id_edit)
        row = QHBoxLayout()
        row.addWidget(self.date_box, 1)
        row.addWidget(self.search_button)
        form.addRow("Study date", row)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel, self)
        self.open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.open_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(900, 520)
        self._lister = _Lister(self)
        self._lister.listed.connect(self._on_listed)
        self._lister.failed.connect(self._on_failed)
        if self.hub_box.count() == 0:
            self.status.setText("No hub is set up yet: add one in Settings → Hubs….")
            self.search_button.setEnabled(False)

    def hub_name(self) -> str:
        return self.hub_box.currentText()

    def study_uid(self) -> str:
        """The chosen study's UID ("" when none is chosen)."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return ""
        item = self.table.item(rows[0].row(), 0)
        return str(item.data(KEY_ROLE)) if item is not None else ""

    def filters(self) -> dict[str, str]:
        return study_query(self.name_edit.text(), self.id_edit.text(),
                           self.date_box.currentText())

    def search(self) -> None:
        if not self.hub_name():
            return
        self.status.setText(f"Searching {self.hub_name()}…")
        self.search_button.setEnabled(False)
        self._lister.run(self.home, self.hub_name(), self.filters())

    def _on_listed(self, rows: list[DicomJson]) -> None:
        self.searches += 1
        self.search_button.setEnabled(True)
        found = [d for d in rows if value(d, STUDY_UID)]
        self.table.setRowCount(len(found))
        for r, d in enumerate(found):
            element = d.get("00080061")
            mods = element.get("Value") if isinstance(element, dict) else None
            texts = [format_name(str(value(d, "00100010", "") or "")),
                     str(value(d, "00100020", "") or "—"),
                     format_date(str(value(d, "00100030", "") or "")),
                     format_date(str(value(d, "00080020", "") or "")),
                     str(value(d, "00081030", "") or "(no description)"),
                     "/".join(str(m) for m in mods) if isinstance(mods, list) else "",
                     str(value(d, "00201208", "") or "")]
            set_row(self.table, r, texts, KEY_ROLE, str(value(d, STUDY_UID)))
        more = f" (the first {LIST_LIMIT})" if len(rows) >= LIST_LIMIT else ""
        self.status.setText(f"{count(len(found), 'study', 'studies')} found on "
                            f"{self.hub_name()}{more}."
                            if found else f"No study on {self.hub_name()} matches.")
        if found:
            self.table.selectRow(0)
        self._on_selection()

    def _on_failed(self, message: str) -> None:
        self.searches += 1
        self.search_button.setEnabled(True)
        self.status.setText(f"Cannot search {self.hub_name()}: {message}")

    def _on_selection(self) -> None:
        self.open_button.setEnabled(bool(self.study_uid()))
