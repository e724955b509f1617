"""Send to hub…: choose the hub, and the whole study or some of its series."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from app.model import Study
from app.settings import Settings
from app.ui.format import format_date, format_name
from app.ui.plaintext import escaped


class SendDialog(QDialog):
    """Returns the choice through :meth:`hub` and :meth:`series_uids` once accepted."""

    setup_hubs = Signal()  # "Set up a hub…" pressed (no hub configured yet)

    def __init__(self, study: Study, settings: Settings, selected_series: str | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.study = study
        self.setWindowTitle("Send to hub")
        self.resize(560, 420)
        patient = format_name(study.patient.patient_name)
        title = QLabel(
            f"<b>{escaped(patient)}</b> · {escaped(study.study_description or '(no description)')}"
            f" · {format_date(study.study_date)} · {study.instance_count} images", self)
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setWordWrap(True)
        self.hub_combo = QComboBox(self)
        for hub in settings.hubs:
            self.hub_combo.addItem(f"{hub.name}  ({hub.url})", hub.name)
        self.whole = QRadioButton(f"Whole study ({len(study.series)} series)", self)
        self.some = QRadioButton("Only the series ticked below", self)
        self.series_list = QListWidget(self)
        for series in study.series:
            number = f"#{series.series_number} " if series.series_number is not None else ""
            item = QListWidgetItem(f"{number}{series.series_description or '(no description)'}"
                                   f" — {series.modality}, {series.instance_count} images")
            item.setData(Qt.ItemDataRole.UserRole, series.series_instance_uid)
            chosen = selected_series in (None, series.series_instance_uid)
            item.setCheckState(Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)
            self.series_list.addItem(item)
        self.some.toggled.connect(self.series_list.setEnabled)
        (self.some if selected_series else self.whole).setChecked(True)
        self.series_list.setEnabled(self.some.isChecked())

        form = QFormLayout()
        form.addRow("Hub", self.hub_combo)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(self.whole)
        layout.addWidget(self.some)
        layout.addWidget(self.series_list, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.send_button = self.buttons.addButton("Send",
                                                  QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        if not settings.hubs:
            note = QLabel("No hub is set up yet.", self)
            setup = QPushButton("Set up a hub…", self)
            setup.clicked.connect(self._on_setup)
            layout.addWidget(note)
            layout.addWidget(setup)
            self.send_button.setEnabled(False)
        layout.addWidget(self.buttons)

    def hub(self) -> str:
        return self.hub_combo.currentData() or ""

    def series_uids(self) -> list[str] | None:
        """None: the whole study."""
        if self.whole.isChecked():
            return None
        return [self.series_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.series_list.count())
                if self.series_list.item(i).checkState() == Qt.CheckState.Checked]

    def _on_setup(self) -> None:
        self.reject()
        self.setup_hubs.emit()
