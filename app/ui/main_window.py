"""Relay's main window: the local store, importing media, and (later) the viewers."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.dicom.synth import demo_study
from app.errors import RelayError
from app.imports.importer import ImportReport, import_paths
from app.model import Study
from app.net.queue import FILE_NAME, TransferQueue
from app.net.runner import QueueRunner
from app.net.send import TransferResult
from app.settings import load_settings
from app.store.local import Store
from app.tasks import Progress, ProgressState
from app.ui.browser import StudyBrowserWidget
from app.ui.format import count, study_title
from app.ui.hubs_dialog import HubsDialog, ensure_passphrase
from app.ui.import_report import ImportReportDialog, summary_text
from app.ui.incoming import IncomingWidget
from app.ui.plaintext import plain_label
from app.ui.remote_session import RemoteOpener
from app.ui.send_dialog import SendDialog
from app.ui.thumbs import ThumbnailLoader
from app.ui.transfers import TransfersWidget
from app.ui.view_state import ViewState
from app.ui.viewer import ViewerWidget, shortcuts_dialog
from app.ui.worker import TaskWorker

log = logging.getLogger(__name__)

#: While a series loads the spare viewer waits; the window looks again this often (ms).
SPARE_RETRY_MS = 200


class EmptyStoreWidget(QWidget):
    """What a fresh install shows: two big ways to get images in."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        title = QLabel("<h2>No studies yet</h2>", self)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(title)
        hint = QLabel("Import an outside CD, USB stick, folder or zip, or look around with a "
                      "generated demo head CT and CTA.", self)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        row = QHBoxLayout()
        row.addStretch(1)
        self.open_button = QPushButton("Open CD / folder…", self)
        self.demo_button = QPushButton("Load demo CT study", self)
        for button in (self.open_button, self.demo_button):
            button.setMinimumSize(220, 48)
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        drop = QLabel("You can also drop a folder, zip or DICOMDIR onto this window.", self)
        drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        drop.setStyleSheet("color: gray")
        layout.addWidget(drop)
        layout.addStretch(3)


class MainWindow(QMainWindow):
    def __init__(self, store: Store, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("Relay")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self._task: TaskWorker | None = None
        self.last_report: ImportReport | None = None

        self.browser = StudyBrowserWidget(self)
        self.empty = EmptyStoreWidget(self)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.browser)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.setTabsClosable(True)
        self.tabs.tabCloseRequested.connect(self._on_tab_close)
        self.tabs.addTab(self.pages, "Studies")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().ButtonPosition.RightSide, None)
        self.setCentralWidget(self.tabs)
        self.viewers: dict[str, ViewerWidget] = {}
        self.view_state = ViewState.load(store.home)
        self.thumbnails = ThumbnailLoader(store, self)
        self.thumbnails.ready.connect(self._on_thumbnail)
        self._open_after_import = False
        self._runner: QueueRunner | None = None
        self._openers: dict[str, RemoteOpener] = {}
        # While studies arrive from a hub the status bar counts them (the browser and its
        # thumbnails wait for the end: a thumbnail of half a series would be cached).
        self._counts_timer = QTimer(self, interval=2000)
        self._counts_timer.timeout.connect(self._update_counts)
        #: A reading tab built ahead of time, when the window is idle, and handed to the next
        #: study opened: building one costs milliseconds that would come before the first image.
        #: At most one; it holds no series.
        self._spare: ViewerWidget | None = None
        self._spare_timer = QTimer(self, singleShot=True)
        self._spare_timer.timeout.connect(self._on_spare_timer)

        self.incoming = IncomingWidget(store, self.queue_runner, self)
        self.tabs.addTab(self.incoming, "Incoming")
        self.tabs.tabBar().setTabButton(1, self.tabs.tabBar().ButtonPosition.RightSide, None)
        self._unseen = 0
        self.incoming.arrived.connect(self._on_incoming_arrived)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.transfers = TransfersWidget(store, self)
        self.transfers.job_finished.connect(self._on_job_finished)
        self.transfers.job_finished.connect(self.incoming.on_job_finished)
        self.transfers_dock = QDockWidget("Transfers", self)
        self.transfers_dock.setObjectName("transfers")
        self.transfers_dock.setWidget(self.transfers)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.transfers_dock)
        self.transfers_dock.hide()
        self.transfers_dock.visibilityChanged.connect(self._on_transfers_shown)

        self._build_actions()
        self._build_status()
        self.browser.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.browser.tree.customContextMenuRequested.connect(self._on_browser_menu)
        self.empty.open_button.clicked.connect(self.open_folder_dialog)
        self.empty.demo_button.clicked.connect(self.load_demo)
        self.browser.series_activated.connect(self._on_series_activated)
        self.browser.study_activated.connect(self._on_study_activated)
        self.refresh()
        self._resume_transfers()
        self.incoming.start()

    # -- building ---------------------------------------------------------------------------
    def _build_actions(self) -> None:
        bar = QToolBar("Main", self)
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(bar)
        self.open_action = QAction("Open CD / folder…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.open_folder_dialog)
        self.import_files_action = QAction("Import files / zip…", self)
        self.import_files_action.triggered.connect(self.open_files_dialog)
        self.demo_action = QAction("Demo study", self)
        self.demo_action.triggered.connect(self.load_demo)
        self.open_remote_action = QAction("Open from hub…", self)
        self.open_remote_action.setToolTip("Read a study that is on a hub while it downloads")
        self.open_remote_action.triggered.connect(self.open_remote_dialog)
        self.send_action = QAction("Send to hub…", self)
        self.send_action.setToolTip("Send the selected study or series to a hub")
        self.send_action.triggered.connect(lambda: self.send_to_hub())
        for action in (self.open_action, self.import_files_action, self.demo_action,
                       self.open_remote_action, self.send_action):
            bar.addAction(action)
        spacer = QWidget(self)
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy())
        bar.addWidget(spacer)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search name, ID, date, modality, description…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(320)
        self.search.textChanged.connect(self.browser.set_search)
        bar.addWidget(self.search)

        menu = self.menuBar().addMenu("&File")
        menu.addAction(self.open_action)
        menu.addAction(self.import_files_action)
        menu.addAction(self.demo_action)
        menu.addAction(self.open_remote_action)
        menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)
        hub_menu = self.menuBar().addMenu("&Hub")
        hub_menu.addAction(self.send_action)
        hub_menu.addAction(self.open_remote_action)
        hub_menu.addAction(self.transfers_dock.toggleViewAction())
        check = QAction("Check for incoming studies", self)
        check.triggered.connect(self._on_check_incoming)
        hub_menu.addAction(check)
        settings_menu = self.menuBar().addMenu("&Settings")
        self.hubs_action = QAction("Hubs…", self)
        self.hubs_action.triggered.connect(self.show_hubs_dialog)
        settings_menu.addAction(self.hubs_action)
        help_menu = self.menuBar().addMenu("&Help")
        shortcuts = QAction("Mouse and keyboard…", self)
        shortcuts.setShortcut(QKeySequence("F1"))
        shortcuts.triggered.connect(lambda: shortcuts_dialog(self))
        help_menu.addAction(shortcuts)

    def _build_status(self) -> None:
        self.counts_label = plain_label("", self)
        self.statusBar().addWidget(self.counts_label, 1)
        self.task_label = plain_label("", self)
        self.task_bar = QProgressBar(self)
        self.task_bar.setMaximumWidth(260)
        self.task_cancel = QPushButton("Cancel", self)
        self.task_cancel.clicked.connect(self._on_cancel_task)
        for widget in (self.task_label, self.task_bar, self.task_cancel):
            self.statusBar().addPermanentWidget(widget)
            widget.hide()

    # -- content ----------------------------------------------------------------------------
    def refresh(self) -> None:
        studies = self.store.studies()
        self.browser.set_studies(studies)
        for study in studies[:50]:  # newest first; the rest come when opened
            for series in study.series:
                self.thumbnails.request(series.series_instance_uid)
        self.pages.setCurrentWidget(self.browser if studies else self.empty)
        self._update_counts()

    def _update_counts(self) -> None:
        counts = self.store.counts()
        self.counts_label.setText(
            f"{count(counts['studies'], 'study', 'studies')} · "
            f"{count(counts['series'], 'series', 'series')} · "
            f"{count(counts['instances'], 'image')} — store: {self.store.home}")

    # -- importing --------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open CD / folder")
        if folder:
            self.import_paths([folder])

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import files or zip archives")
        if files:
            self.import_paths(files)

    def import_paths(self, paths: list[str]) -> TaskWorker | None:
        """Import in the background; the window stays usable; a report shows at the end."""
        return self._start_task("Importing", lambda progress: import_paths(self.store, paths,
                                                                           progress))

    def load_demo(self) -> TaskWorker | None:
        def work(progress: Progress) -> ImportReport:
            with tempfile.TemporaryDirectory(dir=self.store.tmp) as tmp:
                demo_study(Path(tmp), progress)
                return import_paths(self.store, [tmp], progress)

        return self._start_task("Generating demo study", work)

    def _start_task(self, label: str, fn) -> TaskWorker | None:
        if self._task is not None and self._task.is_running():
            self.statusBar().showMessage("Another import is still running.", 4000)
            return None
        task = TaskWorker(fn, label, self)
        task.progressed.connect(self._on_task_progress)
        task.succeeded.connect(self._on_import_done)
        task.failed.connect(self._on_task_failed)
        task.finished.connect(self._on_task_finished)
        self._task = task
        self.task_label.setText(label)
        self.task_bar.setRange(0, 0)
        for widget in (self.task_label, self.task_bar, self.task_cancel):
            widget.show()
        task.start()
        return task

    def _on_task_progress(self, state: ProgressState) -> None:
        self.task_label.setText(state.label)
        if state.total:
            self.task_bar.setRange(0, state.total)
            self.task_bar.setValue(state.done)
        else:
            self.task_bar.setRange(0, 0)

    def _on_import_done(self, report: ImportReport) -> None:
        self.last_report = report
        self.refresh()
        if self._open_after_import and report.study_uids:
            self._open_after_import = False
            self.open_study(report.study_uids[0])
        self.statusBar().showMessage(summary_text(report).replace("<b>", "").replace("</b>", ""),
                                     10000)
        ImportReportDialog(report, self).open()

    def _on_task_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Import stopped: {message}", 15000)

    def _on_task_finished(self) -> None:
        for widget in (self.task_label, self.task_bar, self.task_cancel):
            widget.hide()

    def _on_cancel_task(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- opening studies ---------------------------------------------------------------------
    def open_study(self, study_uid: str, series_uid: str | None = None) -> ViewerWidget | None:
        """Open (or bring forward) the study's reading tab; show ``series_uid`` if given."""
        viewer = self.viewers.get(study_uid)
        if viewer is None:
            study = self.store.study(study_uid)
            if study is None:
                return None
            priors = [s for s in self.store.patient_studies(study.patient.patient_id)
                      if s.study_instance_uid != study_uid]
            viewer = self._new_viewer(study, priors)
            self.viewers[study_uid] = viewer
            for st in [study, *priors]:
                for series in st.series:
                    self.thumbnails.request(series.series_instance_uid)
            title = study_title(study)
            self.tabs.addTab(viewer, title)
            if series_uid is None:
                viewer.open_default()
        if series_uid is not None:
            viewer.show_series(series_uid)
        self.tabs.setCurrentWidget(viewer)
        self._spare_timer.start(SPARE_RETRY_MS)  # the next spare, once the series is in
        return viewer

    def _new_viewer(self, study: Study, priors: list[Study] | None = None) -> ViewerWidget:
        """A reading tab for ``study``: the spare if there is one, else a new one."""
        viewer, self._spare = self._spare, None
        if viewer is None:
            return ViewerWidget(self.store, study, self, priors=priors,
                                last_slice=self.view_state.last_slice)
        viewer.set_study(study, priors)
        return viewer

    def _on_spare_timer(self) -> None:
        """Build the spare reading tab, unless there is one or a series is still loading (its
        loader would wait for the GUI thread meanwhile)."""
        if self._spare is not None or not self.isVisible():
            return
        if any(s.loading for v in self.viewers.values() for s in v.sessions.values()):
            self._spare_timer.start(SPARE_RETRY_MS)
            return
        spare = ViewerWidget(self.store, Study(study_instance_uid=""), self,
                             last_slice=self.view_state.last_slice)
        spare.hide()
        spare.warm_up(self.tabs.currentWidget().size())
        self._spare = spare

    # -- reading from a hub ------------------------------------------------------------------
    def open_remote_study(self, hub_name: str, study_uid: str) -> ViewerWidget:
        """Open a study that is on the hub at once: its viewer shows the slice in view as soon
        as it has arrived while the rest downloads (a fetch job in the transfer queue)."""
        viewer = self.viewers.get(study_uid)
        if viewer is not None and viewer.remote is None and study_uid not in self._openers \
                and not viewer.study.series:  # an earlier attempt failed: try again
            self._on_tab_close(self.tabs.indexOf(viewer))
            viewer = None
        if viewer is not None:
            self.tabs.setCurrentWidget(viewer)
            return viewer
        viewer = self._new_viewer(Study(study_instance_uid=study_uid))
        viewer.set_notice(f"Opening the study from {hub_name}…")
        self.viewers[study_uid] = viewer
        self.tabs.addTab(viewer, f"{hub_name} · opening…")
        self.tabs.setCurrentWidget(viewer)
        runner = self.queue_runner()
        opener = RemoteOpener(lambda: runner.open_remote(hub_name, study_uid), self)
        opener.previewed.connect(
            lambda preview, v=viewer, h=hub_name: self._on_remote_preview(v, h, preview))
        opener.opened.connect(lambda remote, v=viewer: self._on_remote_opened(v, remote))
        opener.failed.connect(lambda msg, v=viewer, h=hub_name: self._on_remote_failed(v, h, msg))
        opener.finished.connect(lambda result, v=viewer: self._on_remote_finished(v, result))
        self._openers[study_uid] = opener
        opener.start()
        self._counts_timer.start()
        return viewer

    def _on_remote_preview(self, viewer: ViewerWidget, hub: str, preview) -> None:
        """One image of the study is here before its series is planned: show it."""
        if viewer not in self.viewers.values() or (
                self._openers.get(viewer.study.study_instance_uid) is None):
            return  # closed, or opening failed meanwhile (the viewer says why)
        viewer.show_preview(preview, hub)
        index = self.tabs.indexOf(viewer)
        if index >= 0 and viewer.remote is None:
            self.tabs.setTabText(index, f"{study_title(preview.study)} ({hub})")

    def _on_remote_opened(self, viewer: ViewerWidget, remote) -> None:
        if viewer not in self.viewers.values():
            return
        viewer.set_remote(remote)
        study = viewer.study
        index = self.tabs.indexOf(viewer)
        if index >= 0:
            self.tabs.setTabText(index, f"{study_title(study)} ({remote.hub})")
        viewer.open_default()
        self.statusBar().showMessage(f"Reading the study from {remote.hub} while it downloads.",
                                     8000)

    def _on_remote_failed(self, viewer: ViewerWidget, hub: str, message: str) -> None:
        study_uid = viewer.study.study_instance_uid
        self._openers.pop(study_uid, None)
        if not self._openers:
            self._counts_timer.stop()
        if viewer not in self.viewers.values():
            return
        viewer.set_notice(f"Cannot open the study from {hub}:\n{message}")
        self.statusBar().showMessage(f"Cannot open the study from {hub}: {message}", 15000)

    def _on_remote_finished(self, viewer: ViewerWidget, result: TransferResult | None) -> None:
        self._openers.pop(viewer.study.study_instance_uid, None)
        if not self._openers:
            self._counts_timer.stop()
        self.refresh()
        local = self.store.study(viewer.study.study_instance_uid)
        for series in local.series if local is not None else ():
            self.thumbnails.request(series.series_instance_uid)  # now from the whole series
        self.incoming.study_read(viewer.study.study_instance_uid)
        if viewer in self.viewers.values():
            viewer.remote_finished()
        if result is None:
            return
        if result.state == "verified":
            text = f"{result.verified} of {result.instances} images from the hub are local now."
        else:
            text = (f"Download stopped: {result.message or 'not every image arrived'} "
                    f"({result.verified} of {result.instances} local)")
        self.statusBar().showMessage(text, 15000)

    def open_remote_dialog(self) -> None:
        """Ask for a hub and a Study Instance UID, then :meth:`open_remote_study`."""
        from app.ui.remote_dialog import OpenRemoteDialog

        dialog = OpenRemoteDialog(self.store.home, self)
        if dialog.exec() and dialog.study_uid():
            self.open_remote_study(dialog.hub_name(), dialog.study_uid())

    def _on_thumbnail(self, series_uid: str, image) -> None:
        self.browser.set_thumbnail(series_uid, image)
        for viewer in self.viewers.values():
            viewer.set_thumbnail(series_uid, image)

    def _on_series_activated(self, uid: str) -> None:
        series = self.store.series(uid)
        if series is not None:
            self.open_study(series.study_instance_uid, uid)

    def _on_study_activated(self, uid: str) -> None:
        self.open_study(uid)

    def _on_tab_close(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if isinstance(widget, ViewerWidget):
            widget.close_all()
            self.viewers.pop(widget.study.study_instance_uid, None)
            self.tabs.removeTab(index)
            widget.deleteLater()
            self._spare_timer.start(0)

    # -- hub exchange --------------------------------------------------------------------------
    def queue_runner(self) -> QueueRunner:
        """The window's transfer queue runner, started on first use."""
        if self._runner is None:
            ensure_passphrase(self, load_settings(self.store.home))
            self._runner = QueueRunner(self.store.home).start()
            self.transfers.attach(self._runner)
        return self._runner

    def _on_transfers_shown(self, visible: bool) -> None:
        if visible:
            self.queue_runner()  # the panel lists the queue, paused and stuck jobs included

    def _resume_transfers(self) -> None:
        """Jobs left unfinished by the last run continue at once."""
        if (self.store.home / FILE_NAME).exists() and TransferQueue(self.store.home).jobs(
                ("queued", "running", "waiting")):
            self.queue_runner()
            self.transfers_dock.show()

    def send_to_hub(self, study_uid: str | None = None,
                    series_uid: str | None = None) -> SendDialog | None:
        """Ask where to send the study (the browser's selection by default); queue the job."""
        if study_uid is None:
            chosen = self.browser.selected()
            if chosen is None or chosen[0] not in ("study", "series"):
                self.statusBar().showMessage("Select a study or a series to send.", 5000)
                return None
            kind, uid = chosen
            if kind == "series":
                series = self.store.series(uid)
                if series is None:
                    return None
                study_uid, series_uid = series.study_instance_uid, uid
            else:
                study_uid = uid
        study = self.store.study(study_uid)
        if study is None:
            return None
        dialog = SendDialog(study, load_settings(self.store.home), series_uid, self)
        dialog.accepted.connect(lambda: self.queue_send(dialog.hub(), study_uid,
                                                        dialog.series_uids()))
        dialog.setup_hubs.connect(self.show_hubs_dialog)
        dialog.open()
        return dialog

    def queue_send(self, hub: str, study_uid: str, series_uids: list[str] | None) -> str | None:
        """Queue a send job and show it in the Transfers panel."""
        if not hub or series_uids == []:
            self.statusBar().showMessage("Nothing to send: choose a hub and a series.", 5000)
            return None
        try:
            job_id = self.queue_runner().send(hub, study_uid, series_uids)
        except RelayError as exc:
            self.statusBar().showMessage(f"Not sent: {exc}", 15000)
            return None
        self.transfers_dock.show()
        self.transfers.refresh()
        self.transfers.select_job(job_id)
        return job_id

    def show_hubs_dialog(self) -> HubsDialog:
        dialog = HubsDialog(self.store.home, self)
        dialog.hubs_changed.connect(self.incoming.watch.reconnect)
        dialog.open()
        return dialog

    def _on_incoming_arrived(self, count: int) -> None:
        if self.tabs.currentWidget() is not self.incoming:
            self._unseen += count
            self.tabs.setTabText(self.tabs.indexOf(self.incoming), f"Incoming ({self._unseen} new)")

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.incoming and self._unseen:
            self._unseen = 0
            self.tabs.setTabText(index, "Incoming")

    def _on_check_incoming(self) -> None:
        self.tabs.setCurrentWidget(self.incoming)
        self.incoming.check_now()

    def _on_browser_menu(self, pos) -> None:
        chosen = self.browser.selected()
        if chosen is None or chosen[0] not in ("study", "series"):
            return
        menu = QMenu(self)
        kind, uid = chosen
        open_action = menu.addAction("Open")
        open_action.triggered.connect(
            lambda: (self._on_study_activated if kind == "study" else
                     self._on_series_activated)(uid))
        menu.addAction(self.send_action)
        menu.popup(self.browser.tree.viewport().mapToGlobal(pos))

    def _on_job_finished(self, job_id: str, state: str) -> None:
        job = next((j for j in self.transfers._jobs if j.id == job_id), None)
        if job is not None and job.kind == "fetch":
            self.refresh()

    # -- drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._spare is None:
            self._spare_timer.start(0)  # the first spare as soon as the window is up

    def closeEvent(self, event) -> None:  # noqa: N802
        self._spare_timer.stop()
        if self._task is not None and self._task.is_running():
            self._task.cancel()
            self._task._thread.join(timeout=10)
        for viewer in self.viewers.values():
            viewer.close_all()
        self.thumbnails.stop()
        self.incoming.stop()
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
        self.view_state.save(self.store.home)
        super().closeEvent(event)
