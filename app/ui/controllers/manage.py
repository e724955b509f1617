"""Study management from the browser: delete a study or series (with confirmation; refused
while an unfinished transfer uses it), show an instance's DICOM tags, export to a folder, copy
the patient and study details.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.model import Study
from app.net.sent import transfers_using
from app.render.thumbnails import thumbnail_path
from app.store.local import Store
from app.ui.format import count, format_name, study_details
from app.ui.tag_viewer import TagViewerDialog
from app.ui.worker import TaskWorker
from app.workflow.export import ExportResult, export_studies

log = logging.getLogger(__name__)


def details_text(study: Study) -> str:
    """The text "Copy details" puts on the clipboard."""
    lines = [f"{label}: {value}" for label, value in study_details(study)]
    return "\n".join([*lines, f"Study Instance UID: {study.study_instance_uid}"])


class ManageController(QObject):
    """Acts on a (study uid, series uids or None) chosen in the browser."""

    message = Signal(str, int)  # text for the status bar, milliseconds
    deleting = Signal(str)  # study uid about to lose files: close its reading tab
    changed = Signal()  # the store's content changed

    def __init__(self, store: Store, window: QWidget) -> None:
        super().__init__(window)
        self.store = store
        self.window = window
        self.export_task: TaskWorker | None = None
        #: Answer to the confirmation (tests set it; None: ask the user).
        self.confirm_answer: bool | None = None

    # -- delete ------------------------------------------------------------------------------
    def delete(self, study_uid: str, series_uids: list[str] | None = None) -> int | None:
        """Delete the study (or some of its series) after confirmation; the number of images
        removed, or None when refused or not confirmed."""
        study = self.store.study(study_uid)
        if study is None:
            return None
        busy = transfers_using(self.store.home, study_uid, series_uids)
        if busy:
            job = busy[0]
            what = "send to" if job.kind == "send" else "fetch from"
            self._refuse(f"Not deleted: a {what} {job.hub} of this study is not finished "
                         f"({job.state}). Cancel it in Transfers or wait until it ends.")
            return None
        chosen = [s for s in study.series
                  if series_uids is None or s.series_instance_uid in series_uids]
        images = sum(s.instance_count for s in chosen)
        what = ("the whole study" if series_uids is None else
                count(len(chosen), "series", "series"))
        question = (f"Delete {what} of {format_name(study.patient.patient_name)} "
                    f"({study.study_description or 'no description'}, {images} images) from "
                    "this computer? The hub keeps its copy.")
        if not self._confirm(question):
            return None
        self.deleting.emit(study_uid)
        uids = [s.series_instance_uid for s in chosen]
        removed = (self.store.delete_study(study_uid) if series_uids is None
                   else self.store.delete_series(uids))
        for uid in uids:
            thumbnail_path(self.store, uid).unlink(missing_ok=True)
        self.message.emit(f"Deleted {count(removed, 'image')} from this computer.", 8000)
        self.changed.emit()
        return removed

    def _confirm(self, question: str) -> bool:
        if self.confirm_answer is not None:
            return self.confirm_answer
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete from this computer", question,
                          QMessageBox.StandardButton.Cancel, self.window)
        box.setTextFormat(Qt.TextFormat.PlainText)
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is delete

    def _refuse(self, text: str) -> None:
        self.message.emit(text, 15000)
        if self.confirm_answer is None:
            box = QMessageBox(QMessageBox.Icon.Information, "Not deleted", text,
                              QMessageBox.StandardButton.Ok, self.window)
            box.setTextFormat(Qt.TextFormat.PlainText)
            box.exec()

    # -- tags, export, copy ------------------------------------------------------------------
    def show_tags(self, series_uid: str) -> TagViewerDialog | None:
        """The tag viewer on the series' middle instance, the others a spin box away."""
        instances = self.store.instances(series_uid)
        if not instances or instances[len(instances) // 2].path is None:
            return None
        instance = instances[len(instances) // 2]
        assert instance.path is not None
        number = f" {instance.instance_number}" if instance.instance_number is not None else ""
        images = [(i.instance_number, Path(i.path)) for i in instances if i.path is not None]
        dialog = TagViewerDialog(Path(instance.path), f"DICOM tags — image{number}", self.window,
                                 images)
        dialog.open()
        return dialog

    def export(self, study_uid: str, series_uids: list[str] | None = None,
               folder: str | None = None) -> TaskWorker | None:
        """Copy the study (or series) into a folder, in the background."""
        study = self.store.study(study_uid)
        if study is None:
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.window, "Export to folder")
            if not folder:
                return None
        task = TaskWorker(lambda progress: export_studies(
            self.store, [study.study_instance_uid], Path(folder), layout="folder",
            series_uids=series_uids, progress=progress), "Exporting", self)
        task.succeeded.connect(self._on_exported)
        task.failed.connect(lambda msg: self.message.emit(f"Export stopped: {msg}", 15000))
        self.export_task = task
        task.start()
        return task

    def _on_exported(self, result: ExportResult) -> None:
        where = result.folders[0] if len(result.folders) == 1 else result.to
        text = f"Exported {count(result.instances, 'file')} to {where}"
        if result.failed:
            text += f"; {count(len(result.failed), 'file')} could not be read"
        self.message.emit(text, 15000)

    def copy_details(self, study_uid: str) -> str:
        study = self.store.study(study_uid)
        if study is None:
            return ""
        text = details_text(study)
        QGuiApplication.clipboard().setText(text)
        self.message.emit("Patient and study details copied.", 4000)
        return text
