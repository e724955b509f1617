"""Ending the window from outside: SIGTERM (the desktop session logging out, ``kill``, a service
manager) and SIGINT (Ctrl-C in the terminal that started ``relay``) close the main window as
**File → Quit** does, so imports, transfers and the DICOM node stop cleanly and Relay exits 0.

Python runs signal handlers only between bytecodes, and Qt's event loop runs none while idle, so
the signal is delivered through a socket (``signal.set_wakeup_fd``) that a
:class:`~PySide6.QtCore.QSocketNotifier` watches: the close happens on the GUI thread at once.
"""

from __future__ import annotations

import logging
import signal
import socket
from types import FrameType

from PySide6.QtCore import QObject, QSocketNotifier
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SessionEnd(QObject):
    """Closes ``window`` when the process gets SIGTERM or SIGINT (while it lives)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._previous = {s: signal.signal(s, self._on_signal) for s in SIGNALS}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_wakeup)
        self._closing = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Python-level handler: the wake-up byte already woke the GUI thread; nothing to do."""

    def _on_wakeup(self) -> None:
        try:
            data = self._reader.recv(64)
        except BlockingIOError:
            return
        if not data or self._closing:
            return
        self._closing = True
        log.info("signal %s: closing the window", ", ".join(str(b) for b in data))
        self._window.close()

    def uninstall(self) -> None:
        """Give the signals back (after the event loop ended)."""
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._reader.close()
        self._writer.close()


def install(window: QWidget) -> SessionEnd:
    return SessionEnd(window)
