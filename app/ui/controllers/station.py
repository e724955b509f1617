"""The technologist's station in the window: reconcile, de-identify, export to disc.

Owns the three actions (a **Study** menu and the browser's context menu), opens their dialogs,
tells the browser which studies are reconciled or de-identified copies (and that the outside
original is kept), and makes sure a send goes to the reconciled copy unless the tech says
otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QWidget

from app.errors import TransferError
from app.store.local import Store
from app.ui.deidentify_dialog import DeidentifyDialog
from app.ui.export_dialog import ExportDialog
from app.ui.reconcile_dialog import ReconcileDialog, reconciled_words
from app.workflow.derive import links
from app.workflow.reconcile import ReconcileResult
from app.workflow.sendable import reconciled_copy, send_target

log = logging.getLogger(__name__)

D = TypeVar("D", ReconcileDialog, DeidentifyDialog, ExportDialog)


class StationController(QObject):
    """``changed`` fires when the store gained a reconciled or de-identified study."""

    changed = Signal()
    message = Signal(str, int)

    def __init__(self, store: Store, selected_study: Callable[[], str | None],
                 parent: QWidget) -> None:
        super().__init__(parent)
        self.store = store
        self.window = parent
        self.selected_study = selected_study
        self.dialog: ReconcileDialog | DeidentifyDialog | ExportDialog | None = None
        #: Asked when the outside original of a reconciled study is about to be sent:
        #: returns "copy", "original" or "" (cancel). Tests replace it.
        self.ask_which: Callable[[str], str] = self._ask_which
        self.reconcile_action = QAction("Reconcile with local patient…", parent)
        self.reconcile_action.triggered.connect(lambda: self.reconcile())
        self.deidentify_action = QAction("De-identify…", parent)
        self.deidentify_action.triggered.connect(lambda: self.deidentify())
        self.export_action = QAction("Export to disc…", parent)
        self.export_action.triggered.connect(lambda: self.export())

    def actions(self) -> list[QAction]:
        return [self.reconcile_action, self.deidentify_action, self.export_action]

    # -- dialogs -----------------------------------------------------------------------------
    def _study(self, study_uid: str | None) -> str | None:
        uid = study_uid or self.selected_study()
        if uid is None:
            self.message.emit("Select a study first.", 5000)
        return uid

    def reconcile(self, study_uid: str | None = None) -> ReconcileDialog | None:
        uid = self._study(study_uid)
        if uid is None:
            return None
        dialog = ReconcileDialog(self.store, uid, self.window)
        dialog.reconciled.connect(self._on_reconciled)
        return self._show(dialog)

    def deidentify(self, study_uid: str | None = None) -> DeidentifyDialog | None:
        uid = self._study(study_uid)
        if uid is None:
            return None
        dialog = DeidentifyDialog(self.store, uid, self.window)
        dialog.completed.connect(lambda _r: self.changed.emit())
        return self._show(dialog)

    def export(self, study_uid: str | None = None) -> ExportDialog | None:
        uid = self._study(study_uid)
        if uid is None:
            return None
        return self._show(ExportDialog(self.store, [uid], self.window))

    def _show(self, dialog: D) -> D:
        self.dialog = dialog
        dialog.show()
        return dialog

    def _on_reconciled(self, result: ReconcileResult) -> None:
        self.message.emit(reconciled_words(result), 8000 if not result.failed else 60000)
        self.changed.emit()

    # -- what the browser and the senders need -----------------------------------------------
    def marks(self) -> dict[str, str]:
        """Study UID -> a short note for the browser (reconciled, de-identified, original)."""
        out: dict[str, str] = {}
        for link in links(self.store):
            if link.kind == "reconciled":
                if link.derived_study_uid == link.original_study_uid:
                    out[link.derived_study_uid] = "reconciled · outside original kept"
                else:
                    out[link.derived_study_uid] = "reconciled copy"
                    out[link.original_study_uid] = "outside original (reconciled copy exists)"
            else:
                out[link.derived_study_uid] = "de-identified copy"
        return out

    def send_target(self, study_uid: str, *, series: bool = False) -> str | None:
        """The study to send when the tech asked for ``study_uid`` (or some of its ``series``):
        by the core's rule (:func:`app.workflow.sendable.send_target`), the reconciled copy
        unless the tech chooses the outside original; None when cancelled or refused."""
        original = False
        if reconciled_copy(self.store, study_uid) is not None:
            answer = self.ask_which(study_uid)
            if not answer:
                return None
            original = answer == "original"
        try:
            target = send_target(self.store, study_uid, original=original, series=series)
        except TransferError as exc:
            self.message.emit(f"Not sent: {exc}", 15000)
            return None
        return target.study_uid

    def _ask_which(self, study_uid: str) -> str:
        box = QMessageBox(QMessageBox.Icon.Warning, "Send the outside original?",
                          "This is the outside study as it came on the disc. A copy reconciled "
                          "with the local patient exists.", parent=self.window)
        copy = box.addButton("Send the reconciled copy", QMessageBox.ButtonRole.AcceptRole)
        original = box.addButton("Send the original", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "copy" if clicked is copy else "original" if clicked is original else ""
