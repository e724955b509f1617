"""Export a cine loop of the active viewport, or the 3D view turning once around, as an MP4.

Cine: one frame per slice, the viewport as on screen (with the patient overlay and the
measurements, or the image alone), made one slice per event-loop turn so the window keeps
answering, and encoded meanwhile on a thread (:class:`app.render.movie.MovieWriter`).
3D: the scene is taken out of its window while a worker thread renders the turn offscreen at
the view's size (:meth:`app.render.scene3d.VolumeScene.render_still`), then put back.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.render.movie import MovieWriter
from app.render.scene3d import VolumeScene
from app.tasks import Progress
from app.ui.view_export import to_rgb
from app.ui.viewport import ViewportWidget
from app.ui.worker import TaskWorker

log = logging.getLogger(__name__)

#: Frames of a 3D turn (5° apart) and its speed: a 4.8 s loop.
TURN_FRAMES = 72
TURN_FPS = 15.0


class CineMovie(QObject):
    """Every slice of ``viewport``'s series, first to last, into ``path`` at ``fps``."""

    finished = Signal(str)  # the path
    failed = Signal(str)  # what went wrong

    def __init__(self, viewport: ViewportWidget, path: Path | str, *, fps: float,
                 overlays: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        volume = viewport.volume
        if volume is None or not volume.finished:
            raise ValueError("the series is still loading: export the cine once it has loaded")
        self.viewport = viewport
        self.path = str(path)
        self.overlays = overlays
        self.total = viewport.n_slices
        self.done = 0
        self._back_to = viewport.state.k
        self._writer = MovieWriter(path, fps=fps)
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> CineMovie:
        self._timer.start()
        return self

    def _on_tick(self) -> None:
        """One slice per turn of the event loop."""
        try:
            self.viewport.show_slice(self.done)
            self._writer.put(to_rgb(self.viewport.grab_view(self.overlays)))
            self.done += 1
            if self.done < self.total:
                return
            self._timer.stop()
            self._writer.close()
        except Exception as exc:  # noqa: BLE001 - told to the user, the window goes on
            self._timer.stop()
            log.warning("cine movie failed: %s", exc)
            self.viewport.show_slice(self._back_to)
            self.failed.emit(str(exc))
            return
        self.viewport.show_slice(self._back_to)
        self.finished.emit(self.path)


def turn_frames(scene: VolumeScene, size: tuple[int, int], path: Path | str,
                progress: Progress, frames: int = TURN_FRAMES, fps: float = TURN_FPS) -> str:
    """Render ``scene`` turning once about the view's vertical axis into an MP4 (on the
    calling thread; the scene must not be in a window meanwhile). The camera ends where it
    started."""
    writer = MovieWriter(path, fps=fps)
    progress.set_total(frames, "Rendering the 3D movie")
    try:
        for _ in range(frames):
            if progress.cancelled:
                raise RuntimeError("cancelled")
            writer.put(scene.render_still(size))
            scene.rotate(azimuth=360.0 / frames)
            progress.advance(1)
    finally:
        writer.close()
    return str(path)


def start_turn_movie(view3d: object, path: Path | str, parent: QObject) -> TaskWorker:
    """Take the 3D view's scene out of its window, render the turn on a worker, put it back
    (connect to the returned task's ``succeeded`` / ``failed``)."""
    from app.ui.volume3d import Volume3DWidget

    assert isinstance(view3d, Volume3DWidget) and view3d.scene is not None
    scene = view3d.scene
    size = view3d.pixel_size()
    view3d.detach_scene()
    task = TaskWorker(lambda progress: turn_frames(scene, size, path, progress), "3D movie",
                      parent)
    task.succeeded.connect(lambda _path: view3d.attach_scene())
    task.failed.connect(lambda _msg: view3d.attach_scene())
    task.start()
    return task
