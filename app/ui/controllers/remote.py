"""Reading a study from a hub while it downloads (a fetch job in the transfer queue).

The reading tab opens at once with a notice; a preview image comes first, then the planned
series, and the tab title names the patient and the hub. :attr:`RemoteReadingController.loaded`
fires when the download ends, whatever its outcome, so the window can refresh the store views.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.model import Study
from app.net.preview import Preview
from app.net.remote import RemoteStudy
from app.net.runner import QueueRunner
from app.net.send import TransferResult
from app.ui.controllers.reading import ReadingController
from app.ui.format import study_title
from app.ui.remote_session import RemoteOpener
from app.ui.viewer import ViewerWidget

log = logging.getLogger(__name__)


def result_text(result: TransferResult, hub: str = "") -> str:
    """The status-bar words for a finished remote read from ``hub`` (a hub's or a PACS's
    name)."""
    if result.state == "verified":
        where = hub or "the hub"
        return f"{result.verified} of {result.instances} images from {where} are local now."
    return (f"Download stopped: {result.message or 'not every image arrived'} "
            f"({result.verified} of {result.instances} local)")


class RemoteReadingController(QObject):
    """Opens hub studies into reading tabs managed by ``reading``."""

    message = Signal(str, int)  # text for the status bar, milliseconds
    active = Signal(bool)  # True while at least one study is downloading
    loaded = Signal(str)  # study uid: its download ended (verified, stopped or failed)
    #: The first image told who the patient is (viewer, Study): its priors can be searched
    #: before the study's series are planned.
    patient_known = Signal(object, object)

    def __init__(self, reading: ReadingController, runner: Callable[[], QueueRunner],
                 window: QWidget) -> None:
        super().__init__(window)
        self.reading = reading
        self.runner = runner
        self.window = window
        self.openers: dict[str, RemoteOpener] = {}

    def open_remote_study(self, hub_name: str, study_uid: str) -> ViewerWidget:
        """Open a study that is on the hub at once: its viewer shows the slice in view as soon
        as it has arrived while the rest downloads."""
        tabs = self.reading.tabs
        viewer = self.reading.viewers.get(study_uid)
        if viewer is not None and viewer.remote is None and study_uid not in self.openers \
                and not viewer.study.series:  # an earlier attempt failed: try again
            self.reading.close_tab(tabs.indexOf(viewer))
            viewer = None
        if viewer is not None:
            tabs.setCurrentWidget(viewer)
            return viewer
        viewer = self.reading.new_viewer(Study(study_instance_uid=study_uid))
        viewer.set_notice(f"Opening the study from {hub_name}…")
        self.reading.viewers[study_uid] = viewer
        tabs.addTab(viewer, f"{hub_name} · opening…")
        tabs.setCurrentWidget(viewer)
        runner = self.runner()
        opener = RemoteOpener(lambda: runner.open_remote(hub_name, study_uid), self)
        opener.previewed.connect(
            lambda preview, v=viewer, h=hub_name: self._on_preview(v, h, preview))
        opener.opened.connect(lambda remote, v=viewer: self._on_opened(v, remote))
        opener.failed.connect(lambda msg, v=viewer, h=hub_name: self._on_failed(v, h, msg))
        opener.finished.connect(lambda result, v=viewer: self._on_finished(v, result))
        self.openers[study_uid] = opener
        opener.start()
        self.active.emit(True)
        return viewer

    def open_dialog(self, home: Path) -> None:
        """Ask for a hub and a study, then :meth:`open_remote_study`."""
        from app.ui.remote_dialog import OpenRemoteDialog

        dialog = OpenRemoteDialog(home, self.window)
        if dialog.exec() and dialog.study_uid():
            self.open_remote_study(dialog.hub_name(), dialog.study_uid())

    def _is_open(self, viewer: ViewerWidget) -> bool:
        return viewer in self.reading.viewers.values()

    def _set_title(self, viewer: ViewerWidget, text: str) -> None:
        index = self.reading.tabs.indexOf(viewer)
        if index >= 0:
            self.reading.tabs.setTabText(index, text)

    def _on_preview(self, viewer: ViewerWidget, hub: str, preview: Preview) -> None:
        """One image of the study is here before its series is planned: show it."""
        if not self._is_open(viewer) or (
                self.openers.get(viewer.study.study_instance_uid) is None):
            return  # closed, or opening failed meanwhile (the viewer says why)
        viewer.show_preview(preview, hub)
        self.patient_known.emit(viewer, preview.study)
        if viewer.remote is None:
            self._set_title(viewer, f"{study_title(preview.study)} ({hub})")

    def _on_opened(self, viewer: ViewerWidget, remote: RemoteStudy) -> None:
        if not self._is_open(viewer):
            return
        viewer.set_remote(remote)
        self._set_title(viewer, f"{study_title(viewer.study)} ({remote.hub})")
        viewer.open_default()
        self.reading.opened.emit(viewer)  # its priors are searched
        self.message.emit(f"Reading the study from {remote.hub} while it downloads.", 8000)

    def _forget(self, study_uid: str) -> None:
        self.openers.pop(study_uid, None)
        if not self.openers:
            self.active.emit(False)

    def _on_failed(self, viewer: ViewerWidget, hub: str, message: str) -> None:
        self._forget(viewer.study.study_instance_uid)
        if not self._is_open(viewer):
            return
        viewer.set_notice(f"Cannot open the study from {hub}:\n{message}")
        self.message.emit(f"Cannot open the study from {hub}: {message}", 15000)

    def _on_finished(self, viewer: ViewerWidget, result: TransferResult | None) -> None:
        study_uid = viewer.study.study_instance_uid
        self._forget(study_uid)
        self.loaded.emit(study_uid)  # the window refreshes its store views first
        local = self.reading.store.study(study_uid)
        if local is not None:
            self.reading.request_thumbnails([local])  # now from the whole series
        if self._is_open(viewer):
            viewer.remote_finished()
        if result is not None:
            hub = viewer.remote.hub if viewer.remote is not None else ""
            self.message.emit(result_text(result, hub), 15000)
