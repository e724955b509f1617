"""Reading tabs of local studies: one :class:`ViewerWidget` per study, opened or brought forward.

A spare reading tab is built ahead of time when the window is idle and handed to the next study
opened (building one costs milliseconds that would come before the first image). Thumbnails are
read once by a :class:`ThumbnailLoader` and shown in the browser and in every reading tab.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QTabWidget, QWidget

from app.model import Study
from app.store.local import Store
from app.store.opened import OpenStudies
from app.ui.format import study_title
from app.ui.thumbs import ThumbnailLoader
from app.ui.view_state import ViewState
from app.ui.viewer import ViewerWidget
from app.workflow.priors import prior_studies

log = logging.getLogger(__name__)

#: While a series loads the spare viewer waits; the controller looks again this often (ms).
SPARE_RETRY_MS = 200


class ReadingController(QObject):
    """The reading tabs in ``tabs``; ``window`` is their parent and tells when it is shown."""

    thumbnail = Signal(str, object)  # series uid, QImage (for the browser)
    closed = Signal(str)  # study uid whose reading tab was closed
    message = Signal(str, int)  # text for the status bar, milliseconds
    opened = Signal(object)  # a new reading tab's ViewerWidget (its priors are searched)

    def __init__(self, store: Store, tabs: QTabWidget, window: QWidget) -> None:
        super().__init__(window)
        self.store = store
        self.tabs = tabs
        self.window = window
        self.viewers: dict[str, ViewerWidget] = {}
        #: studies open here, told to other processes so a purge leaves them alone
        self.open_studies = OpenStudies(store.home)
        self.view_state = ViewState.load(store.home)
        self.thumbnails = ThumbnailLoader(store, self)
        self.thumbnails.ready.connect(self._on_thumbnail)
        #: At most one; it holds no series.
        self.spare: ViewerWidget | None = None
        self._spare_timer = QTimer(self, singleShot=True)
        self._spare_timer.timeout.connect(self._on_spare_timer)

    # -- opening -----------------------------------------------------------------------------
    def open_study(self, study_uid: str, series_uid: str | None = None) -> ViewerWidget | None:
        """Open (or bring forward) the study's reading tab; show ``series_uid`` if given."""
        viewer = self.viewers.get(study_uid)
        if viewer is None:
            study = self.store.study(study_uid)
            if study is None:
                return None
            priors = prior_studies(self.store, study)  # earlier, same patient and issuer
            known = {p.study_instance_uid for p in priors} | {study_uid}
            priors += [s for s in self.store.patient_studies(study.patient.patient_id)
                       if s.study_instance_uid not in known]  # later ones: listed too
            viewer = self.new_viewer(study, priors)
            self.viewers[study_uid] = viewer
            self.open_studies.add(study_uid)
            self.request_thumbnails([study, *priors])
            self.tabs.addTab(viewer, study_title(study))
            log.info("study opened in a new reading tab")  # no identifiers at INFO
            if series_uid is None:
                viewer.open_default()
            self.opened.emit(viewer)
        if series_uid is not None:
            viewer.show_series(series_uid)
        self.tabs.setCurrentWidget(viewer)
        viewer.focus_view()  # keyboard shortcuts work at once, without a click into the image
        self._spare_timer.start(SPARE_RETRY_MS)  # the next spare, once the series is in
        return viewer

    def open_series(self, series_uid: str) -> ViewerWidget | None:
        """Open the study of a local series at that series."""
        series = self.store.series(series_uid)
        if series is None:
            return None
        return self.open_study(series.study_instance_uid, series_uid)

    def new_viewer(self, study: Study, priors: list[Study] | None = None) -> ViewerWidget:
        """A reading tab for ``study``: the spare if there is one, else a new one."""
        viewer, self.spare = self.spare, None
        if viewer is None:
            viewer = ViewerWidget(self.store, study, self.window, priors=priors,
                                  last_slice=self.view_state.last_slice)
        else:
            viewer.set_study(study, priors)
        viewer.status_message.connect(lambda text: self.message.emit(text, 10000))
        return viewer

    def request_thumbnails(self, studies: list[Study]) -> None:
        for study in studies:
            for series in study.series:
                self.thumbnails.request(series.series_instance_uid)

    # -- closing -----------------------------------------------------------------------------
    def close_tab(self, index: int) -> None:
        """Close the reading tab at ``index`` (other tabs are not closable)."""
        widget = self.tabs.widget(index)
        if isinstance(widget, ViewerWidget):
            widget.close_all()
            uid = widget.study.study_instance_uid
            self.viewers.pop(uid, None)
            self.open_studies.discard(uid)
            self.tabs.removeTab(index)
            widget.deleteLater()
            self._spare_timer.start(0)
            self.closed.emit(uid)

    def close_study(self, study_uid: str) -> None:
        """Close the study's reading tab, if one is open."""
        viewer = self.viewers.get(study_uid)
        if viewer is not None:
            self.close_tab(self.tabs.indexOf(viewer))

    def stop(self) -> None:
        """The window is closing: release the series, stop thumbnails, keep the last slices."""
        self._spare_timer.stop()
        for viewer in self.viewers.values():
            viewer.close_all()
        self.open_studies.clear()
        self.thumbnails.stop()
        self.view_state.save(self.store.home)

    # -- the spare tab -----------------------------------------------------------------------
    def window_shown(self) -> None:
        if self.spare is None:
            self._spare_timer.start(0)  # the first spare as soon as the window is up

    def _on_spare_timer(self) -> None:
        """Build the spare reading tab, unless there is one or a series is still loading (its
        loader would wait for the GUI thread meanwhile)."""
        if self.spare is not None or not self.window.isVisible():
            return
        if any(s.loading for v in self.viewers.values() for s in v.sessions.values()):
            self._spare_timer.start(SPARE_RETRY_MS)
            return
        spare = ViewerWidget(self.store, Study(study_instance_uid=""), self.window,
                             last_slice=self.view_state.last_slice)
        spare.hide()
        self.spare = spare
        # its first paint in an event of its own: two short stalls rather than one long one
        QTimer.singleShot(0, lambda: self._warm_up(spare))

    def _warm_up(self, spare: ViewerWidget) -> None:
        if self.spare is spare:  # not taken meanwhile by a study being opened
            spare.warm_up(self.tabs.currentWidget().size())

    def _on_thumbnail(self, series_uid: str, image: QImage) -> None:
        for viewer in self.viewers.values():
            viewer.set_thumbnail(series_uid, image)
        self.thumbnail.emit(series_uid, image)
