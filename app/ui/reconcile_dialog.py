"""The reconcile view: the outside study's patient beside the local patient (IHE IRWF).

Outside values (as on the CD) sit beside editable local values; rows that differ are
highlighted, and a birth date or sex that disagrees must be confirmed before the study can be
reconciled. The local values come from a worklist entry (Modality Worklist C-FIND against the
configured SCP), a patient a PACS knows (patient-level C-FIND against a PACS profile, with its
TLS), or are typed. The work runs off the GUI thread (:class:`TaskWorker`).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.settings import load_settings
from app.store.local import Store
from app.ui.format import format_date, format_name, format_time, not_done
from app.ui.worker import TaskWorker
from app.workflow.patient import KEYWORDS, PatientValues, compare
from app.workflow.reconcile import ReconcileResult, disc_values, reconcile_study
from app.workflow.worklist import (
    Peer,
    WorklistEntry,
    configured_peer,
    find_patients,
    find_worklist,
)

log = logging.getLogger(__name__)

LABELS = {"patient_name": "Name", "patient_id": "Patient ID", "issuer_of_patient_id": "Issuer",
          "patient_birth_date": "Birth date", "patient_sex": "Sex",
          "accession_number": "Accession"}
DIFFERS = "#fff0b3"  # amber: the value changes
CONFIRM = "#ffc9c9"  # red: birth date or sex disagree, confirmation needed
WORKLIST_COLUMNS = ["Name", "Patient ID", "Birth date", "Sex", "Accession", "Procedure",
                    "Scheduled"]


class ReconcileDialog(QDialog):
    """Reconcile one stored study; :attr:`reconciled` carries the ReconcileResult."""

    reconciled = Signal(object)

    def __init__(self, store: Store, study_uid: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.study_uid = study_uid
        self.outside = disc_values(store, study_uid)
        self.entries: list[WorklistEntry] = []
        self.task: TaskWorker | None = None
        #: Reconciled, but not every instance: the dialog stays open saying so.
        self.done_partly = False
        self.setWindowTitle("Reconcile with the local patient")
        self.setMinimumWidth(760)
        layout = QVBoxLayout(self)
        layout.addWidget(self._worklist_box())
        layout.addWidget(self._compare_box())
        self.confirm = QCheckBox("Birth date or sex differ from the outside study: I have "
                                 "checked that this is the same patient", self)
        self.confirm.toggled.connect(self._update)
        layout.addWidget(self.confirm)
        self.new_uids = QCheckBox("Give the local copy new UIDs (keep the outside study as "
                                  "it is, separately)", self)
        layout.addWidget(self.new_uids)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton("Reconcile", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._on_reconcile)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._update()

    # -- building ----------------------------------------------------------------------------
    def _worklist_box(self) -> QGroupBox:
        box = QGroupBox("Find the local patient", self)
        grid = QVBoxLayout(box)
        row = QHBoxLayout()
        self.source = QComboBox(self)
        row.addWidget(self.source)
        self.find_name = QLineEdit(self)
        self.find_name.setPlaceholderText("Name (e.g. MULLER*)")
        self.find_id = QLineEdit(self)
        self.find_id.setPlaceholderText("Patient ID")
        self.find_accession = QLineEdit(self)
        self.find_accession.setPlaceholderText("Accession")
        self.search_button = QPushButton("Search", self)
        self.search_button.clicked.connect(self.search)
        for w in (self.find_name, self.find_id, self.find_accession, self.search_button):
            row.addWidget(w)
        grid.addLayout(row)
        self.table = QTableWidget(0, len(WORKLIST_COLUMNS), self)
        self.table.setHorizontalHeaderLabels(WORKLIST_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(150)
        self.table.itemSelectionChanged.connect(self._on_entry_chosen)
        grid.addWidget(self.table)
        self.peer = self._peer()
        if self.peer is not None:
            self.source.addItem("Worklist", "")
        for pacs in load_settings(self.store.home).pacs:
            self.source.addItem(f"Patients in PACS {pacs.name}", pacs.name)
        if self.source.count() == 0:
            self.source.addItem("No worklist or PACS configured", None)
            self.search_button.setEnabled(False)
            self.search_button.setToolTip("Configure a worklist SCP (settings: worklist) or a "
                                          "PACS (relay pacs add)")
        first = self.outside.patient_name.split("^")[0]
        self.find_name.setText(f"{first}*" if first else "")
        return box

    def _compare_box(self) -> QGroupBox:
        box = QGroupBox("Outside study and local patient", self)
        grid = QGridLayout(box)
        for col, text in enumerate(("", "Outside (on the disc)", "Local (this hospital)")):
            head = QLabel(f"<b>{text}</b>", self)
            grid.addWidget(head, 0, col)
        self.outside_labels: dict[str, QLabel] = {}
        self.local_edits: dict[str, QLineEdit] = {}
        for row, name in enumerate(KEYWORDS, 1):
            grid.addWidget(QLabel(LABELS[name], self), row, 0)
            label = QLabel(getattr(self.outside, name) or "—", self)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setAutoFillBackground(True)
            label.setMinimumWidth(240)
            edit = QLineEdit(getattr(self.outside, name), self)
            edit.textChanged.connect(self._update)
            edit.setObjectName(f"local_{name}")
            grid.addWidget(label, row, 1)
            grid.addWidget(edit, row, 2)
            self.outside_labels[name] = label
            self.local_edits[name] = edit
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        return box

    def _peer(self) -> Peer | None:
        return configured_peer(load_settings(self.store.home))

    # -- state -------------------------------------------------------------------------------
    def local(self) -> PatientValues:
        return PatientValues(**{n: e.text().strip() for n, e in self.local_edits.items()})

    def row_state(self, name: str) -> str:
        """"same", "differs" or "confirm" for one attribute (what its colour shows)."""
        row = next(r for r in compare(self.outside, self.local()) if r.field == name)
        return "confirm" if row.needs_confirmation else "differs" if row.differs else "same"

    def _update(self) -> None:
        needs = False
        for name in KEYWORDS:
            state = self.row_state(name)
            needs = needs or state == "confirm"
            colour = {"same": "", "differs": DIFFERS, "confirm": CONFIRM}[state]
            style = f"background: {colour};" if colour else ""
            self.outside_labels[name].setStyleSheet(style + "padding: 2px;")
            self.local_edits[name].setStyleSheet(style)
        self.confirm.setVisible(needs)
        if not needs and self.confirm.isChecked():
            self.confirm.setChecked(False)
        ready = bool(self.local().patient_id) and (not needs or self.confirm.isChecked())
        self.ok.setEnabled(ready and self.task is None and not self.done_partly)

    # -- worklist ----------------------------------------------------------------------------
    def search(self) -> TaskWorker | None:
        """Ask the chosen source: the worklist (MWL C-FIND) or a PACS (patient-level C-FIND)."""
        pacs = self.source.currentData()
        if pacs is None or self.task is not None:
            return None
        peer = configured_peer(load_settings(self.store.home), pacs=pacs) if pacs else self.peer
        if peer is None:
            return None
        name, pid, acc = (self.find_name.text().strip(), self.find_id.text().strip(),
                          self.find_accession.text().strip())
        self.status.setText(f"Asking {peer}…")
        home = self.store.home  # each search and its association: one audit event each
        if pacs:
            task = TaskWorker(lambda _p: [WorklistEntry(patient=p) for p in find_patients(
                peer, patient_name=name, patient_id=pid, home=home)], "patients", self)
        else:
            task = TaskWorker(lambda _p: find_worklist(peer, patient_name=name, patient_id=pid,
                                                       accession_number=acc, home=home),
                              "worklist", self)
        task.succeeded.connect(self._on_found)
        task.failed.connect(lambda msg: self.status.setText(f"{self.source.currentText()}: "
                                                            f"{msg}"))
        task.finished.connect(self._on_task_finished)
        self.task = task
        self._update()
        task.start()
        return task

    def _on_found(self, entries: list[WorklistEntry]) -> None:
        self.entries = entries
        self.table.setRowCount(len(entries))
        for r, e in enumerate(entries):
            p = e.patient
            start = e.scheduled_start
            when = f"{format_date(start[:8])} {format_time(start[8:12])}".strip()
            for c, text in enumerate((format_name(p.patient_name), p.patient_id,
                                      format_date(p.patient_birth_date), p.patient_sex,
                                      p.accession_number, e.requested_procedure_description,
                                      when)):
                self.table.setItem(r, c, QTableWidgetItem(text))
        what = ("patient" if len(entries) == 1 else "patients") if self.source.currentData() \
            else ("worklist entry" if len(entries) == 1 else "worklist entries")
        self.status.setText(f"{len(entries)} {what} found: pick one, or type the local values.")

    def choose_entry(self, row: int) -> None:
        self.table.selectRow(row)

    def _on_entry_chosen(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        if len(rows) != 1:
            return
        entry = self.entries[rows.pop()]
        for name, edit in self.local_edits.items():
            edit.setText(getattr(entry.patient, name))

    # -- reconcile ---------------------------------------------------------------------------
    def _on_reconcile(self) -> TaskWorker | None:
        if self.task is not None or not self.ok.isEnabled():
            return None
        local, new_uids, confirmed = self.local(), self.new_uids.isChecked(), \
            self.confirm.isChecked()
        store, study_uid = self.store, self.study_uid
        self.status.setText("Reconciling…")
        task = TaskWorker(lambda p: reconcile_study(store, study_uid, local, new_uids=new_uids,
                                                    confirmed=confirmed, progress=p),
                          "reconcile", self)
        task.succeeded.connect(self._on_reconciled)
        task.failed.connect(lambda msg: self.status.setText(f"Not reconciled: {msg}"))
        task.finished.connect(self._on_task_finished)
        self.task = task
        self._update()
        task.start()
        return task

    def _on_reconciled(self, result: ReconcileResult) -> None:
        self.reconciled.emit(result)
        if not result.failed:
            self.accept()
            return
        self.done_partly = True  # stays open: the tech must see that part is not filed
        self.status.setText(reconciled_words(result))
        self.cancel.setText("Close")  # what was filed stays filed: nothing to cancel

    def _on_task_finished(self) -> None:
        self.task = None
        self._update()


def reconciled_words(result: ReconcileResult) -> str:
    """What a reconciliation did, in one sentence for the tech (a partial one says so)."""
    if not result.failed:
        return (f"{result.instances} instances filed under the local patient; the outside "
                "original is kept.")
    total = result.instances + len(result.failed)
    return (f"{result.instances} of {total} instances filed under the local patient; "
            + not_done(result.failed, "reconciled, still with the outside patient's values: "
                                      "do not send the study until this is solved"))
