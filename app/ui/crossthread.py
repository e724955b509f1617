"""Emit a QObject's signals from worker threads, safely even while the object is being deleted.

A worker thread that calls ``owner.some_signal.emit(...)`` races the GUI thread deleting
``owner`` (its window closed, its parent deleted): PySide checks that the C++ object exists and
then uses it, and a deletion between the two is a segmentation fault. Catching RuntimeError
only covers an owner deleted well before the emit. CI saw the crash once in a full run, from a
series' loader thread while its viewer went away; a scratch loop that deletes an object while
a thread emits on it crashes within 2000 rounds every time.

:class:`ThreadPost` never lets a worker thread touch the owner. The worker emits on a courier
that has no parent, so Python owns it and it lives as long as the post does (the worker holds
the post). The courier's signal is queued to a receiver that is a child of the owner, and the
receiver re-emits the owner's signal on the GUI thread. When the owner is deleted, the
receiver goes with it, Qt drops the connection and whatever was still queued for it, and
:meth:`ThreadPost.emit` answers False from then on, so the worker can stop.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot


class _Courier(QObject):
    """The worker side: no parent, so nothing but Python's references ends it."""

    carry = Signal(str, int, object)  # the owner's signal's name, the run (0: any), arguments


class _Receiver(QObject):
    """The GUI side: a child of the owner, deleted with it (and with it the connection)."""

    def __init__(self, owner: QObject, current: list[int]) -> None:
        super().__init__(owner)
        self._current = current  # the post's newest run, shared

    @Slot(str, int, object)
    def deliver(self, name: str, run: int, args: tuple[object, ...]) -> None:
        owner = self.parent()
        if owner is not None and run in (0, self._current[0]):
            getattr(owner, name).emit(*args)


class ThreadPost:
    """Emits ``owner``'s signals from any thread; create it on the owner's (the GUI) thread.

    Emitted from the GUI thread, the owner's signal is emitted at once, as a direct emit would
    be; from another thread it is queued to the GUI thread, as a direct emit would be too.

    A task run again while an earlier run may still be sending (a search started again, or
    replaced by another) numbers its runs: :meth:`new_run` on the GUI thread, each emit with
    ``run=`` that number; what an older run sends is not delivered once a newer one began (or
    :meth:`drop_run` said so), even if it was already queued.
    """

    def __init__(self, owner: QObject) -> None:
        self._owner_type = type(owner)
        self._gone = threading.Event()
        self._current = [0]  # the newest run (read by the receiver on the GUI thread)
        self._courier = _Courier()
        self._receiver = _Receiver(owner, self._current)
        self._courier.carry.connect(self._receiver.deliver)
        owner.destroyed.connect(self._gone.set)

    def new_run(self) -> int:
        """A new run of the owner's task (GUI thread): only its emits are delivered from now."""
        self._current[0] += 1
        return self._current[0]

    def drop_run(self) -> None:
        """Nothing more of the current run is delivered (GUI thread)."""
        self._current[0] += 1

    @property
    def gone(self) -> bool:
        """The owner was deleted: nothing emitted now reaches anybody."""
        return self._gone.is_set()

    def emit(self, signal: str, *args: object, run: int = 0) -> bool:
        """Emit the owner's signal named ``signal`` (of ``run``, see :meth:`new_run`; 0: of
        none); False (nothing sent) once the owner is gone."""
        if not isinstance(getattr(self._owner_type, signal, None), Signal):
            raise AttributeError(f"{self._owner_type.__name__} has no signal {signal!r}")
        if self._gone.is_set():
            return False
        self._courier.carry.emit(signal, run, args)
        return True
