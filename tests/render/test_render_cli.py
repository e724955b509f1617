"""``relay render --plane`` / ``--slab`` / ``--mode``: MPR pictures from the command line, made by
the same code as the views, next to the stored-slice ``relay render`` that keeps working."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.render.export import render_plane
from app.render.mpr import mpr_source
from app.volume.loader import load_stack
from tests.conftest import relay_json, run_relay
from tests.core.volume_helpers import only_series, plan_of, store_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ge_home(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("ge-render")
    store = store_with(home, data / "ct-head" / "ge-hispeed-human-gantry-tilt")
    return home, only_series(store)


def test_plane_slab_matches_the_library(ge_home: tuple[Path, str], tmp_path: Path,
                                        data: Path) -> None:
    home, uid = ge_home
    out = tmp_path / "cor.png"
    info = relay_json("render", uid, "--out", str(out), "--plane", "coronal", "--slab", "20",
                      "--mode", "mip", "--window", "300,1500", "--home", str(home))
    img = np.asarray(Image.open(out))
    assert img.dtype == np.uint8 and list(img.shape) == info["shape"]
    assert info["labels"] == {"left": "R", "right": "L", "top": "H", "bottom": "F"}
    assert (info["slab_mm"], info["mode"], info["window"]) == (20.0, "mip", [300.0, 1500.0])
    assert any("resampled" in n for n in info["notes"])  # uneven stack: the user is told
    assert any("Gantry tilt of 18.5°" in n for n in info["notes"])
    # the same picture as the library call on the same loaded volume
    store = store_with(tmp_path / "again", data / "ct-head" / "ge-hispeed-human-gantry-tilt")
    volume, _ = load_stack(plan_of(store).main)
    source = mpr_source(volume, modality="CT")
    lib = render_plane(source.array, source.geometry, plane="coronal", slab_mm=20.0,
                       mode="mip", window=(300.0, 1500.0), slope=source.slope,
                       intercept=source.intercept, background=source.background)
    assert np.array_equal(lib.pixels, img)


def test_slab_thickness_and_mode_change_the_picture(ge_home: tuple[Path, str],
                                                     tmp_path: Path) -> None:
    home, uid = ge_home
    pictures = {}
    for name, extra in {"thin": [], "mip": ["--slab", "30"], "minip": ["--slab", "30", "--mode",
                                                                        "minip"],
                        "avg": ["--slab", "30", "--mode", "avg"]}.items():
        path = tmp_path / f"{name}.png"
        run_relay("render", uid, "--out", str(path), "--plane", "sagittal", "--window",
                  "40,400", "--home", str(home), *extra)
        pictures[name] = np.asarray(Image.open(path)).astype(int)
    assert pictures["mip"].sum() > pictures["avg"].sum() > pictures["minip"].sum()
    assert pictures["mip"].sum() > pictures["thin"].sum() > pictures["minip"].sum()


def test_bad_plane_options_are_one_clear_line(ge_home: tuple[Path, str], tmp_path: Path) -> None:
    home, uid = ge_home
    out = str(tmp_path / "x.png")
    proc = run_relay("render", uid, "--out", out, "--slab", "10", "--home", str(home),
                     check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "relay: --slab needs --plane (axial, coronal or sagittal)"
    proc = run_relay("render", uid, "--out", out, "--plane", "axial", "--slab", "80",
                     "--home", str(home), check=False)
    assert proc.returncode == 2 and "between 1 and 50 mm" in proc.stderr
    proc = run_relay("render", uid, "--out", out, "--plane", "oblique", "--home", str(home),
                     check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_render_plane_of_a_perfusion_map_is_in_its_palette(data: Path, tmp_path: Path) -> None:
    """``relay render --plane`` of the rCBF map wrote a grey PNG while the MPR view shows the
    planes in the map's palette; the reformatted plane is in its colours now, grey elsewhere."""
    import pydicom

    path = data / "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm"
    home = tmp_path / "home"
    uid = relay_json("import", str(path), "--home", str(home))[
        "studies"][0]["series"][0]["series_instance_uid"]
    out = tmp_path / "plane.png"
    shown = relay_json("render", uid, "--plane", "axial", "--out", str(out), "--home",
                       str(home))
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.shape[2] == 3 and list(img.shape) == shown["shape"]
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    rgb = np.stack([np.frombuffer(getattr(ds, f"{c}PaletteColorLookupTableData"), "<u2") >> 8
                    for c in ("Red", "Green", "Blue")], axis=-1)
    colours = {tuple(c) for c in rgb}
    coloured = (img[..., 0] != img[..., 1]) | (img[..., 1] != img[..., 2])
    assert coloured.mean() > 0.05  # the map, in colour
    assert {tuple(c) for c in img[coloured][:: max(1, coloured.sum() // 500)]} <= colours
