"""Deleting from and exporting out of the local store (issue 19's study management)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.imports.importer import import_paths
from app.net.queue import TransferQueue
from app.net.sent import transfers_using
from app.store.local import Store
from app.workflow.export import export_studies

pytestmark = pytest.mark.usefixtures("data")


def _cd(home: Path, data: Path) -> Store:
    store = Store(home)
    report = import_paths(store, [str(data / "cd" / "pydicom-dicomdirtests")])
    assert report.imported == 31
    return store


def test_deleting_a_series_removes_its_rows_and_files_and_keeps_the_rest(home, data) -> None:
    store = _cd(home, data)
    study = next(s for s in store.studies() if len(s.series) > 1)
    gone, kept = study.series[0], study.series[1]
    files = [i.path for i in store.instances(gone.series_instance_uid)]
    assert all(p.exists() for p in files)
    before = store.counts()

    assert store.delete_series([gone.series_instance_uid]) == gone.instance_count
    assert store.series(gone.series_instance_uid) is None
    assert not any(p.exists() for p in files)
    assert store.series(kept.series_instance_uid) is not None
    assert all(i.path.exists() for i in store.instances(kept.series_instance_uid))
    after = store.counts()
    assert after["instances"] == before["instances"] - gone.instance_count
    assert after["studies"] == before["studies"]


def test_deleting_a_study_removes_it_and_a_reimport_brings_it_back(home, data) -> None:
    store = _cd(home, data)
    study = store.studies()[0]
    removed = store.delete_study(study.study_instance_uid)
    assert removed == study.instance_count
    assert store.study(study.study_instance_uid) is None
    again = import_paths(store, [str(data / "cd" / "pydicom-dicomdirtests")])
    assert again.imported == removed and again.duplicates == 31 - removed


def test_export_copies_byte_exact_files_under_patient_free_names(home, data, tmp_path) -> None:
    store = _cd(home, data)
    study = next(s for s in store.studies() if len(s.series) > 1)
    uid = study.study_instance_uid
    result = export_studies(store, [uid], tmp_path / "out", layout="folder")
    assert result.instances == study.instance_count and len(result.folders) == 1
    assert not (tmp_path / "out" / "DICOMDIR").exists()
    written = sorted(result.folders[0].rglob("*.dcm"))
    assert sorted(result.files.values()) == [p.relative_to(tmp_path / "out").as_posix()
                                             for p in written]
    digest = {hashlib.sha256(p.read_bytes()).hexdigest() for p in written}
    stored = {i.sha256 for s in study.series for i in store.instances(s.series_instance_uid)}
    assert digest == stored
    name = study.patient.patient_name.split("^")[0]
    assert name and all(name not in str(p.relative_to(tmp_path)) for p in written)
    second = export_studies(store, [uid], tmp_path / "out", layout="folder",
                            series_uids=[study.series[0].series_instance_uid])
    assert second.folders != result.folders
    assert second.instances == study.series[0].instance_count


def test_an_unfinished_transfer_of_the_study_is_found_before_deleting(home, data) -> None:
    store = _cd(home, data)
    study = next(s for s in store.studies() if len(s.series) > 1)
    assert transfers_using(home, study.study_instance_uid) == []
    one = study.series[0].series_instance_uid
    queue = TransferQueue(home)
    job = queue.create("send", "hub", study.study_instance_uid, [one], [])
    assert [j.id for j in transfers_using(home, study.study_instance_uid)] == [job.id]
    assert transfers_using(home, study.study_instance_uid, [one]) != []
    assert transfers_using(home, study.study_instance_uid,
                           [study.series[1].series_instance_uid]) == []
    queue.set_state(job.id, "verified")
    assert transfers_using(home, study.study_instance_uid) == []
