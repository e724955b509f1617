"""UIDs made up for objects that lack them: keyed per home, stable within it.

An object without a Study or Series Instance UID is grouped under UIDs derived from its
identifiers. A bare hash of those could be recomputed by anyone guessing a patient's ID, name and
study date, and would link the same patient across stores: the derivation is an HMAC under the
home's secret (the one de-identification uses).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.store.local import Store
from app.store.reindex import rebuild_index


def _without_uids(tmp_path: Path) -> list[Path]:
    files = generate_series(tmp_path / "src", SeriesSpec(slices=3, rows=16, columns=16))
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.StudyInstanceUID
        del ds.SeriesInstanceUID
        ds.save_as(path)
    return files


def _study_uid(home: Path, files: list[Path]) -> tuple[str, int]:
    store = Store(home)
    try:
        report = import_paths(store, [str(p) for p in files])
        uids = report.study_uids
        assert len(uids) == 1
        return uids[0], report.imported
    finally:
        store.close()


def test_derived_uids_are_keyed_per_home_and_stable_within_it(tmp_path) -> None:
    files = _without_uids(tmp_path)
    first, imported = _study_uid(tmp_path / "a", files)
    assert imported == 3 and first.startswith("2.25.")
    again, imported = _study_uid(tmp_path / "a", files)
    assert (again, imported) == (first, 0)  # a re-import finds the same study
    rebuild_index(tmp_path / "a")
    store = Store(tmp_path / "a")
    assert [s.study_instance_uid for s in store.studies()] == [first]  # and so does a reindex
    store.close()
    other, _ = _study_uid(tmp_path / "b", files)
    assert other != first  # another home: not linkable

    ds = pydicom.dcmread(files[0])
    text = "\x1f".join(["study", str(ds.PatientID), str(ds.PatientName), str(ds.StudyDate),
                        str(ds.StudyTime), str(ds.get("StudyID", "")),
                        str(ds.get("AccessionNumber", ""))])
    bare = "2.25." + str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))
    assert first != bare  # not recomputable from guessed identifiers
