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
from app.ui.crossthread import ThreadPost

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
        self._post = ThreadPost(self)  # the window that started us may go while we run
        self.progress.subscribe(self._forward)
        self._thread = threading.Thread(target=self._run, name=f"task:{label}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.progress.cancel()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def _forward(self, state: ProgressState) -> None:
        self._emit("progressed", state)

    def _run(self) -> None:
        try:
            result = self._fn(self.progress)
        except Exception as exc:  # reported to the user, never a traceback dialog
            log.warning("background task failed: %s", type(exc).__name__, exc_info=True)
            self._emit("failed", str(exc) or type(exc).__name__)
        else:
            self._emit("succeeded", result)
        finally:
            self._emit("finished")

    def _emit(self, signal: str, *args: Any) -> None:
        if not self._post.emit(signal, *args):  # the window that started us is gone
            self.progress.cancel()
