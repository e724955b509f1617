"""C-FIND over the local store as Relay's node answers it: Study Root (STUDY, SERIES, IMAGE)
and Patient Root (PATIENT above them; the patient's ID is then the unique key of the top level).

Matching follows PS3.4 C.2.2.2: an empty key is universal (returned, not matched); a value
matches exactly, with ``*`` and ``?`` as wildcards (person names ignore case, as most PACS do);
UIDs match a backslash-separated list; dates and times match ranges (``A-B``, ``A-``, ``-B``).
Below STUDY level the unique keys of the levels above are required (hierarchical query).
Answers carry exactly the keys asked for, plus the query level and Relay's AE title.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from app.model import Instance, Series, Study
from app.store.local import Store

LEVELS = ("STUDY", "SERIES", "IMAGE")
PATIENT_LEVELS = ("PATIENT", *LEVELS)
_UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID",
           "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
#: Patient Root Query/Retrieve Information Model - FIND, MOVE, GET (PS3.4 C.6.1).
PATIENT_ROOT_MODELS = ("1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.1.2",
                       "1.2.840.10008.5.1.4.1.2.1.3")
_RANGE_KEYS = {"StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "PatientBirthDate"}
_UID_KEYS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}
_NAME_KEYS = {"PatientName"}
#: Keys Relay can answer; others asked for come back empty (PS3.4 C.4.1.1.3.2 allows it).
_COUNT_KEYS = {"NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
               "NumberOfSeriesRelatedInstances", "NumberOfPatientRelatedStudies",
               "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"}


class QueryError(ValueError):
    """The identifier cannot be answered; ``status`` is the C-FIND failure status to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Match:
    """One C-FIND answer: the keyword -> value record it was matched on."""

    record: dict[str, Any]


def is_patient_root(model: str) -> bool:
    """Is this SOP class (the request's Affected SOP Class UID) a Patient Root model?"""
    return str(model) in PATIENT_ROOT_MODELS


def levels(patient_root: bool) -> tuple[str, ...]:
    return PATIENT_LEVELS if patient_root else LEVELS


def level_of(identifier: Dataset, patient_root: bool = False) -> str:
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    allowed = levels(patient_root)
    if level not in allowed:
        raise QueryError(0xA900, f"query level '{level}' is not {', '.join(allowed[:-1])} or "
                                 f"{allowed[-1]}")
    return level


def find(store: Store, identifier: Dataset, *, patient_root: bool = False) -> Iterator[Match]:
    """Records of the store matching ``identifier``, lazily (the caller checks for cancel)."""
    level = level_of(identifier, patient_root)
    keys = {e.keyword: _text(e.value) for e in identifier if e.keyword and e.VR != "SQ"}
    above = levels(patient_root)
    for up in above[: above.index(level)]:
        if not keys.get(_UNIQUE[up]):
            root = "Patient Root" if patient_root else "Study Root"
            raise QueryError(0xA900, f"a {level} query needs {_UNIQUE[up]} ({root})")
    conditions = {k: v for k, v in keys.items() if v and k not in _COUNT_KEYS}
    for record in _records(store, level, keys):
        if all(matches(k, v, record[k]) for k, v in conditions.items() if k in record):
            yield Match(record)


def answer(identifier: Dataset, match: Match, ae_title: str) -> Dataset:
    """The response identifier: every key asked for, filled from the match."""
    ds = Dataset()
    values: list[str] = []
    for elem in identifier:
        if not elem.keyword or elem.keyword == "SpecificCharacterSet":
            continue
        if elem.keyword == "QueryRetrieveLevel":
            ds.QueryRetrieveLevel = str(elem.value)
            continue
        value = match.record.get(elem.keyword)
        if elem.VR == "SQ" or value is None:
            setattr(ds, elem.keyword, [] if elem.VR == "SQ" else None)
            continue
        setattr(ds, elem.keyword, value)
        values += value if isinstance(value, list) else [str(value)]
    ds.RetrieveAETitle = ae_title
    if any(not v.isascii() for v in values):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def matches(key: str, wanted: str, have: Any) -> bool:
    """PS3.4 C.2.2.2 matching of one key (``wanted`` non-empty)."""
    if have is None:
        return False
    if key == "ModalitiesInStudy":
        return any(_single(w, m, False) for w in wanted.split("\\") for m in have)
    have_text = _text(have)
    if key in _UID_KEYS:
        return have_text in {u.strip() for u in wanted.split("\\")}
    if key in _RANGE_KEYS and "-" in wanted:
        low, _, high = wanted.partition("-")
        return bool(have_text) and (not low or have_text >= low) and (
            not high or have_text[: len(high)] <= high)
    return _single(wanted, have_text, key in _NAME_KEYS)


def _single(wanted: str, have: str, ignore_case: bool) -> bool:
    if ignore_case:
        wanted, have = wanted.upper(), have.upper()
    if "*" in wanted or "?" in wanted:
        pattern = fnmatch.translate(wanted.replace("[", "[[]"))
        return re.fullmatch(pattern, have, re.DOTALL) is not None
    return wanted.strip() == have.strip()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


# -- records ---------------------------------------------------------------------------------
def _records(store: Store, level: str, keys: dict[str, str]) -> Iterator[dict[str, Any]]:
    uids = keys.get("StudyInstanceUID") or ""
    studies = store.studies([u.strip() for u in uids.split("\\")] if uids else None)
    if level == "PATIENT":
        yield from _patient_records(studies)
        return
    for study in studies:
        if level == "STUDY":
            yield _study_record(study)
            continue
        for series in study.series:
            if level == "SERIES":
                yield _study_record(study) | _series_record(series)
                continue
            if not matches("SeriesInstanceUID", keys["SeriesInstanceUID"],
                           series.series_instance_uid):
                continue
            for inst in store.instances(series.series_instance_uid):
                yield _study_record(study) | _series_record(series) | _image_record(inst)


def _patient_records(studies: list[Study]) -> Iterator[dict[str, Any]]:
    """One record per patient (ID and issuer), with the counts over the patient's studies."""
    by_patient: dict[tuple[str, str], list[Study]] = {}
    for study in studies:
        p = study.patient
        by_patient.setdefault((p.patient_id, p.issuer_of_patient_id), []).append(study)
    for group in by_patient.values():
        record = {k: v for k, v in _study_record(group[0]).items() if k in _PATIENT_KEYS}
        series = [s for study in group for s in study.series]
        yield record | {"NumberOfPatientRelatedStudies": len(group),
                        "NumberOfPatientRelatedSeries": len(series),
                        "NumberOfPatientRelatedInstances": sum(s.instance_count for s in series)}


_PATIENT_KEYS = {"PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                 "IssuerOfPatientID"}


def _study_record(study: Study) -> dict[str, Any]:
    p = study.patient
    return {
        "PatientName": p.patient_name, "PatientID": p.patient_id,
        "PatientBirthDate": p.patient_birth_date, "PatientSex": p.patient_sex,
        "IssuerOfPatientID": p.issuer_of_patient_id,
        "StudyInstanceUID": study.study_instance_uid, "StudyDate": study.study_date,
        "StudyTime": study.study_time, "StudyDescription": study.study_description,
        "AccessionNumber": study.accession_number, "StudyID": study.study_id,
        "ModalitiesInStudy": list(study.modalities),
        "NumberOfStudyRelatedSeries": len(study.series),
        "NumberOfStudyRelatedInstances": sum(s.instance_count for s in study.series),
    }


def _series_record(series: Series) -> dict[str, Any]:
    return {
        "SeriesInstanceUID": series.series_instance_uid, "Modality": series.modality,
        "SeriesNumber": series.series_number, "SeriesDescription": series.series_description,
        "BodyPartExamined": series.body_part_examined, "SeriesDate": series.series_date,
        "SeriesTime": series.series_time,
        "NumberOfSeriesRelatedInstances": series.instance_count,
    }


def _image_record(inst: Instance) -> dict[str, Any]:
    record: dict[str, Any] = {
        "SOPInstanceUID": inst.sop_instance_uid, "SOPClassUID": inst.sop_class_uid,
        "InstanceNumber": inst.instance_number, "AcquisitionNumber": inst.acquisition_number,
        "ImageType": inst.image_type.split("\\") if inst.image_type else None,
    }
    if inst.image is not None:
        record |= {"Rows": inst.image.rows, "Columns": inst.image.columns,
                   "NumberOfFrames": inst.image.frames}
    return record
