"""Sending to hubs and the transfer queue: the runner (started on first use), the Transfers
panel in its dock, the send dialog and the hub settings dialog.

Jobs left unfinished by the last run continue when the window opens.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow

from app.errors import RelayError
from app.net.queue import FILE_NAME, TransferQueue
from app.net.runner import QueueRunner
from app.net.sent import send_history
from app.settings import load_settings
from app.store.local import Store
from app.ui.controllers.imports import ImportController
from app.ui.hubs_dialog import HubsDialog, ensure_passphrase
from app.ui.send_dialog import SendDialog
from app.ui.thumbs import ThumbnailLoader
from app.ui.transfers import TransfersWidget
from app.ui.view_state import ViewState

log = logging.getLogger(__name__)


class TransfersController(QObject):
    """The window's transfer queue; ``window`` hosts the Transfers dock."""

    message = Signal(str, int)  # text for the status bar, milliseconds
    fetched = Signal(str)  # job id of a fetch that ended (the store changed)
    sent = Signal(str)  # job id of a send that ended (the study's sent state changed)
    hubs_changed = Signal()
    setup_pacs = Signal()  # "Set up a PACS…" pressed in Send to PACS (none configured yet)

    def __init__(self, store: Store, window: QMainWindow, view_state: ViewState,
                 thumbnails: ThumbnailLoader | None = None) -> None:
        super().__init__(window)
        self.store = store
        self.thumbnails = thumbnails
        self.window = window
        self.runner: QueueRunner | None = None
        #: The window's imports: a study one of them is still adding images to is sent when
        #: it has ended (:meth:`after_import`), not before.
        self.importer: ImportController | None = None
        self._after_import: list[tuple[str, str, list[str] | None, bool]] = []
        self.panel = TransfersWidget(store, window)
        self.panel.cleared_before = view_state.transfers_cleared
        self.panel.cleared.connect(lambda when: setattr(view_state, "transfers_cleared", when))
        self.panel.job_finished.connect(self._on_job_finished)
        self.dock = QDockWidget("Transfers", window)
        self.dock.setObjectName("transfers")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.dock.visibilityChanged.connect(self._on_shown)

    def prepare(self) -> None:
        """Create the transfer queue's file on a worker thread once the window is up, so that
        the first send or fetch does not create it (schema, WAL, fsync) on the GUI thread."""
        if self.runner is None and not (self.store.home / FILE_NAME).exists():
            threading.Thread(target=self._create_queue, name="queue-prepare", daemon=True).start()

    def _create_queue(self) -> None:
        try:
            TransferQueue(self.store.home).close()
        except (RelayError, OSError, sqlite3.Error) as exc:  # the first send will say it again
            log.warning("the transfer queue could not be prepared: %s", exc)

    def queue_runner(self) -> QueueRunner:
        """The transfer queue runner, started on first use."""
        if self.runner is None:
            ensure_passphrase(self.window, load_settings(self.store.home))
            self.runner = QueueRunner(self.store.home).start()
            self.panel.attach(self.runner)
        return self.runner

    def resume(self) -> None:
        """Jobs left unfinished by the last run continue at once."""
        if (self.store.home / FILE_NAME).exists() and TransferQueue(self.store.home).jobs(
                ("queued", "running", "waiting")):
            self.queue_runner()
            self.dock.show()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None

    def send_dialog(self, study_uid: str, series_uid: str | None = None, *,
                    pacs: bool = False) -> SendDialog | None:
        """Ask where to send the study (or one of its series): a hub, or a PACS profile when
        ``pacs``; queue the job when accepted."""
        study = self.store.study(study_uid)
        if study is None:
            return None
        dialog = SendDialog(study, load_settings(self.store.home), series_uid, self.window,
                            history=send_history(self.store.home), thumbnails=self.thumbnails,
                            pacs=pacs)
        dialog.accepted.connect(lambda: self.queue_send(dialog.hub(), study_uid,
                                                        dialog.series_uids(), pacs=pacs))
        dialog.setup_hubs.connect(self.setup_pacs if pacs else self.hubs_dialog)
        dialog.open()
        return dialog

    def queue_send(self, hub: str, study_uid: str, series_uids: list[str] | None, *,
                   pacs: bool = False) -> str | None:
        """Queue a send job (a C-STORE to the PACS profile ``hub`` when ``pacs``) and show it
        in the Transfers panel."""
        if not hub or series_uids == []:
            what = "a PACS" if pacs else "a hub"
            self.message.emit(f"Nothing to send: choose {what} and a series.", 5000)
            return None
        if self.importer is not None and self.importer.writes(study_uid):
            # a job lists the study's images when it is queued: now it would send a part
            # and could say "N of N verified"
            self._after_import.append((hub, study_uid, series_uids, pacs))
            self.message.emit(f"This study is still being imported: it is sent to {hub} when "
                              "the import has finished.", 10000)
            return None
        try:
            runner = self.queue_runner()
            job_id = runner.send(hub, study_uid, series_uids)
        except RelayError as exc:
            self.message.emit(f"Not sent: {exc}", 15000)
            return None
        self.dock.show()
        self.panel.refresh()
        self.panel.select_job(job_id)
        return job_id

    def after_import(self, complete: bool) -> list[str]:
        """The window's import has ended: the sends asked for while it was still adding images
        to their studies are queued now (if it went through), else the tech is told; the jobs
        queued."""
        waiting, self._after_import = self._after_import, []
        if not complete:
            if waiting:
                self.message.emit("Not sent: the import did not finish, so the study is not "
                                  "complete here. Send it again once it is.", 20000)
            return []
        jobs = [self.queue_send(hub, study_uid, series_uids, pacs=pacs)
                for hub, study_uid, series_uids, pacs in waiting]
        return [job for job in jobs if job is not None]

    def queue_retrieve(self, pacs: str, study_uids: list[str], series_uids: list[str] | None = None,
                       *, method: str = "") -> list[str]:
        """Queue a retrieve per study (or the given series of one study) from the PACS profile
        ``pacs`` (``method``: ``get``/``move``; empty: the profile's); show them in Transfers."""
        jobs: list[str] = []
        try:
            runner = self.queue_runner()
            for study_uid in study_uids:
                jobs.append(runner.fetch(pacs, study_uid, series_uids, method=method))
        except RelayError as exc:
            self.message.emit(f"Not retrieved: {exc}", 15000)
        if jobs:
            self.dock.show()
            self.panel.refresh()
            self.panel.select_job(jobs[-1])
        return jobs

    def hubs_dialog(self) -> HubsDialog:
        dialog = HubsDialog(self.store.home, self.window)
        dialog.hubs_changed.connect(self.hubs_changed)
        dialog.open()
        return dialog

    def _on_shown(self, visible: bool) -> None:
        if visible:
            self.queue_runner()  # the panel lists the queue, paused and stuck jobs included

    def _on_job_finished(self, job_id: str, state: str) -> None:
        job = self.panel.job(job_id)
        if job is not None:
            fetched = job.kind == "fetch"
            (self.fetched if fetched else self.sent).emit(job_id)
