"""relay load / relay render / geometry_issues in ls, and the core staying free of Qt and VTK."""

from __future__ import annotations

import json
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


LOAD_AND_LIST_IMPORTS = (
    "import json, sys; from app.cli.main import main; "
    "code = main(sys.argv[1:]); "
    "heavy = sorted(m for m in ('pydicom', 'PIL', 'requests', 'keyring') if m in sys.modules); "
    "print(json.dumps({'code': code, 'heavy': heavy}))"
)


def _load_imports(home: Path, uid: str) -> tuple[dict, dict]:
    """``relay load UID --json`` in a fresh process: (its JSON, what it imported)."""
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_LIST_IMPORTS, "load", uid, "--json",
                           "--home", str(home)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    *load, imports = proc.stdout.strip().splitlines()
    return json.loads("\n".join(load)), json.loads(imports)


def test_load_of_an_uncompressed_series_imports_no_codec(ge_home: tuple[Path, str]) -> None:
    """pydicom, its codecs, Pillow and requests (~27 MB) stay out of a load that needs none of
    them."""
    home, uid = ge_home
    out, imports = _load_imports(home, uid)
    assert imports == {"code": 0, "heavy": []}
    assert out["shape"] == [28, 512, 512] and out["failed_slices"] == []


def test_load_of_a_compressed_series_leaves_the_codecs_to_the_pool(
        data: Path, tmp_path: Path) -> None:
    """The codec processes decode every compressed frame, the slice in view first; the process
    that holds the volume imports none of them (the arrays equal pydicom's: test_loader)."""
    import pydicom

    from app.dicom.pixels import needs_decoder
    from app.store.local import Store

    relay_json("import", str(data / "compressed" / "same-image-9-syntaxes"),
               str(data / "compressed" / "jpeg-ls"), str(data / "compressed" / "jpeg2000"),
               "--home", str(tmp_path))
    store = Store(tmp_path)
    checked = 0
    for study in store.studies():
        for series in study.series:
            uid = series.series_instance_uid
            assert needs_decoder(store.pixel_formats(uid))
            out, imports = _load_imports(tmp_path, uid)
            assert imports == {"code": 0, "heavy": []}
            assert out["failed_slices"] == [], out
            ds = pydicom.dcmread(store.instances(uid)[0].path)
            assert out["shape"][1:3] == [ds.Rows, ds.Columns]
            checked += 1
    assert checked >= 4


def test_pixel_formats_say_which_series_need_a_decoder(data: Path, tmp_path: Path) -> None:
    """The index's answer equals asking every image (deflated, big endian, colour, compressed,
    uncompressed grey: the nine-syntax set and the multi-frame objects)."""
    from app.dicom.pixels import is_native_direct, needs_decoder
    from app.store.local import Store

    relay_json("import", str(data / "compressed"), str(data / "multiframe"),
               str(data / "ct-head" / "ge-hispeed-human-gantry-tilt"), "--home", str(tmp_path))
    store = Store(tmp_path)
    seen = set()
    for study in store.studies():
        for series in study.series:
            instances = [i for i in store.instances(series.series_instance_uid) if i.image]
            truth = any(not is_native_direct(i.transfer_syntax_uid, i.image) for i in instances)
            formats = store.pixel_formats(series.series_instance_uid)
            assert needs_decoder(formats) == truth, series.series_description
            seen.add(truth)
    assert seen == {True, False}


def test_synth_syntax_names_are_the_generators() -> None:
    """``relay synth --syntax`` lists its names without importing the generator (pydicom)."""
    from app.cli.store import SYNTAX_NAMES
    from app.dicom.synth import SYNTAXES

    assert sorted(SYNTAX_NAMES) == sorted(SYNTAXES)


def test_building_the_parser_imports_no_codec_network_or_keyring() -> None:
    code = ("import sys; from app.cli.main import build_parser; build_parser(); "
            "heavy = [m for m in ('pydicom', 'PIL', 'requests', 'keyring') if m in sys.modules];"
            " print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_render_a_perfusion_map_in_its_palette(data: Path, tmp_path: Path) -> None:
    """``relay render`` of the rCBF map wrote a grey PNG, though the viewer and its thumbnail
    show the map in its Supplemental Palette Color LUT; the PNG is in its colours now, values
    outside the palette grey through the window."""
    import pydicom

    path = data / "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm"
    home = tmp_path / "home"
    uid = relay_json("import", str(path), "--home", str(home))[
        "studies"][0]["series"][0]["series_instance_uid"]
    out = tmp_path / "map.png"
    run_relay("render", uid, "--out", str(out), "--home", str(home))
    img = np.asarray(Image.open(out))
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    ds = pydicom.dcmread(path)
    rgb = np.stack([np.frombuffer(getattr(ds, f"{c}PaletteColorLookupTableData"), "<u2") >> 8
                    for c in ("Red", "Green", "Blue")], axis=-1)
    frames = ds.pixel_array.astype(np.int64)
    # the middle slice of the stack: one of the two frames, coloured where the palette reads
    for stored in frames:
        inside = (stored >= 1024) & (stored < 1024 + len(rgb))
        if (img[inside] == rgb[stored[inside] - 1024]).all():
            break
    else:
        raise AssertionError("no frame's palette colours in the PNG")
    outside = img[~inside]
    assert inside.mean() > 0.05
    assert (outside[:, 0] == outside[:, 1]).all() and (outside[:, 1] == outside[:, 2]).all()
