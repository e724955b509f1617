"""A study read from a hub while it downloads, bridged to the viewer.

:class:`RemoteOpener` does the network part of opening (the fetch job, the hub's series list,
the metadata of the series to show first) on a thread and hands the
:class:`~app.net.remote.RemoteStudy` to the GUI thread; before that, as soon as it has arrived,
one image guessed to be in the middle of that series (:mod:`app.net.preview`), which a
:class:`PreviewSeries` shows until the plan takes over. :class:`RemoteLoadedSeries` is a
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
from app.net.preview import Preview
from app.net.remote import RemoteSeries, RemoteStudy
from app.store.local import Store
from app.ui.crossthread import ThreadPost
from app.ui.series_session import LoadedSeries
from app.volume.array import Volume

log = logging.getLogger(__name__)


class RemoteOpener(QObject):
    """Opens a remote study off the GUI thread: ``previewed(preview)`` (maybe),
    ``opened(remote)`` or ``failed(message)``, then ``finished(result)`` when its download is
    over."""

    previewed = Signal(object)  # Preview: one image of the default series, before its plan
    opened = Signal(object)  # RemoteStudy, its default series open
    failed = Signal(str)
    finished = Signal(object)  # TransferResult | None

    def __init__(self, start: Callable[[], RemoteStudy], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._start = start
        self.remote: RemoteStudy | None = None
        self._post = ThreadPost(self)  # the window may go while the thread runs

    def start(self) -> None:
        threading.Thread(target=self._run, name="open-remote", daemon=True).start()

    def _run(self) -> None:
        try:
            remote = self._start()
            self.remote = remote
            remote.open_series(preview=self._forward_preview)
            remote.on_finished(self._forward_finished)
            self._post.emit("opened", remote)
        except Exception as exc:  # the message is shown; never a traceback dialog
            log.warning("cannot open a remote study: %s", type(exc).__name__, exc_info=True)
            self._post.emit("failed", str(exc) or type(exc).__name__)

    def _forward_preview(self, preview: Preview) -> None:
        self._post.emit("previewed", preview)

    def _forward_finished(self, result: object) -> None:
        self._post.emit("finished", result)  # nothing when the window is gone: the download is done


class RemoteLoadedSeries(LoadedSeries):
    """A series whose files are still coming from the hub."""

    def __init__(self, store: Store, study: Study, series: Series, remote: RemoteStudy, *,
                 focus: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(store, study, series, focus=focus, parent=parent)
        self.remote = remote
        self._uid = series.series_instance_uid

    def start(self) -> None:
        """Plan from the hub's metadata and start reading, on a thread (network); a series
        planned already (the one the study opened with) is taken here, so a viewport showing
        its preview goes straight to the volume, without an empty frame in between."""
        opened = self.remote.series(self._uid)
        if opened is not None:  # no network, and open_series' lock could be held elsewhere
            self._use(opened)
            return
        threading.Thread(target=self._open_remote, name="open-remote-series",
                         daemon=True).start()

    def _use(self, opened: RemoteSeries) -> None:
        self.issues = list(opened.plan.issues)
        self.progress = opened.loader.progress
        self._attach(opened.loader)

    def _open_remote(self) -> None:
        try:
            self._use(self.remote.open_series(self._uid, self._focus))
        except Exception as exc:
            log.warning("cannot open a remote series: %s", type(exc).__name__, exc_info=True)
            self.error = str(exc) or type(exc).__name__
            if isinstance(exc, RelayError):
                self.error = f"{self.error} (hub '{self.remote.hub}')"
            self._post.emit("failed", self.error)

    def _attach(self, loader) -> bool:  # type: ignore[no-untyped-def]
        middle = loader.volume.shape[0] // 2
        self.watch(middle)  # the series' thumbnail (see ViewerWidget)
        if not super()._attach(loader):
            return False
        if loader.volume.ready[middle] and middle in self._watched:
            # decoded before the volume was subscribed to (the preview's pixels): no signal
            self._watched.discard(middle)
            self._post.emit("slice_ready", middle, True)
        return True

    def set_focus(self, k: int) -> None:
        self.remote.focus(self._uid, k)

    def first_slice(self) -> int:
        """Where the plan started (the preview's instance when it was near the middle)."""
        opened = self.remote.series(self._uid)
        if self._focus is None and opened is not None:
            return opened.first
        return super().first_slice()

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
        if expected and arrived < expected:  # the count first: the strip cuts the name
            hub = self.remote.hub.replace("-", "\u2011")  # the strip wraps at spaces only
            return f"{arrived} / {expected} from {hub}"
        return super().progress_text()

    def close(self) -> None:
        """Stop decoding; the download goes on (the study becomes local either way)."""
        if self.loader is not None:
            self.loader.cancel()


class PreviewSeries(LoadedSeries):
    """One image of a remote series shown while the series is still being planned.

    Its volume is the instance alone (its own geometry), labelled with its own InstanceNumber:
    where it lies in the series is for the plan to say. It is not scrolled; a viewport says so
    and the series' :class:`RemoteLoadedSeries` replaces it once the plan exists.
    """

    stand_in = True

    def __init__(self, store: Store, preview: Preview, hub: str, *,
                 parent: QObject | None = None) -> None:
        super().__init__(store, preview.study, preview.series, parent=parent)
        self.preview = preview
        self.hub = hub
        #: The user tried to scroll (the notice then says when it will work).
        self.scroll_tried = False
        volume = Volume.allocate(preview.stack)
        volume.array[0] = preview.pixels.pixels
        volume.mark_ready(0)
        self.volume = volume

    def start(self) -> None:
        """Nothing to load: the image is decoded already."""

    def set_focus(self, k: int) -> None:
        """Nothing to prioritise: the plan decides what comes next."""

    def slice_label(self, k: int, n: int) -> str:
        number = self.preview.instance_number
        return f"Im #{number} (preview)" if number is not None else "Im (preview, no number)"

    def notice(self) -> str:
        if self.error:  # the study could not be opened after all: say so over the image
            return self.error
        count = f"{self.preview.count} images" if self.preview.count else "the images"
        text = f"Preview — placing {count} from {self.hub}…"
        if self.scroll_tried:
            text += "\nScrolling starts as soon as every slice is placed (a moment)."
        return text

    def progress_text(self) -> str:
        return ""
