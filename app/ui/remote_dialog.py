""""Open from hub…": choose a hub and a study (typed UID, or picked from the hub's list)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from app.net import hubs
from app.net.dicomweb import STUDY_UID, value
from app.settings import load_settings
from app.ui.format import format_date, format_name
from app.ui.plaintext import plain_label, tooltip

log = logging.getLogger(__name__)

#: Studies listed at most (newest first as the hub answers).
LIST_LIMIT = 200


class _Lister(QObject):
    """QIDO study search on a thread; rows or a plain message back on the GUI thread."""

    listed = Signal(list)
    failed = Signal(str)

    def run(self, home: Path, hub: str) -> None:
        def work() -> None:
            try:
                client = hubs.connect(home, hub)
                rows = []
                for i, d in enumerate(client.studies()):
                    if i >= LIST_LIMIT:
                        break
                    rows.append(d)
                self.listed.emit(rows)
            except Exception as exc:
                try:
                    self.failed.emit(str(exc) or type(exc).__name__)
                except RuntimeError:
                    pass

        threading.Thread(target=work, name="list-hub", daemon=True).start()


class OpenRemoteDialog(QDialog):
    """Hub + Study Instance UID; "List studies" fills a list to pick from."""

    def __init__(self, home: Path, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from hub")
        self.home = Path(home)
        self.hub_box = QComboBox(self)
        for hub in load_settings(self.home).hubs:
            self.hub_box.addItem(hub.name)
        self.uid_edit = QLineEdit(self)
        self.uid_edit.setPlaceholderText("Study Instance UID, or pick one below")
        self.list_button = QPushButton("List studies on the hub", self)
        self.list_button.clicked.connect(self._on_list_clicked)
        self.studies = QListWidget(self)
        self.studies.currentItemChanged.connect(self._on_study_picked)
        self.studies.itemDoubleClicked.connect(lambda _item: self.accept())
        self.status = plain_label("", self)
        self.status.setWordWrap(True)
        if self.hub_box.count() == 0:
            self.status.setText("No hub yet: add one with 'relay hub add NAME --url URL'.")
            self.list_button.setEnabled(False)
        form = QFormLayout()
        form.addRow("Hub", self.hub_box)
        form.addRow("Study", self.uid_edit)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.list_button)
        layout.addWidget(self.studies, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(640, 420)
        self._lister = _Lister(self)
        self._lister.listed.connect(self._on_listed)
        self._lister.failed.connect(self._on_list_failed)

    def hub_name(self) -> str:
        return self.hub_box.currentText()

    def study_uid(self) -> str:
        return self.uid_edit.text().strip()

    def _on_list_clicked(self) -> None:
        self.status.setText(f"Asking {self.hub_name()}…")
        self.list_button.setEnabled(False)
        self._lister.run(self.home, self.hub_name())

    def _on_listed(self, rows: list) -> None:
        self.list_button.setEnabled(True)
        self.studies.clear()
        for d in rows:
            uid = value(d, STUDY_UID)
            if not uid:
                continue
            text = " · ".join(t for t in (
                format_name(str(value(d, "00100010", "") or "")),
                format_date(str(value(d, "00080020", "") or "")),
                str(value(d, "00081030", "") or ""),
                str(value(d, "00080061", "") or "")) if t)
            item = QListWidgetItem(text or uid)
            item.setData(Qt.ItemDataRole.UserRole, uid)
            item.setToolTip(tooltip(uid))
            self.studies.addItem(item)
        self.status.setText(f"{self.studies.count()} studies on {self.hub_name()}.")

    def _on_list_failed(self, message: str) -> None:
        self.list_button.setEnabled(True)
        self.status.setText(f"Cannot list the studies: {message}")

    def _on_study_picked(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self.uid_edit.setText(item.data(Qt.ItemDataRole.UserRole))
