"""A study on a hub as the study model and slice plans, from WADO-RS metadata (no pixels).

``/studies/{study}/series/{series}/metadata`` answers DICOM JSON (PS3.18 F.2) for every
instance of a series without its pixel data. That is enough to know the series' slices: size,
pixel format, position and orientation of each, spacing, rescale and window, so a viewer can
allocate the volume and place every slice before any instance has arrived.

DICOM JSON is read with pydicom's own parser after dropping binary values (``InlineBinary``,
``BulkDataURI``: pixel data and other blobs are not needed and not fetched); multi-valued DS/IS
and person names given as ``{"Alphabetic": ...}`` are pydicom's business. The resulting
:class:`~app.model.Instance` objects have no ``path``: the slices of a plan made from them are
filled in when the files arrive (:meth:`app.loader.VolumeLoader.supply`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset

from app.errors import DicomReadError, HubError
from app.header import header_of_dataset
from app.model import Header, Instance, Series, Study
from app.net.dicomweb import SERIES_UID, DicomWebClient, value
from app.stack import SeriesPlan, plan_series

log = logging.getLogger(__name__)

TRANSFER_SYNTAX = "00020010"
SERIES_INSTANCES = "00201209"  # NumberOfSeriesRelatedInstances
_BINARY = ("InlineBinary", "BulkDataURI")


def strip_binary(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of a DICOM JSON dataset without binary values (also inside sequences)."""
    out: dict[str, Any] = {}
    for tag, element in item.items():
        if not isinstance(element, dict) or any(k in element for k in _BINARY):
            continue
        values = element.get("Value")
        if element.get("vr") == "SQ" and isinstance(values, list):
            element = {**element, "Value": [strip_binary(v) for v in values
                                             if isinstance(v, dict)]}
        out[tag] = element
    return out


def dataset_of(item: dict[str, Any]) -> Dataset:
    """A pydicom dataset from one DICOM JSON object (binary values left out)."""
    try:
        return Dataset.from_json(strip_binary(item))
    except Exception as exc:  # pydicom raises several kinds on malformed JSON
        raise DicomReadError(f"unreadable DICOM JSON metadata ({type(exc).__name__})") from None


def header_of(item: dict[str, Any]) -> Header:
    """The header of one instance described by DICOM JSON metadata."""
    ts = value(item, TRANSFER_SYNTAX, "") or ""
    return header_of_dataset(dataset_of(item), str(ts))


def headers_of(items: Iterable[dict[str, Any]]) -> list[Header]:
    """Headers of the instances in a metadata answer; unreadable objects are skipped (logged)."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            out.append(header_of(item))
        except DicomReadError as exc:
            log.warning("an instance's metadata was skipped: %s", exc.reason
                        if hasattr(exc, "reason") else exc)
    return out


def plan_of(headers: list[Header]) -> SeriesPlan:
    """The slice plan of one series from its instances' headers (as for local files)."""
    instances: list[Instance] = [h.instance for h in headers]
    frame = next((h.series.frame_of_reference_uid for h in headers
                  if h.series.frame_of_reference_uid), "")
    return plan_series(instances, frame)


def series_metadata(client: DicomWebClient, study_uid: str, series_uid: str) -> list[Header]:
    """Ask the hub for one series' metadata (one request; network: not on a UI thread)."""
    answer = client.session.json(f"/studies/{study_uid}/series/{series_uid}/metadata")
    if not isinstance(answer, list):
        raise HubError("not-dicomweb", f"the hub at {client.session.where} answered a metadata "
                                       "request with something that is not DICOM JSON")
    return headers_of(answer)


def study_of(study_uid: str, listing: list[dict[str, Any]],
             headers: dict[str, list[Header]]) -> Study:
    """The study model from the hub's series listing (QIDO) and the metadata read so far.

    Series come in listing order with the hub's instance counts; patient and study values come
    from the first header known.
    """
    first = next((hs[0] for hs in headers.values() if hs), None)
    series = []
    for row in listing:
        uid = value(row, SERIES_UID)
        if not uid:
            continue
        known = headers.get(uid)
        count = int(value(row, SERIES_INSTANCES, 0) or 0) or len(known or ())
        if known:
            s = known[0].series
            series.append(Series(
                series_instance_uid=uid, study_instance_uid=study_uid,
                series_number=s.series_number, modality=s.modality,
                series_description=s.series_description,
                body_part_examined=s.body_part_examined,
                frame_of_reference_uid=s.frame_of_reference_uid, series_date=s.series_date,
                series_time=s.series_time, instance_count=count))
        else:
            number = value(row, "00200011")
            series.append(Series(
                series_instance_uid=uid, study_instance_uid=study_uid,
                series_number=int(number) if number not in (None, "") else None,
                modality=str(value(row, "00080060", "") or ""),
                series_description=str(value(row, "0008103E", "") or ""),
                instance_count=count))
    if first is None:
        return Study(study_instance_uid=study_uid, series=tuple(series))
    st = first.study
    modalities = tuple(sorted({s.modality for s in series if s.modality}))
    return Study(study_instance_uid=study_uid, patient=first.patient, study_date=st.study_date,
                 study_time=st.study_time, study_description=st.study_description,
                 accession_number=st.accession_number, study_id=st.study_id,
                 modalities=modalities, series=tuple(series))


__all__ = ["dataset_of", "header_of", "headers_of", "plan_of", "series_metadata",
           "strip_binary", "study_of"]
