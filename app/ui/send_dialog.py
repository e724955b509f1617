"""Send to hub… and Send to PACS…: confirm the patient, choose the hub (or the PACS profile)
and the whole study or some series.

The top of the dialog lets the technologist check that this is the right patient (name, patient
ID, birth date, sex, accession number, study date and description); the series list shows each
series' thumbnail and image count. When the study was already sent to the chosen hub, a warning
says when and how that send ended before a second job is queued. Every value from a file is
shown as plain text (never rich text).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
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
    QWidget,
)

from app.model import Series, Study
from app.net.sent import SendRecord, sends_of
from app.settings import Settings
from app.ui.format import study_details
from app.ui.labels import plain_label
from app.ui.thumbs import ThumbnailLoader

THUMB_SIZE = 56
WARNING_STYLE = "background: #fff4e5; color: #7a4100; padding: 6px; border: 1px solid #e0a040"


def series_text(series: Series) -> str:
    number = f"#{series.series_number} " if series.series_number is not None else ""
    return (f"{number}{series.series_description or '(no description)'} — "
            f"{series.modality or '?'}, {series.instance_count} images")


class SendDialog(QDialog):
    """Returns the choice through :meth:`hub` and :meth:`series_uids` once accepted."""

    setup_hubs = Signal()  # "Set up a hub…" (or "Set up a PACS…") pressed: none configured

    def __init__(self, study: Study, settings: Settings, selected_series: str | None = None,
                 parent: QWidget | None = None, *, history: list[SendRecord] | None = None,
                 thumbnails: ThumbnailLoader | None = None, pacs: bool = False) -> None:
        super().__init__(parent)
        self.study = study
        self.history = history or []
        self.to_pacs = pacs
        what = "PACS" if pacs else "hub"
        self.setWindowTitle(f"Send to {what}")
        layout = QVBoxLayout(self)
        layout.addWidget(self._patient_box())
        self.hub_combo = QComboBox(self)
        peers = [(h.name, h.address) for h in (settings.pacs if pacs else settings.web_hubs)]
        for name, where in peers:
            self.hub_combo.addItem(f"{name}  ({where})", name)
        form = QFormLayout()
        form.addRow("PACS" if pacs else "Hub", self.hub_combo)
        layout.addLayout(form)
        self.warning = plain_label("", self)
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        layout.addWidget(self.warning)
        self.whole = QRadioButton(f"Whole study ({len(study.series)} series)", self)
        self.some = QRadioButton("Only the series ticked below", self)
        self.series_list = self._series_list(selected_series)
        self.some.toggled.connect(self.series_list.setEnabled)
        (self.some if selected_series else self.whole).setChecked(True)
        self.series_list.setEnabled(self.some.isChecked())
        layout.addWidget(self.whole)
        layout.addWidget(self.some)
        layout.addWidget(self.series_list, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.send_button = self.buttons.addButton("Send",
                                                  QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        if not peers:
            layout.addWidget(QLabel(f"No {what} is set up yet.", self))
            setup = QPushButton(f"Set up a {what}…", self)
            setup.clicked.connect(self._on_setup)
            layout.addWidget(setup)
            self.send_button.setEnabled(False)
        layout.addWidget(self.buttons)
        self.hub_combo.currentIndexChanged.connect(self._on_hub_changed)
        self._on_hub_changed()
        if thumbnails is not None:
            thumbnails.ready.connect(self.set_thumbnail)
            for series in study.series:
                thumbnails.request(series.series_instance_uid)
        self.resize(620, min(760, 360 + 60 * len(study.series)))

    def _patient_box(self) -> QWidget:
        box = QWidget(self)
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 6)
        self.patient_labels: dict[str, QLabel] = {}
        for name, text in study_details(self.study):
            label = plain_label(text, box)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if name in ("Patient", "Patient ID"):
                font = label.font()
                font.setBold(True)
                label.setFont(font)
            self.patient_labels[name] = label
            form.addRow(f"{name}:", label)
        return box

    def _series_list(self, selected_series: str | None) -> QListWidget:
        widget = QListWidget(self)
        widget.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self._items: dict[str, QListWidgetItem] = {}
        for series in self.study.series:
            item = QListWidgetItem(series_text(series))
            item.setData(Qt.ItemDataRole.UserRole, series.series_instance_uid)
            chosen = selected_series in (None, series.series_instance_uid)
            item.setCheckState(Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)
            widget.addItem(item)
            self._items[series.series_instance_uid] = item
        return widget

    def set_thumbnail(self, series_uid: str, image: QImage) -> None:
        item = self._items.get(series_uid)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def hub(self) -> str:
        return self.hub_combo.currentData() or ""

    def series_uids(self) -> list[str] | None:
        """None: the whole study."""
        if self.whole.isChecked():
            return None
        return [self.series_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.series_list.count())
                if self.series_list.item(i).checkState() == Qt.CheckState.Checked]

    def previous_sends(self) -> list[SendRecord]:
        """Earlier sends of this study to the chosen hub, newest first."""
        hub = self.hub()
        return sends_of(self.history, self.study.study_instance_uid, hub) if hub else []

    def _on_hub_changed(self) -> None:
        before = self.previous_sends()
        self.warning.setVisible(bool(before))
        if before:
            more = f" ({len(before)} sends in all)" if len(before) > 1 else ""
            self.warning.setText(f"This study was already {before[0].describe()}{more}. "
                                 "Sending again queues a second job.")
        self.send_button.setText("Send again" if before else "Send")

    def _on_setup(self) -> None:
        self.reject()
        self.setup_hubs.emit()
