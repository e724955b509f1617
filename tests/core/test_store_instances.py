"""A series' instances read from the index equal what each row's image JSON says, though the
store parses the part its images share only once; its image rows (for planning) are the same
images, planned the same."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from app.imports.importer import import_paths
from app.model import ImageInfo
from app.store.local import Store
from app.volume.stack import plan_series


def _each_row_parsed(store: Store, series_uid: str) -> list[tuple[str, ImageInfo | None]]:
    """(SOP Instance UID, ImageInfo) of each row, its JSON parsed whole, in instances order."""
    with sqlite3.connect(store.db_path) as conn:
        rows = conn.execute(
            "SELECT sop_instance_uid, image FROM instances WHERE series_instance_uid=? "
            "ORDER BY instance_number IS NULL, instance_number, sop_instance_uid",
            (series_uid,)).fetchall()
    return [(uid, ImageInfo.from_json(text) if text else None) for uid, text in rows]


def _check_series(store: Store, series_uid: str) -> int:
    got = store.instances(series_uid)
    images = [i for i in got if i.image is not None]
    assert [tuple(r) for r in store.image_rows(series_uid)] == [
        (i.sop_instance_uid, i.transfer_syntax_uid, i.instance_number, i.acquisition_number,
         i.path, i.image) for i in images]
    by_rows, by_instances = plan_series(store.image_rows(series_uid)), plan_series(got)
    assert by_rows.issues == by_instances.issues
    assert [s.slices for s in by_rows.stacks] == [s.slices for s in by_instances.stacks]
    expected = _each_row_parsed(store, series_uid)
    assert [(i.sop_instance_uid, i.image) for i in got] == expected
    for inst, (_, info) in zip(got, expected, strict=True):
        assert inst.path is not None and inst.path.is_file()
        assert store.instance(inst.sop_instance_uid) == inst
        if info is not None:  # the same types, not only equal values
            assert inst.image is not None and inst.image.__dict__ == info.__dict__
            assert all(type(inst.image.__dict__[k]) is type(v) for k, v in info.__dict__.items())
    return len(got)


@pytest.mark.parametrize("folder", [
    "ct-head/ge-hispeed-human-gantry-tilt",
    "multiframe",
    "compressed",
    "mr-brain",
])
def test_instances_equal_each_rows_json_parsed_whole(data: Path, tmp_path: Path,
                                                     folder: str) -> None:
    store = Store(tmp_path / "home")
    import_paths(store, [str(data / folder)])
    seen = sum(_check_series(store, s.series_instance_uid)
               for st in store.studies() for s in st.series)
    assert seen > 0


def test_rows_written_before_a_field_existed_read_with_its_default(data: Path,
                                                                    tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    import_paths(store, [str(data / "ct-head" / "ge-hispeed-human-gantry-tilt")])
    series_uid = next(s.series_instance_uid for st in store.studies() for s in st.series)
    with sqlite3.connect(store.db_path) as conn:
        uid, text = conn.execute("SELECT sop_instance_uid, image FROM instances "
                                 "WHERE series_instance_uid=? LIMIT 1", (series_uid,)).fetchone()
        old = {k: v for k, v in json.loads(text).items()
               if k not in ("pixel_length", "fragments", "frame_info", "voi_lut_function")}
        conn.execute("UPDATE instances SET image=? WHERE sop_instance_uid=?",
                     (json.dumps(old), uid))
    assert _check_series(store, series_uid) > 1
    image = store.instance(uid).image  # type: ignore[union-attr]
    assert image is not None and image.pixel_length is None and image.fragments == ()
