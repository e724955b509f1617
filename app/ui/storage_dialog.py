"""Settings -> Storage: the practice's storage rule (keep N days, keep at most N GB, only studies
verified on a hub or PACS), the low-disk warning, a preview of what a purge would remove and why
(and what it keeps back and why), and Purge now, run off the UI thread.

The rule is the one ``relay retention`` shows and sets; purging is :mod:`app.store.retention`.
"""

from __future__ import annotations

import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import RelayError
from app.settings import StorageSettings, load_settings, save_settings
from app.store import retention
from app.store.local import Store
from app.store.space import free_bytes
from app.tasks import Progress
from app.ui.worker import TaskWorker


class StorageDialog(QDialog):
    """Edit the storage rule, preview it, purge."""

    saved = Signal(object)  # StorageSettings
    purged = Signal(object)  # retention.PurgeResult

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Storage")
        self.store = store
        self._worker: TaskWorker | None = None
        rule = load_settings(store.home).storage
        self.keep_days = QSpinBox(self)
        self.keep_days.setRange(0, 36500)
        self.keep_days.setSpecialValueText("no age limit")
        self.keep_days.setSuffix(" days")
        self.keep_days.setValue(rule.keep_days)
        self.keep_gb = QDoubleSpinBox(self)
        self.keep_gb.setRange(0, 100000)
        self.keep_gb.setDecimals(1)
        self.keep_gb.setSpecialValueText("no size limit")
        self.keep_gb.setSuffix(" GB")
        self.keep_gb.setValue(rule.keep_gb)
        self.only_verified = QCheckBox("Only studies verified on a hub or PACS", self)
        self.only_verified.setChecked(rule.only_verified)
        self.low_disk = QDoubleSpinBox(self)
        self.low_disk.setRange(0, 10000)
        self.low_disk.setDecimals(1)
        self.low_disk.setSuffix(" GB free")
        self.low_disk.setValue(rule.low_disk_gb)
        form = QFormLayout()
        form.addRow("Keep studies received in the last", self.keep_days)
        form.addRow("Keep at most", self.keep_gb)
        form.addRow("", self.only_verified)
        form.addRow("Warn before imports and fetches below", self.low_disk)
        self.space = QLabel(self)
        self.preview = QPlainTextEdit(self)
        self.preview.setReadOnly(True)
        self.preview.setMinimumSize(620, 220)
        self.purge_button = QPushButton("Purge now", self)
        self.purge_button.clicked.connect(self.purge_now)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.purge_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Never purged: a study open in a window or in a transfer.", self))
        layout.addWidget(self.space)
        layout.addWidget(self.preview, 1)
        layout.addWidget(buttons)
        for spin in (self.keep_days, self.keep_gb):
            spin.valueChanged.connect(self.refresh_preview)
        self.only_verified.toggled.connect(self.refresh_preview)
        self.refresh_preview()

    def rule(self) -> StorageSettings:
        return StorageSettings(keep_days=self.keep_days.value(), keep_gb=self.keep_gb.value(),
                               only_verified=self.only_verified.isChecked(),
                               low_disk_gb=self.low_disk.value())

    def save(self) -> None:
        settings = load_settings(self.store.home)
        settings.storage = self.rule()
        save_settings(self.store.home, settings)
        self.saved.emit(settings.storage)
        self.accept()

    def refresh_preview(self) -> None:
        """What the rule in the dialog would purge now, and what it keeps back."""
        rule = self.rule()
        try:
            plan = retention.plan(self.store, rule)
        except RelayError as exc:
            self.preview.setPlainText(str(exc))
            self.purge_button.setEnabled(False)
            return
        self.space.setText(f"Store: {plan.store_bytes / 1e9:.2f} GB;  free on its disk: "
                           f"{free_bytes(self.store.home) / 1e9:.1f} GB")
        if not retention.has_rule(rule):
            self.preview.setPlainText("No rule: nothing is purged.")
            self.purge_button.setEnabled(False)
            return
        lines = [f"Would purge {len(plan.purge)} studies ({plan.purge_bytes / 1e9:.2f} GB):"]
        lines += [f"  {_study_label(self.store, d)}: {d.reason}" for d in plan.purge]
        if plan.kept:
            lines.append(f"Kept back {len(plan.kept)}:")
            lines += [f"  {_study_label(self.store, d)}: {d.reason}" for d in plan.kept]
        self.preview.setPlainText("\n".join(lines))
        self.purge_button.setEnabled(bool(plan.purge) and self._worker is None)

    def purge_now(self) -> None:
        """Save the rule and purge with it, off the UI thread."""
        rule = self.rule()
        settings = load_settings(self.store.home)
        settings.storage = rule
        save_settings(self.store.home, settings)
        self.purge_button.setEnabled(False)

        def work(progress: Progress) -> retention.PurgeResult:
            return retention.purge(self.store, rule)

        self._worker = TaskWorker(work, "Purging", self)
        self._worker.succeeded.connect(self._on_purged)
        self._worker.failed.connect(self._on_purge_failed)
        self._worker.start()

    def _on_purged(self, result: retention.PurgeResult) -> None:
        self._worker = None
        self.purged.emit(result)
        self.refresh_preview()
        gone = result.to_json()
        self.preview.appendPlainText(f"\nPurged {len(result.removed)} studies "
                                     f"({gone['bytes'] / 1e9:.2f} GB).")

    def _on_purge_failed(self, message: str) -> None:
        self._worker = None
        self.preview.appendPlainText(f"\nPurge failed: {message}")
        self.refresh_preview()


def _study_label(store: Store, decision: retention.Decision) -> str:
    """"CT HEAD (received 2026-11-02)": the description, never a patient identifier."""
    study = store.study(decision.study_uid)
    what = (study.study_description if study else "") or "study"
    when = datetime.datetime.fromtimestamp(decision.received).strftime("%Y-%m-%d")
    return f"{what} (received {when})"
