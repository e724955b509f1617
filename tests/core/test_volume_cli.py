"""relay load / relay render / geometry_issues in ls, and the core staying free of Qt and VTK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, relay_json, run_relay


@pytest.fixture(scope="module")
def ge_home(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("ge")
    out = relay_json("import", str(data / "ct-head" / "ge-hispeed-human-gantry-tilt"),
                     "--home", str(home))
    return home, out["studies"][0]["series"][0]["series_instance_uid"]


def test_load_json(ge_home: tuple[Path, str]) -> None:
    home, uid = ge_home
    out = relay_json("load", uid, "--home", str(home))
    assert set(out) == {"shape", "dtype", "spacing_mm", "affine", "geometry_issues",
                        "failed_slices", "first_slice_seconds", "seconds"}
    assert out["shape"] == [28, 512, 512] and out["dtype"] == "int16"
    assert len(out["affine"]) == 4 and all(len(r) == 4 for r in out["affine"])
    assert out["spacing_mm"][1:] == pytest.approx([0.488281, 0.488281])
    assert any("18.5°" in s for s in out["geometry_issues"])
    assert out["failed_slices"] == []
    assert 0 < out["first_slice_seconds"] <= out["seconds"]


def test_import_and_ls_json_carry_geometry_issues(ge_home: tuple[Path, str]) -> None:
    home, _ = ge_home
    series = relay_json("ls", "--home", str(home))["studies"][0]["series"][0]
    assert any("tilt of 18.5°" in s for s in series["geometry_issues"])
    assert any("uneven slice spacing" in s for s in series["geometry_issues"])


def test_render_png_default_and_window(ge_home: tuple[Path, str], tmp_path: Path) -> None:
    home, uid = ge_home
    default = tmp_path / "default.png"
    run_relay("render", uid, "--out", str(default), "--home", str(home))
    img = np.asarray(Image.open(default))
    assert img.shape == (512, 512) and img.dtype == np.uint8
    assert img.min() == 0 and img.max() == 255  # the file's 35/100 brain window clips both ends
    wide = tmp_path / "wide.png"
    run_relay("render", uid, "--out", str(wide), "--slice", "0", "--window", "40,4000",
              "--home", str(home))
    assert np.asarray(Image.open(wide)).max() < 255


def test_render_bad_slice_is_one_clear_line(ge_home: tuple[Path, str], tmp_path: Path) -> None:
    home, uid = ge_home
    proc = run_relay("render", uid, "--out", str(tmp_path / "x.png"), "--slice", "99",
                     "--home", str(home), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "relay: slice 99 asked; the stack has 28 (0 to 27)"


def test_core_imports_neither_qt_nor_vtk() -> None:
    code = ("import sys, app, app.loader, app.stack, app.volume, app.pixels, app.decodepool, "
            "app.commands_volume, app.render.voi, app.render.slice_png, app.cli; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'vtk', 'pyqtgraph'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
