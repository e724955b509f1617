"""Importing media and the demo study off the GUI thread, one task at a time.

The controller owns the status-bar progress (label, bar, Cancel) and keeps the last report;
:attr:`ImportController.imported` fires on the GUI thread once a task has finished.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QStorageInfo, QUrl, Signal
from PySide6.QtWidgets import QFileDialog, QProgressBar, QPushButton, QWidget

from app.dicom.synth import demo_study
from app.imports.drives import Volume, removable, start_folder
from app.imports.importer import ImportReport, import_paths
from app.net.forward import Forwarder
from app.store.local import Store, StoredFile
from app.tasks import Progress, ProgressState
from app.ui.labels import plain_label
from app.ui.worker import TaskWorker

log = logging.getLogger(__name__)

#: How long a cancelled import may take to stop when the window closes (s).
CLOSE_WAIT_S = 10
#: Seconds an import's forwarding may go on after the import (the rest stays queued).
FORWARD_FINISH_S = 600.0


def mounted_volumes() -> list[Volume]:
    """The system's mounted volumes (QStorageInfo) in the Qt-free shape."""
    out = []
    for info in QStorageInfo.mountedVolumes():
        device = bytes(info.device().data()).decode("utf-8", "replace")
        out.append(Volume(root=info.rootPath(), device=device, name=info.displayName(),
                          ready=info.isReady()))
    return out


def folder_dialog(parent: QWidget, last: str, volumes: list[Volume] | None = None
                  ) -> QFileDialog:
    """The "Open CD / folder" dialog: it starts at the inserted disc or USB stick, else at the
    last folder; CD/USB drives are listed in its side bar beside the home folder."""
    volumes = mounted_volumes() if volumes is None else volumes
    dialog = QFileDialog(parent, "Open CD / folder")
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)  # the side bar is Qt's
    dialog.setDirectory(str(start_folder(last, volumes)))
    places = [QUrl.fromLocalFile(v.root) for v in removable(volumes)]
    places += [QUrl.fromLocalFile(str(Path.home()))]
    if last and Path(last).is_dir():
        places.append(QUrl.fromLocalFile(last))
    dialog.setSidebarUrls(places)
    return dialog


class ImportController(QObject):
    """Runs imports in the background and shows their progress in three status-bar widgets."""

    imported = Signal(object)  # ImportReport, on the GUI thread
    message = Signal(str, int)  # text for the status bar, milliseconds
    ended = Signal(bool)  # a task ended (True: it went through to the end)

    def __init__(self, store: Store, parent: QWidget) -> None:
        super().__init__(parent)
        self.store = store
        self.task: TaskWorker | None = None
        self.last_report: ImportReport | None = None
        #: Studies the running task has added images to so far (from its thread).
        self.writing: set[str] = set()
        self._complete = False
        self.label = plain_label("", parent)  # shows media file names
        self.bar = QProgressBar(parent)
        self.bar.setMaximumWidth(260)
        self.cancel_button = QPushButton("Cancel", parent)
        self.cancel_button.clicked.connect(self.cancel)
        for widget in self.widgets():
            widget.hide()

    def widgets(self) -> tuple[QWidget, ...]:
        """The status-bar widgets, shown while a task runs."""
        return (self.label, self.bar, self.cancel_button)

    def import_paths(self, paths: list[str]) -> TaskWorker | None:
        """Import ``paths`` in the background; None when another import is still running."""
        def work(progress: Progress) -> ImportReport:
            forwarder = Forwarder(self.store)
            if not (forwarder.rules.imports and forwarder.active()):
                return import_paths(self.store, paths, progress, on_stored=self._stored)

            def stored(file: StoredFile) -> None:
                self._stored(file)
                forwarder.imported(file)

            report = import_paths(self.store, paths, progress, on_stored=stored)
            # matched instances went out as they were imported; the rest finishes behind
            forwarder.finish_in_background(report.study_uids, FORWARD_FINISH_S)
            return report

        return self._start("Importing", work)

    def load_demo(self) -> TaskWorker | None:
        """Generate the demo head CT/CTA into a temporary folder and import it."""
        def work(progress: Progress) -> ImportReport:
            with tempfile.TemporaryDirectory(dir=self.store.tmp) as tmp:
                demo_study(Path(tmp), progress)
                return import_paths(self.store, [tmp], progress, on_stored=self._stored)

        return self._start("Generating demo study", work)

    def is_running(self) -> bool:
        return self.task is not None and self.task.is_running()

    def writes(self, study_uid: str) -> bool:
        """Is the running import still adding images to this study?"""
        return self.is_running() and study_uid in self.writing

    def _stored(self, file: StoredFile) -> None:  # on the import's thread
        self.writing.add(file.header.study.study_instance_uid)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def stop(self) -> None:
        """Cancel a running task and wait (bounded) for it to end: the window is closing."""
        if self.is_running():
            assert self.task is not None
            self.task.cancel()
            self.task._thread.join(timeout=CLOSE_WAIT_S)

    def _start(self, label: str, fn: Callable[[Progress], ImportReport]) -> TaskWorker | None:
        if self.is_running():
            self.message.emit("Another import is still running.", 4000)
            return None
        self.writing = set()
        self._complete = False
        task = TaskWorker(fn, label, self)
        task.progressed.connect(self._on_progress)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        self.task = task
        self.label.setText(label)
        self.bar.setRange(0, 0)
        for widget in self.widgets():
            widget.show()
        task.start()
        return task

    def _on_progress(self, state: ProgressState) -> None:
        self.label.setText(state.label)
        if state.total:
            self.bar.setRange(0, state.total)
            self.bar.setValue(state.done)
        else:
            self.bar.setRange(0, 0)

    def _on_done(self, report: ImportReport) -> None:
        self.last_report = report
        self._complete = not report.cancelled and not report.stopped
        self.imported.emit(report)

    def _on_failed(self, message: str) -> None:
        self.message.emit(f"Import stopped: {message}", 15000)

    def _on_finished(self) -> None:
        for widget in self.widgets():
            widget.hide()
        self.ended.emit(self._complete)
