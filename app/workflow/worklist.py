"""Finding the local patient over DICOM: Modality Worklist C-FIND and patient-level C-FIND.

Both are pynetdicom SCUs with every wait bounded (association, each answer, the whole query) and
a cap on the number of answers. Associations are made by :mod:`app.net.dimse.association` (a peer
that cannot be used raises its :class:`~app.errors.DimseError`); a query answered with a
failure raises :class:`~app.errors.DimseError` ``failed`` naming the peer and the status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.errors import DimseError
from app.net.dimse.association import TlsOptions
from app.settings import Settings
from app.workflow.patient import PatientValues

log = logging.getLogger(__name__)

MWL_FIND = "1.2.840.10008.5.1.4.31"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
MAX_ANSWERS = 500


@dataclass(frozen=True)
class Peer:
    """A DICOM node: where to connect and the AE titles on both ends."""

    host: str
    port: int
    called_ae: str
    calling_ae: str = "RELAY"
    timeout: float = 30.0
    tls: TlsOptions | None = None
    """DICOM over TLS, the peer's certificate verified (a PACS profile's settings)."""
    name: str = ""
    """The PACS profile's name, when the peer is one (as the audit trail names it)."""

    def __str__(self) -> str:
        return f"{self.called_ae}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


def configured_peer(settings: Settings, *, pacs: str = "", host: str = "", port: int = 0,
                    called_ae: str = "", calling_ae: str = "") -> Peer | None:
    """The peer to ask for the local patient: a PACS profile (``pacs``, else the worklist
    settings' ``pacs`` when no host is given), with its address, AE title and TLS; else the
    worklist settings with the given values in front. None when nothing is configured."""
    conf = settings.worklist
    name = pacs or ("" if host else conf.pacs)
    if name:
        from app.net.dimse.pacs import calling_ae as node_ae
        from app.net.dimse.pacs import endpoint, profile

        where = endpoint(profile(settings, name))
        return Peer(where.host, where.port, where.ae_title, calling_ae or node_ae(settings),
                    conf.timeout_seconds, where.tls, name)
    peer = Peer(host or conf.host, port or conf.port, called_ae or conf.called_ae,
                calling_ae or conf.calling_ae, conf.timeout_seconds)
    return peer if peer.host else None


@dataclass(frozen=True)
class WorklistEntry:
    """One scheduled procedure step: the patient and the order it belongs to."""

    patient: PatientValues
    study_instance_uid: str = ""
    requested_procedure_id: str = ""
    requested_procedure_description: str = ""
    modality: str = ""
    scheduled_start: str = ""
    station_ae: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.patient.to_json(), "study_instance_uid": self.study_instance_uid,
                "requested_procedure_id": self.requested_procedure_id,
                "requested_procedure_description": self.requested_procedure_description,
                "modality": self.modality, "scheduled_start": self.scheduled_start,
                "station_ae": self.station_ae}


def find_worklist(peer: Peer, *, patient_name: str = "", patient_id: str = "",
                  accession_number: str = "", date: str = "",
                  modality: str = "", home: Path | None = None) -> list[WorklistEntry]:
    """Scheduled procedure steps matching the keys (empty keys match everything); ``home``:
    whose audit trail records the search and its association (never the keys' values)."""
    query = Dataset()
    for kw, value in (("PatientName", patient_name), ("PatientID", patient_id),
                      ("AccessionNumber", accession_number)):
        setattr(query, kw, value)
    for kw in ("IssuerOfPatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
               "RequestedProcedureID", "RequestedProcedureDescription"):
        setattr(query, kw, "")
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledProcedureStepDescription = ""
    query.ScheduledProcedureStepSequence = Sequence([step])
    return [_entry(ds) for ds in _find(peer, MWL_FIND, query, home, "worklist")]


def find_patients(peer: Peer, *, patient_name: str = "", patient_id: str = "",
                  birth_date: str = "", home: Path | None = None) -> list[PatientValues]:
    """Patients a PACS knows that match (Patient Root query, PATIENT level); ``home``: whose
    audit trail records the search and its association (never the keys' values)."""
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientName = patient_name
    query.PatientID = patient_id
    query.PatientBirthDate = birth_date
    query.PatientSex = ""
    query.IssuerOfPatientID = ""
    return [PatientValues.from_dataset(ds)
            for ds in _find(peer, PATIENT_ROOT_FIND, query, home, "patient")]


def _entry(ds: Dataset) -> WorklistEntry:
    steps = ds.get("ScheduledProcedureStepSequence") or [Dataset()]
    step = steps[0]
    start = f"{step.get('ScheduledProcedureStepStartDate', '')}" \
            f"{step.get('ScheduledProcedureStepStartTime', '')}"
    return WorklistEntry(
        patient=PatientValues.from_dataset(ds),
        study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        requested_procedure_id=str(ds.get("RequestedProcedureID", "") or ""),
        requested_procedure_description=str(ds.get("RequestedProcedureDescription", "") or ""),
        modality=str(step.get("Modality", "") or ""),
        scheduled_start=start,
        station_ae=str(step.get("ScheduledStationAETitle", "") or ""),
    )


def _find(peer: Peer, sop_class: str, query: Dataset, home: Path | None = None,
          level: str = "") -> list[Dataset]:
    """The answers; with ``home``, the search is one audit event (110112 Query: the level and
    the kinds of keys, never their values)."""
    if home is None:
        return _answers(peer, sop_class, query, None)
    from app.workflow import audit

    out: list[Dataset] = []
    failed = ""
    try:
        out = _answers(peer, sop_class, query, home)
    except Exception as exc:
        failed = getattr(exc, "kind", "") or type(exc).__name__
        raise
    finally:
        where = f"{peer.name}@{peer.called_ae}@{peer.host}:{peer.port}" if peer.name \
            else f"{peer.called_ae}@{peer.host}:{peer.port}"
        audit.query(home, where, len(out), level=level, keys=audit.matching_keys(query),
                    failed=failed)
    return out


def _answers(peer: Peer, sop_class: str, query: Dataset,
             home: Path | None) -> list[Dataset]:
    out: list[Dataset] = []
    with _association(peer, sop_class, home) as assoc:
        for status, identifier in assoc.send_c_find(query, sop_class):
            code = int(getattr(status, "Status", -1)) if status else -1
            if code in (0xFF00, 0xFF01):
                if identifier is not None:
                    out.append(identifier)
                if len(out) >= MAX_ANSWERS:  # a query too wide: stop the peer, keep these
                    log.warning("C-FIND %s: more than %d answers, the rest dropped", peer,
                                MAX_ANSWERS)
                    assoc.abort()
                    break
                continue
            if code == 0x0000:
                break
            if code == -1:
                raise DimseError("timeout", f"{peer}: no answer to the query (connection lost "
                                            f"or silent for {peer.timeout:.0f} s)")
            raise DimseError("failed", f"{peer}: the query failed with status 0x{code:04X}")
    log.info("C-FIND %s: %d answers", peer, len(out))
    return out


@contextmanager
def _association(peer: Peer, sop_class: str, home: Path | None = None) -> Iterator[Any]:
    from pynetdicom.presentation import build_context

    from app.net.dimse.association import Endpoint, Timeouts
    from app.net.dimse.client import DimseClient

    timeouts = Timeouts(connect=min(peer.timeout, 10.0), acse=peer.timeout,
                        dimse=peer.timeout, network=peer.timeout)
    client = DimseClient(Endpoint(peer.host, peer.port, peer.called_ae, peer.tls),
                         peer.calling_ae, timeouts, home=home, name=peer.name)
    with client.association([build_context(sop_class)], service="C-FIND") as assoc:
        yield assoc
