"""The 3D scene: volume rendering and MIP of a volume, camera, clipping, interactive quality.

The scene owns reusable VTK objects (mapper, property, volume, renderer) and no window: an
offscreen window (:mod:`app.render.offscreen`) or, later, a Qt ``QVTKRenderWindowInteractor`` in
``app/ui`` hosts :attr:`VolumeScene.renderer`. World coordinates are LPS millimetres.

Mapper choice, measured on a software OpenGL (``bench/bench_mpr.py``): the CPU fixed-point ray
caster is several times faster than the GPU ray caster on llvmpipe, so it is the default; pass
``mapper="gpu"`` on a machine with a real GPU. While the user drags, :meth:`set_interacting`
lowers the image and ray sample density; when still, full quality is restored.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
from vtkmodules.vtkCommonCore import vtkCommand
from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction, vtkPlane, vtkPlaneCollection
from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor
from vtkmodules.vtkRenderingCore import (
    vtkColorTransferFunction,
    vtkRenderer,
    vtkRenderWindow,
    vtkVolume,
    vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolume import (
    vtkFixedPointVolumeRayCastMapper,
    vtkGPUVolumeRayCastMapper,
)
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

from app.render.downsample import SMOOTH_VOXELS, resample_for_3d
from app.render.offscreen import OffscreenView
from app.render.volume_presets import PRESETS, VolumePreset
from app.render.vtkimage import prop_matrix, vtk_matrix, wrap_volume
from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

MapperKind = Literal["fixed", "gpu", "smart"]

#: Camera directions (from the patient towards the camera) and view-up, in LPS.
CAMERA_VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0, -1, 0), (0, 0, 1)),
    "posterior": ((0, 1, 0), (0, 0, 1)),
    "left": ((1, 0, 0), (0, 0, 1)),
    "right": ((-1, 0, 0), (0, 0, 1)),
    "superior": ((0, 0, 1), (0, -1, 0)),
    "inferior": ((0, 0, -1), (0, -1, 0)),
}


def orientation_cube() -> vtkAnnotatedCubeActor:
    """The orientation cube lettered with the patient's sides (R/L, A/P, H/F, as the 2D views'
    letters) for world coordinates in LPS (+x left, +y posterior, +z head). Each letter reads
    upright from the :data:`CAMERA_VIEWS` that faces it: L, R, A and P with the head up, H and
    F with the face up (VTK's default letter turns did that for L/R; the 180 degrees this had
    turned them upside down, and F was upside down from below)."""
    cube = vtkAnnotatedCubeActor()
    for setter, text in ((cube.SetXPlusFaceText, "L"), (cube.SetXMinusFaceText, "R"),
                         (cube.SetYPlusFaceText, "P"), (cube.SetYMinusFaceText, "A"),
                         (cube.SetZPlusFaceText, "H"), (cube.SetZMinusFaceText, "F")):
        setter(text)
    cube.SetXFaceTextRotation(0)
    cube.SetZFaceTextRotation(270)
    cube.SetFaceTextScale(0.6)
    cube.GetCubeProperty().SetColor(0.25, 0.3, 0.4)
    cube.GetTextEdgesProperty().SetColor(0.9, 0.9, 0.9)
    return cube


class VolumeScene:
    """Volume rendering of one volume, with presets, camera, clipping and level of detail.

    Parameters
    ----------
    array
        Stored voxels ``(slices, rows, columns)``, C-contiguous; shared with VTK, not copied.
    geometry
        Where the array sits (LPS); orientation, spacing and tilt shear are honoured.
    slope, intercept
        Rescale to HU, for the presets' HU control points.
    preset
        A key of :data:`app.render.volume_presets.PRESETS` or a :class:`VolumePreset`.
    mapper
        ``"fixed"`` (CPU fixed-point ray cast, default), ``"gpu"`` or ``"smart"``.
    max_voxels
        Render a copy resampled to at most this many voxels when the volume has more (see
        :mod:`app.render.downsample`); ``None`` keeps the stored grid. The default keeps a
        512×512×400 CTA's first frame (shading gradients) and frames interactive on two CPU
        cores; :attr:`note` says what was done.
    smooth
        Gaussian smoothing of the rendered copy, in its voxels: it removes the terraces
        ("wood-grain" rings) that per-voxel shading gradients draw on bone and vessel surfaces.
        With ``max_voxels=None`` and ``smooth=0`` the stored array itself is rendered.
    frame_budget_s
        While interacting, the image sample distance adapts after every frame so frames take
        about this long (default: 15 frames/s, leaving room for the rest of the frame).
    fine_sample_factor
        Still frames sample each ray every ``fine_sample_factor`` × the smallest voxel size.
        Half a voxel (the default) removes the wood-grain bands that one sample per voxel
        shows on bone and vessel surfaces; a still frame is rendered once,
        so its cost is paid once (``bench/bench_3d_banding.py``).
    moving_sample_factor
        While interacting, samples along each ray are this many times the smallest voxel size
        apart (one voxel instead of two fell below 10 frames/s on two CPU cores in
        ``bench/bench_3d_banding.py``: the image sample distance then grew coarser to keep the
        budget, trading bands for blur).
    """

    def __init__(self, array: np.ndarray, geometry: VolumeGeometry, *, slope: float = 1.0,
                 intercept: float = 0.0, preset: str | VolumePreset = "cta",
                 mapper: MapperKind = "fixed", max_voxels: int | None = 32_000_000,
                 smooth: float = SMOOTH_VOXELS,
                 frame_budget_s: float = 1 / 15, fine_sample_factor: float = 0.5,
                 moving_sample_factor: float = 2.0) -> None:
        if tuple(array.shape) != tuple(geometry.shape):
            raise ValueError(f"array shape {array.shape} does not match geometry {geometry.shape}")
        if slope == 0:
            raise ValueError("slope must not be 0")
        self.note: str | None = None
        stored_shape = tuple(array.shape)
        array, geometry = resample_for_3d(array, geometry, max_voxels=max_voxels,
                                          smooth=smooth)
        if tuple(array.shape) != stored_shape:
            self.note = (f"3D shows the volume resampled to "
                         f"{' × '.join(f'{s:.2f}' for s in geometry.spacing[::-1])} mm voxels "
                         f"to stay interactive without a GPU.")
            log.info("3D on a resampled copy %s", array.shape)
        self.array = array
        self.geometry = geometry
        self.slope, self.intercept = float(slope), float(intercept)
        k_mm, j_mm, i_mm = geometry.spacing
        self.image = wrap_volume(array, spacing=(i_mm, j_mm, k_mm))
        self.mapper_kind = mapper
        self.mapper = _make_mapper(mapper)
        self.mapper.SetInputData(self.image)
        self.property = vtkVolumeProperty()
        self.property.SetInterpolationTypeToLinear()
        self.volume = vtkVolume()
        self.volume.SetMapper(self.mapper)
        self.volume.SetProperty(self.property)
        self.volume.SetUserMatrix(vtk_matrix(prop_matrix(geometry)))
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.renderer.AddVolume(self.volume)
        self._clip = vtkPlaneCollection()
        self.mapper.SetClippingPlanes(self._clip)
        self._fine_sample = min(geometry.spacing) * float(fine_sample_factor)
        self._moving_sample = min(geometry.spacing) * float(moving_sample_factor)
        self.frame_budget_s = float(frame_budget_s)
        self._moving_image_sd = 2.0
        self.interacting = False
        self.renderer.AddObserver(vtkCommand.EndEvent, self._on_rendered)
        #: LPS box the camera frames on reset (None: the whole volume).
        self.fit_bounds: tuple[float, ...] | None = None
        self.preset: VolumePreset = PRESETS["mip"]
        #: Whether the mapper has (or will at its next frame) gradient magnitudes.
        self._magnitudes = False
        self.set_preset(preset)
        self._apply_quality()
        self.reset_camera()

    # -- appearance ---------------------------------------------------------------------------
    def set_preset(self, preset: str | VolumePreset) -> None:
        """Switch colour/opacity/blend to a preset (by name or object)."""
        if isinstance(preset, str):
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
            preset = PRESETS[preset]
        colors = vtkColorTransferFunction()
        for hu, r, g, b in preset.colors:
            colors.AddRGBPoint(self._stored(hu), r, g, b)
        opacity = vtkPiecewiseFunction()
        for hu, a in preset.opacity:
            opacity.AddPoint(self._stored(hu), a)
        prop = self.property
        prop.SetColor(colors)
        prop.SetScalarOpacity(opacity)
        gradient = vtkPiecewiseFunction()
        for g, a in preset.gradient_opacity or ((0.0, 1.0), (1.0, 1.0)):
            gradient.AddPoint(g / abs(self.slope), a)
        prop.SetGradientOpacity(gradient)
        prop.SetDisableGradientOpacity(not preset.gradient_opacity)
        if preset.gradient_opacity and not self._magnitudes:
            # The fixed-point mapper skips gradient magnitudes while gradient opacity is off and
            # does not compute them when it is switched on later: the picture goes black (VTK
            # 9.7). Marking the input modified makes it recompute them (once: they are kept).
            self.image.Modified()
            self._magnitudes = True
        prop.SetShade(preset.shade)
        prop.SetAmbient(preset.ambient)
        prop.SetDiffuse(preset.diffuse)
        prop.SetSpecular(preset.specular)
        prop.SetSpecularPower(preset.specular_power)
        if preset.blend == "mip":
            self.mapper.SetBlendModeToMaximumIntensity()
        else:
            self.mapper.SetBlendModeToComposite()
        self.preset = preset
        log.debug("3D preset %s", preset.name)

    def prepare(self, size: tuple[int, int] | None = None,
                window: vtkRenderWindow | None = None) -> np.ndarray | None:
        """Do the slow part of the first frame now, off the GUI thread; optionally render the
        first still frame too.

        The fixed-point mapper computes shading gradients and their magnitudes before its
        first picture: seconds on a CPU for a head CT. Called directly that computation holds
        the interpreter (and so the GUI thread); inside a render VTK lets go of it, so this
        renders the scene once offscreen (tiny) on the calling thread. Call it on a worker
        thread before the renderer is shown in a window (nothing may render the scene
        meanwhile); the first on-screen frame and every preset switch afterwards, including to
        presets that need gradient magnitudes, then take the usual time.

        With ``size`` (width, height), also returns the still frame at that size as
        ``(height, width, 3)`` uint8, rendered offscreen on this thread: a window can show it
        at once instead of ray casting on its GUI thread (see :meth:`render_still`).

        Both renders use one offscreen ``window`` (see :class:`OffscreenView`), made here
        unless given.
        """
        window = window if window is not None else vtkRenderWindow()
        wanted = self.preset
        if isinstance(self.mapper, vtkFixedPointVolumeRayCastMapper):
            if not wanted.gradient_opacity:
                self.set_preset(PRESETS["soft"])  # magnitudes are computed only when needed
            self.render_still((8, 8), window)
            if self.preset is not wanted:
                self.set_preset(wanted)
        return None if size is None else self.render_still(size, window)

    def render_still(self, size: tuple[int, int],
                     window: vtkRenderWindow | None = None) -> np.ndarray:
        """The still (full quality) frame at ``size`` (width, height), rendered offscreen on
        the calling thread (in ``window`` if given), as ``(height, width, 3)`` uint8. The
        renderer must not be in a window meanwhile."""
        if self.renderer.GetRenderWindow() is not None:
            raise RuntimeError("the scene is shown in a window: render it there")
        interacting = self.interacting
        self.set_interacting(False)
        view = OffscreenView(self.renderer, (max(1, size[0]), max(1, size[1])), window)
        try:
            return view.render()
        finally:
            view.close()
            if interacting:
                self.set_interacting(True)

    def _stored(self, hu: float) -> float:
        return (hu - self.intercept) / self.slope

    # -- level of detail ----------------------------------------------------------------------
    def set_interacting(self, interacting: bool) -> None:
        """Lower quality while the user drags (``True``), full quality when still (``False``)."""
        self.interacting = bool(interacting)
        self._apply_quality()

    def _on_rendered(self, _obj: object, _event: str) -> None:
        """While interacting, steer the image sample distance towards the frame budget."""
        if not self.interacting:
            return
        took = self.renderer.GetLastRenderTimeInSeconds()
        if took <= 0:
            return
        wanted = self._moving_image_sd * math.sqrt(took / self.frame_budget_s)
        wanted = min(6.0, max(1.5, 0.5 * self._moving_image_sd + 0.5 * wanted))
        if abs(wanted - self._moving_image_sd) > 0.1:
            self._moving_image_sd = wanted
            self._apply_quality()

    @property
    def image_sample_distance(self) -> float:
        """Rays cast per screen pixel, inverted (1: every pixel; 2: one in 2×2)."""
        return self._moving_image_sd if self.interacting else 1.0

    def _apply_quality(self) -> None:
        image_sd, sample = ((self._moving_image_sd, self._moving_sample) if self.interacting
                            else (1.0, self._fine_sample))
        mapper = self.mapper
        if hasattr(mapper, "SetAutoAdjustSampleDistances"):
            mapper.SetAutoAdjustSampleDistances(False)
        if hasattr(mapper, "SetImageSampleDistance"):
            mapper.SetImageSampleDistance(image_sd)
        if hasattr(mapper, "SetSampleDistance"):
            mapper.SetSampleDistance(sample)
        if hasattr(mapper, "SetInteractiveUpdateRate"):  # smart mapper: leave it to VTK
            mapper.SetInteractiveUpdateRate(10.0)

    def bind_interactor(self, interactor: object) -> None:
        """Drop quality during a ``vtkRenderWindowInteractor``'s interaction, restore after.

        Works with any VTK interactor, including the Qt one a widget in ``app/ui`` will host.
        """
        def start(_obj: object, _event: str) -> None:
            self.set_interacting(True)

        def end(_obj: object, _event: str) -> None:
            self.set_interacting(False)
            window = self.renderer.GetRenderWindow()
            if window is not None:
                window.Render()

        interactor.AddObserver("StartInteractionEvent", start)  # type: ignore[attr-defined]
        interactor.AddObserver("EndInteractionEvent", end)  # type: ignore[attr-defined]

    # -- clipping -----------------------------------------------------------------------------
    def set_clip_box(self, low: np.ndarray, high: np.ndarray) -> None:
        """Keep only what lies inside the LPS box ``low``..``high`` (mm)."""
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        if np.any(high <= low):
            raise ValueError("clip box must have high > low on every axis")
        self._clip.RemoveAllItems()
        for axis in range(3):
            normal = np.zeros(3)
            normal[axis] = 1.0
            self._add_plane(low, normal)
            self._add_plane(high, -normal)
        self.mapper.Modified()

    def set_clip_plane(self, origin: np.ndarray, normal: np.ndarray) -> None:
        """Cut away everything behind the plane; keep the side ``normal`` points to."""
        self._clip.RemoveAllItems()
        self._add_plane(np.asarray(origin, dtype=np.float64), np.asarray(normal, np.float64))
        self.mapper.Modified()

    def clear_clipping(self) -> None:
        """Show the whole volume again."""
        self._clip.RemoveAllItems()
        self.mapper.Modified()

    @property
    def clip_planes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The current clipping planes as (origin, normal) pairs."""
        out = []
        for index in range(self._clip.GetNumberOfItems()):
            plane = self._clip.GetItem(index)
            out.append((np.array(plane.GetOrigin()), np.array(plane.GetNormal())))
        return out

    def _add_plane(self, origin: np.ndarray, normal: np.ndarray) -> None:
        plane = vtkPlane()
        plane.SetOrigin(*origin)
        plane.SetNormal(*(normal / np.linalg.norm(normal)))
        self._clip.AddItem(plane)

    # -- camera -------------------------------------------------------------------------------
    def bounds(self) -> tuple[float, ...]:
        """LPS bounding box of the volume: (xmin, xmax, ymin, ymax, zmin, zmax)."""
        return tuple(self.volume.GetBounds())

    def content_bounds(self, threshold: float, *, tail: float = 0.005
                       ) -> tuple[float, ...] | None:
        """LPS box (xmin, xmax, ymin, ...) around the voxels above ``threshold`` (modality
        units, e.g. 300 HU for the skull), or None when there are none.

        Along each array axis the box leaves out the outermost ``tail`` share of those voxels
        on either side, so a stray marker or a few noisy voxels do not stretch it. Reads the
        whole (rendered) array once: call it off the GUI thread on big volumes.
        """
        stored = self._stored(threshold)
        inside = (self.array > stored) if self.slope > 0 else (self.array < stored)
        spans = []
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            cumulative = np.cumsum(inside.sum(axis=other, dtype=np.int64))
            total = int(cumulative[-1])
            if total == 0:
                return None
            first = int(np.searchsorted(cumulative, tail * total, side="right"))
            last = int(np.searchsorted(cumulative, (1.0 - tail) * total, side="left"))
            spans.append((first, max(first, last)))
        (k0, k1), (j0, j1), (i0, i1) = spans
        corners = np.array([[i, j, k] for i in (i0 - 0.5, i1 + 0.5) for j in (j0 - 0.5, j1 + 0.5)
                            for k in (k0 - 0.5, k1 + 0.5)])
        lps = self.geometry.index_to_lps(corners)
        low, high = lps.min(axis=0), lps.max(axis=0)
        return tuple(float(v) for pair in zip(low, high, strict=True) for v in pair)

    def reset_camera(self, view: str = "anterior") -> None:
        """Look at the volume from ``view`` (see :data:`CAMERA_VIEWS`), framing
        :attr:`fit_bounds` when set (e.g. from :meth:`content_bounds`), else the whole box."""
        if view not in CAMERA_VIEWS:
            raise ValueError(f"unknown view {view!r}; choose one of {sorted(CAMERA_VIEWS)}")
        towards, up = CAMERA_VIEWS[view]
        bounds = self.fit_bounds or self.bounds()
        centre = np.array([(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2,
                           (bounds[4] + bounds[5]) / 2])
        camera = self.renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre + 1000.0 * np.asarray(towards, dtype=np.float64)))
        camera.SetViewUp(*up)
        self.renderer.ResetCamera(bounds)
        self.renderer.ResetCameraClippingRange()

    def rotate(self, azimuth: float = 0.0, elevation: float = 0.0) -> None:
        """Orbit the camera about the focal point (degrees; like dragging with the left button)."""
        camera = self.renderer.GetActiveCamera()
        camera.Azimuth(azimuth)
        camera.Elevation(elevation)
        camera.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()

    def zoom(self, factor: float) -> None:
        """Magnify by ``factor`` (> 1 closer)."""
        if factor <= 0:
            raise ValueError("zoom factor must be positive")
        self.renderer.GetActiveCamera().Zoom(factor)
        self.renderer.ResetCameraClippingRange()

    def pan(self, right: float, up: float) -> None:
        """Slide the view by fractions of the viewport height (positive: scene moves right/up)."""
        camera = self.renderer.GetActiveCamera()
        focal = np.array(camera.GetFocalPoint())
        position = np.array(camera.GetPosition())
        distance = float(np.linalg.norm(position - focal))
        if camera.GetParallelProjection():
            height = 2.0 * camera.GetParallelScale()
        else:
            height = 2.0 * distance * np.tan(np.radians(camera.GetViewAngle() / 2))
        view_up = np.array(camera.GetViewUp())
        forward = (focal - position) / distance
        screen_right = np.cross(forward, view_up)
        shift = -(right * screen_right + up * view_up) * height
        camera.SetFocalPoint(*(focal + shift))
        camera.SetPosition(*(position + shift))

    def set_parallel_projection(self, parallel: bool) -> None:
        """Orthographic (True) or perspective (False) projection."""
        self.renderer.GetActiveCamera().SetParallelProjection(bool(parallel))
        self.renderer.ResetCamera(self.bounds())


def _make_mapper(kind: MapperKind) -> (vtkFixedPointVolumeRayCastMapper
                                       | vtkGPUVolumeRayCastMapper | vtkSmartVolumeMapper):
    if kind == "fixed":
        mapper = vtkFixedPointVolumeRayCastMapper()
        mapper.SetLockSampleDistanceToInputSpacing(False)
        return mapper
    if kind == "gpu":
        return vtkGPUVolumeRayCastMapper()
    if kind == "smart":
        return vtkSmartVolumeMapper()
    raise ValueError(f"mapper must be 'fixed', 'gpu' or 'smart', got {kind!r}")
