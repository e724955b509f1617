"""Exceptions nobody caught: logged, and told to whoever listens, instead of a silent death.

:func:`install` sets ``sys.excepthook`` (the main thread, and Qt slots: PySide6 hands their
exceptions to it) and ``threading.excepthook`` (every other thread). Each unexpected exception
is logged at ERROR with its type, its thread and its stack (file, line, function and source
line of each frame), never with its message or local values, which may hold patient data
(a name in a path, a header value); the message is logged at DEBUG only. Listeners (the
window's notice, :mod:`app.ui.crash_notice`) get a :class:`Crash` with plain words for the user.
``KeyboardInterrupt`` keeps Python's own handling. No Qt here.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Crash:
    """One unexpected exception, without its message."""

    kind: str
    """The exception's type name (``ValueError``)."""
    where: str
    """The innermost frame of Relay's own code: ``module.function`` ("" when none)."""
    thread: str
    """The name of the thread it happened on."""

    @property
    def words(self) -> str:
        """What to tell the user, in plain words."""
        return (f"Relay ran into an unexpected problem ({self.place}). "
                "It has been written to the log. Your studies and transfers are safe; you can "
                "keep working, and if something looks wrong, restart Relay.")


    @property
    def place(self) -> str:
        """``ValueError in app.x.f``, or the type alone."""
        return f"{self.kind} in {self.where}" if self.where else self.kind


Listener = Callable[[Crash], None]
_listeners: list[Listener] = []


def describe(tb: TracebackType | None, kind: str, thread: str) -> Crash:
    """The :class:`Crash` of an exception of type ``kind`` with this traceback."""
    where = ""
    for frame, _ in traceback.walk_tb(tb):
        module = str(frame.f_globals.get("__name__", ""))
        if module == "app" or module.startswith("app."):
            where = f"{module}.{frame.f_code.co_name}"
    return Crash(kind=kind, where=where, thread=thread)


def report(exc_type: type[BaseException], exc: BaseException | None,
           tb: TracebackType | None, thread: str) -> Crash:
    """Log one unexpected exception (no message at ERROR) and tell the listeners."""
    crash = describe(tb, exc_type.__name__, thread)
    stack = "".join(traceback.format_list(traceback.extract_tb(tb)))
    log.error("unexpected %s (thread %s)\n%s", crash.place, thread, stack.rstrip())
    log.debug("the %s said: %s", crash.kind, exc)
    for listener in list(_listeners):
        try:
            listener(crash)
        except Exception:  # a listener must not turn one error into a loop of them
            log.debug("a crash listener failed", exc_info=True)
    return crash


def _sys_hook(exc_type: type[BaseException], exc: BaseException,
              tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    report(exc_type, exc, tb, threading.current_thread().name)


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):
        return  # as Python's own hook: a thread that exits is not an error
    name = args.thread.name if args.thread is not None else "?"
    report(args.exc_type, args.exc_value, args.exc_traceback, name)


def install(listener: Listener | None = None) -> Callable[[], None]:
    """Take over both hooks (once) and add ``listener``; returns what undoes this call."""
    previous = (sys.excepthook, threading.excepthook)
    sys.excepthook = _sys_hook
    threading.excepthook = _thread_hook
    if listener is not None:
        _listeners.append(listener)

    def undo() -> None:
        sys.excepthook, threading.excepthook = previous
        if listener is not None and listener in _listeners:
            _listeners.remove(listener)

    return undo
