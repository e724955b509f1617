"""The Transfers panel: every send, fetch and retrieve job with progress, speed, ETA and why.

The queue runner calls back on its own thread; :class:`TransfersWidget` turns that into a queued
signal and repaints at most every 100 ms (plus a ticker every 500 ms while a job is active, for
speed, ETA and "retrying in N s"). The words come from :mod:`app.net.status`.
"""

from __future__ import annotations

import datetime
import os
import time

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.net.queue import ACTIVE, FINAL, Job
from app.net.runner import QueueRunner
from app.net.sent import peer_words
from app.net.status import DIRECTIONS, JobStatus, SpeedMeter, job_status
from app.settings import FILE_NAME as SETTINGS_FILE
from app.store.local import Store
from app.ui.crossthread import ThreadPost
from app.ui.format import format_name
from app.ui.labels import plain_label, tooltip
from app.ui.tables import cell, fit_column, list_table, set_row

COLUMNS = ["", "Hub / PACS", "Study", "Started", "State", "Progress", "Images", "Speed", "ETA",
           "Details"]
COL = {name: i for i, name in enumerate(COLUMNS)}
COL["Direction"] = 0
JOB_ROLE = Qt.ItemDataRole.UserRole + 1
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 2
STATE_COLOURS = {"verified": "#1b7f3b", "failed": "#b3261e", "stuck": "#b3261e",
                 "waiting": "#a15c00", "paused": "#5f6368", "cancelled": "#5f6368"}


def started_text(created: float, now: float) -> str:
    """"14:02" today, "12-01 14:02" this year, "2025-12-01 14:02" before."""
    when, today = datetime.datetime.fromtimestamp(created), datetime.datetime.fromtimestamp(now)
    if when.date() == today.date():
        return when.strftime("%H:%M")
    return when.strftime("%m-%d %H:%M" if when.year == today.year else "%Y-%m-%d %H:%M")


class ProgressDelegate(QStyledItemDelegate):
    """Paints a progress bar from the cell's fraction (None: busy, no total yet)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        fraction = index.data(FRACTION_ROLE)
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(4, 4, -4, -4))
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(round((fraction or 0.0) * 1000))
        bar.text = f"{(fraction or 0.0) * 100:.0f} %"
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class TransfersWidget(QWidget):
    """Jobs of the transfer queue, newest first, with Pause / Resume / Cancel / Retry."""

    job_finished = Signal(str, str)  # job id, final state ("verified", "failed", "cancelled")
    cleared = Signal(float)  # "Clear finished": jobs that ended before this time are hidden
    _job_changed = Signal(str)  # from the runner's thread

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.runner: QueueRunner | None = None
        self._meters: dict[str, SpeedMeter] = {}
        self._words: dict[str, str] = {}  # profile name -> "hub" / "PACS"
        self._words_stamp = -1
        self._states: dict[str, str] = {}
        self._watch_started = float("inf")  # when attach() began following a runner
        self._labels: dict[str, str] = {}
        self._from_store: set[str] = set()  # labels read from the local store
        self._fitted: set[str] = set()  # Hub / PACS texts the column was widened for
        self._jobs: list[Job] = []
        #: Jobs that ended before this time are not listed ("Clear finished").
        self.cleared_before = 0.0
        self.rows: dict[str, JobStatus] = {}
        self.repaints = 0
        self._build()
        self._post = ThreadPost(self)  # the runner's thread's signals (the panel may go first)
        self._job_changed.connect(self._on_job_changed)
        self._debounce = QTimer(self, singleShot=True, interval=100)
        self._debounce.timeout.connect(self.refresh)
        self._ticker = QTimer(self, interval=500)
        self._ticker.timeout.connect(self.refresh)

    def _build(self) -> None:
        self.table = list_table(self, COLUMNS)
        self.table.setItemDelegateForColumn(COL["Progress"], ProgressDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        widths = {"Hub / PACS": 110, "Study": 260, "Started": 110, "State": 120,
                  "Progress": 150, "Images": 90, "Speed": 80, "ETA": 80}
        for name, width in widths.items():
            header.setSectionResizeMode(COL[name], QHeaderView.ResizeMode.Interactive)
            self.table.setColumnWidth(COL[name], width)
        header.setSectionResizeMode(COL["Direction"], QHeaderView.ResizeMode.Interactive)
        fit_column(self.table, COL["Direction"], *(f"↓ {word}" for word in DIRECTIONS))
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.pause_button = QPushButton("Pause", self)
        self.resume_button = QPushButton("Resume", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.retry_button = QPushButton("Retry", self)
        self.pause_button.clicked.connect(lambda: self._act("pause"))
        self.resume_button.clicked.connect(lambda: self._act("resume"))
        self.cancel_button.clicked.connect(lambda: self._act("cancel"))
        self.retry_button.clicked.connect(lambda: self._act("retry"))
        self.clear_button = QPushButton("Clear finished", self)
        self.clear_button.setToolTip("Remove verified, failed and cancelled transfers from the "
                                     "list (the send history is kept)")
        self.clear_button.clicked.connect(self.clear_finished)
        self.explanation = plain_label("", self)
        self.explanation.setWordWrap(True)
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        for b in (self.pause_button, self.resume_button, self.cancel_button, self.retry_button):
            buttons.addWidget(b)
        buttons.addWidget(self.explanation, 1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._on_selection()

    # -- wiring ------------------------------------------------------------------------------
    def attach(self, runner: QueueRunner) -> None:
        """Show ``runner``'s queue and follow its changes."""
        self.runner = runner
        self._watch_started = time.time()
        runner.subscribe(self._from_runner)
        self.refresh()

    def _from_runner(self, job_id: str) -> None:
        self._post.emit("_job_changed", job_id)  # nothing once the panel is gone

    def _on_job_changed(self, job_id: str) -> None:
        if not self._debounce.isActive():
            self._debounce.start()

    def set_study_label(self, study_uid: str, text: str) -> None:
        """How to name a study that is not in the local store (from the Incoming list)."""
        self._labels.setdefault(study_uid, text)

    def forget_local_labels(self) -> None:
        """The local store's studies may have been renamed (a reconcile, a de-identified
        copy): name them again from the store at the next repaint."""
        for uid in self._from_store:
            self._labels.pop(uid, None)
        self._from_store.clear()
        self.refresh()

    # -- content -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the queue and repaint (called at most ~10 times a second)."""
        if self.runner is None:
            return
        self.repaints += 1
        selected = self.selected_job()
        jobs = [j for j in self.runner.jobs() if self.listed(j)]
        now = time.time()
        self._read_peer_words()
        self.table.setRowCount(len(jobs))
        self._jobs = jobs  # before the transitions: their listeners look jobs up here
        for row, job in enumerate(jobs):
            self.rows[job.id] = status = self._status(job, now)
            self._fill(row, job, status, now)
            self._note_transition(job)
        if selected is not None:
            self.select_job(selected)
        self._on_selection()
        active = any(j.state in ACTIVE for j in jobs)
        if active and not self._ticker.isActive():
            self._ticker.start()
        elif not active:
            self._ticker.stop()

    def listed(self, job: Job) -> bool:
        """Is ``job`` in the list (not ended before the last "Clear finished")?"""
        return job.state not in FINAL or job.updated > self.cleared_before

    def clear_finished(self) -> None:
        """Hide every job that has ended; running, waiting, stuck and paused ones stay."""
        self.cleared_before = time.time()
        self.cleared.emit(self.cleared_before)
        self.refresh()

    def _status(self, job: Job, now: float) -> JobStatus:
        assert self.runner is not None
        progress = self.runner.progress(job.id)
        state = progress.snapshot() if progress is not None else None
        meter = self._meters.setdefault(job.id, SpeedMeter())
        if state is not None:
            meter.add(state.done, self.runner.transferred_bytes(job.id))
        else:
            self._meters.pop(job.id, None)
        return job_status(job, state, meter, now, peer_word=self._peer_word(job.hub))

    def _read_peer_words(self) -> None:
        """Read again which profile is a hub and which a PACS if the settings file changed (one
        stat per repaint, not two per row)."""
        try:
            stamp = os.stat(self.store.home / SETTINGS_FILE).st_mtime_ns
        except OSError:
            stamp = 0
        if stamp != self._words_stamp:
            self._words_stamp, self._words = stamp, peer_words(self.store.home)

    def _peer_word(self, name: str) -> str:
        """``hub`` or ``PACS``: what the profile ``name`` is (as of the last repaint)."""
        return self._words.get(name, "hub")

    def _fill(self, row: int, job: Job, s: JobStatus, now: float) -> None:
        arrow = f"{'↑' if s.direction == 'Send' else '↓'} {s.direction}"
        images = f"{s.done} / {s.total}" if s.total else "—"
        word = self._peer_word(job.hub)
        where = f"{job.hub} ({'PACS' if word == 'PACS' else 'Hub'})"
        texts = [arrow, where, self._study_label(job.study_uid, job.series_uids),
                 started_text(job.created, now), s.state, "", images, s.speed_text, s.eta_text,
                 s.explanation]
        set_row(self.table, row, texts, JOB_ROLE, job.id)
        cell(self.table, row, COL["Details"]).setToolTip(tooltip(job.message or s.explanation))
        cell(self.table, row, COL["Hub / PACS"]).setToolTip(tooltip(where))
        self._fit_where(where)
        fraction = s.done / s.total if s.total else 0.0
        cell(self.table, row, COL["Progress"]).setData(FRACTION_ROLE, fraction)
        colour = STATE_COLOURS.get(job.state)
        state_item = cell(self.table, row, COL["State"])
        state_item.setData(Qt.ItemDataRole.ForegroundRole,
                           None if colour is None else QColor(colour))
        for col in (COL["Images"], COL["Speed"], COL["ETA"]):
            cell(self.table, row, col).setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def _fit_where(self, text: str) -> None:
        """Widen the Hub / PACS column for a peer name not seen yet ("regional-hub (Hub)"), so
        it is never cut to "regional-hub (…"; a width the user set is kept otherwise."""
        if text in self._fitted:
            return
        self._fitted.add(text)
        col = COL["Hub / PACS"]
        needed = self.table.fontMetrics().horizontalAdvance(text) + 24  # cell padding
        if needed > self.table.columnWidth(col):
            self.table.setColumnWidth(col, needed)

    def _study_label(self, study_uid: str, series: tuple[str, ...]) -> str:
        label = self._labels.get(study_uid)
        if label is None:
            study = self.store.study(study_uid)
            if study is not None:
                what = study.study_description or "/".join(study.modalities) or "study"
                label = f"{format_name(study.patient.patient_name)} · {what}"
                self._labels[study_uid] = label
                self._from_store.add(study_uid)
            else:
                label = f"Study …{study_uid[-10:]}"
        if series:
            label += f" ({len(series)} series)"
        return label

    def _note_transition(self, job: Job) -> None:
        before = self._states.get(job.id)
        self._states[job.id] = job.state
        # A short job can start and end between two repaints: first seen already final, it
        # still counts if it ended while this panel was watching.
        seen_end = before is None and job.updated >= self._watch_started
        if (before is not None or seen_end) and before != job.state and job.state in FINAL:
            self.job_finished.emit(job.id, job.state)

    # -- selection and actions ----------------------------------------------------------------
    def selected_job(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(JOB_ROLE) if item is not None else None

    def select_job(self, job_id: str) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(JOB_ROLE) == job_id:
                if not self.table.selectionModel().isRowSelected(row):
                    self.table.selectRow(row)
                return

    def job(self, job_id: str | None) -> Job | None:
        """The job as last read from the queue (None when not listed)."""
        return next((j for j in self._jobs if j.id == job_id), None)

    def _on_selection(self) -> None:
        job = self.job(self.selected_job())
        state = job.state if job else ""
        self.pause_button.setEnabled(state in ("queued", "running", "waiting"))
        self.resume_button.setEnabled(state in ("paused",))
        self.cancel_button.setEnabled(state in ACTIVE)
        self.retry_button.setEnabled(state in ("failed", "stuck", "cancelled", "waiting"))
        status = self.rows.get(job.id) if job else None
        if job is None or status is None:
            self.explanation.setText("Select a transfer to pause, resume, cancel or retry it."
                                     if self._jobs else "No transfers yet.")
        else:
            self.explanation.setText(status.explanation or status.state)

    def _act(self, action: str) -> None:
        job_id = self.selected_job()
        if job_id is None or self.runner is None:
            return
        getattr(self.runner, action)(job_id)
        self.refresh()

