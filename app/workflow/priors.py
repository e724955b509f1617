"""Earlier studies of the same patient ("priors"), from the local store and from remote peers.

A prior has the same Patient ID and the same Issuer of Patient ID (when both studies carry an
issuer: the same number from another hospital is another patient) and an earlier study date
and time. :func:`find_priors` asks the store, then each peer through the :class:`Peer` seam
(QIDO-RS for a DICOMweb hub, C-FIND for a PACS), so a peer that cannot be reached costs its
own line in :attr:`PriorSearch.problems`, never the others. :func:`rank` orders them by
relevance: same modality and anatomy first, then the most recent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.errors import HubError, NotSupportedByPeer, TransferError
from app.model import Study
from app.net.dimse.client import DimseClient
from app.net.dimse.query import StudyFilter, find_studies
from app.net.peer import STUDY_INSTANCES, STUDY_UID, Peer, value
from app.store.local import Store

log = logging.getLogger(__name__)

#: Most studies asked of one peer (a patient with hundreds of studies is not read whole).
PEER_LIMIT = 200

# DICOM JSON tags of the study search results
STUDY_DATE = "00080020"
STUDY_TIME = "00080030"
STUDY_DESCRIPTION = "00081030"
MODALITIES = "00080061"
ISSUER = "00100021"
PATIENT_ID = "00100020"


@dataclass(frozen=True)
class Prior:
    """An earlier study of the patient, wherever it is."""

    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    modalities: tuple[str, ...] = ()
    instances: int | None = None
    source: str = "local"
    """"local" (in the store) or the name of the hub or PACS that has it."""
    kind: str = "local"
    """Where it is: "local", "hub" (a Peer: read while it downloads) or "pacs" (C-FIND found
    it; a retrieve brings it)."""

    @property
    def local(self) -> bool:
        return self.source == "local"

    @property
    def when(self) -> str:
        """Date and time as one sortable text ("YYYYMMDDHHMMSS"; missing parts are zeros)."""
        return (self.study_date or "").ljust(8, "0")[:8] + _time6(self.study_time)


@dataclass(frozen=True)
class PriorSearch:
    priors: tuple[Prior, ...]
    """Most relevant first (see :func:`rank`)."""
    problems: tuple[str, ...] = ()
    """One plain sentence per peer that could not be searched."""

    @property
    def most_relevant(self) -> Prior | None:
        return self.priors[0] if self.priors else None


def _time6(text: str) -> str:
    digits = re.sub(r"[^0-9]", "", (text or "").split(".")[0])
    return digits.ljust(6, "0")[:6]


def _when(study: Study) -> str:
    return (study.study_date or "").ljust(8, "0")[:8] + _time6(study.study_time)


def is_earlier(candidate_when: str, study: Study) -> bool:
    """Whether a study at ``candidate_when`` came before ``study`` (undated: never)."""
    now = _when(study)
    return candidate_when[:8] != "00000000" and now[:8] != "00000000" and candidate_when < now


def same_issuer(a: str, b: str) -> bool:
    """Issuers agree when they are equal or either is not given (most media carry none)."""
    return not a or not b or a.strip() == b.strip()


def local_priors(store: Store, study: Study) -> list[Prior]:
    """Earlier studies of the patient in the local store."""
    patient = study.patient
    found = []
    for other in store.patient_studies(patient.patient_id):
        if other.study_instance_uid == study.study_instance_uid:
            continue
        if not same_issuer(other.patient.issuer_of_patient_id, patient.issuer_of_patient_id):
            continue
        prior = Prior(other.study_instance_uid, other.study_date, other.study_time,
                      other.study_description, tuple(other.modalities) or tuple(
                          sorted({s.modality for s in other.series})),
                      other.instance_count, "local")
        if is_earlier(prior.when, study):
            found.append(prior)
    return found


def peer_priors(peer: Peer, name: str, study: Study) -> list[Prior]:
    """Earlier studies of the patient that ``peer`` lists (raises :class:`HubError`)."""
    patient = study.patient
    found = []
    results = peer.studies(PatientID=patient.patient_id,
                           includefield="StudyDescription,IssuerOfPatientID,StudyTime")
    for i, row in enumerate(results):
        if i >= PEER_LIMIT:
            log.info("prior search on %s stopped after %d studies", name, PEER_LIMIT)
            break
        uid = value(row, STUDY_UID)
        if not uid or uid == study.study_instance_uid:
            continue
        if value(row, PATIENT_ID, patient.patient_id) != patient.patient_id:
            continue  # a peer that matched loosely (wildcards, case)
        if not same_issuer(str(value(row, ISSUER, "") or ""), patient.issuer_of_patient_id):
            continue
        modalities = row.get(MODALITIES, {}).get("Value", []) if isinstance(
            row.get(MODALITIES), dict) else []
        count = value(row, STUDY_INSTANCES)
        prior = Prior(str(uid), str(value(row, STUDY_DATE, "") or ""),
                      str(value(row, STUDY_TIME, "") or ""),
                      str(value(row, STUDY_DESCRIPTION, "") or ""),
                      tuple(str(m) for m in modalities if isinstance(m, str)),
                      int(count) if isinstance(count, (int, float, str)) and str(count).isdigit()
                      else None, name, "hub")
        if is_earlier(prior.when, study):
            found.append(prior)
    return found


def pacs_priors(client: DimseClient, name: str, study: Study) -> list[Prior]:
    """Earlier studies of the patient a PACS lists (STUDY-level C-FIND on the Patient ID;
    raises :class:`DimseError`). Study-level C-FIND carries no issuer: the Patient ID is
    taken as the PACS's own (a PACS holds one hospital's numbers)."""
    found = []
    where = StudyFilter(patient_id=study.patient.patient_id)
    for i, row in enumerate(find_studies(client, where)):
        if i >= PEER_LIMIT:
            log.info("prior search on %s stopped after %d studies", name, PEER_LIMIT)
            break
        if not row.study_instance_uid or row.study_instance_uid == study.study_instance_uid \
                or row.patient_id != study.patient.patient_id:
            continue
        prior = Prior(row.study_instance_uid, row.study_date, "", row.study_description,
                      tuple(row.modalities), row.instances, name, "pacs")
        if is_earlier(prior.when, study):
            found.append(prior)
    return found


def relevance(prior: Prior, study: Study) -> tuple[int, str]:
    """Sort key, larger is more relevant: modalities in common and shared description words
    count first, then recency."""
    modalities = set(study.modalities) | {s.modality for s in study.series}
    shared = len(modalities & set(prior.modalities))
    words = _words(study.study_description) & _words(prior.study_description)
    return (shared * 10 + min(len(words), 9), prior.when)


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^A-Z0-9]+", (text or "").upper()) if len(w) > 1}


def rank(priors: Iterable[Prior], study: Study) -> list[Prior]:
    """``priors`` without duplicates (the local copy wins), most relevant first."""
    unique: dict[str, Prior] = {}
    for prior in priors:
        kept = unique.get(prior.study_instance_uid)
        if kept is None or (prior.local and not kept.local):
            unique[prior.study_instance_uid] = prior
    return sorted(unique.values(), key=lambda p: relevance(p, study), reverse=True)


def find_priors(store: Store, study: Study, peers: Mapping[str, Peer] | None = None,
                pacs: Mapping[str, DimseClient] | None = None) -> PriorSearch:
    """Earlier studies of ``study``'s patient in the store, on ``peers`` (hub name -> peer)
    and on ``pacs`` (PACS name -> DIMSE client), most relevant first. A study without a
    Patient ID has no priors (no guessing by name)."""
    if not study.patient.patient_id:
        return PriorSearch(())
    found = local_priors(store, study)
    problems: list[str] = []
    for name, peer in (peers or {}).items():
        try:
            found += peer_priors(peer, name, study)
        except NotSupportedByPeer as exc:
            problems.append(f"{name}: cannot search for earlier studies ({exc})")
        except (HubError, TransferError) as exc:
            problems.append(f"{name}: earlier studies not searched: {exc}")
            log.warning("prior search on %s failed: %s", name, exc)
    for name, client in (pacs or {}).items():
        try:
            found += pacs_priors(client, name, study)
        except (HubError, TransferError) as exc:
            problems.append(f"PACS {name}: earlier studies not searched: {exc}")
            log.warning("prior search on PACS %s failed: %s", name, exc)
    return PriorSearch(tuple(rank(found, study)), tuple(problems))


def prior_studies(store: Store, study: Study) -> list[Study]:
    """The local priors of ``study`` as studies, most relevant first."""
    found = [store.study(p.study_instance_uid) for p in find_priors(store, study).priors]
    return [s for s in found if s is not None]
