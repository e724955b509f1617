"""pynetdicom's reactors, woken by events instead of polling every millisecond.

pynetdicom 3.0 runs two loops per association - the DUL thread and the association's own
reactor - that sleep 1 ms whenever they have nothing to do and look again: about 2000 wake-ups
a second per association, 0.34 s of CPU in 5 s for one idle association here, which a loaded
two-core machine takes from the transfer itself (Relay's sender used 3.8-4.6 s of CPU for 400
CT images where storescu used 0.4 s: bench/bench_dimse_client.py). :func:`install` makes those
idle sleeps waits that end as soon as there is something to do - the peer sent something (the
socket is readable), something was queued for the DUL to send, a DIMSE message or an
association primitive was queued for the reactor, or a user thread wants the reactor paused -
and otherwise after :data:`MAX_WAIT` (the timers - ARTIM, network timeout - are seconds long).
Nothing else changes: short spins (< 1 ms) and threads without a waiter sleep as before.
"""

from __future__ import annotations

import contextlib
import os
import select
import ssl
import threading
import time
import weakref
from typing import Any

import pynetdicom.association
import pynetdicom.dul

#: The longest a reactor waits without a reason to wake (seconds).
MAX_WAIT = 0.005
#: Sleeps this long or longer are a reactor's idle sleep (pynetdicom's spins are 0.1 ms).
IDLE_SLEEP = 0.001


class _Clock:
    """Stands for the ``time`` module inside :mod:`pynetdicom.dul`: ``sleep`` waits on the
    calling reactor's waiter when it has one; everything else is the ``time`` module's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        waiter = getattr(threading.current_thread(), "_relay_waiter", None)
        if waiter is None or seconds < IDLE_SLEEP:
            time.sleep(seconds)
        else:
            waiter.wait(seconds)


class _Waiter:
    """Wakes one DUL reactor when its socket is readable or something was queued to send.

    Its pipe is closed by the reactor's own thread (the only one that reads it) once the
    connection closed, or when the reactor is collected: never under a ``select`` of it, and
    never written to after (a closed descriptor's number may belong to another file by then).
    """

    def __init__(self, raw: Any = None) -> None:
        self.raw = raw
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._lock = threading.Lock()
        self._open = True
        self.closing = False

    def poke(self) -> None:
        with self._lock:
            if self._open and not self.closing:
                with contextlib.suppress(OSError):  # full: it is poked already
                    os.write(self._write, b"\0")

    def wait(self, seconds: float) -> None:
        raw = self.raw
        if self.closing or not self._open:
            self.close()
            time.sleep(seconds)
            return
        if isinstance(raw, ssl.SSLSocket) and raw.pending():
            return  # decrypted data waits in the TLS layer: the reactor reads it now
        try:
            watched = [self._read] if raw is None else [raw, self._read]
            ready, _, _ = select.select(watched, [], [], max(seconds, MAX_WAIT))
        except (OSError, ValueError):  # the socket was closed meanwhile
            time.sleep(seconds)
            return
        if self._read in ready:
            with contextlib.suppress(OSError):
                os.read(self._read, 4096)

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                for fd in (self._read, self._write):
                    with contextlib.suppress(OSError):
                        os.close(fd)


def install(assoc: Any) -> None:
    """Give both reactors of an association whose connection just opened a waiter (once)."""
    dul = assoc.dul
    sock = dul.socket
    raw = sock.socket if sock is not None else None
    if raw is None or getattr(dul, "_relay_waiter", None) is not None:
        return
    dul_waiter = _Waiter(raw)
    _poke_on(dul.to_provider_queue, "put", dul_waiter)
    _attach(dul, dul_waiter)
    reactor = _Waiter()
    _poke_on(dul.to_user_queue, "put", reactor)
    _poke_on(assoc.dimse.msg_queue, "put", reactor)
    _poke_on(assoc._reactor_checkpoint, "clear", reactor)
    _attach(assoc, reactor)


def _poke_on(obj: Any, method: str, waiter: _Waiter) -> None:
    original = getattr(obj, method)

    def call_and_poke(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        waiter.poke()
        return result

    setattr(obj, method, call_and_poke)


def _attach(thread: Any, waiter: _Waiter) -> None:
    thread._relay_waiter = waiter
    weakref.finalize(thread, waiter.close)
    waiter.poke()  # anything that came before the waiter was there


def uninstall(assoc: Any) -> None:
    """The association's connection closed: its reactors close their pipes at their next
    sleep and sleep plainly from then on."""
    for thread in (assoc.dul, assoc):
        waiter = getattr(thread, "_relay_waiter", None)
        if waiter is not None:
            waiter.closing = True


for _module in (pynetdicom.dul, pynetdicom.association):
    _module.time = _Clock()  # type: ignore[attr-defined]
