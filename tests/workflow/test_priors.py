"""Priors in the local store: same Patient ID and issuer, earlier, most relevant first."""

from __future__ import annotations

from pathlib import Path

from app.imports.importer import import_paths
from app.model import Study
from app.store.local import Store
from app.tasks import Progress
from app.workflow.priors import Prior, find_priors, rank
from tests.workflow.stroke_studies import stroke_study


def test_only_earlier_studies_of_the_same_patient_and_issuer(tmp_path: Path) -> None:
    files = (stroke_study(tmp_path / "a", date="20261201", seed=41, cta=False, issuer="HOSP-A")
             + stroke_study(tmp_path / "b", date="20250101", seed=42, cta=False, issuer="HOSP-A")
             + stroke_study(tmp_path / "c", date="20240101", seed=43, cta=False, issuer="HOSP-B")
             + stroke_study(tmp_path / "d", date="20270101", seed=44, cta=False, issuer="HOSP-A"))
    store = Store(tmp_path / "home")
    import_paths(store, [str(p) for p in files], Progress("test"))
    today = next(s for s in store.studies() if s.study_date == "20261201")
    found = find_priors(store, today)
    # HOSP-B's patient with the same number is someone else; 2027 is not a prior of 2026
    assert [(p.study_date, p.source) for p in found.priors] == [("20250101", "local")]


def test_a_study_without_patient_id_has_no_priors(tmp_path: Path) -> None:
    assert find_priors(Store(tmp_path), Study("1.2")).priors == ()


def test_same_modality_before_more_recent_and_local_copy_wins() -> None:
    today = Study("9", study_date="20261201", study_description="CT HEAD", modalities=("CT",))
    ct_old = Prior("1", "20200101", study_description="CT HEAD", modalities=("CT",))
    mr_new = Prior("2", "20260101", study_description="MR KNEE", modalities=("MR",))
    ct_new_hub = Prior("3", "20250101", study_description="CT HEAD", modalities=("CT",),
                       source="hub")
    ct_new_local = Prior("3", "20250101", study_description="CT HEAD", modalities=("CT",))
    ranked = rank([mr_new, ct_old, ct_new_hub, ct_new_local], today)
    assert [(p.study_instance_uid, p.source) for p in ranked] == [
        ("3", "local"), ("1", "local"), ("2", "local")]
