"""Reconciliation of an outside study with the local patient (IHE Import Reconciliation Workflow).

The study's instances are copied with the local patient's values coerced (PS3.3 C.12.1: the old
values in OriginalAttributesSequence, reason COERCE; the outside patient ID kept in
OtherPatientIDsSequence with its issuer). By default the UIDs stay and the copy supersedes the
outside instances in the index (their bytes stay in the store, listed by
:meth:`Store.superseded`, and are what a re-import of the CD matches); with ``new_uids`` the copy
is a new study whose UIDs, and the references to them inside the study, are mapped consistently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from app.imports.media import Problem
from app.store.local import Store, StoredFile
from app.tasks import Progress
from app.workflow import audit
from app.workflow.derive import (
    WorkflowError,
    fit_character_set,
    link,
    links,
    read_datasets,
    stage,
    study_instances,
)
from app.workflow.patient import KEYWORDS, PatientValues, confirmation_needed

log = logging.getLogger(__name__)

MODIFYING_SYSTEM = "RELAY"
REASON = "COERCE"


@dataclass(frozen=True)
class ReconcileResult:
    study_instance_uid: str
    reconciled_study_uid: str
    #: keyword -> (before, after) of what the copy changed, as in the first file it changed:
    #: the patient values, the Study Instance UID when new, and a Study or Series Instance UID
    #: a file lacked ("" before).
    changed: dict[str, tuple[str, str]]
    instances: int
    failed: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"study_instance_uid": self.study_instance_uid,
                "reconciled_study_uid": self.reconciled_study_uid,
                "changed": {k: list(v) for k, v in self.changed.items()},
                "instances": self.instances,
                "failed": [{"path": p.path, "reason": p.reason} for p in self.failed]}


def outside_values(store: Store, study_uid: str) -> PatientValues:
    """What the stored study says about its patient (the index's study row)."""
    study = store.study(study_uid)
    if study is None:
        raise WorkflowError(f"no study {study_uid} in the store")
    p = study.patient
    return PatientValues(p.patient_name, p.patient_id, p.issuer_of_patient_id,
                         p.patient_birth_date, p.patient_sex, study.accession_number)


def disc_values(store: Store, study_uid: str) -> PatientValues:
    """What the outside disc said about the patient, also once the study was reconciled (to
    correct a wrong pick, the local values are checked against the disc, never against the
    wrong pick): the outside original's values, else the study's own."""
    for kept in store.superseded(study_uid)[:1]:  # oldest first: the outside original
        try:
            return PatientValues.from_dataset(
                pydicom.dcmread(str(kept["path"]), stop_before_pixels=True, force=True))
        except Exception:  # noqa: BLE001 - a damaged original: the study's values below
            log.warning("the outside original of a reconciled study cannot be read")
    for pair in links(store, study_uid):
        if pair.kind == "reconciled" and pair.derived_study_uid == study_uid \
                and pair.original_study_uid != study_uid:  # a copy with new UIDs
            return outside_values(store, pair.original_study_uid)
    return outside_values(store, study_uid)


def reconcile_study(store: Store, study_uid: str, local: PatientValues, *,
                    new_uids: bool = False, confirmed: bool = False,
                    progress: Progress | None = None) -> ReconcileResult:
    """File the study under ``local``; refuse a birth date or sex that disagrees unless
    ``confirmed``."""
    if not local.patient_id:
        raise WorkflowError("the local patient ID is needed to reconcile")
    doubts = confirmation_needed(disc_values(store, study_uid), local)
    if doubts and not confirmed:
        raise WorkflowError(f"{' and '.join(doubts)} disagree between the outside study and "
                            "the local patient: confirm that this is the same person")
    instances = study_instances(store, study_uid)
    uid_map = _uid_map(instances) if new_uids else {}
    when = datetime.now().astimezone().strftime("%Y%m%d%H%M%S.%f%z")
    if progress is not None:
        progress.set_total(len(instances))
    staged: list[StoredFile] = []
    failed: list[Problem] = []
    changed: dict[str, tuple[str, str]] = {}
    for inst, ds, added in read_datasets(instances):
        if isinstance(ds, Problem):
            failed.append(ds)
            continue
        diff = coerce(ds, local, when)
        if added:  # the UIDs Relay derived at import for a file that lacked them
            _note(ds, _absent(added), when, source="")
        if uid_map:
            diff.update(_remap(ds, uid_map, when))
        for kw in added:  # absent before: "" -> the UID the copy carries
            diff[kw] = ("", str(ds.get(kw, "")))
        for kw, values in diff.items():  # each attribute as the first file that changed it
            changed.setdefault(kw, values)
        out = stage(store, ds, str(inst.path))
        if isinstance(out, Problem):
            failed.append(out)
        elif isinstance(out, StoredFile):
            staged.append(out)
        if progress is not None:
            progress.check()
            progress.advance()
    new_study = uid_map.get(study_uid, study_uid)
    if staged:
        if new_uids:
            store.commit(staged)
        else:
            store.supersede(staged, "reconciled")
    if len(failed) < len(instances):
        link(store, study_uid, new_study, "reconciled")
    result = ReconcileResult(study_uid, new_study, changed, len(instances) - len(failed),
                             tuple(failed))
    audit.record(store.home, "reconcile",
                 outcome=audit.SUCCESS if not failed else audit.MINOR_FAILURE,
                 study_uid=study_uid,
                 detail={"reconciled_study_uid": new_study, "instances": result.instances,
                         "failed": len(failed), "attributes": sorted(changed),
                         "new_uids": new_uids, "confirmed_mismatch": bool(doubts)})
    return result


def coerce(ds: Dataset, local: PatientValues, when: str) -> dict[str, tuple[str, str]]:
    """Put ``local`` into ``ds`` (PS3.3 C.12.1); return {keyword: (old, new)} of what changed."""
    old = PatientValues.from_dataset(ds)
    changed: dict[str, tuple[str, str]] = {}
    modified = Dataset()
    for f in fields(PatientValues):
        kw = KEYWORDS[f.name]
        before, after = getattr(old, f.name), getattr(local, f.name)
        if before == after:
            continue
        changed[kw] = (before, after)
        setattr(modified, kw, before)
    if not changed:
        return changed
    fit_character_set(ds, [after for _, after in changed.values()])
    for kw, (_, after) in changed.items():
        setattr(ds, kw, after)
    if "PatientID" in changed and old.patient_id and not _corrected(old, local):
        other = Dataset()
        other.PatientID = old.patient_id
        other.IssuerOfPatientID = old.issuer_of_patient_id
        other.TypeOfPatientID = "TEXT"
        existing = list(ds.get("OtherPatientIDsSequence", []) or [])
        if not any(i.get("PatientID") == old.patient_id and
                   i.get("IssuerOfPatientID", "") == old.issuer_of_patient_id for i in existing):
            ds.OtherPatientIDsSequence = Sequence([*existing, other])
    _original_attributes(ds, modified, when, source=old.issuer_of_patient_id or str(
        ds.get("InstitutionName", "") or ""))
    return changed


def _corrected(old: PatientValues, local: PatientValues) -> bool:
    """True when the old ID is one of the same issuer as the new (a study reconciled again to
    correct a wrong pick): an issuer gives one patient one ID, so the old one is a mistake, not
    another ID of this patient, and never goes into Other Patient IDs (where a PACS would link
    the two records). Its value stays in Original Attributes."""
    return bool(old.issuer_of_patient_id) and \
        old.issuer_of_patient_id == local.issuer_of_patient_id


def _note(ds: Dataset, modified: Dataset, when: str, source: str) -> None:
    """Record ``modified`` (the values from before; empty for an attribute the file did not
    have, PS3.3 C.12.1.1.9) in the Original Attributes item of this change (``when``), made
    when there is none yet; a value already recorded there, the file's own, is kept."""
    items = ds.get("OriginalAttributesSequence") or []
    if not (items and items[-1].get("AttributeModificationDateTime") == when):
        _original_attributes(ds, modified, when, source)
        return
    recorded = items[-1].ModifiedAttributesSequence[0]
    for elem in modified:
        if elem.tag not in recorded:
            recorded.add(elem)


def _absent(keywords: tuple[str, ...]) -> Dataset:
    """Modified Attributes for attributes that were added: each with an empty value."""
    modified = Dataset()
    for kw in keywords:
        setattr(modified, kw, "")
    return modified


def _original_attributes(ds: Dataset, modified: Dataset, when: str, source: str) -> None:
    item = Dataset()
    item.ModifiedAttributesSequence = Sequence([modified])
    item.AttributeModificationDateTime = when
    item.ModifyingSystem = MODIFYING_SYSTEM
    item.SourceOfPreviousValues = source[:64]
    item.ReasonForTheAttributeModification = REASON
    ds.OriginalAttributesSequence = Sequence(
        [*list(ds.get("OriginalAttributesSequence", []) or []), item])


def _uid_map(instances: list[Any]) -> dict[str, str]:
    """New UIDs for the study's own UIDs (study, series, instances)."""
    mine: set[str] = set()
    for inst in instances:
        mine.update((inst.study_instance_uid, inst.series_instance_uid, inst.sop_instance_uid))
    return {uid: generate_uid() for uid in sorted(mine)}


def _remap(ds: Dataset, uid_map: dict[str, str], when: str) -> dict[str, tuple[str, str]]:
    """Replace the study's UIDs wherever they appear in ``ds`` (references included)."""
    before = {kw: str(ds.get(kw, "")) for kw in
              ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    _remap_in(ds, uid_map)
    modified = Dataset()
    for kw, value in before.items():
        setattr(modified, kw, value)
    _note(ds, modified, when, source="")
    return {"StudyInstanceUID": (before["StudyInstanceUID"], str(ds.StudyInstanceUID))}


def _remap_in(ds: Dataset, uid_map: dict[str, str]) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            if elem.keyword == "OriginalAttributesSequence":
                continue  # old values stay old
            for item in elem.value or []:
                _remap_in(item, uid_map)
        elif elem.VR == "UI" and elem.value:
            if isinstance(elem.value, MultiValue | list):
                elem.value = [uid_map.get(str(v), str(v)) for v in elem.value]
            else:
                elem.value = uid_map.get(str(elem.value), str(elem.value))
