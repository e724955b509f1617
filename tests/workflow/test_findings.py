"""Findings as DICOM objects: an SR measurement report, a KOS and a GSPS that dciodvfy
accepts, stored in the study, read back as they were written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from app.imports.importer import import_paths
from app.render.roi import mirror_stats
from app.store.local import Store
from app.tasks import Progress
from app.volume.loader import load_stack
from app.volume.plans import series_plan
from app.workflow.aspects import Aspects
from app.workflow.findings import (
    Findings,
    Mark,
    RegionFinding,
    in_view_mm,
    read_findings,
    save_findings,
)
from tests.workflow.stroke_studies import stroke_study


def dciodvfy_errors(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    assert tool, "dciodvfy (dicom3tools) is needed"
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines()
            if line.startswith("Error")]


@pytest.fixture
def stroke_store(tmp_path: Path) -> Store:
    files = stroke_study(tmp_path / "s", date="20261201", seed=51, cta=False, size=128)
    store = Store(tmp_path / "home")
    import_paths(store, [str(p) for p in files], Progress("test"))
    return store


def test_findings_saved_validate_and_read_back(stroke_store: Store) -> None:
    store = stroke_store
    (study,) = store.studies()
    (series,) = study.series
    sops = [i.sop_instance_uid for i in sorted(store.instances(series.series_instance_uid),
                                               key=lambda i: i.instance_number or 0)]
    # a real measurement on the phantom's left MCA infarct, mirrored across the midline
    volume, _ = load_stack(series_plan(store, series.series_instance_uid).main)
    k = 24
    values = volume.array[k] * float(volume.slope[k]) + float(volume.intercept[k])
    midline = ((128.0, 0.0), (128.0, 256.0))  # 2 mm pixels, 128 columns
    mirrored = mirror_stats(values, "ellipse", (164.0, 120.0), (184.0, 150.0), (2.0, 2.0),
                            midline)
    assert mirrored is not None and mirrored.difference < -8  # the infarct is darker
    region = RegionFinding(sops[k], "ellipse", (164.0, 120.0), (184.0, 150.0),
                           mirrored.here.mean, mirrored.here.sd, mirrored.there.mean,
                           mirrored.there.sd, midline)
    findings = Findings(
        study.study_instance_uid, aspects=Aspects.of([], ["M2", "M5", "I"]),
        aspects_images=(sops[k], sops[k + 8]), regions=(region,), key_images=(sops[k],),
        key_text="Left MCA territory hypodensity, ASPECTS 7",
        marks=(Mark(sops[k], "length", ((20.0, 30.0), (60.0, 30.0)), "40.0 mm"),
               Mark(sops[k], "ellipse", ((164.0, 120.0), (184.0, 150.0))),
               Mark(sops[k], "arrow", ((100.0, 200.0), (150.0, 140.0)))))
    stored = save_findings(store, findings, window=(40.0, 40.0))
    assert len(stored) == 3
    for item in stored:
        path = store.abspath(item.relpath)
        assert dciodvfy_errors(path) == [], pydicom.dcmread(path).Modality
    fresh = store.study(study.study_instance_uid)
    assert fresh is not None
    assert sorted(s.modality for s in fresh.series) == ["CT", "KO", "PR", "SR"]
    back = read_findings(store, fresh)
    assert back is not None and back.aspects is not None
    assert back.aspects.score("left") == 7 and back.aspects.score("right") == 10
    assert back.aspects.affected["left"] == {"M2", "M5", "I"}
    assert back.aspects_images == (sops[k], sops[k + 8])
    (got,) = back.regions
    got = in_view_mm(got, (2.0, 2.0))
    assert (got.p0, got.p1, got.midline) == (region.p0, region.p1, midline)
    assert got.mean == pytest.approx(region.mean) and got.difference == pytest.approx(
        mirrored.difference)
    assert back.key_images == (sops[k],) and back.key_text.startswith("Left MCA")
    kinds = sorted(m.kind for m in back.marks)
    assert kinds == ["arrow", "ellipse", "length", "text"]
    arrow = next(m for m in back.marks if m.kind == "arrow")
    assert arrow.points == ((50.0, 100.0), (75.0, 70.0))  # tail and tip, in 2 mm pixels


def test_no_findings_in_a_plain_study(stroke_store: Store) -> None:
    (study,) = stroke_store.studies()
    assert read_findings(stroke_store, study) is None
