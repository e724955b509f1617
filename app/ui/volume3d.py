"""The 3D layout: volume rendering of a series in a VTK widget, presets, camera, clip box.

The scene (:class:`~app.render.scene3d.VolumeScene`) is hosted by VTK's
``QVTKRenderWindowInteractor``. Mouse (VTK's trackball camera): left drag rotates, middle drag
(or Shift + left) pans, right drag or the wheel zooms. While the mouse moves the scene renders
at lower resolution (``bind_interactor``), at full quality when it stops.

The 3D view waits for the whole series (a half-loaded volume is not worth rendering), showing
the progress. Then a worker thread builds the scene: it resamples a big volume, computes the
shading gradients and renders the first still frame offscreen (:meth:`VolumeScene.prepare`;
VTK lets go of the interpreter meanwhile), which would otherwise freeze the window for seconds.
The window shows that picture at once, and ray casts on its own thread only once the user
moves the camera or changes the scene (``bench/bench_3d_open.py`` measures the stalls).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

import numpy as np
import vtkmodules.vtkInteractionStyle  # noqa: F401  (registers the interactor styles)
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkInteractionWidgets import (
    vtkBoxRepresentation,
    vtkBoxWidget2,
    vtkOrientationMarkerWidget,
)
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTexture

from app.render.frame_thread import FrameThread
from app.render.mpr import MprSource, mpr_source
from app.render.offscreen import capture
from app.render.scene3d import VolumeScene, orientation_cube
from app.render.volume_presets import PRESETS, VolumePreset, mip_preset
from app.render.vtkimage import wrap_rgb
from app.tasks import Progress
from app.ui.labels import plain_label
from app.ui.prewarm import spare_render_window
from app.ui.series_session import LoadedSeries
from app.ui.worker import TaskWorker

log = logging.getLogger(__name__)

#: Preset buttons: (preset key, label). HU presets are offered for CT only.
PRESET_BUTTONS = (("cta", "CTA vessels"), ("bone", "Bone"), ("soft", "Soft tissue / skin"),
                  ("brain", "Brain"), ("mip", "MIP"))
#: Pause between two pieces of GUI-thread work while the 3D view opens (the OpenGL window,
#: the still frame, the orientation cube): long enough for the event loop to handle input,
#: timers and paints in between (``bench/bench_3d_open.py`` probes it every 10 ms).
PIECE_GAP_MS = 25
#: What :meth:`Volume3DWidget.warm_up` makes ahead of time, one per call (each one stalls the
#: GUI thread; ``bench/bench_3d_open.py --pieces`` times them).
WARM_STEPS = ("context", "first frame", "interactor", "still", "cube")
#: The pieces of :data:`WARM_STEPS` whose frame is drawn on a thread of its own
#: (:class:`~app.render.frame_thread.FrameThread`): a software OpenGL compiles their shaders.
OFF_THREAD_STEPS = frozenset({"first frame", "still", "cube"})
CAMERA_CHOICES = (("anterior", "From the front"), ("left", "From the left"),
                  ("right", "From the right"), ("posterior", "From behind"),
                  ("superior", "From above"), ("inferior", "From below"))


class Volume3DWidget(QWidget):
    """3D view of one :class:`LoadedSeries`: presets, camera, clip box, level of detail."""

    #: The scene is on screen (after the worker prepared it).
    scene_ready = Signal()
    #: The first still frame, rendered by the worker, is on screen.
    still_shown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: LoadedSeries | None = None
        self.scene: VolumeScene | None = None
        self.error = ""
        self._task: TaskWorker | None = None
        #: The orientation cube (made with the first scene).
        self.orientation: vtkOrientationMarkerWidget | None = None
        #: Whether the worker's still frame stands in for the volume (until the scene changes).
        self.showing_still = False

        self.preset_group = QButtonGroup(self)
        self.preset_group.setExclusive(True)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 4)
        for key, label in PRESET_BUTTONS:
            button = QToolButton(self)
            button.setText(label)
            button.setCheckable(True)
            button.setProperty("preset", key)
            button.clicked.connect(lambda _=False, k=key: self.set_preset(k))
            self.preset_group.addButton(button)
            bar.addWidget(button)
        bar.addSpacing(16)
        self.camera = QComboBox(self)
        for key, label in CAMERA_CHOICES:
            self.camera.addItem(label, key)
        self.camera.activated.connect(
            lambda index: self.reset_camera(self.camera.itemData(index)))
        bar.addWidget(self.camera)
        self.clip_button = QToolButton(self)
        self.clip_button.setText("Clip box")
        self.clip_button.setCheckable(True)
        self.clip_button.setToolTip("Show a box whose faces you drag to cut away bone or skin")
        self.clip_button.toggled.connect(self._on_clip_toggled)
        bar.addWidget(self.clip_button)
        self.unclip_button = QToolButton(self)
        self.unclip_button.setText("Show all")
        self.unclip_button.setToolTip("Undo the cut: show the whole volume")
        self.unclip_button.clicked.connect(self.clear_clipping)
        bar.addWidget(self.unclip_button)
        bar.addStretch(1)

        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(320)
        self.status = plain_label("", self)
        self.status.setWordWrap(True)
        # hiding the progress or the note must not resize the OpenGL view: the worker's still
        # frame was made at its size (a resize stretched it and cost a second, full-window
        # render). The row keeps the progress bar's height, the note its place.
        self.status.setMinimumHeight(self.progress.sizeHint().height())
        policy = self.status.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.status.setSizePolicy(policy)
        status_row = QHBoxLayout()
        status_row.setContentsMargins(6, 0, 6, 0)
        status_row.addWidget(self.progress)
        status_row.addWidget(self.status, 1)

        # VTK's widget is a native window; by default Qt then makes its siblings (and theirs
        # up the tree) native too: 27 native windows instead of 7, each painted on its own,
        # p99 of the event-loop gaps while 3D opens 70-80 ms instead of ~30 (bench_3d_open)
        QApplication.setAttribute(Qt.ApplicationAttribute.AA_DontCreateNativeWidgetSiblings)
        # its render window made ahead on the prewarm thread when there is one (making it
        # opens a connection to the display, 20-60 ms holding the interpreter)
        self.vtk = QVTKRenderWindowInteractor(self, rw=spare_render_window())
        self.render_window = self.vtk.GetRenderWindow()
        self.render_window.SetMultiSamples(0)
        self._empty = vtkRenderer()
        self._empty.SetBackground(0.0, 0.0, 0.0)
        self.render_window.AddRenderer(self._empty)
        self.interactor = self.render_window.GetInteractor()
        self._make_tools()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addLayout(status_row)
        layout.addWidget(self.vtk, 1)
        self._initialized = False  # the interactor starts when first shown (it renders)
        self._warm_step = 0  # of WARM_STEPS (see warm_up)
        #: A warm-up frame being drawn on a thread of its own, and what to do once it is.
        self._frame: FrameThread | None = None
        self._after_frame: Callable[[], None] | None = None
        self._repaint_after_frame = False
        # nothing reaches VTK's widget (a paint renders, a resize sizes the window) while
        # that thread holds the OpenGL context
        self.vtk.installEventFilter(self)
        self._prepare_pending = False
        #: Shown once: what warm_up had not made is being made (see _initialize).
        self._initializing = False
        self._closed = False
        self._orientation_pending = False
        self._set_controls_enabled(False)

    def _make_tools(self) -> None:
        """A fresh camera style and clip box (each scene binds its level of detail to them)."""
        self.style = vtkInteractorStyleTrackballCamera()
        self.interactor.SetInteractorStyle(self.style)
        if getattr(self, "box", None) is not None:
            if self.box.GetEnabled():
                self.box.Off()
            self.box.SetInteractor(None)
        self.box = vtkBoxWidget2()
        self.box_rep = vtkBoxRepresentation()
        self.box.SetRepresentation(self.box_rep)
        self.box.SetInteractor(self.interactor)
        self.box.RotationEnabledOff()
        self.box.AddObserver("InteractionEvent", self._on_box_moved)

    # -- series -------------------------------------------------------------------------------
    def set_series(self, session: LoadedSeries) -> None:
        """Show ``session`` in 3D once it has loaded (progress meanwhile)."""
        if session is self.session:
            return
        self._finish_frame()
        self._detach()
        self.session = session
        session.progressed.connect(self._on_slice_ready)
        session.opened.connect(self._on_slice_ready)
        session.failed.connect(self._on_failed)
        if session.error:
            self._on_failed(session.error)
        else:
            self._on_slice_ready()

    def _detach(self) -> None:
        if self.session is not None:
            for signal, slot in ((self.session.progressed, self._on_slice_ready),
                                 (self.session.opened, self._on_slice_ready),
                                 (self.session.failed, self._on_failed)):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect(slot)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.clip_button.setChecked(False)  # turns the box off
        self._orientation_pending = False
        if self.orientation is not None:
            self.orientation.SetEnabled(0)
        if self.scene is not None:
            self.render_window.RemoveRenderer(self.scene.renderer)
            self.render_window.AddRenderer(self._empty)
            self._make_tools()  # the old ones are bound to the old scene
        self._drop_still()
        self.scene = None
        self.session = None
        self.error = ""
        self._set_controls_enabled(False)

    def _on_failed(self, message: str) -> None:
        self.error = message
        self._show_progress(0, 0, f"3D is not available: {message}")
        self.progress.hide()

    def _on_slice_ready(self, *_args: object) -> None:
        session = self.session
        if session is None or session.volume is None or self.scene is not None:
            return
        volume = session.volume
        total, done = volume.shape[0], session.loaded_count()
        if not volume.finished:
            self._show_progress(done, total, f"Loading {done} of {total} slices; the 3D view "
                                             "starts when the series has loaded.")
            return
        if self._task is None and not self._prepare_pending:
            if self.isVisible():
                # a turn of the event loop later: the view's first frame on screen (the page
                # was just switched to) does not compete with the worker for the CPU
                self._prepare_pending = True
                QTimer.singleShot(PIECE_GAP_MS, self._start_prepare_later)
            else:
                self._start_prepare()

    def _start_prepare_later(self) -> None:
        self._prepare_pending = False
        if (self.session is not None and self.session.volume is not None
                and self.session.volume.finished and self.scene is None
                and self._task is None and not self._closed):
            self._start_prepare()

    def _start_prepare(self) -> None:
        session = self.session
        assert session is not None and session.volume is not None
        volume, modality = session.volume, session.modality

        def work(progress: Progress) -> VolumeScene:
            yield_to_the_window()
            source = mpr_source(volume, modality=modality)
            if progress.cancelled:
                raise RuntimeError("cancelled")
            preset = PRESETS["bone"] if modality == "CT" else _mip_for(source)
            scene = VolumeScene(source.array, source.geometry, slope=source.slope,
                                intercept=source.intercept, preset=preset)
            # frame the head (skull and 20 mm around it), not the scan's air and padding
            box = scene.content_bounds(300.0 if modality == "CT" else preset.opacity[0][0])
            if box is not None:
                margin = np.array([-20.0, 20.0] * 3)
                scene.fit_bounds = tuple(float(v) for v in np.array(box) + margin)
            scene.reset_camera()
            still = scene.prepare(size, window)
            if source.notes:
                scene.note = " ".join(filter(None, [scene.note, *source.notes]))
            return scene, still

        ratio = self.vtk.devicePixelRatio()
        size = (round(self.vtk.width() * ratio), round(self.vtk.height() * ratio))
        window = spare_render_window()  # made ahead on the prewarm thread, when there is one
        self._show_progress(0, 0, "Preparing 3D: resampling the volume, computing the shading "
                                  "and the first picture…")
        task = TaskWorker(work, "3D", self)
        task.succeeded.connect(lambda made, s=session: self._on_scene_prepared(s, *made))
        task.failed.connect(self._on_failed)
        self._task = task
        task.start()

    def _on_scene_prepared(self, session: LoadedSeries, scene: VolumeScene,
                           still: np.ndarray | None = None, tries: int = 0) -> None:
        if session is not self.session or self.scene is not None:
            return  # made for a series shown before
        self._finish_frame()
        if (still is None or tuple(still.shape[1::-1]) != self.pixel_size()) and tries < 2:
            # the view was laid out or resized meanwhile: the still frame again, at its size
            size = self.pixel_size()
            task = TaskWorker(lambda _progress: scene.render_still(size), "3D", self)
            task.succeeded.connect(lambda again, s=session: self._on_scene_prepared(
                s, scene, again, tries + 1))
            task.failed.connect(self._on_failed)
            self._task = task
            task.start()
            return
        self.scene = scene
        self.render_window.RemoveRenderer(self._empty)
        self.render_window.AddRenderer(scene.renderer)
        for source in (self.style, self.box):
            source.AddObserver("StartInteractionEvent", self._drop_still, 1.0)  # before LOD
            scene.bind_interactor(source)
        if still is not None and tuple(still.shape[1::-1]) == self.pixel_size():
            self._show_still(still)
        self.box_rep.SetPlaceFactor(1.0)
        self.box_rep.PlaceWidget(list(scene.bounds()))
        self._set_controls_enabled(True)
        is_ct = self.session.modality == "CT"
        for button in self.preset_group.buttons():
            key = button.property("preset")
            button.setEnabled(is_ct or key == "mip")  # HU presets mean nothing for MR
            button.setChecked(key == scene.preset.name)
        self.progress.hide()
        self.status.setText(scene.note or "")
        self.status.setVisible(bool(scene.note))
        if self.orientation is not None:
            # made ahead (warm_up, or for an earlier series): its shaders are compiled, so it
            # joins this frame instead of costing a second one
            self._show_orientation()
            self.render()
        else:
            self.render()
            # the orientation cube a little later, after the window has handled what waited
            # meanwhile: its first frame compiles its shaders on the GUI thread (software
            # OpenGL: tens of ms), as the still frame's did
            self._orientation_pending = True
            QTimer.singleShot(PIECE_GAP_MS, self._finish_opening)
        self.scene_ready.emit()
        if self.showing_still:
            self.still_shown.emit()

    # -- the worker's still frame -------------------------------------------------------------
    def pixel_size(self) -> tuple[int, int]:
        """The 3D picture's size on screen in pixels (width, height)."""
        ratio = self.vtk.devicePixelRatio()
        return round(self.vtk.width() * ratio), round(self.vtk.height() * ratio)


    def detach_scene(self) -> None:
        """Take the scene out of the window (a worker renders it offscreen meanwhile, e.g. a
        movie); the view says so and its controls wait for :meth:`attach_scene`."""
        if self.scene is None:
            return
        self._drop_still()
        self.render_window.RemoveRenderer(self.scene.renderer)
        self.render_window.AddRenderer(self._empty)
        self._set_controls_enabled(False)
        self._show_progress(0, 0, "Making the 3D movie…")
        self.render()

    def attach_scene(self) -> None:
        """Put the scene back after :meth:`detach_scene`."""
        if self.scene is None or self.scene.renderer.GetRenderWindow() is not None:
            return
        self.render_window.RemoveRenderer(self._empty)
        self.render_window.AddRenderer(self.scene.renderer)
        self._set_controls_enabled(True)
        self.progress.hide()
        self.status.setText(self.scene.note or "")
        self.status.setVisible(bool(self.scene.note))
        self.render()

    def _show_still(self, rgb: np.ndarray) -> None:
        """Show ``rgb`` (the worker's offscreen still frame of the scene as it is) in place of
        the volume: drawing it costs a texture, not a ray cast on the GUI thread."""
        assert self.scene is not None
        texture = vtkTexture()
        texture.SetInputData(wrap_rgb(rgb))
        texture.InterpolateOff()
        renderer = self.scene.renderer
        renderer.SetBackgroundTexture(texture)
        renderer.TexturedBackgroundOn()
        self.scene.volume.VisibilityOff()
        self.showing_still = True

    def _drop_still(self, *_args: object) -> None:
        """The scene is about to change: draw the volume itself again."""
        if not self.showing_still or self.scene is None:
            return
        self.showing_still = False
        renderer = self.scene.renderer
        renderer.TexturedBackgroundOff()
        renderer.SetBackgroundTexture(None)
        self.scene.volume.VisibilityOn()

    def _finish_opening(self) -> None:
        """What the first picture can do without: the orientation cube."""
        if not self._orientation_pending or self.scene is None:
            return
        self._orientation_pending = False
        self._show_orientation()
        self.render()

    def _show_orientation(self) -> None:
        """A cube in the lower left corner lettered with the patient's sides (R/L, A/P, H/F,
        as the 2D views' letters), turning with the camera so it always says which way the
        patient faces. World coordinates are LPS: +x left, +y posterior, +z head."""
        if self.orientation is not None:
            if self.scene is not None:  # it turns with this renderer's camera
                self.orientation.SetCurrentRenderer(self.scene.renderer)
            self.orientation.SetEnabled(1)
            return
        cube = orientation_cube()
        widget = vtkOrientationMarkerWidget()
        widget.SetOrientationMarker(cube)
        widget.SetInteractor(self.interactor)
        if self.scene is not None:
            widget.SetCurrentRenderer(self.scene.renderer)
        widget.SetViewport(0.0, 0.0, 0.16, 0.16)
        widget.SetEnabled(1)
        widget.InteractiveOff()
        self.orientation = widget

    # -- controls -----------------------------------------------------------------------------
    def set_preset(self, key: str) -> None:
        """Switch to a preset of :data:`app.render.volume_presets.PRESETS` (MIP keeps an MR
        window)."""
        scene = self.scene
        if scene is None:
            return
        if key == "mip" and scene.preset.blend == "mip":
            return
        self._drop_still()
        scene.set_preset(key)
        for button in self.preset_group.buttons():
            button.setChecked(button.property("preset") == key)
        self.render()

    def reset_camera(self, view: str = "anterior") -> None:
        index = self.camera.findData(view)
        if index >= 0:  # the list says where the camera is, however it was moved there
            self.camera.setCurrentIndex(index)
        if self.scene is not None:
            self._drop_still()
            self.scene.reset_camera(view)
            self.render()

    def set_clip_box(self, low: np.ndarray, high: np.ndarray) -> None:
        """Keep only the LPS box ``low``..``high`` (and show the box there)."""
        if self.scene is None:
            return
        self._drop_still()
        self.scene.set_clip_box(low, high)
        bounds = [v for pair in zip(low, high, strict=True) for v in pair]
        self.box_rep.PlaceWidget([float(v) for v in bounds])
        self.render()

    def clear_clipping(self) -> None:
        if self.scene is None:
            return
        self._drop_still()
        self.scene.clear_clipping()
        self.box_rep.PlaceWidget(list(self.scene.bounds()))
        self.render()

    def _on_clip_toggled(self, on: bool) -> None:
        if self.scene is None or bool(self.box.GetEnabled()) == on:
            return
        self._drop_still()
        if on:
            self.box.On()
        else:
            self.box.Off()
        self.render()

    def _on_box_moved(self, _obj: object, _event: str) -> None:
        if self.scene is None:
            return
        self._drop_still()
        b = self.box_rep.GetBounds()
        low, high = np.array(b[0::2]), np.array(b[1::2])
        if np.all(high > low):
            self.scene.set_clip_box(low, high)

    # -- drawing ------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802
        self._finish_frame()
        super().showEvent(event)
        if not self._initialized and not self._initializing:
            # Initialize() renders; on a widget that was never shown (no size yet) that can
            # crash the OpenGL window, so it waits for the first show. What warm_up has not
            # made yet (all of it when 3D is opened at once) is made then, a piece per turn of
            # the event loop, not in the one that made this widget and switched to it
            self._initializing = True
            QTimer.singleShot(PIECE_GAP_MS, self._initialize)

    def _initialize(self) -> None:
        """One piece of :meth:`warm_up` per call (a timer calls again) until the OpenGL window
        is made; at once when a scene is already there."""
        if self._closed:
            return
        if self.scene is None and not self.warm_up(self.pixel_size()):
            QTimer.singleShot(PIECE_GAP_MS, self._initialize)
            return
        self._initialize_now()

    def _initialize_now(self) -> None:
        self._finish_frame()
        if not self._initialized:
            self._initialized = True
            self.vtk.Initialize()

    # -- made ahead of time -------------------------------------------------------------------
    @property
    def warm(self) -> bool:
        """Whether the OpenGL window and the shaders of the first picture are made."""
        return self._warm_step >= len(WARM_STEPS) and self._frame is None

    def warm_up(self, size: tuple[int, int]) -> bool:
        """One piece of making the OpenGL window ahead of time, while the 3D view is hidden
        (a page behind the 2D viewports) and the reader is idle; True once all are done.

        Opening 3D otherwise made them on the GUI thread while the worker prepared the scene.
        Each call does one of :data:`WARM_STEPS`, so the window can answer in between: the
        OpenGL context at ``size`` (width, height in pixels, as it will be shown); its first
        frame; the interactor; the still frame and the orientation cube. The frames of
        :data:`OFF_THREAD_STEPS` are drawn on a thread of their own (a software OpenGL
        compiles their shaders with LLVM there, or loads them from its cache:
        :mod:`app.ui.shader_cache`), and the calls meanwhile wait for them.
        :meth:`showEvent` then has nothing left to make (``bench/bench_3d_open.py --pieces``
        times each piece).
        """
        if self._frame is not None:
            if not self._frame.done:
                return False  # its frame is still being drawn: next time
            self._finish_frame()
        if self._closed or self.warm or self.scene is not None:
            return self.warm or self.scene is not None
        step = WARM_STEPS[self._warm_step]
        self._warm_step += 1
        window = self.render_window
        if step in OFF_THREAD_STEPS:
            self._after_frame = self._prepare_warm_frame(step, size)
            self._frame = FrameThread(window, before=yield_to_the_window)
            return False
        if step == "context":
            # at the size it will be shown at (its resize events wait until it is shown): VTK
            # sizes Qt's native window to it, and a window resized when shown took 0.1-0.3 s
            # more for its first frame there. With the first frame and the interactor in one
            # piece, this held the GUI thread 0.27-0.54 s (bench_3d_open --pieces)
            window.SetSize(max(1, size[0]), max(1, size[1]))
            window.Initialize()
        elif step == "interactor":
            self._initialized = True
            self.vtk.Initialize()
        return self.warm

    def _prepare_warm_frame(self, step: str,
                            size: tuple[int, int]) -> Callable[[], None] | None:
        """Set the scene of the warm-up frame ``step`` up; returns what undoes it once drawn."""
        if step == "still":
            # a still frame as the background texture, at its size: the software OpenGL's
            # shader for a texture whose sides are not powers of two is another one (a 2×2
            # texture left it to compile, 40-100 ms, when the first picture was shown)
            texture = vtkTexture()
            texture.SetInputData(wrap_rgb(np.zeros((max(1, size[1]), max(1, size[0]), 3),
                                                   np.uint8)))
            self._empty.SetBackgroundTexture(texture)
            self._empty.TexturedBackgroundOn()

            def undo() -> None:
                self._empty.TexturedBackgroundOff()
                self._empty.SetBackgroundTexture(None)
            return undo
        if step == "cube":
            self._show_orientation()
            assert self.orientation is not None
            return lambda: self.orientation.SetEnabled(0) if self.orientation else None
        return None

    def _finish_frame(self) -> None:
        """Wait for the warm-up frame drawn on its thread (if any) and tidy up after it: the
        OpenGL window is the GUI thread's again."""
        if self._frame is None:
            return
        self._frame.join()
        self._frame = None
        after, self._after_frame = self._after_frame, None
        if after is not None:
            after()
        if self._repaint_after_frame:
            self._repaint_after_frame = False
            self.vtk.update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.vtk and self._frame is not None:
            if event.type() == QEvent.Type.Paint:
                # shown (3D opened at once): painted again once the frame is drawn
                self._repaint_after_frame = True
                return True
            self._finish_frame()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._finish_frame()
        self._drop_still()  # a picture of another size: ray cast a new one
        super().resizeEvent(event)

    def render(self) -> None:
        self._finish_frame()
        if self._initialized:
            self.render_window.Render()

    def snapshot(self) -> np.ndarray:
        """The 3D picture as ``(height, width, 3)`` uint8 (tests, screenshots)."""
        self._finish_frame()
        if self._initializing:
            self._initialize_now()  # shown, its OpenGL window not made yet
        self._finish_opening()
        if not self._initialized:
            raise RuntimeError("the 3D view has not been shown yet")
        return capture(self.render_window)

    def _show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.show()
        self.status.setText(text)
        self.status.show()

    def _set_controls_enabled(self, on: bool) -> None:
        for button in self.preset_group.buttons():
            button.setEnabled(on)
        for widget in (self.camera, self.clip_button, self.unclip_button):
            widget.setEnabled(on)

    def close_3d(self) -> None:
        """Stop preparing, release the scene and the OpenGL window."""
        self._finish_frame()
        self._detach()
        self._closed = True
        self.vtk.close()
        self.vtk.Finalize()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.text().lower() == "r":
            self.reset_camera(self.camera.currentData() or "anterior")
            event.accept()
            return
        super().keyPressEvent(event)



def yield_to_the_window(nice: int = 10) -> None:
    """Lower the calling thread's CPU priority (and so that of the threads it starts: VTK's and
    the software OpenGL's): on a machine whose cores are all busy, the GUI thread and the
    window's own OpenGL threads then still get the CPU when they need it."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def _mip_for(source: MprSource) -> VolumePreset:
    """A MIP preset for a non-CT volume (HU presets mean nothing there): grey from the median
    of the signal to its top (99.9th percentile), from a subsample of the volume."""
    sample = source.array[::2, ::4, ::4].astype(np.float32) * np.float32(source.slope) + \
        np.float32(source.intercept)
    signal = sample[sample > float(np.percentile(sample, 60))]
    if signal.size == 0:
        return mip_preset()
    lo, hi = (float(v) for v in np.percentile(signal, [50.0, 99.9]))
    hi = max(hi, lo + 1.0)
    return mip_preset((lo + hi) / 2, hi - lo)


__all__ = ["Volume3DWidget"]
