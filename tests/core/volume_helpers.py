"""Helpers for volume tests: import a folder into a fresh store, get its series' plans."""

from __future__ import annotations

from pathlib import Path

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.store.local import Store
from app.volume.stack import SeriesPlan, plan_series


def store_with(home: Path, *paths: Path) -> Store:
    store = Store(home)
    report = import_paths(store, [str(p) for p in paths])
    assert not report.failed, report.failed
    return store


def only_series(store: Store) -> str:
    uids = [s.series_instance_uid for st in store.studies() for s in st.series]
    assert len(uids) == 1, uids
    return uids[0]


def plan_of(store: Store, uid: str | None = None) -> SeriesPlan:
    return plan_series(store.instances(uid or only_series(store)))


def synth_plan(tmp: Path, **spec: object) -> tuple[Store, SeriesPlan]:
    """A small synthetic CT series (64×64 by default) imported into a fresh store."""
    kw = {"rows": 64, "columns": 64, "pixel_spacing": 3.5, "noise_hu": 0.0}
    kw.update(spec)
    generate_series(tmp / "files", SeriesSpec(**kw))  # type: ignore[arg-type]
    store = store_with(tmp / "home", tmp / "files")
    return store, plan_of(store)
