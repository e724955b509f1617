"""Series thumbnails of real files, as the series strip and the browser show them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.imports.importer import import_paths
from app.render.thumbnails import series_thumbnail, thumbnail_path
from app.store.local import Store

pytestmark = pytest.mark.usefixtures("data")

PERFUSION = "multiframe/small-enhanced-ct-mr/eCT_Supplemental.dcm"
PLAIN_CT = "ct-head/visible-human-male-head-1mm/vhm.1120.dcm"


def _series_uid(store: Store) -> str:
    (study,) = store.studies()
    (series,) = study.series
    return series.series_instance_uid


def test_a_perfusion_map_thumbnail_is_in_its_palette(tmp_path: Path, data: Path) -> None:
    """The rCBF map's thumbnail in the series strip was grey while the map is shown in its
    Supplemental Palette Color LUT; a thumbnail shows it as the viewer does."""
    store = Store(tmp_path / "home")
    import_paths(store, [str(data / PERFUSION)])
    uid = _series_uid(store)
    image = series_thumbnail(store, uid)
    assert image is not None and image.ndim == 3 and image.shape[2] == 3
    coloured = (image[..., 0] != image[..., 1]) | (image[..., 1] != image[..., 2])
    assert coloured.mean() > 0.05  # the map's tissue, in colour
    assert not coloured.all()  # the background outside the palette stays grey
    cached = series_thumbnail(store, uid)  # from the cache, in colour too
    assert cached is not None and np.array_equal(cached, image)
    assert thumbnail_path(store, uid).exists()


def test_a_grey_thumbnail_cached_before_palettes_is_made_again(tmp_path: Path,
                                                                data: Path) -> None:
    store = Store(tmp_path / "home")
    import_paths(store, [str(data / PERFUSION)])
    uid = _series_uid(store)
    old = store.home / "cache" / "thumbnails" / f"{uid}.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"a grey one")
    image = series_thumbnail(store, uid)
    assert image is not None and image.ndim == 3 and not old.exists()


def test_a_plain_ct_thumbnail_stays_grey(tmp_path: Path, data: Path) -> None:
    store = Store(tmp_path / "home")
    import_paths(store, [str(data / PLAIN_CT)])
    image = series_thumbnail(store, _series_uid(store))
    assert image is not None and image.ndim == 2
