"""A study read from a hub while it downloads, bridged to the viewer.

:class:`RemoteOpener` does the network part of opening (the fetch job, the hub's series list,
the metadata of the series to show first) on a thread and hands the
:class:`~app.net.remote.RemoteStudy` to the GUI thread. :class:`RemoteLoadedSeries` is a
:class:`~app.ui.series_session.LoadedSeries` whose slices come from the hub: scrolling moves the
download's priority, and a slice not here yet says that it is still coming.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.errors import RelayError
from app.model import Series, Study
from app.net.remote import RemoteStudy
from app.store import Store
from app.ui.series_session import LoadedSeries

log = logging.getLogger(__name__)


class RemoteOpener(QObject):
    """Opens a remote study off the GUI thread: ``opened(remote)`` or ``failed(message)``,
    then ``finished(result)`` when its download is over."""

    opened = Signal(object)  # RemoteStudy, its default series open
    failed = Signal(str)
    finished = Signal(object)  # TransferResult | None

    def __init__(self, start: Callable[[], RemoteStudy], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._start = start
        self.remote: RemoteStudy | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="open-remote", daemon=True).start()

    def _run(self) -> None:
        try:
            remote = self._start()
            self.remote = remote
            remote.open_series()
            remote.on_finished(self._forward_finished)
            self.opened.emit(remote)
        except Exception as exc:  # the message is shown; never a traceback dialog
            log.warning("cannot open a remote study: %s", type(exc).__name__, exc_info=True)
            try:
                self.failed.emit(str(exc) or type(exc).__name__)
            except RuntimeError:
                pass

    def _forward_finished(self, result: object) -> None:
        try:
            self.finished.emit(result)
        except RuntimeError:  # the window is gone; the download itself is done
            pass


class RemoteLoadedSeries(LoadedSeries):
    """A series whose files are still coming from the hub."""

    def __init__(self, store: Store, study: Study, series: Series, remote: RemoteStudy, *,
                 focus: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(store, study, series, focus=focus, parent=parent)
        self.remote = remote
        self._uid = series.series_instance_uid

    def start(self) -> None:
        """Plan from the hub's metadata and start reading, on a thread (network)."""
        threading.Thread(target=self._open_remote, name="open-remote-series",
                         daemon=True).start()

    def _open_remote(self) -> None:
        try:
            opened = self.remote.open_series(self._uid, self._focus)
            self.issues = list(opened.plan.issues)
            self.progress = opened.loader.progress
            self._attach(opened.loader)
        except Exception as exc:
            log.warning("cannot open a remote series: %s", type(exc).__name__, exc_info=True)
            self.error = str(exc) or type(exc).__name__
            if isinstance(exc, RelayError):
                self.error = f"{self.error} (hub '{self.remote.hub}')"
            self.failed.emit(self.error)

    def _attach(self, loader) -> bool:  # type: ignore[no-untyped-def]
        self.watch(loader.volume.shape[0] // 2)  # the series' thumbnail (see ViewerWidget)
        return super()._attach(loader)

    def set_focus(self, k: int) -> None:
        self.remote.focus(self._uid, k)

    def pending_text(self, k: int) -> str:
        n = self.volume.shape[0] if self.volume is not None else 0
        state = self.remote.state(self._uid, k)
        if state == "arrived":
            return f"Slice {k + 1} of {n} arrived from {self.remote.hub}, decoding…"
        if self.remote.finished:
            return f"Slice {k + 1} of {n} did not arrive from {self.remote.hub}"
        return f"Slice {k + 1} of {n} — still coming from {self.remote.hub}…"

    def progress_text(self) -> str:
        arrived, expected = self.remote.arrival(self._uid)
        if expected and arrived < expected:
            hub = self.remote.hub.replace("-", "\u2011")  # the strip wraps at spaces only
            return f"from {hub}: {arrived} / {expected}"
        return super().progress_text()

    def close(self) -> None:
        """Stop decoding; the download goes on (the study becomes local either way)."""
        if self.loader is not None:
            self.loader.cancel()
