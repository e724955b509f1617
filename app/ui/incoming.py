"""The Incoming list: studies on the hubs, new ones announced, fetched or opened with one click.

A :class:`app.net.watch.HubWatch` polls the hubs on its own thread; its updates and prefetch
requests hop to the GUI thread as queued signals. A new study raises one desktop notification
per poll (a count, never one per study; no patient name on a lock screen), or an in-window notice
when the desktop has no system tray.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QStyle,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from app.errors import RelayError
from app.model import Study
from app.net.dimse.receive import NODE_SOURCE_PREFIX, StudyReceived, node_source
from app.net.incoming import IncomingStudy, IncomingUpdate, arrivals
from app.net.runner import QueueRunner
from app.net.watch import HubWatch, watched_hubs
from app.settings import load_settings
from app.store.local import Store
from app.ui.crossthread import ThreadPost
from app.ui.format import count, format_date, format_name
from app.ui.labels import plain_label
from app.ui.tables import cell, list_table, set_row
from app.workflow.rules import is_stroke_study

log = logging.getLogger(__name__)

#: "First seen": DICOMweb does not say when the hub received a study (see app.net.incoming).
#: "From": the hub, or ``DICOM <calling AE>`` for a study Relay's node received.
COLUMNS = ["Patient", "Patient ID", "Modality", "Description", "Study date", "First seen", "From",
           "Status"]
COL = {name: i for i, name in enumerate(COLUMNS)}
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_WORDS = {"local": "Local", "partial": "Partly local", "remote": "On hub only",
                "receiving": "Receiving…"}
#: What the status says when there is no hub to poll (a PACS is searched, not polled).
NO_HUB = ("No hub to check: add one in Settings → Hubs…. Studies that scanners or the PACS "
          "send to Relay's node are listed here too.")
STATUS_COLOURS = {"local": "#1b7f3b", "partial": "#a15c00", "remote": "#1a5fb4",
                  "receiving": "#a15c00"}


class IncomingWidget(QWidget):
    """Studies on the watched hubs, newest first, with Check now / Fetch / Open."""

    _updated = Signal(str, object)  # hub, IncomingUpdate (from the watch thread)
    _prefetch = Signal(str, str)  # hub, study uid (from the watch thread)
    _followed_count = Signal(str, str, int, int)  # PACS, study uid, on the PACS, here
    notified = Signal(str)
    arrived = Signal(int)  # how many new studies one poll found
    stroke_arrived = Signal(str, str)  # hub, study uid: a new stroke study to open at once

    def __init__(self, store: Store, runner: Callable[[], QueueRunner],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.runner = runner
        self.studies: dict[tuple[str, str], IncomingStudy] = {}
        self.local: dict[str, str] = {}
        self.fetching: dict[str, tuple[str, str]] = {}  # job id -> (hub, study uid)
        self.reading: set[str] = set()  # study uids open in a viewer while they download
        #: study uid -> (hub or PACS, instances on it when last fetched): studies open in a
        #: reading tab from there; what reaches it after (a scanner still sending) is fetched too
        self.followed: dict[str, tuple[str, int]] = {}
        self.notices: list[str] = []
        self.errors: dict[str, str] = {}
        self.polls = 0
        self.on_hub: dict[str, int] = {}  # hub -> every study it holds
        self._tray: QSystemTrayIcon | None = None
        self._post = ThreadPost(self)  # the watch thread's signals (the widget may go first)
        self._build()
        self._updated.connect(self._on_update)
        self._prefetch.connect(self._on_prefetch)
        self._followed_count.connect(self._on_followed_count)
        self._show_node_arrivals()
        self.watch = HubWatch(Path(store.home), self._from_watch, self._prefetch_from_watch,
                              self._followed_from_watch)

    def _build(self) -> None:
        self.table = list_table(self, COLUMNS)
        self.table.setSortingEnabled(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL["Description"], QHeaderView.ResizeMode.Stretch)
        for name, width in {"Patient": 200, "Patient ID": 160, "Modality": 80,
                            "Study date": 100, "First seen": 150, "From": 170,
                            "Status": 200}.items():
            self.table.setColumnWidth(COL[name], width)
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.check_button = QPushButton("Check now", self)
        self.check_button.clicked.connect(self.check_now)
        self.fetch_button = QPushButton("Fetch", self)
        self.fetch_button.clicked.connect(self.fetch_selected)
        self.open_button = QPushButton("Open", self)
        self.open_button.clicked.connect(self.open_selected)
        self.status_label = plain_label(
            "Not checked yet." if self._hubs() else NO_HUB, self)
        self.status_label.setWordWrap(True)
        row = QHBoxLayout()
        for button in (self.check_button, self.fetch_button, self.open_button):
            row.addWidget(button)
        row.addWidget(self.status_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        self._on_selection()

    # -- the watch ---------------------------------------------------------------------------
    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop()

    def check_now(self) -> None:
        if not self._hubs():  # nothing would answer: "Checking…" would stay for ever
            self.status_label.setText(NO_HUB)
            return
        self.status_label.setText("Checking the hub…")
        self.watch.check_now()

    def _hubs(self) -> list[str]:
        try:
            return watched_hubs(load_settings(self.store.home))
        except RelayError:  # unreadable settings: the watch says so when it polls
            return ["?"]

    def _from_watch(self, hub: str, update: IncomingUpdate) -> None:
        self._post.emit("_updated", hub, update)  # nothing once the widget is gone

    def _prefetch_from_watch(self, hub: str, study_uid: str) -> None:
        self._post.emit("_prefetch", hub, study_uid)

    def _followed_from_watch(self, pacs: str, study_uid: str, on_pacs: int, here: int) -> None:
        self._post.emit("_followed_count", pacs, study_uid, on_pacs, here)

    def _on_update(self, hub: str, update: IncomingUpdate) -> None:
        self.polls += 1
        when = datetime.datetime.fromtimestamp(update.checked_at).strftime("%H:%M:%S")
        if update.error:
            self.errors[hub] = update.error
            self.status_label.setText(f"Hub '{hub}' could not be checked at {when}: "
                                      f"{update.error}")
            self.status_label.setStyleSheet("color: #b3261e")
            return
        self.errors.pop(hub, None)
        for key in [k for k in self.studies if k[0] == hub]:
            if all(s.study_uid != key[1] for s in update.studies):
                del self.studies[key]
        for study in update.studies:
            self.studies[(hub, study.study_uid)] = study
            self.local[study.study_uid] = study.local
        self.on_hub[hub] = update.on_hub
        self._fetch_the_rest(hub, update.studies)
        self._fill()
        self.status_label.setStyleSheet("")
        self.status_label.setText(self.summary(hub, when))
        if update.new:
            self._announce(hub, update.new)
        for study in update.findings_new:
            self.notify(f"Findings arrived on hub '{hub}' for "
                        f"{study.description or 'a study'}: {', '.join(study.findings)}")

    # -- studies being read that grow on the hub or the PACS ----------------------------------
    def follow(self, hub: str, study_uid: str) -> None:
        """``study_uid`` is open in a reading tab from ``hub`` (a hub or a PACS): while it is,
        what more of it reaches there is fetched as the polls see it (a PACS is asked about
        that study alone, :meth:`HubWatch.follow`)."""
        self.followed[study_uid] = (hub, 0)
        self.watch.follow(hub, study_uid)

    def unfollow(self, study_uid: str) -> None:
        self.followed.pop(study_uid, None)
        self.watch.unfollow(study_uid)

    def _fetch_the_rest(self, hub: str, studies: list[IncomingStudy]) -> None:
        for study in studies:
            self._fetch_if_grown(hub, study.study_uid, study.instances, study.local_instances)

    def _on_followed_count(self, pacs: str, study_uid: str, on_pacs: int, here: int) -> None:
        self._fetch_if_grown(pacs, study_uid, on_pacs, here)

    def _fetch_if_grown(self, hub: str, uid: str, there: int, here: int) -> None:
        """Fetch the rest of a followed study that ``hub`` holds more of than is here (once per
        count it reaches; not while its own download or a fetch of it runs)."""
        followed = self.followed.get(uid)
        busy = {u for _, u in self.fetching.values()}
        if followed is None or followed[0] != hub or uid in self.reading or uid in busy:
            return
        if 0 < here < there and there > followed[1]:
            self.followed[uid] = (hub, there)
            log.info("a study being read grew on '%s' (%d of %d here): fetching the rest",
                     hub, here, there)
            self.fetch(hub, uid, show=False)

    def summary(self, hub: str, when: str) -> str:
        """"2 studies arrived in the last 3 days · 17 on hub · checked at 10:02:03"."""
        listed = len([k for k in self.studies if k[0] == hub])
        days = load_settings(self.store.home).incoming.lookback_days
        window = f"arrived in the last {count(days, 'day')}" if days > 0 else "listed"
        return (f"{count(listed, 'study', 'studies')} {window} · "
                f"{count(self.on_hub.get(hub, 0), 'study', 'studies')} on {hub} · "
                f"checked at {when}")

    def _announce(self, hub: str, new: list[IncomingStudy]) -> None:
        if len(new) == 1:
            what = "/".join(new[0].modalities) or "new"
            text = f"New {what} study on hub '{hub}': {new[0].description or 'no description'}"
        else:
            text = f"{len(new)} new studies on hub '{hub}'"
        settings = load_settings(self.store.home)
        stroke = [st for st in new if is_stroke_study(settings.forwarding.rules, st.modalities,
                                                       st.description)]
        if stroke:
            QApplication.beep()
            text = (f"STROKE study on hub '{hub}': {stroke[0].description or 'no description'}"
                    + (f" (and {len(new) - 1} more new)" if len(new) > 1 else ""))
        self.notify(text)
        self.arrived.emit(len(new))
        if stroke and settings.incoming.open_stroke:
            for st in stroke:
                self.stroke_arrived.emit(hub, st.study_uid)

    def notify(self, text: str) -> None:
        """A desktop notification, or a notice in the window's status bar without a tray."""
        self.notices.append(text)
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self._tray is None:
                icon = self.windowIcon()
                if icon.isNull():
                    icon = self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowDown)
                self._tray = QSystemTrayIcon(QIcon(icon), self)
                self._tray.show()
            self._tray.showMessage("Relay", text, QSystemTrayIcon.MessageIcon.Information, 8000)
        else:
            window = self.window()
            status = getattr(window, "statusBar", None)
            if callable(status):
                status().showMessage(text, 15000)
        self.notified.emit(text)

    # -- received by Relay's node ------------------------------------------------------------
    def _show_node_arrivals(self) -> None:
        """What Relay's node received in the look-back window, as it was listed before the
        window (or ``relay listen``) last stopped; not announced again."""
        days = load_settings(self.store.home).incoming.lookback_days
        since = time.time() - days * 86400 if days > 0 else 0.0
        try:
            rows = arrivals(Path(self.store.home), NODE_SOURCE_PREFIX, since)
        except sqlite3.Error:
            return  # nothing to show is better than no window
        for source, study_uid, when in rows:
            self._list_received(source, study_uid, when, new=False)
        if rows:
            self._fill()

    def _list_received(self, source: str, study_uid: str, when: float, *,
                       new: bool, arriving: bool = False) -> Study | None:
        """List a study the node received, or is receiving (None when it is not in the store
        any more)."""
        study = self.store.study(study_uid)
        if study is None:
            return None  # deleted since
        before = self.studies.get((source, study_uid))
        count = study.instance_count
        self.studies[(source, study_uid)] = IncomingStudy(
            study_uid=study_uid, patient_name=study.patient.patient_name,
            patient_id=study.patient.patient_id, study_date=study.study_date,
            study_time=study.study_time, description=study.study_description,
            modalities=study.modalities, instances=count,
            received=before.received if before else when, local_instances=count, new=new)
        self.local[study_uid] = "receiving" if arriving else "local"
        return study

    def add_received(self, received: StudyReceived) -> None:
        """A study (or more of it) is arriving or has arrived at Relay's node: list it as
        receiving or local, from its first instance on; announce it the first time only (a
        scanner sending series by series, or a whole exam in one association, is one notice)."""
        if received.instances == 0:
            return
        known = any(uid == received.study_uid for _, uid in self.studies)
        study = self._list_received(node_source(received.calling_ae), received.study_uid,
                                    time.time(), new=not known, arriving=received.arriving)
        if study is None:
            return
        self._fill()
        if not known:
            what = "/".join(study.modalities) or "new"
            self.notify(f"New {what} study received from {received.calling_ae}: "
                        f"{study.study_description or 'no description'}")
            self.arrived.emit(1)

    # -- the table ---------------------------------------------------------------------------
    def _fill(self) -> None:
        selected = self.selected()
        rows = sorted(self.studies.items(), key=lambda kv: kv[1].received, reverse=True)
        self.table.setRowCount(len(rows))
        for row, ((hub, uid), s) in enumerate(rows):
            received = (datetime.datetime.fromtimestamp(s.received).strftime("%Y-%m-%d %H:%M")
                        if s.received > 0 else "before Relay watched")
            local = self.local.get(uid, s.local)
            status = STATUS_WORDS.get(local, local)
            if local == "receiving":
                n = s.local_instances
                status += f" {n} image{'s' if n != 1 else ''}"
            elif (uid in self.reading or any(u == uid for _, u in self.fetching.values())) \
                    and local != "local":
                status = "Fetching…"
            if s.findings:
                status += f" · findings {'/'.join(s.findings)}"
            texts = [format_name(s.patient_name), s.patient_id or "—",
                     "/".join(s.modalities), s.description or "(no description)",
                     format_date(s.study_date), received, hub, status]
            set_row(self.table, row, texts, KEY_ROLE, (hub, uid))
            colour = STATUS_COLOURS.get(local)
            cell(self.table, row, COL["Status"]).setData(
                Qt.ItemDataRole.ForegroundRole, QColor(colour) if colour else None)
        if selected is not None:
            self.select(*selected)
        self._on_selection()

    def selected(self) -> tuple[str, str] | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(KEY_ROLE) if item is not None else None

    def select(self, hub: str, study_uid: str) -> None:
        for row in range(self.table.rowCount()):
            if cell(self.table, row, 0).data(KEY_ROLE) == (hub, study_uid):
                if not self.table.selectionModel().isRowSelected(row):
                    self.table.selectRow(row)
                return

    def status_of(self, study_uid: str) -> str:
        """The Status cell of a study (for tests and screenshots)."""
        for row in range(self.table.rowCount()):
            if cell(self.table, row, 0).data(KEY_ROLE)[1] == study_uid:
                return cell(self.table, row, COL["Status"]).text()
        return ""

    def _on_selection(self) -> None:
        chosen = self.selected()
        local = self.local.get(chosen[1], "remote") if chosen else ""
        self.fetch_button.setEnabled(chosen is not None and local != "local")
        self.open_button.setEnabled(chosen is not None)

    # -- actions -----------------------------------------------------------------------------
    def fetch(self, hub: str, study_uid: str, *, show: bool = True) -> str:
        """Queue a fetch (the Transfers panel shows it, brought up when ``show``); returns
        the job id."""
        study = self.studies.get((hub, study_uid))
        window = self.window()
        warn_if_low_disk = getattr(window, "warn_if_low_disk", None)
        if warn_if_low_disk is not None:
            warn_if_low_disk("fetch")
        transfers = getattr(window, "transfers", None)
        if study is not None and transfers is not None:
            what = study.description or "/".join(study.modalities) or "study"
            transfers.set_study_label(study_uid, f"{format_name(study.patient_name)} · {what}")
        job_id = self.runner().fetch(hub, study_uid)
        self.fetching[job_id] = (hub, study_uid)
        dock = getattr(window, "transfers_dock", None)
        if show and dock is not None:
            dock.show()
        self._fill()
        return job_id

    def fetch_selected(self) -> str | None:
        chosen = self.selected()
        return self.fetch(*chosen) if chosen else None

    def open_selected(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        hub, uid = chosen
        window: Any = self.window()  # the main window: open_study, open_remote_study
        if self.store.study(uid) is not None and self.local.get(uid) == "local":
            window.open_study(uid)
        else:  # read it while it downloads (a fetch job in the Transfers panel; the window
            window.open_remote_study(hub, uid)  # puts it in ``reading`` and follows it)
            self._fill()

    def _on_prefetch(self, hub: str, study_uid: str) -> None:
        self.fetch(hub, study_uid, show=False)

    def on_job_finished(self, job_id: str, state: str) -> None:
        """A transfer ended: refresh local flags; open a study that was waiting for it."""
        if job_id not in self.fetching:
            return
        hub, uid = self.fetching.pop(job_id)
        self._update_local(hub, uid)

    def study_read(self, study_uid: str) -> None:
        """A study opened from the hub has finished downloading (or stopped)."""
        self.reading.discard(study_uid)
        for hub, uid in list(self.studies):
            if uid == study_uid:
                self._update_local(hub, uid)
                return
        self._fill()

    def _update_local(self, hub: str, uid: str) -> None:
        study = self.store.study(uid)
        incoming = self.studies.get((hub, uid))
        if study is not None:
            full = incoming is None or study.instance_count >= incoming.instances
            self.local[uid] = "local" if full else "partial"
        self._fill()
