"""Thumbnails made on a background thread and delivered to the GUI thread as a signal."""

from __future__ import annotations

import logging
import queue
import threading

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from app.render.thumbnails import series_thumbnail
from app.store.local import Store
from app.ui.crossthread import ThreadPost

log = logging.getLogger(__name__)


class ThumbnailLoader(QObject):
    """Queue series UIDs with :meth:`request`; :attr:`ready` brings ``(uid, QImage)`` back."""

    ready = Signal(str, object)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._done: dict[str, QImage | None] = {}
        self._post = ThreadPost(self)  # the window may go while the thread works
        self._thread = threading.Thread(target=self._run, name="thumbnails", daemon=True)
        self._thread.start()

    def request(self, series_uid: str) -> None:
        if series_uid in self._done:
            image = self._done[series_uid]
            if image is not None:
                self.ready.emit(series_uid, image)
            return
        self._queue.put(series_uid)

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            uid = self._queue.get()
            if uid is None:
                return
            if uid in self._done:
                continue
            try:
                array = series_thumbnail(self.store, uid)
            except Exception:  # never let a thumbnail take the thread down
                log.info("thumbnail failed", exc_info=True)
                array = None
            image = to_qimage(array) if array is not None else None
            self._done[uid] = image
            if image is not None and not self._post.emit("ready", uid, image):
                return  # the window went away while we worked


def to_qimage(image: np.ndarray) -> QImage:
    image = np.ascontiguousarray(image)
    fmt = QImage.Format.Format_Grayscale8 if image.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(image.data, image.shape[1], image.shape[0], image.strides[0], fmt).copy()
