"""Real series from ../shared/data: sagittal MR, enhanced multi-frame MR, tilted and unevenly
spaced CT, the Visible Human head. Each must reformat into upright anatomy, and the acquisition
plane must give back exactly the stored slice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.imports.importer import import_paths
from app.render.crosshair import Crosshair
from app.render.export import render_plane
from app.render.grid import SliceGrid
from app.render.mpr import mpr_source
from app.render.planes import VIEWS, Plane
from app.render.reslice import Reslicer
from app.store.local import Store
from app.volume.geometry import VolumeGeometry
from app.volume.loader import load_stack
from app.volume.stack import plan_series

pytestmark = pytest.mark.slow


@dataclass
class Series:
    """A real series loaded as Relay loads it, and what MPR reslices (``array``)."""

    array: np.ndarray
    geometry: VolumeGeometry
    slope: float
    intercept: float
    note: str | None
    stored: np.ndarray  # the slices as loaded, stack order
    positions: np.ndarray


def read_series(folder: Path, home: Path) -> Series:
    """Import ``folder`` into a fresh store, load its main stack and prepare it for MPR."""
    store = Store(home)
    import_paths(store, [str(folder)])
    (series,) = [s for st in store.studies() for s in st.series]
    plan = plan_series(store.instances(series.series_instance_uid),
                       series.frame_of_reference_uid)
    assert plan.main is not None
    volume, _ = load_stack(plan.main)
    source = mpr_source(volume, modality=series.modality)
    uneven = [n for n in source.notes if "unevenly" in n]
    return Series(source.array, source.geometry, source.slope, source.intercept,
                  uneven[0] if uneven else None, volume.array, volume.positions)


@pytest.fixture(scope="module")
def mr_sag(data, tmp_path_factory) -> Series:
    return read_series(data / "mr-brain" / "philips-elition-t1-mprage-sag",
                       tmp_path_factory.mktemp("mr"))


@pytest.fixture(scope="module")
def ge_tilt(data, tmp_path_factory) -> Series:
    return read_series(data / "ct-head" / "ge-hispeed-human-gantry-tilt",
                       tmp_path_factory.mktemp("ge"))


@pytest.fixture(scope="module")
def xa30(data, tmp_path_factory) -> Series:
    return read_series(data / "multiframe" / "siemens-xa30-enhanced-mr-t1w",
                       tmp_path_factory.mktemp("xa30"))


def _stored_plane_reproduced(series: Series, k: int, acquired_view: str) -> None:
    """The acquisition crosshair's plane through slice ``k`` shows slice ``k`` unchanged."""
    g = series.geometry
    ch = Crosshair(g, align="acquisition")
    plane = ch.plane(acquired_view)  # type: ignore[arg-type]
    assert abs(plane.right @ g.row_direction) == pytest.approx(1, abs=1e-6) or \
        abs(plane.right @ g.column_direction) == pytest.approx(1, abs=1e-6)
    assert abs(plane.normal @ np.cross(g.row_direction, g.column_direction)) == \
        pytest.approx(1, abs=1e-9)
    # a grid laid exactly on the stored pixels of slice k
    origin = g.index_to_lps(np.array([0.0, 0.0, k]))
    on_pixels = Plane(center=origin, right=g.row_direction, down=g.column_direction)
    grid = SliceGrid(plane=on_pixels, origin=origin, pixel_mm=g.spacing[2], shape=g.shape[1:])
    out = Reslicer(series.array, g).slice(grid)
    assert np.array_equal(out.pixels, series.array[k])


def test_sagittal_mr_reformats_upright(mr_sag):
    assert mr_sag.note is None and mr_sag.slope == pytest.approx(2.3617, abs=1e-3)
    _stored_plane_reproduced(mr_sag, 85, "sagittal")
    views = {v: render_plane(mr_sag.array, mr_sag.geometry, plane=v, slope=mr_sag.slope)
             for v in VIEWS}
    labels = {v: (im.grid.labels.left, im.grid.labels.right, im.grid.labels.top,
                  im.grid.labels.bottom) for v, im in views.items()}
    assert labels == {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "H", "F"),
                      "sagittal": ("A", "P", "H", "F")}
    coronal = views["coronal"].pixels.astype(float)
    rows = coronal.shape[0] // 10
    assert coronal[-rows:].mean() > 2 * coronal[:rows].mean()  # neck at the bottom, air on top


def test_enhanced_multiframe_mr(xa30):
    assert xa30.array.shape == (96, 128, 128)
    _stored_plane_reproduced(xa30, 48, "sagittal")
    axial = render_plane(xa30.array, xa30.geometry, plane="axial")
    assert axial.grid.labels.top == "A" and axial.pixels.max() == 255


def test_tilted_uneven_ct_is_resampled_in_patient_space(ge_tilt):
    g = ge_tilt.geometry
    assert ge_tilt.note is not None and "unevenly spaced" in ge_tilt.note
    # across the slices, as the series' issues measure it (4.22 and 7.38 mm along the tilt)
    assert "(1.08 to 7 mm apart)" in ge_tilt.note
    normal = np.cross(g.row_direction, g.column_direction)
    tilt = np.degrees(np.arccos(abs(normal @ g.slice_direction)))
    assert tilt == pytest.approx(18.5, abs=0.3)  # kept as a shear, not straightened
    _stored_plane_reproduced(ge_tilt, 0, "axial")
    assert np.array_equal(ge_tilt.array[0], ge_tilt.stored[0])
    axial = render_plane(ge_tilt.array, ge_tilt.geometry, plane="axial", window=(35, 100),
                         slope=ge_tilt.slope, intercept=ge_tilt.intercept, align="acquisition")
    assert (axial.grid.labels.top, axial.grid.labels.bottom) == ("AH", "PF")


@pytest.mark.gl
def test_visible_human_slab_and_3d(data, tmp_path):
    from app.render.offscreen import OffscreenView
    from app.render.scene3d import VolumeScene

    vh = read_series(data / "ct-head" / "visible-human-male-head-1mm", tmp_path)
    assert vh.note is None and vh.array.shape == (245, 512, 512)
    mip = render_plane(vh.array, vh.geometry, plane="coronal", slab_mm=20.0, mode="mip",
                       window=(300, 1500), intercept=vh.intercept)
    thin = render_plane(vh.array, vh.geometry, plane="coronal", window=(300, 1500),
                        intercept=vh.intercept)
    assert mip.pixels.astype(int).sum() > thin.pixels.astype(int).sum()
    assert np.all(mip.pixels >= thin.pixels)  # a MIP slab is never darker than its centre

    scene = VolumeScene(vh.array, vh.geometry, intercept=vh.intercept, preset="bone")
    view = OffscreenView(scene.renderer, (200, 200))
    bone = view.render()
    scene.set_preset("soft")
    skin = view.render()
    assert bone.max() > 100 and skin.max() > 100
    assert np.abs(bone.astype(int) - skin).mean() > 5
    view.close()
