"""Settings → PACS and node…: the PACS Relay talks to (:mod:`app.ui.pacs_settings`: add, edit,
test, remove) and Relay's own DICOM node (AE title, port, allowed callers, C-MOVE destinations,
run with the window).

The node is saved with "Save node" (each PACS with its own "Save PACS"); the values are
checked by :class:`app.net.dimse.node.NodeSettings` and a
refusal is shown in plain words beside the button. ``saved`` carries the new settings so the
window can restart its node.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import RelayError
from app.net.dimse.node import MoveDestination, NodeSettings
from app.settings import load_settings, save_settings
from app.ui.pacs_settings import PacsSettingsWidget

BIND_CHOICES = [("0.0.0.0", "Every network interface (modalities and PACS can reach it)"),
                ("127.0.0.1", "This computer only")]
GOOD, BAD = "#1b7f3b", "#b3261e"


class NodeSettingsWidget(QGroupBox):
    """The node's fields; :meth:`value` builds (and checks) a :class:`NodeSettings`."""

    def __init__(self, node: NodeSettings, parent: QWidget | None = None) -> None:
        super().__init__("Relay's DICOM node", parent)
        self._node = node
        self.ae_edit = QLineEdit(node.ae_title, self)
        self.ae_edit.setMaxLength(16)
        self.port_spin = QSpinBox(self)
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(node.port)
        self.bind_combo = QComboBox(self)
        for address, label in BIND_CHOICES:
            self.bind_combo.addItem(label, address)
        if self.bind_combo.findData(node.bind) < 0:
            self.bind_combo.addItem(node.bind, node.bind)
        self.bind_combo.setCurrentIndex(self.bind_combo.findData(node.bind))
        self.callers_edit = QLineEdit(" ".join(node.allowed_callers), self)
        self.callers_edit.setPlaceholderText("empty: any calling AE title")
        self.listen_check = QCheckBox("Receive while Relay is open (studies appear in Incoming)",
                                      self)
        self.listen_check.setChecked(node.listen)
        self.destinations = QTableWidget(0, 3, self)
        self.destinations.setHorizontalHeaderLabels(["AE title", "Host", "Port"])
        self.destinations.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.Stretch)
        self.destinations.verticalHeader().hide()
        self.destinations.setMinimumHeight(110)
        for d in node.move_destinations:
            self._add_row(d.ae_title, d.host, str(d.port))
        add = QPushButton("Add destination", self)
        add.clicked.connect(lambda: self._add_row("", "", "104"))
        remove = QPushButton("Remove", self)
        remove.clicked.connect(self._remove_row)
        form = QFormLayout()
        form.addRow("AE title:", self.ae_edit)
        form.addRow("Port:", self.port_spin)
        form.addRow("Listen on:", self.bind_combo)
        form.addRow("Allowed callers:", self.callers_edit)
        form.addRow("", self.listen_check)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        hint = QLabel("C-MOVE destinations: the peers another workstation or PACS may ask "
                      "Relay to send studies to (unknown ones are refused).", self)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addWidget(self.destinations)
        layout.addLayout(buttons)

    def _add_row(self, ae: str, host: str, port: str) -> None:
        row = self.destinations.rowCount()
        self.destinations.insertRow(row)
        for col, text in enumerate((ae, host, port)):
            self.destinations.setItem(row, col, QTableWidgetItem(text))

    def _remove_row(self) -> None:
        rows = sorted({i.row() for i in self.destinations.selectedIndexes()}, reverse=True)
        for row in rows or [self.destinations.rowCount() - 1]:
            if row >= 0:
                self.destinations.removeRow(row)

    def value(self) -> NodeSettings:
        """The settings as typed; raises SettingsError with the reason when they are wrong."""
        destinations = []
        for row in range(self.destinations.rowCount()):
            ae, host, port = (self._cell(row, col) for col in range(3))
            if not (ae or host):
                continue
            destinations.append(MoveDestination(
                ae_title=ae, host=host, port=int(port) if port.isdigit() else -1))
        callers = [c for c in re.split(r"[,\s]+", self.callers_edit.text()) if c]
        return dataclasses.replace(
            self._node, ae_title=self.ae_edit.text(), port=self.port_spin.value(),
            bind=str(self.bind_combo.currentData()), allowed_callers=callers,
            move_destinations=destinations, listen=self.listen_check.isChecked())

    def _cell(self, row: int, col: int) -> str:
        item = self.destinations.item(row, col)
        return item.text().strip() if item is not None else ""


class PacsNodeDialog(QDialog):
    """Settings → PACS and node: Relay's own node (and, beside it, the PACS it talks to)."""

    saved = Signal(object)  # NodeSettings

    def __init__(self, home: Path, status: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.setWindowTitle("PACS and node")
        self.setMinimumWidth(620)
        self.pacs_widget = PacsSettingsWidget(home, self)
        self.node_widget = NodeSettingsWidget(load_settings(home).node, self)
        self.status_label = QLabel(status, self)
        self.status_label.setWordWrap(True)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Close, self)
        saving = buttons.button(QDialogButtonBox.StandardButton.Save)
        saving.setText("Save node")
        saving.setToolTip("Save Relay's node settings (each PACS is saved with Save PACS)")
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.sections = QVBoxLayout()
        self.sections.addWidget(self.pacs_widget)
        self.sections.addWidget(self.node_widget)
        layout = QVBoxLayout(self)
        layout.addLayout(self.sections)
        layout.addWidget(self.status_label)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def save(self) -> bool:
        try:
            node = self.node_widget.value()
            settings = load_settings(self.home)
            settings.node = node
            save_settings(self.home, settings)
        except RelayError as exc:
            self._say(str(exc), BAD)
            return False
        self._say("Saved.", GOOD)
        self.saved.emit(node)
        return True

    def _say(self, text: str, colour: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {colour}")
