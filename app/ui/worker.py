"""Run Qt-free work off the UI thread and hop its progress and result back as signals.

The core reports through :class:`app.tasks.Progress` on the worker thread; :class:`TaskWorker`
forwards each state as a queued signal, so slots always run on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.tasks import Progress, ProgressState

log = logging.getLogger(__name__)


class TaskWorker(QObject):
    """One background task: ``fn(progress)`` on a Python thread, signals on the GUI thread."""

    progressed = Signal(object)  # ProgressState
    succeeded = Signal(object)  # the function's return value
    failed = Signal(str)  # a plain message
    finished = Signal()

    def __init__(self, fn: Callable[[Progress], Any], label: str = "",
                 parent: QObject | None = None):
        super().__init__(parent)
        self._fn = fn
        self.progress = Progress(label)
        self.progress.subscribe(self._forward)
        self._thread = threading.Thread(target=self._run, name=f"task:{label}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.progress.cancel()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def _forward(self, state: ProgressState) -> None:
        self._emit(self.progressed, state)

    def _run(self) -> None:
        try:
            result = self._fn(self.progress)
        except Exception as exc:  # reported to the user, never a traceback dialog
            log.warning("background task failed: %s", type(exc).__name__, exc_info=True)
            self._emit(self.failed, str(exc) or type(exc).__name__)
        else:
            self._emit(self.succeeded, result)
        finally:
            self._emit(self.finished)

    def _emit(self, signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the window that started us is gone; the work itself is done
            self.progress.cancel()
