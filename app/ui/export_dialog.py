"""Export studies: a disc file-set (IHE PDI) with an ISO image to burn, or a plain folder; both
through :func:`app.workflow.export.export_studies`."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.store.local import Store
from app.ui.deidentify_dialog import DeidOptionsWidget
from app.ui.format import not_done
from app.ui.worker import TaskWorker
from app.workflow.burn import Burner, burn, find_burner
from app.workflow.derive import WorkflowError
from app.workflow.export import ExportResult, disc_folder, export_studies, iso_path


class ExportDialog(QDialog):
    """Layout (disc or plain folder), folder, ISO, de-identification; **Burn** hands the ISO to
    the OS burner when a drive exists and says so when none does.

    A disc asked for in a folder that is not empty (a USB stick's root) goes into a new folder
    in it: the dialog says so under the folder before anything is written. The ISO image goes
    beside the disc, or into ``documents`` when the disc is a drive's root (an empty stick):
    the note says so too (:func:`app.workflow.export.iso_path`)."""

    completed = Signal(object)

    def __init__(self, store: Store, study_uids: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.study_uids = store, study_uids
        self.task: TaskWorker | None = None
        self.iso_path: Path | None = None
        self.announced: Path | None = None  # the new folder the note has named
        #: Where an ISO goes that has no place beside its disc (a stick's root).
        self.documents = Path(platformdirs.user_documents_dir())
        self.setWindowTitle("Export")
        self.setMinimumWidth(600)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.folder = QLineEdit(self)
        self.folder.setPlaceholderText("Any folder: a disc goes into a new folder in one "
                                       "that is not empty")
        self.folder.textChanged.connect(self._on_folder_edited)
        self.folder.editingFinished.connect(self._on_folder_chosen)
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self._on_browse)
        row.addWidget(QLabel("Folder", self))
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.as_disc = QRadioButton("Disc (DICOMDIR, README.TXT, INDEX.HTM: what viewers and "
                                    "PACS import expect)", self)
        self.as_folder = QRadioButton("Plain folder (study/series folders, no DICOMDIR)", self)
        self.as_disc.setChecked(True)
        layout.addWidget(self.as_disc)
        layout.addWidget(self.as_folder)
        self.make_iso = QCheckBox("Also write an ISO image (for burning)", self)
        self.make_iso.setChecked(True)
        self.as_disc.toggled.connect(self.make_iso.setEnabled)
        self.as_disc.toggled.connect(self._on_folder_chosen)
        self.make_iso.toggled.connect(self._on_folder_chosen)
        layout.addWidget(self.make_iso)
        self.deidentify = QCheckBox("De-identify on the way out", self)
        layout.addWidget(self.deidentify)
        self.opts = DeidOptionsWidget("De-identification options", self)
        self.opts.setEnabled(False)
        self.deidentify.toggled.connect(self.opts.setEnabled)
        layout.addWidget(self.opts)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(self)
        self.ok = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.burn_button = buttons.addButton("Burn", QDialogButtonBox.ButtonRole.ActionRole)
        self.burn_button.setEnabled(False)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.run)
        buttons.rejected.connect(self.reject)
        self.burn_button.clicked.connect(self.burn)
        layout.addWidget(buttons)

    def _on_browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export into")
        if chosen:
            self.folder.setText(chosen)
            self._on_folder_chosen()

    def _on_folder_edited(self) -> None:
        self.announced = None
        self.note.setText("")
        self.ok.setText("Export")

    def _on_folder_chosen(self) -> None:
        text = self.folder.text().strip()
        self._on_folder_edited()
        if text and self.as_disc.isChecked():
            self._plan(Path(text).expanduser())

    def _plan(self, chosen: Path) -> Path | None:
        """Where the disc will go, said under the folder; None (and why) when it cannot."""
        try:
            target = disc_folder(chosen)
        except WorkflowError as exc:
            self.note.setText(f"{exc}.")
            return None
        notes = []
        if target != chosen:
            self.announced = target
            notes.append(f"This folder is not empty: the disc will be written into a new "
                         f"folder in it, {target.name}. Nothing already there is changed.")
            self.ok.setText(f"Export into {target.name}")
        iso = self._iso(chosen, target)
        if iso is not None and iso.parent != target.parent:
            notes.append(f"The ISO image goes to {iso}: this folder is a drive's root (or the "
                         "folder above it cannot be written), and the disc keeps its root "
                         "for DICOM alone.")
        self.note.setText(" ".join(notes))
        return target

    def _iso(self, chosen: Path, target: Path) -> Path | None:
        if not (self.as_disc.isChecked() and self.make_iso.isChecked()):
            return None
        return iso_path(chosen, target, self.documents)

    def run(self) -> TaskWorker | None:
        text = self.folder.text().strip()
        if not text:
            self.status.setText("Choose a folder first.")
            return None
        if self.task is not None:
            return None
        to = Path(text).expanduser()
        disc = self.as_disc.isChecked()
        if disc:
            announced = self.announced
            target = self._plan(to)
            if target is None:
                self.status.setText("Not exported: " + self.note.text())
                return None
            if target != to and target != announced:
                return None  # the note names the new folder now; the next press writes there
            to, iso = target, self._iso(to, target)
        else:
            iso = None
        deid = self.opts.options() if self.deidentify.isChecked() else None
        pseudonym = self.opts.pseudonym.text().strip()
        store, uids = self.store, self.study_uids
        task = TaskWorker(lambda p: export_studies(
            store, uids, to, layout="fileset" if disc else "folder", iso=iso,
            deidentify=deid, pseudonym=pseudonym, progress=p), "export", self)
        task.succeeded.connect(self._on_done)
        task.failed.connect(lambda msg: self.status.setText(f"Not exported: {msg}"))
        task.finished.connect(self._on_finished)
        self.task = task
        self.ok.setEnabled(False)
        self.status.setText("Exporting…")
        task.start()
        return task

    def _on_done(self, result: ExportResult) -> None:
        self.iso_path = result.iso
        self._on_folder_edited()  # the folder has changed: the next export is planned again
        text = f"{result.instances} instances written to {result.to}"
        if result.iso:  # its name beside the disc; where, when it went elsewhere
            beside = result.iso.parent == result.to.parent
            text += f" and {result.iso.name if beside else result.iso}"
        if result.excluded:
            text += f"; {len(result.excluded)} left out (may carry burned-in text)"
        if result.failed:
            text += "; " + not_done(result.failed, "written: the disc is incomplete")
        self.status.setText(text + ".")
        self.burn_button.setEnabled(result.iso is not None)
        self.completed.emit(result)

    def _on_finished(self) -> None:
        self.task = None
        self.ok.setEnabled(True)

    def burn(self) -> str:
        """Burn the ISO, or say why not; returns the message shown."""
        burner = find_burner()
        if self.iso_path is None:
            message = "Export with an ISO image first."
        elif not isinstance(burner, Burner):
            message = f"Cannot burn: {burner}. The ISO image is ready: {self.iso_path}"
        else:
            iso, chosen = self.iso_path, burner
            task = TaskWorker(lambda _p: burn(iso, chosen), "burn", self)
            task.succeeded.connect(lambda _r: self.status.setText("Disc burned."))
            task.failed.connect(lambda msg: self.status.setText(f"Not burned: {msg}"))
            task.start()
            message = f"Burning on {burner.drive}…"
        self.status.setText(message)
        return message
