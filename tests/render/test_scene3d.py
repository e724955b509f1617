"""3D scene rendered offscreen (OSMesa): presets, MIP, camera, clipping, level of detail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.dicom.synth import Ellipsoid
from app.render.offscreen import OffscreenView
from app.render.planes import rotation
from app.render.scene3d import VolumeScene
from tests.render import phantom as ph

pytestmark = pytest.mark.gl

BONE_BALL = Ellipsoid((20.0, -10.0, 15.0), (7.0, 7.0, 7.0), 1200.0)  # left, anterior, high
VESSEL_BALL = Ellipsoid((-15.0, 5.0, -10.0), (6.0, 6.0, 6.0), 300.0)  # right, posterior, low
SIZE = (160, 160)


def _linear(kind: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    if kind == "tilted":  # 20° gantry tilt: a shear
        t = math.radians(20)
        return np.stack([[1.2, 0, 0], [0, 1.2 * math.cos(t), -1.2 * math.sin(t)], [0, 0, 1.5]],
                        axis=1), (52, 70, 66)
    turn = rotation(np.array([0.2, 0.4, 0.9]), 25.0)  # rotated sagittal stack
    return turn @ np.stack([[0, 1.1, 0], [0, 0, -1.3], [-1.6, 0, 0]], axis=1), (50, 66, 68)


@pytest.fixture(scope="module", params=["tilted", "rotated"])
def balls(request) -> ph.Phantom:
    linear, shape = _linear(request.param)
    return ph.painted(ph.centred_affine(linear, shape), shape, [BONE_BALL, VESSEL_BALL])


@pytest.fixture(scope="module")
def head() -> ph.Phantom:
    from app.dicom.synth import head_phantom
    shape = (60, 70, 60)
    return ph.painted(ph.centred_affine(np.diag([3.0, 3.2, 3.6]), shape), shape,
                      head_phantom(0.0, "cta"))


def _view(p: ph.Phantom, **kw) -> tuple[VolumeScene, OffscreenView]:
    scene = VolumeScene(p.array, p.geometry, intercept=ph.INTERCEPT, **kw)
    return scene, OffscreenView(scene.renderer, SIZE)


def _blob(img: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    grey = img.astype(float).mean(axis=2)
    mask = grey > 40
    if near is not None:
        rr, cc = np.indices(mask.shape)
        mask &= (rr - near[0]) ** 2 + (cc - near[1]) ** 2 <= 20**2
    rows, cols = np.nonzero(mask)
    assert rows.size, "nothing rendered there"
    return np.array([rows.mean(), cols.mean()])


def _projected(scene: VolumeScene, point) -> np.ndarray:
    """(row, col) where an LPS point lands in the picture."""
    ren = scene.renderer
    ren.SetWorldPoint(*point, 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    return np.array([SIZE[1] - 1 - y, x])


def test_objects_render_where_they_are(balls):
    scene, view = _view(balls, preset="bone")
    scene.set_parallel_projection(True)
    img = view.render()
    expected = _projected(scene, BONE_BALL.center)
    found = _blob(img, expected)
    assert np.linalg.norm(found - expected) <= 1.5  # pixels (about 1 mm here)
    # anterior view: patient left on screen right, head up
    assert found[1] > SIZE[0] / 2 and found[0] < SIZE[1] / 2
    scene.reset_camera("left")  # seen from the left: anterior on screen left
    img = view.render()
    expected = _projected(scene, BONE_BALL.center)
    assert np.linalg.norm(_blob(img, expected) - expected) <= 1.5
    assert expected[1] < SIZE[0] / 2
    view.close()


def test_bone_and_vessel_presets_differ(head, balls):
    scene, view = _view(balls, preset="cta")
    vessel_px = _projected(scene, VESSEL_BALL.center).astype(int)
    cta = view.render()
    scene.set_preset("bone")
    bone = view.render()
    assert cta.max() > 0 and bone.max() > 0
    r, c = vessel_px
    # the 300 HU ball is a vessel to the CTA preset, (almost) nothing to the bone preset
    seen_cta = cta[r - 3:r + 4, c - 3:c + 4].astype(float).sum()
    seen_bone = bone[r - 3:r + 4, c - 3:c + 4].astype(float).sum()
    assert seen_cta > 2.5 * seen_bone, (seen_cta, seen_bone)
    view.close()

    scene, view = _view(head)
    images = {}
    for name in ("cta", "bone", "soft", "brain", "mip"):
        scene.set_preset(name)
        images[name] = view.render()
        assert images[name].max() > 30, f"{name} rendered nothing"
    for a in images:
        for b in images:
            if a < b:
                assert np.abs(images[a].astype(int) - images[b]).mean() > 1, (a, b)
    # switching to a gradient-opacity preset after others must not go black (VTK quirk)
    scene.set_preset("bone")
    view.render()
    scene.set_preset("soft")
    assert np.array_equal(view.render(), images["soft"])
    view.close()


def test_mip_shows_the_brightest_object_through_others(balls):
    scene, view = _view(balls, preset="mip")
    scene.set_parallel_projection(True)
    img = view.render().astype(float).mean(axis=2)
    bone = _projected(scene, BONE_BALL.center).astype(int)
    vessel = _projected(scene, VESSEL_BALL.center).astype(int)
    assert img[bone[0], bone[1]] > 250  # 1200 HU: above the window
    assert 100 < img[vessel[0], vessel[1]] < 250  # 300 HU: inside the 200/700 window
    assert img[2, 2] < 5
    view.close()


def test_clipping_cuts_away(balls):
    scene, view = _view(balls, preset="cta")
    full = view.render()
    bone = _projected(scene, BONE_BALL.center).astype(int)
    vessel = _projected(scene, VESSEL_BALL.center).astype(int)
    scene.set_clip_plane(np.zeros(3), np.array([0.0, 0.0, -1.0]))  # keep the feet side
    cut = view.render()
    assert cut[bone[0], bone[1]].max() < 10 < full[bone[0], bone[1]].max()
    assert cut[vessel[0], vessel[1]].max() > 10
    scene.set_clip_box(np.array([0.0, -40, -40]), np.array([40.0, 40, 40]))  # keep the left
    boxed = view.render()
    assert boxed[bone[0], bone[1]].max() > 10 and boxed[vessel[0], vessel[1]].max() < 10
    assert len(scene.clip_planes) == 6
    scene.clear_clipping()
    assert np.array_equal(view.render(), full)
    with pytest.raises(ValueError, match="clip box must have high > low"):
        scene.set_clip_box(np.zeros(3), np.zeros(3))
    view.close()


def test_camera_rotate_zoom_pan(balls):
    scene, view = _view(balls, preset="bone")
    base = view.render()
    centre = _blob(base)
    scene.zoom(1.5)
    bigger = view.render()
    assert (bigger.mean(axis=2) > 40).sum() > 1.8 * (base.mean(axis=2) > 40).sum()
    scene.reset_camera()
    scene.pan(0.1, 0.0)
    moved = _blob(view.render())
    assert moved[1] - centre[1] == pytest.approx(0.1 * SIZE[1], abs=3)
    scene.reset_camera()
    scene.rotate(azimuth=180)  # now from behind: the left ball is on screen left
    assert _blob(view.render())[1] < SIZE[0] / 2
    scene.reset_camera()
    assert np.array_equal(view.render(), base)
    with pytest.raises(ValueError, match="unknown view"):
        scene.reset_camera("sideways")
    view.close()


def test_lower_quality_while_interacting(head):
    scene, view = _view(head, preset="bone")
    still = view.render()
    scene.set_interacting(True)
    moving = view.render()
    assert moving.shape == still.shape and moving.max() > 30
    assert not np.array_equal(moving, still)
    scene.set_interacting(False)
    assert np.array_equal(view.render(), still)
    view.close()


def test_interactive_quality_follows_the_frame_budget(head):
    scene, view = _view(head, preset="bone", frame_budget_s=1e-5)
    scene.set_interacting(True)
    start = scene.image_sample_distance
    for _ in range(6):
        scene.rotate(azimuth=5)
        view.render()
    assert scene.image_sample_distance > start  # frames too slow for the budget: coarser
    scene.set_interacting(False)
    assert scene.image_sample_distance == 1.0
    scene.frame_budget_s = 10.0
    scene.set_interacting(True)
    for _ in range(6):
        view.render()
    assert scene.image_sample_distance == pytest.approx(1.5, abs=0.15)  # plenty of time: finer
    view.close()


def test_large_volumes_are_rendered_resampled(head):
    scene, view = _view(head, preset="bone", max_voxels=head.array.size // 3)
    assert scene.array.size <= head.array.size // 3
    assert scene.note is not None and "resampled" in scene.note
    assert view.render().max() > 30
    view.close()
    assert _view(head)[0].note is None


def test_interactor_events_switch_quality(head):
    from vtkmodules.vtkRenderingCore import vtkRenderWindowInteractor

    scene, view = _view(head)
    interactor = vtkRenderWindowInteractor()
    interactor.SetRenderWindow(view.window)
    scene.bind_interactor(interactor)
    interactor.InvokeEvent("StartInteractionEvent")
    assert scene.interacting
    interactor.InvokeEvent("EndInteractionEvent")
    assert not scene.interacting
    view.close()


def test_gpu_mapper_renders_too(head):
    scene, view = _view(head, preset="bone", mapper="gpu")
    assert view.render().max() > 30
    view.close()
    with pytest.raises(ValueError, match="mapper must be"):
        VolumeScene(head.array, head.geometry, mapper="cuda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown preset"):
        VolumeScene(head.array, head.geometry, preset="lungs")


def test_prepare_makes_the_first_frame_and_preset_switches_the_same(head):
    """prepare() (on a worker thread, before the scene is shown) changes no pixel."""
    import threading

    plain, view = _view(head, preset="cta")
    expected = {}
    for name in ("cta", "soft", "mip", "brain"):
        plain.set_preset(name)
        expected[name] = view.render()
    view.close()
    scene = VolumeScene(head.array, head.geometry, intercept=ph.INTERCEPT, preset="cta")
    worker = threading.Thread(target=scene.prepare)
    worker.start()
    worker.join()
    assert scene.preset.name == "cta"
    view = OffscreenView(scene.renderer, SIZE)
    for name in ("cta", "soft", "mip", "brain"):
        scene.set_preset(name)
        assert np.array_equal(view.render(), expected[name]), name
    view.close()


def test_camera_frames_the_content_not_the_padding(balls):
    scene, view = _view(balls, preset="bone")
    box = scene.content_bounds(600.0)  # only the 1200 HU ball
    assert box is not None
    low, high = np.array(box[0::2]), np.array(box[1::2])
    centre = np.array(BONE_BALL.center)
    assert np.all(low < centre) and np.all(centre < high)
    # the ball and a voxel or two around it (more across a rotated grid's index box)
    assert np.all(high - low < 1.8 * (2 * 7.0 + 4 * 1.7))
    assert scene.content_bounds(5000.0) is None
    whole = view.render()
    scene.fit_bounds = box
    scene.reset_camera()
    framed = view.render()
    assert (framed.mean(axis=2) > 40).sum() > 2 * (whole.mean(axis=2) > 40).sum()
    view.close()


def _letter(view: str) -> np.ndarray:
    """The orientation cube's letter facing the camera from ``view``: a mask, cut to it."""
    from vtkmodules.vtkRenderingCore import vtkRenderer

    from app.render.scene3d import CAMERA_VIEWS, orientation_cube
    renderer = vtkRenderer()
    renderer.AddActor(orientation_cube())
    towards, up = CAMERA_VIEWS[view]
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(0, 0, 0)
    camera.SetPosition(*(5 * t for t in towards))
    camera.SetViewUp(*up)
    renderer.ResetCamera()
    out = OffscreenView(renderer, (200, 200))
    try:
        img = out.render()
    finally:
        out.close()
    face = img.astype(float).mean(axis=2)
    letter = face > 1.5 * np.median(face[face > 20])  # brighter than the cube's face
    rows, cols = np.nonzero(letter)
    assert rows.size > 50, f"no letter seen from {view}"
    return letter[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _thirds(mask: np.ndarray) -> tuple[float, float, float]:
    """How full the top, middle and bottom thirds' fullest rows are (0-1)."""
    h = mask.shape[0]
    fill = mask.mean(axis=1)
    return (fill[: h // 3].max(), fill[h // 3: 2 * h // 3].max(), fill[2 * h // 3:].max())


def test_the_orientation_cube_letters_read_upright_from_each_side() -> None:
    """Seen from the patient's left with the head up the cube shows an L with its foot at the
    bottom (it was upside down); from below with the face up, an F with its arms at the top."""
    left = _letter("left")  # L: a full bottom row, a stem on the left, nothing top right
    top, _, bottom = _thirds(left)
    assert bottom > 0.8 and top < 0.5, left.astype(int)
    assert left[:, : left.shape[1] // 4].mean() > 0.8  # the stem
    below = _letter("inferior")  # F: a full top row, a stem on the left, an empty bottom right
    top, _, bottom = _thirds(below)
    assert top > 0.8 and bottom < 0.5, below.astype(int)
    assert below[:, : below.shape[1] // 4].mean() > 0.8
    for view in ("right", "posterior"):  # R and P: their stems on the left
        mask = _letter(view)
        assert mask[:, : mask.shape[1] // 5].mean() > 0.8, (view, mask.astype(int))
    front = _letter("anterior")  # A: its apex at the top
    assert front[0].mean() < 0.5 * front[-1].mean(), front.astype(int)
