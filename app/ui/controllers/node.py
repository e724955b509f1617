"""Relay's DICOM node in the window: run in the background while the window is open (when the
node settings say so), restarted when they change; each study an association brings goes to
the Incoming list (one notice per study)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from app.errors import RelayError
from app.net.dimse.listener import Listener
from app.net.dimse.node import NodeSettings
from app.net.dimse.receive import StudyReceived
from app.net.forward import Forwarder
from app.settings import load_settings
from app.store.local import Store
from app.ui.crossthread import ThreadPost

log = logging.getLogger(__name__)


class NodeController(QObject):
    """Owns the window's :class:`Listener` (None while the node is off)."""

    message = Signal(str, int)  # text for the status bar, milliseconds
    received = Signal(object)  # StudyReceived, on the GUI thread (arriving, or its end)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.listener: Listener | None = None
        self.forwarder: Forwarder | None = None
        self.status = "Relay's node is off."
        self._post = ThreadPost(self)  # queued: from an association thread to the GUI thread

    def start(self) -> None:
        """Start the node if the settings ask for it."""
        try:
            node = load_settings(self.store.home).node
        except RelayError as exc:
            self._set_status(f"Relay's node is off: {exc}", 15000)
            return
        self.apply(node)

    def apply(self, node: NodeSettings) -> None:
        """(Re)start or stop the node for ``node``."""
        self.stop()
        if not node.listen:
            self._set_status("Relay's node is off.", 0)
            return
        listener = Listener(self.store, node)
        listener.subscribe(self._on_study)
        listener.subscribe_arriving(self._on_study)
        forwarder = Forwarder(self.store)
        if forwarder.active():  # the forwarding rules apply to what the node receives
            forwarder.attach(listener)
            forwarder.resume()
        try:
            host, port = listener.start()
        except RelayError as exc:
            self._set_status(f"Relay's node could not start: {exc}", 20000)
            return
        self.listener = listener
        self.forwarder = forwarder if forwarder.active() else None
        where = "every interface" if host == "0.0.0.0" else host
        self._set_status(f"Relay's node {node.ae_title} is receiving on port {port} "
                         f"({where}).", 8000)

    def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop(grace=2.0)
        forwarder, self.forwarder = self.forwarder, None
        if forwarder is not None:  # what is left stays queued: the transfer queue sends it
            forwarder.close(timeout=2.0)

    def _on_study(self, study: StudyReceived) -> None:
        self._post.emit("received", study)  # nothing once the window is gone

    def _set_status(self, text: str, msecs: int) -> None:
        self.status = text
        if msecs:
            self.message.emit(text, msecs)
