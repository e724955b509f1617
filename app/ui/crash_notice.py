"""The window's side of :mod:`app.crash`: an unexpected error is told in plain words, and Qt's
own messages go to the log.

:class:`CrashNotice` listens to :mod:`app.crash` (on whichever thread the error happened),
hops to the GUI thread and shows one non-blocking message box; errors that follow while it is
open (an error in a paint event repeats at every repaint) only count up in it, so the user
is never buried under dialogs. :func:`qt_message_handler` sends Qt's warnings to
``logging`` (logger ``qt``) instead of bare stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QMessageLogContext, QObject, QtMsgType, Signal, qInstallMessageHandler
from PySide6.QtWidgets import QMessageBox, QWidget

from app import crash
from app.ui.crossthread import ThreadPost

qt_log = logging.getLogger("qt")

MessageHandler = Callable[[QtMsgType, QMessageLogContext, str], Any]

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def qt_message_handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    """Qt's messages into ``logging`` at the matching level."""
    qt_log.log(_QT_LEVELS.get(mode, logging.WARNING), "%s", message)


class CrashNotice(QObject):
    """Shows unexpected errors to the user, one box at a time."""

    _crashed = Signal(str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.box: QMessageBox | None = None
        self.count = 0
        self.previous_handler: MessageHandler | None = None
        self._post = ThreadPost(self)  # a thread's error may come as the window goes
        self._crashed.connect(self._on_crashed)  # queued when emitted from another thread
        self._undo = crash.install(self._listen)
        parent.destroyed.connect(lambda *_: self._undo())

    def _listen(self, found: crash.Crash) -> None:
        self._post.emit("_crashed", found.words)

    def _on_crashed(self, words: str) -> None:
        self.count += 1
        if self.box is not None and self.box.isVisible():
            self.box.setInformativeText(f"This happened {self.count} times.")
            return
        self.count = 1
        box = QMessageBox(QMessageBox.Icon.Warning, "Relay: unexpected problem", words,
                          QMessageBox.StandardButton.Ok, self._parent)
        box.setInformativeText("")
        box.open()  # not modal to the whole program, never blocks the event loop
        self.box = box

    def close(self) -> None:
        """Stop listening, give Qt its previous message handler back (the window closes)."""
        self._undo()
        if self.previous_handler is not None:
            qInstallMessageHandler(self.previous_handler)
            self.previous_handler = None


def install(window: QWidget) -> CrashNotice:
    """Route Qt's messages to the log and show unexpected errors over ``window``."""
    notice = CrashNotice(window)
    notice.previous_handler = qInstallMessageHandler(qt_message_handler)
    return notice
