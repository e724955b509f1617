"""The Timeline panel: a study's way from the scanner to the first image, at a glance.

The door-to-image figure in large type, a bar with a mark per stage, and a table of the stages
(time, time since the first stage, where, images), from :mod:`app.workflow.timeline`. The
timeline is read on a worker thread (it reads image headers) and again every few seconds while
the panel is open, so a study still arriving fills in.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QVBoxLayout, QWidget

from app.store.local import Store
from app.ui.labels import plain_label
from app.ui.tables import list_table, set_row
from app.ui.worker import TaskWorker
from app.workflow.timeline import Timeline, study_files, study_timeline

#: How often an open panel reads the timeline again (milliseconds).
REFRESH_MS = 5000
STAGE_WORDS = {"acquired": "Acquired at the scanner", "imported": "Imported here",
               "received": "Received from the scanner", "sent": "Sent to the hub",
               "verified": "Verified on the hub", "arrived": "Arrived at the hub workstation",
               "first_image": "First image shown"}
STAGE_COLOURS = {"acquired": "#8e8e8e", "imported": "#4a90d9", "received": "#4a90d9",
                 "sent": "#e0a030", "verified": "#3aa655", "arrived": "#9b59b6",
                 "first_image": "#d64541"}


def duration_words(seconds: float | None) -> str:
    """``4 min 12 s``, ``38.5 s``, ``2 h 05 min``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    if seconds < 0:
        return "-" + duration_words(-seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class TimelineBar(QWidget):
    """One horizontal line from the first stage to the last, a labelled mark per stage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.timeline: Timeline | None = None
        self.setMinimumHeight(70)

    def set_timeline(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        line = self.timeline
        if line is None or not line.stages:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        left, right = 16.0, float(self.width() - 16)
        y = self.height() / 2
        start = line.stages[0].time
        span = max(1e-3, (line.stages[-1].time - start).total_seconds())
        text = self.palette().text().color()
        painter.setPen(QPen(text, 2))
        painter.drawLine(int(left), int(y), int(right), int(y))
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        marks = [left + (right - left) * (s.time - start).total_seconds() / span
                 for s in line.stages]
        labels = [s.stage.replace("_", " ") for s in line.stages]
        widths = [painter.fontMetrics().horizontalAdvance(t) + 8.0 for t in labels]
        placed = label_positions(marks, widths, 0.0, float(self.width()))
        for n, (stage, x, lx) in enumerate(zip(line.stages, marks, placed, strict=True)):
            above = n % 2 == 0
            ly = y - 30 if above else y + 12
            painter.setPen(QPen(text, 1))
            painter.drawLine(int(x), int(y), int(lx), int(ly + (18 if above else 0)))
            painter.drawText(QRectF(lx - widths[n] / 2, ly, widths[n], 18),
                             Qt.AlignmentFlag.AlignCenter, labels[n])
            colour = QColor(STAGE_COLOURS.get(stage.stage, "#888888"))
            painter.setPen(QPen(colour.darker(130), 1))
            painter.setBrush(colour)
            painter.drawEllipse(QRectF(x - 6, y - 6, 12, 12))
        painter.end()


def label_positions(marks: list[float], widths: list[float], lo: float, hi: float
                    ) -> list[float]:
    """Centres for labels of ``widths`` near their ``marks`` (in order), alternately above and
    below the line, so that no two labels on the same side overlap and all stay in
    ``[lo, hi]``."""
    centres = list(marks)
    for side in (0, 1):
        idx = list(range(side, len(marks), 2))
        prev_end = lo
        for i in idx:  # push right past the previous label on this side
            centres[i] = max(centres[i], prev_end + widths[i] / 2)
            prev_end = centres[i] + widths[i] / 2 + 4
        next_start = hi
        for i in reversed(idx):  # then pull back inside the right edge
            centres[i] = min(centres[i], next_start - widths[i] / 2)
            next_start = centres[i] - widths[i] / 2 - 4
    return centres


class TimelineDialog(QDialog):
    """The Timeline panel of one study (non-modal; refreshes itself while open)."""

    COLUMNS = ["Stage", "Time", "Since first", "Where", "Images"]

    def __init__(self, store: Store, study_uid: str, parent: QWidget | None = None,
                 extra_homes: list[Path] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Timeline")
        self.store = store
        self.study_uid = study_uid
        self.homes = [Path(store.home), *(extra_homes or [])]
        self.timeline: Timeline | None = None
        self._task: TaskWorker | None = None
        self.headline = plain_label("Reading the timeline…", self)
        big = QFont(self.headline.font())
        big.setPointSizeF(big.pointSizeF() * 1.8)
        big.setBold(True)
        self.headline.setFont(big)
        self.subline = plain_label("", self)
        self.bar = TimelineBar(self)
        self.table = list_table(self, self.COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (self.headline, self.subline, self.bar, self.table, buttons):
            layout.addWidget(w)
        self.resize(880, 440)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(REFRESH_MS)
        self.refresh()

    def refresh(self) -> TaskWorker | None:
        """Read the timeline again in the background (unless a reading is running)."""
        if self._task is not None:
            return None
        store, homes, uid = self.store, self.homes, self.study_uid
        task = self._task = TaskWorker(
            lambda _p: study_timeline(homes, uid, study_files(store, uid)), "timeline", self)
        task.succeeded.connect(self._on_read)
        task.failed.connect(lambda msg: self.subline.setText(f"Cannot read the timeline: {msg}"))
        task.finished.connect(self._on_finished)
        task.start()
        return task

    def _on_finished(self) -> None:
        self._task = None

    def _on_read(self, timeline: Timeline) -> None:
        self.timeline = timeline
        seconds = timeline.door_to_image_seconds
        if not timeline.stages:
            self.headline.setText("Nothing recorded for this study yet")
        elif seconds is None:
            self.headline.setText("Door to image: not shown yet")
        else:
            self.headline.setText(f"Door to image: {duration_words(seconds)}")
        first = timeline.stages[0] if timeline.stages else None
        self.subline.setText(
            f"From {first.stage.replace('_', ' ')} ({first.time:%H:%M:%S}) to the first image "
            "shown; the door time itself is in the hospital's records." if first else "")
        self.bar.set_timeline(timeline)
        self.table.setRowCount(len(timeline.stages))
        for row, stage in enumerate(timeline.stages):
            since = (stage.time - first.time).total_seconds() if first else 0.0
            until = f" – {stage.until:%H:%M:%S}" if stage.until and stage.until != stage.time \
                else ""
            set_row(self.table, row, [
                STAGE_WORDS.get(stage.stage, stage.stage),
                f"{stage.time:%Y-%m-%d %H:%M:%S}{until}",
                "+" + duration_words(since), stage.where,
                str(stage.instances) if stage.instances else ""],
                Qt.ItemDataRole.UserRole, stage.stage)
        self.table.resizeColumnsToContents()

    def done(self, result: int) -> None:
        self._timer.stop()
        super().done(result)
