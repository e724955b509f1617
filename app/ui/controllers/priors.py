"""Earlier studies of the patient for a reading tab: searched, listed, the best one fetched.

When a study opens, :meth:`PriorsController.search` asks the local store and every configured
hub (through the Peer seam, off the GUI thread) for earlier studies of the patient
(:func:`app.workflow.priors.find_priors`). Local priors are in the tab's strip at once; the
search result adds the hub's; when the most relevant prior is only on a hub it is read from
there like any remote study (the slice in view first), and the tab puts it beside today's
study when its hanging protocol has a place for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.errors import RelayError
from app.model import Study
from app.net import hubs
from app.net.dimse import pacs
from app.net.dimse.client import DimseClient
from app.net.peer import Peer
from app.net.remote import RemoteStudy
from app.net.runner import QueueRunner
from app.settings import load_settings
from app.store.local import Store
from app.tasks import Progress
from app.ui.remote_session import RemoteOpener
from app.ui.viewer import ViewerWidget
from app.ui.worker import TaskWorker
from app.workflow.priors import PriorSearch, find_priors

log = logging.getLogger(__name__)


def configured_pacs(home: Path) -> dict[str, DimseClient]:
    """A DIMSE client for every PACS in the settings."""
    settings = load_settings(home)
    out: dict[str, DimseClient] = {}
    for profile in settings.pacs:
        try:
            out[profile.name] = pacs.connect(settings, profile.name, home)
        except RelayError as exc:
            log.warning("PACS %s not searched for priors: %s", profile.name, exc)
    return out


def configured_peers(home: Path) -> dict[str, Peer]:
    """Every hub in the settings that can be connected to (one that cannot is logged)."""
    settings = load_settings(home)
    peers: dict[str, Peer] = {}
    for hub in settings.hubs:
        try:
            peers[hub.name] = hubs.connect(home, hub.name, settings, pool_size=2)
        except RelayError as exc:
            log.warning("hub %s not searched for priors: %s", hub.name, exc)
    return peers


class PriorsController(QObject):
    """Finds and brings the priors of the studies opened in reading tabs."""

    message = Signal(str, int)  # text for the status bar, milliseconds
    #: A search ended: the viewer and its :class:`PriorSearch` (tests, scripts).
    searched = Signal(object, object)
    #: The most relevant prior is on a PACS: (PACS name, study UID) to retrieve.
    retrieve_requested = Signal(str, str)

    def __init__(self, store: Store, runner: Callable[[], QueueRunner], window: QWidget,
                 peers: Callable[[], dict[str, Peer]] | None = None) -> None:
        super().__init__(window)
        self.store = store
        self.runner = runner
        self._peers = peers or (lambda: configured_peers(store.home))
        self._workers: set[TaskWorker] = set()
        self._openers: dict[str, RemoteOpener] = {}
        self._searched: set[tuple[int, str]] = set()

    def search(self, viewer: ViewerWidget, study: Study | None = None) -> None:
        """Look for the priors of the viewer's study (or of ``study``, known from its first
        image before the viewer has it) in the background, once per tab and study."""
        study = study or viewer.study
        key = (id(viewer), study.study_instance_uid)
        if not study.patient.patient_id or key in self._searched:
            return
        self._searched.add(key)
        viewer.destroyed.connect(lambda *_: self._searched.discard(key))

        def run(_progress: Progress) -> PriorSearch:
            return find_priors(self.store, study, self._peers(),
                               configured_pacs(self.store.home))

        worker = TaskWorker(run, "priors", self)
        self._workers.add(worker)
        worker.succeeded.connect(lambda found, v=viewer: self._on_found(v, found))
        worker.failed.connect(lambda msg: log.warning("prior search failed: %s", msg))
        worker.finished.connect(lambda w=worker: self._workers.discard(w))
        worker.start()

    def _on_found(self, viewer: ViewerWidget, found: PriorSearch) -> None:
        if not shiboken6.isValid(viewer) or not shiboken6.isValid(viewer.strip):
            return  # the tab was closed while its priors were searched
        for problem in found.problems:
            self.message.emit(problem, 10000)
        viewer.set_prior_search(found)
        self.searched.emit(viewer, found)
        best = found.most_relevant
        if best is None or best.local or viewer.has_prior_open():
            return
        if best.kind == "hub":
            self.fetch(viewer, best.source, best.study_instance_uid)
        else:  # a PACS: retrieved into the store (C-GET / C-MOVE), listed meanwhile
            self.retrieve_requested.emit(best.source, best.study_instance_uid)

    def fetch(self, viewer: ViewerWidget, hub: str, study_uid: str) -> None:
        """Read a prior from ``hub`` while it downloads and put it beside today's study."""
        if study_uid in self._openers:
            return
        runner = self.runner()
        opener = RemoteOpener(lambda: runner.open_remote(hub, study_uid), self)
        opener.opened.connect(lambda remote, v=viewer: self._on_opened(v, remote))
        opener.failed.connect(lambda msg, h=hub: self._on_failed(study_uid, h, msg))
        opener.finished.connect(lambda _result, u=study_uid: self._openers.pop(u, None))
        self._openers[study_uid] = opener
        self.message.emit(f"Bringing the prior from {hub}…", 5000)
        opener.start()

    def _on_opened(self, viewer: ViewerWidget, remote: RemoteStudy) -> None:
        try:
            viewer.add_remote_prior(remote)
        except RuntimeError:  # the tab was closed meanwhile
            return

    def _on_failed(self, study_uid: str, hub: str, message: str) -> None:
        self._openers.pop(study_uid, None)
        self.message.emit(f"The prior could not be read from {hub}: {message}", 10000)
