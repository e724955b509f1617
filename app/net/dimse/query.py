"""Searching a PACS (C-FIND, Study Root): filters in, plain study and series rows out, as they
arrive. Used by ``relay query`` and the window's Query/Retrieve dialog; each search is one
audit event when the client has a home (:meth:`DimseClient.find`, ``audited``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from pydicom.dataset import Dataset

from app.net.dimse.client import DimseClient
from app.tasks import Progress


@dataclass(frozen=True)
class StudyFilter:
    """What to look for; empty fields match everything. ``name`` may hold ``*`` and ``?``;
    ``date`` is ``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD`` (either end may be open)."""

    patient_id: str = ""
    name: str = ""
    date: str = ""
    modality: str = ""
    accession: str = ""
    study: str = ""


@dataclass(frozen=True)
class StudyRow:
    """One study the PACS holds (the ``relay query --json`` shape)."""

    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    study_description: str
    modalities: list[str]
    accession_number: str
    series_count: int | None
    instances: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SeriesRow:
    """One series of a study (``relay query --series``)."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    instances: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find_studies(client: DimseClient, where: StudyFilter,
                 progress: Progress | None = None) -> Iterator[StudyRow]:
    """STUDY-level C-FIND; rows as the PACS sends them (cancel with ``progress``)."""
    q = Dataset()
    q.StudyInstanceUID = where.study
    q.PatientID = where.patient_id
    q.PatientName = where.name
    q.StudyDate = where.date
    q.ModalitiesInStudy = where.modality
    q.AccessionNumber = where.accession
    q.StudyDescription = ""
    q.NumberOfStudyRelatedSeries = ""
    q.NumberOfStudyRelatedInstances = ""
    for m in client.find("STUDY", q, progress, audited=True):
        yield StudyRow(
            study_instance_uid=_text(m, "StudyInstanceUID"), patient_id=_text(m, "PatientID"),
            patient_name=_text(m, "PatientName"), study_date=_text(m, "StudyDate"),
            study_description=_text(m, "StudyDescription"),
            modalities=[str(v) for v in _values(m, "ModalitiesInStudy")],
            accession_number=_text(m, "AccessionNumber"),
            series_count=_int(m, "NumberOfStudyRelatedSeries"),
            instances=_int(m, "NumberOfStudyRelatedInstances"))


def find_series(client: DimseClient, study_uid: str,
                progress: Progress | None = None) -> Iterator[SeriesRow]:
    """SERIES-level C-FIND of one study."""
    q = Dataset()
    q.StudyInstanceUID = study_uid
    q.SeriesInstanceUID = ""
    q.Modality = ""
    q.SeriesNumber = ""
    q.SeriesDescription = ""
    q.NumberOfSeriesRelatedInstances = ""
    for m in client.find("SERIES", q, progress, audited=True):
        yield SeriesRow(series_instance_uid=_text(m, "SeriesInstanceUID"),
                        study_instance_uid=_text(m, "StudyInstanceUID") or study_uid,
                        modality=_text(m, "Modality"), series_number=_int(m, "SeriesNumber"),
                        series_description=_text(m, "SeriesDescription"),
                        instances=_int(m, "NumberOfSeriesRelatedInstances"))


def study_classes(client: DimseClient, study_uid: str,
                  progress: Progress | None = None) -> tuple[set[str], int | None]:
    """The SOP classes of a study (SOPClassesInStudy, STUDY level; empty if the PACS does not
    say) and its number of instances."""
    q = Dataset()
    q.StudyInstanceUID = study_uid
    q.SOPClassesInStudy = ""
    q.NumberOfStudyRelatedInstances = ""
    for m in client.find("STUDY", q, progress):
        return {str(v) for v in _values(m, "SOPClassesInStudy")}, \
            _int(m, "NumberOfStudyRelatedInstances")
    return set(), None


def find_instances(client: DimseClient, study_uid: str, series_uids: list[str] | None = None,
                   progress: Progress | None = None) -> Iterator[tuple[str, str, str]]:
    """IMAGE-level C-FIND: ``(sop_instance_uid, series_instance_uid, sop_class_uid)`` of a
    study (or of some of its series)."""
    for series in series_uids or [""]:
        q = Dataset()
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = series
        q.SOPInstanceUID = ""
        q.SOPClassUID = ""
        for m in client.find("IMAGE", q, progress):
            sop = _text(m, "SOPInstanceUID")
            if sop:
                yield sop, _text(m, "SeriesInstanceUID") or series, _text(m, "SOPClassUID")


def _values(ds: Dataset, keyword: str) -> list[Any]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) or hasattr(value, "__iter__") \
        and not isinstance(value, str | bytes) else [value]


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        text = _text(ds, keyword)
        return int(float(text)) if text else None
    except ValueError:
        return None
