"""Relay's main window: the study browser, the reading tabs, the Incoming tab and the
Transfers panel.

The window builds the widgets, menus and status bar and composes one controller per job
(:mod:`app.ui.controllers`): importing, reading local studies, reading from a hub, transfers
and incoming. It wires their signals together and shows their messages in the status bar.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.imports.importer import ImportReport
from app.imports.summary import summarize
from app.model import Study
from app.net.dimse.receive import StudyReceived
from app.net.runner import QueueRunner
from app.net.sent import send_history, sent_state
from app.settings import load_settings
from app.store.local import Store
from app.ui.browser import StudyBrowserWidget
from app.ui.controllers.imports import ImportController, folder_dialog
from app.ui.controllers.incoming import IncomingController
from app.ui.controllers.manage import ManageController
from app.ui.controllers.node import NodeController
from app.ui.controllers.priors import PriorsController
from app.ui.controllers.reading import ReadingController
from app.ui.controllers.remote import RemoteReadingController
from app.ui.controllers.station import StationController
from app.ui.controllers.transfers import TransfersController
from app.ui.crossthread import ThreadPost
from app.ui.disk_banner import DiskSpaceBanner
from app.ui.format import count
from app.ui.forwarding_dialog import ForwardingDialog
from app.ui.help_dialogs import GuideDialog, show_about
from app.ui.hubs_dialog import HubsDialog
from app.ui.import_report import ImportReportDialog, summary_text
from app.ui.labels import plain_label
from app.ui.node_dialog import PacsNodeDialog
from app.ui.query_dialog import QueryRetrieveDialog
from app.ui.remote_session import RemoteOpener
from app.ui.send_dialog import SendDialog
from app.ui.storage_dialog import StorageDialog
from app.ui.theme import apply_chrome, load_dark_chrome, load_icons, save_dark_chrome
from app.ui.timeline_panel import TimelineDialog
from app.ui.viewer import ViewerWidget, shortcuts_dialog
from app.ui.worker import TaskWorker

log = logging.getLogger(__name__)


class EmptyStoreWidget(QWidget):
    """What a fresh install shows: two big ways to get images in."""

    def __init__(self, parent: QWidget | None = None) -> None:
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


@dataclass(frozen=True)
class StoreView:
    """What the browser shows, read from the store in one go (on any thread)."""

    #: when the reading began (``time.monotonic()``): an older view is never shown over a newer
    started: float
    studies: list[Study]
    received: dict[str, float]
    sent: dict[str, str]
    marks: dict[str, str]
    counts: dict[str, int]


class MainWindow(QMainWindow):
    """The window; its jobs live in the controllers it composes."""

    #: a :class:`StoreView` read off the GUI thread (:meth:`refresh_soon`)
    _store_read = Signal(object)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        # the icon fonts before the window shows (~50 ms of file reading and JSON parsing, once
        # per process): loaded by the spare viewer's first icon, they stalled its first second
        load_icons()
        self.setWindowTitle("Relay")
        self.resize(1400, 900)
        self.setAcceptDrops(True)

        self.browser = StudyBrowserWidget(self)
        self.empty = EmptyStoreWidget(self)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.browser)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.setTabsClosable(True)
        self.tabs.addTab(self.pages, "Studies")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().ButtonPosition.RightSide, None)
        # the low-disk warning sits above the tabs (app/ui/disk_banner.py)
        self.disk_banner = DiskSpaceBanner(store.home, self)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.disk_banner)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.importer = ImportController(store, self)
        self.reading = ReadingController(store, self.tabs, self)
        self.transfer = TransfersController(store, self, self.reading.view_state,
                                            self.reading.thumbnails)
        self.transfer.importer = self.importer  # a study still importing is sent after
        self.importer.ended.connect(self.transfer.after_import)
        self.remote = RemoteReadingController(self.reading, self.queue_runner, self)
        self.priors = PriorsController(store, self.queue_runner, self)
        self.incoming_tabs = IncomingController(store, self.queue_runner, self.tabs)
        self.node = NodeController(store, self)
        self.station = StationController(store, self._selected_study, self)
        # The names the incoming list, tests and benches reach through the window.
        self.viewers = self.reading.viewers
        self.thumbnails = self.reading.thumbnails
        self.view_state = self.reading.view_state
        self.transfers = self.transfer.panel
        self.transfers_dock = self.transfer.dock
        self.incoming = self.incoming_tabs.widget
        self.task_cancel = self.importer.cancel_button
        self.report_dialog: ImportReportDialog | None = None  # the last import's report
        # While studies arrive from a hub the status bar counts them (the browser and its
        # thumbnails wait for the end: a thumbnail of half a series would be cached).
        self._counts_timer = QTimer(self, interval=2000)
        self._counts_timer.timeout.connect(self._update_counts)
        # Arrivals come in bursts (a queue of studies, a prefetch): the store is read once per
        # burst, on a thread of its own (SQLite and object building took 40-67 ms for 2,000
        # studies); the GUI thread only applies what changed.
        self._refresh_soon = QTimer(self, interval=250, singleShot=True)
        self._refresh_soon.timeout.connect(self._read_in_background)
        self._reader: threading.Thread | None = None
        self._read_wanted = threading.Event()
        self._closed = False
        self._shown_started = 0.0
        self._post = ThreadPost(self)  # the reader thread's signals (the window may go first)
        self._store_read.connect(self._apply)

        self.manage = ManageController(store, self)
        self._build_actions()
        self._build_manage_actions()
        self._early_message: tuple[str, int] | None = None  # see _show_message
        self._build_status()
        self._wire()
        self.refresh()
        self.transfer.resume()
        self.incoming_tabs.start()
        self.node.start()

    def _wire(self) -> None:
        self.tabs.tabCloseRequested.connect(self.reading.close_tab)
        for controller in (self.importer, self.remote, self.transfer, self.manage,
                           self.reading, self.priors):
            controller.message.connect(self._show_message)
        self.importer.imported.connect(self._on_imported)
        self.station.changed.connect(self.refresh)
        self.station.changed.connect(self.transfers.forget_local_labels)
        self.station.message.connect(self._show_message)
        self.reading.thumbnail.connect(self.browser.set_thumbnail)
        self.reading.opened.connect(self._on_viewer_opened)
        self.remote.patient_known.connect(self.priors.search)
        self.priors.retrieve_requested.connect(
            lambda name, uid: self._on_retrieve(name, [uid], [], ""))
        self.remote.active.connect(
            lambda on: self._counts_timer.start() if on else self._counts_timer.stop())
        self.remote.loaded.connect(self._on_remote_loaded)
        self.transfer.fetched.connect(self._on_fetched)
        self.transfer.sent.connect(lambda _job: self.refresh_soon())
        self.manage.deleting.connect(self.reading.close_study)
        self.manage.changed.connect(self.refresh)
        self.node.message.connect(self._show_message)
        self.node.received.connect(self._on_node_received)
        self.transfer.hubs_changed.connect(self.incoming.watch.reconnect)
        self.transfer.setup_pacs.connect(self.show_node_dialog)
        self.transfers.job_finished.connect(self.incoming.on_job_finished)
        self.incoming.stroke_arrived.connect(self._on_stroke_arrived)
        self.reading.closed.connect(self.incoming.unfollow)
        self.browser.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.browser.tree.customContextMenuRequested.connect(self._on_browser_menu)
        self.browser.series_activated.connect(self.reading.open_series)
        self.browser.study_selected.connect(
            lambda study: self.reading.request_thumbnails([study]))
        self.browser.study_activated.connect(self.reading.open_study)
        self.empty.open_button.clicked.connect(self.open_folder_dialog)
        self.empty.demo_button.clicked.connect(self.load_demo)
        self.disk_banner.storage_settings.connect(self.show_storage_dialog)

    def _fetch_prior(self, viewer: ViewerWidget, hub: str, study_uid: str) -> None:
        self.warn_if_low_disk("fetch")
        self.priors.fetch(viewer, hub, study_uid)

    def _on_viewer_opened(self, viewer: ViewerWidget) -> None:
        """A reading tab opened: its priors are searched; its findings can be sent."""
        self.priors.search(viewer)
        viewer.prior_requested.connect(
            lambda hub, uid, v=viewer: self._fetch_prior(v, hub, uid))
        viewer.prior_retrieve_requested.connect(
            lambda name, uid: self._on_retrieve(name, [uid], [], ""))
        viewer.send_findings.connect(
            lambda study, series, v=viewer: self.send_findings(v, study, series))

    def send_findings(self, viewer: ViewerWidget, study_uid: str, series_uids: list[str]
                      ) -> str | None:
        """Send the findings series to the hub the study came from, or the only hub; ask
        when there are several."""
        hub = viewer.remote.hub if viewer.remote is not None else ""
        names = [h.name for h in load_settings(self.store.home).hubs]
        if not hub and len(names) == 1:
            hub = names[0]
        if not hub:
            self.transfer.send_dialog(study_uid, series_uids[0] if series_uids else None)
            return None
        return self.transfer.queue_send(hub, study_uid, series_uids)

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
        self.send_pacs_action = QAction("Send to PACS…", self)
        self.send_pacs_action.setToolTip("Send the selected study or series to a PACS (DIMSE)")
        self.send_pacs_action.triggered.connect(lambda: self.send_to_pacs())
        self.query_action = QAction("Query/Retrieve…", self)
        self.query_action.setToolTip("Search a PACS and retrieve studies to this computer")
        self.query_action.triggered.connect(lambda: self.query_retrieve())
        for action in (self.open_action, self.import_files_action, self.demo_action,
                       self.open_remote_action, self.query_action, self.send_action,
                       self.send_pacs_action):
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
        menu.addAction(self.query_action)
        menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)
        hub_menu = self.hub_menu = self.menuBar().addMenu("&Hub")
        hub_menu.addAction(self.send_action)
        hub_menu.addAction(self.send_pacs_action)
        hub_menu.addAction(self.open_remote_action)
        hub_menu.addAction(self.transfers_dock.toggleViewAction())
        check = QAction("Check for incoming studies", self)
        check.triggered.connect(self._on_check_incoming)
        hub_menu.addAction(check)
        settings_menu = self.menuBar().addMenu("&Settings")
        self.hubs_action = QAction("Hubs…", self)
        self.hubs_action.triggered.connect(self.show_hubs_dialog)
        settings_menu.addAction(self.hubs_action)
        self.node_action = QAction("PACS and node…", self)
        self.node_action.triggered.connect(self.show_node_dialog)
        settings_menu.addAction(self.node_action)
        view_menu = self.menuBar().addMenu("&View")
        self.dark_chrome_action = QAction("Dark chrome", self, checkable=True)
        self.dark_chrome_action.setToolTip("Dark menus, browser and dialogs (the reading area "
                                           "is always dark); remembered")
        self.dark_chrome_action.setChecked(load_dark_chrome(self.store.home))
        self.dark_chrome_action.toggled.connect(self.set_dark_chrome)
        view_menu.addAction(self.dark_chrome_action)
        if self.dark_chrome_action.isChecked():
            apply_chrome(True)

        self.storage_action = QAction("Storage…", self)
        self.storage_action.triggered.connect(self.show_storage_dialog)
        settings_menu.addAction(self.storage_action)

        self.forwarding_action = QAction("Forwarding…", self)
        self.forwarding_action.triggered.connect(self.show_forwarding_dialog)
        settings_menu.addAction(self.forwarding_action)
        help_menu = self.menuBar().addMenu("&Help")
        self.guide_action = QAction("User guide", self)
        self.guide_action.triggered.connect(self.show_user_guide)
        help_menu.addAction(self.guide_action)
        shortcuts = QAction("Mouse and keyboard…", self)
        shortcuts.setShortcut(QKeySequence("F1"))
        shortcuts.triggered.connect(lambda: shortcuts_dialog(self))
        help_menu.addAction(shortcuts)
        self.about_action = QAction("About Relay", self)
        self.about_action.triggered.connect(lambda: show_about(self))
        help_menu.addAction(self.about_action)

    def set_dark_chrome(self, dark: bool) -> None:
        """Dark or light chrome around the reading area, now and at the next start."""
        apply_chrome(dark)
        save_dark_chrome(self.store.home, dark)
        if self.dark_chrome_action.isChecked() != dark:
            self.dark_chrome_action.setChecked(dark)

    def _build_status(self) -> None:
        self.counts_label = plain_label("", self)
        self.statusBar().addWidget(self.counts_label, 1)
        for widget in self.importer.widgets():
            self.statusBar().addPermanentWidget(widget)

    def _show_message(self, text: str, msecs: int) -> None:
        self.statusBar().showMessage(text, msecs)
        if not self.isVisible():
            # Qt hides the status bar's counts under a message only if they are visible now:
            # shown again with the window, it would be drawn over them (the node's start).
            self._early_message = (text, msecs)

    # -- content ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the store as it is now (read here, on the calling thread: after the user's own
        action, whose result is looked for at once)."""
        self._apply(self._read_store())

    def refresh_soon(self) -> None:
        """Show the store as it is in a moment, read off the GUI thread (after arrivals, which
        come in bursts and while the reader works)."""
        self._refresh_soon.start()

    def _read_store(self) -> StoreView:
        started = time.monotonic()
        studies = self.store.studies()
        history = send_history(self.store.home)
        return StoreView(started, studies, self.store.received_times(),
                         {s.study_instance_uid: sent_state(history, s.study_instance_uid)
                          for s in studies}, self.station.marks(), self.store.counts())

    def _read_in_background(self) -> None:
        """Ask the reader thread (started on first use; it keeps its SQLite connection) for a
        fresh view; asks made while it reads are answered by one more read."""
        if self._reader is None:
            self._reader = threading.Thread(target=self._reader_loop, name="browser-read",
                                            daemon=True)
            self._reader.start()
        self._read_wanted.set()

    def _reader_loop(self) -> None:
        while True:
            self._read_wanted.wait()
            self._read_wanted.clear()
            if self._closed:
                return
            try:
                view = self._read_store()
            except Exception:  # the next arrival reads again; the user's actions refresh at once
                log.exception("the store could not be read for the browser")
                continue
            if not self._post.emit("_store_read", view):  # the window is gone
                return

    def _apply(self, view: StoreView) -> None:
        if view.started < self._shown_started:
            return  # read before the view already shown
        self._shown_started = view.started
        self.browser.set_studies(view.studies, view.received, view.sent)
        self.browser.set_marks(view.marks)
        self.reading.request_thumbnails(view.studies[:50])  # newest first; the rest when opened
        self.pages.setCurrentWidget(self.browser if view.studies else self.empty)
        self._show_counts(view.counts)

    def _update_counts(self) -> None:
        self._show_counts(self.store.counts())

    def _show_counts(self, counts: dict[str, int]) -> None:
        self.counts_label.setText(
            f"{count(counts['studies'], 'study', 'studies')} · "
            f"{count(counts['series'], 'series', 'series')} · "
            f"{count(counts['instances'], 'image')} — store: {self.store.home}")

    # -- importing --------------------------------------------------------------------------
    @property
    def last_report(self) -> ImportReport | None:
        return self.importer.last_report

    @property
    def _task(self) -> TaskWorker | None:
        return self.importer.task

    def open_folder_dialog(self) -> None:
        """Ask for a folder (starting at the inserted disc or the last folder); import it."""
        dialog = folder_dialog(self, self.view_state.last_folder)
        if dialog.exec() and dialog.selectedFiles():
            folder = dialog.selectedFiles()[0]
            self.view_state.last_folder = folder
            self.import_paths([folder])

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import files or zip archives")
        if files:
            self.import_paths(files)

    def import_paths(self, paths: list[str]) -> TaskWorker | None:
        """Import in the background; the window stays usable; a report shows at the end."""
        self.warn_if_low_disk("import")
        return self.importer.import_paths(paths)

    def load_demo(self) -> TaskWorker | None:
        self.warn_if_low_disk("import")
        return self.importer.load_demo()

    def warn_if_low_disk(self, what: str) -> str | None:
        """Before an import, a fetch or a retrieve: the banner when the store's disk is below
        the storage rule (the work goes on); the warning, or None when there is room."""
        return self.disk_banner.check(what)

    def _on_imported(self, report: ImportReport) -> ImportReportDialog:
        """Refresh, select the study that came in, and show what came in."""
        self.refresh()
        if report.study_uids:
            self.browser.select_study(report.study_uids[0])
        self._show_message(summary_text(report), 10000)
        dialog = ImportReportDialog(report, summarize(self.store, report), self)
        dialog.open_study.connect(self.reading.open_study)
        dialog.send_study.connect(self.send_to_hub)
        self.report_dialog = dialog
        dialog.open()
        return dialog

    # -- reading ----------------------------------------------------------------------------
    def open_study(self, study_uid: str, series_uid: str | None = None) -> ViewerWidget | None:
        """Open (or bring forward) the study's reading tab; show ``series_uid`` if given."""
        return self.reading.open_study(study_uid, series_uid)

    def open_remote_study(self, hub_name: str, study_uid: str) -> ViewerWidget:
        """Read a study that is on the hub while it downloads."""
        self.warn_if_low_disk("fetch")
        self.incoming.reading.add(study_uid)  # its own download: not fetched besides
        self.incoming.follow(hub_name, study_uid)  # what reaches the hub later is fetched
        return self.remote.open_remote_study(hub_name, study_uid)

    def _on_stroke_arrived(self, hub: str, study_uid: str) -> None:
        """A new stroke study on the hub (settings ``incoming.open_stroke``): open it for
        reading at once, the first image while the rest downloads."""
        if self.store.study(study_uid) is not None and self.incoming.local.get(study_uid) == \
                "local":
            self.open_study(study_uid)
        else:
            self.open_remote_study(hub, study_uid)

    def open_remote_dialog(self) -> None:
        self.remote.open_dialog(self.store.home)

    @property
    def _spare(self) -> ViewerWidget | None:
        return self.reading.spare

    @property
    def _openers(self) -> dict[str, RemoteOpener]:
        return self.remote.openers

    def _on_tab_close(self, index: int) -> None:
        self.reading.close_tab(index)

    def _on_fetched(self, _job_id: str) -> None:
        self.refresh_soon()
        for viewer in list(self.viewers.values()):  # a study read as it grew on the hub
            viewer.took_more()

    def _on_remote_loaded(self, study_uid: str) -> None:
        self.refresh_soon()
        self.incoming.study_read(study_uid)

    # -- hub exchange --------------------------------------------------------------------------
    def queue_runner(self) -> QueueRunner:
        """The window's transfer queue runner, started on first use."""
        return self.transfer.queue_runner()

    @property
    def _runner(self) -> QueueRunner | None:
        return self.transfer.runner

    def send_to_hub(self, study_uid: str | None = None,
                    series_uid: str | None = None, *, pacs: bool = False) -> SendDialog | None:
        """Ask where to send the study (the browser's selection by default): a hub, or a PACS
        profile when ``pacs``; queue the job."""
        if study_uid is None:
            chosen = self.browser.selected()
            if chosen is None or chosen[0] not in ("study", "series"):
                self._show_message("Select a study or a series to send.", 5000)
                return None
            kind, uid = chosen
            if kind == "series":
                series = self.store.series(uid)
                if series is None:
                    return None
                study_uid, series_uid = series.study_instance_uid, uid
            else:
                study_uid = uid
        target = self.station.send_target(study_uid, series=series_uid is not None)
        if target is None:
            return None
        return self.transfer.send_dialog(target, series_uid, pacs=pacs)

    def query_retrieve(self) -> QueryRetrieveDialog:
        """Query/Retrieve…: search a PACS; retrieving queues jobs shown in Transfers (C-GET or
        C-MOVE, whole studies or some series); Open reads a study while it arrives; a
        double-clicked study wholly here opens from the store."""
        dialog = QueryRetrieveDialog(self.store.home, self, store=self.store)
        dialog.retrieve.connect(self._on_retrieve)
        dialog.open_study.connect(self.open_remote_study)
        dialog.open_local.connect(self.open_study)
        # what is here of each study listed: again when a retrieve or an open has ended
        self.transfer.fetched.connect(dialog.refresh_here)
        self.remote.loaded.connect(dialog.refresh_here)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _on_retrieve(self, pacs: str, studies: list[str], series: list[str],
                     method: str) -> list[str]:
        self.warn_if_low_disk("retrieve")
        return self.transfer.queue_retrieve(pacs, studies, series or None, method=method)

    def send_to_pacs(self, study_uid: str | None = None,
                     series_uid: str | None = None) -> SendDialog | None:
        """Send to PACS…: as :meth:`send_to_hub`, to a PACS profile by C-STORE."""
        return self.send_to_hub(study_uid, series_uid, pacs=True)

    def _selected_study(self) -> str | None:
        chosen = self.browser.selected()
        if chosen is None or chosen[0] not in ("study", "series"):
            return None
        if chosen[0] == "series":
            series = self.store.series(chosen[1])
            return series.study_instance_uid if series else None
        return chosen[1]

    def queue_send(self, hub: str, study_uid: str, series_uids: list[str] | None) -> str | None:
        """Queue a send job and show it in the Transfers panel."""
        return self.transfer.queue_send(hub, study_uid, series_uids)

    def show_hubs_dialog(self) -> HubsDialog:
        return self.transfer.hubs_dialog()

    def show_storage_dialog(self) -> StorageDialog:
        dialog = StorageDialog(self.store, self)
        dialog.purged.connect(lambda _result: self.refresh())
        dialog.show()
        return dialog

    def show_user_guide(self) -> GuideDialog:
        dialog = GuideDialog(self)
        dialog.show()
        return dialog

    def show_node_dialog(self) -> PacsNodeDialog:
        dialog = PacsNodeDialog(self.store.home, self.node.status, self)
        dialog.saved.connect(self.node.apply)
        dialog.saved.connect(lambda _node: dialog.set_status(self.node.status))
        dialog.show()
        return dialog

    def _on_node_received(self, study: StudyReceived) -> None:
        self.incoming.add_received(study)
        self.refresh_soon()
        viewer = self.viewers.get(study.study_uid)
        if viewer is not None:  # open while the scanner still sends it: the new images too
            viewer.took_more(arriving=study.arriving)

    def _on_check_incoming(self) -> None:
        self.incoming_tabs.check_now()

    def chosen(self) -> tuple[str, list[str] | None] | None:
        """The browser's selection as (study uid, series uids; None: the whole study)."""
        chosen = self.browser.selected()
        if chosen is None or chosen[0] not in ("study", "series"):
            return None
        kind, uid = chosen
        if kind == "study":
            return uid, None
        series = self.store.series(uid)
        return (series.study_instance_uid, [uid]) if series is not None else None

    def _on_browser_menu(self, pos: QPoint) -> None:
        chosen = self.browser.selected()
        if chosen is None or chosen[0] not in ("study", "series"):
            return
        menu = QMenu(self)
        kind, uid = chosen
        open_action = menu.addAction("Open")
        open_action.triggered.connect(
            lambda: (self.reading.open_study if kind == "study" else
                     self.reading.open_series)(uid))
        menu.addAction(self.send_action)
        menu.addAction(self.send_pacs_action)
        menu.addSeparator()
        for action in self.manage_actions:
            menu.addAction(action)
        if kind == "study":
            menu.addSeparator()
            for action in self.station.actions():
                menu.addAction(action)
        menu.popup(self.browser.tree.viewport().mapToGlobal(pos))

    def _build_manage_actions(self) -> None:
        def on_chosen(fn: Callable[..., object]) -> Callable[[], None]:
            def run() -> None:
                chosen = self.chosen()
                if chosen is None:
                    self._show_message("Select a study or a series first.", 5000)
                    return
                fn(*chosen)
            return run

        def tags(study_uid: str, series_uids: list[str] | None) -> None:
            study = self.store.study(study_uid)
            series = series_uids[0] if series_uids else (
                study.series[0].series_instance_uid if study and study.series else None)
            if series is not None:
                self.manage.show_tags(series)

        specs = [("Show DICOM tags…", None, tags),
                 ("Export to folder…", None, lambda st, se: self.manage.export(st, se)),
                 ("Timeline…", None, lambda st, _se: self.show_timeline(st)),
                 ("Copy patient and study details", QKeySequence.StandardKey.Copy,
                  lambda st, _se: self.manage.copy_details(st)),
                 ("Delete from this computer…", QKeySequence.StandardKey.Delete,
                  lambda st, se: self.manage.delete(st, se))]
        self.manage_actions: list[QAction] = []
        for text, key, fn in specs:
            action = QAction(text, self.browser.tree)
            if key is not None:
                action.setShortcut(key)
                action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
                self.browser.tree.addAction(action)
            action.triggered.connect(on_chosen(fn))
            self.manage_actions.append(action)
        study_menu = QMenu("&Study", self)
        study_menu.addAction(self.send_action)
        study_menu.addAction(self.send_pacs_action)
        study_menu.addSeparator()
        for action in self.manage_actions:
            study_menu.addAction(action)
        study_menu.addSeparator()
        for action in self.station.actions():
            study_menu.addAction(action)
        self.menuBar().insertMenu(self.hub_menu.menuAction(), study_menu)

    def show_forwarding_dialog(self) -> ForwardingDialog:
        """Settings → Forwarding…; saved rules apply at once (the node restarts with them)."""
        dialog = ForwardingDialog(self.store.home, self)
        dialog.saved.connect(lambda _fwd: self.node.start())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_timeline(self, study_uid: str) -> TimelineDialog:
        """The study's Timeline panel (door to image), non-modal."""
        dialog = TimelineDialog(self.store, study_uid, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # -- drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        early, self._early_message = self._early_message, None
        if early is not None and self.statusBar().currentMessage() == early[0]:
            self.statusBar().clearMessage()  # (the same text again would change nothing)
            self.statusBar().showMessage(*early)  # now over the counts, for its whole time
        self.reading.window_shown()
        self.transfer.prepare()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._closed = True
        self._read_wanted.set()  # the reader thread ends
        self.importer.stop()
        self.reading.stop()
        self.incoming_tabs.stop()
        self.node.stop()
        self.transfer.stop()
        super().closeEvent(event)
