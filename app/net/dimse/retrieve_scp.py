"""C-GET and C-MOVE over the local store as Relay's node answers them: the instances an
identifier names, and each one as the peer can take it.

A stored file goes out in its stored transfer syntax when the peer accepted it, byte for byte:
the data set as stored, read from the file in chunks, never decoded and encoded again
(:class:`StoredFile` and :func:`send_exact`). Otherwise, if the peer accepted an uncompressed
syntax for that SOP class, an uncompressed file is converted (explicit <-> implicit VR) and a
compressed one decoded (never re-encoded lossy). A file that cannot be sent either way is a
failed sub-operation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext, build_context

from app.errors import DimseError
from app.model import Instance
from app.net.dimse.client import store_contexts
from app.net.dimse.find_scp import QueryError, level_of
from app.store.local import Store

log = logging.getLogger(__name__)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def instances_for(store: Store, identifier: Dataset, *,
                  patient_root: bool = False) -> list[Instance]:
    """The stored instances a C-GET / C-MOVE identifier names (unique keys, PS3.4 C.4.2.1.4;
    in Patient Root, PATIENT level names every study of the Patient ID)."""
    level = level_of(identifier, patient_root)
    studies = _uids(identifier, "StudyInstanceUID")
    series = _uids(identifier, "SeriesInstanceUID")
    sops = _uids(identifier, "SOPInstanceUID")
    if patient_root and not _uids(identifier, "PatientID"):
        raise QueryError(0xA900, "a Patient Root retrieve needs PatientID")
    if level == "PATIENT":
        patient = _uids(identifier, "PatientID")[0]
        studies = [s.study_instance_uid for s in store.patient_studies(patient)]
        if not studies:
            return []
    elif not studies:
        raise QueryError(0xA900, "a retrieve needs StudyInstanceUID")
    if level in ("SERIES", "IMAGE") and not series:
        raise QueryError(0xA900, f"a {level} retrieve needs SeriesInstanceUID")
    if level == "IMAGE" and not sops:
        raise QueryError(0xA900, "an IMAGE retrieve needs SOPInstanceUID")
    out: list[Instance] = []
    for study in store.studies(studies):
        if patient_root and study.patient.patient_id not in _uids(identifier, "PatientID"):
            continue  # the study is not that patient's
        for s in study.series:
            if level not in ("PATIENT", "STUDY") and s.series_instance_uid not in series:
                continue
            out += [i for i in store.instances(s.series_instance_uid)
                    if level != "IMAGE" or i.sop_instance_uid in sops]
    return out


def uids_of(identifier: Dataset, keyword: str) -> list[str]:
    """The values of a UID key of an identifier (none, one, or a list)."""
    return _uids(identifier, keyword)


def _uids(identifier: Dataset, keyword: str) -> list[str]:
    value = identifier.get(keyword)
    if value is None or value == "":
        return []
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def contexts_for(instances: Sequence[Instance]) -> list[PresentationContext]:
    """Presentation contexts to propose for sending ``instances`` (C-MOVE's sub-association):
    per SOP class, one context per stored transfer syntax (so each can be accepted and sent as
    stored) and one with explicit and implicit VR little endian - the client's own rule."""
    pairs = [(i.sop_class_uid, i.transfer_syntax_uid) for i in instances]
    try:
        return store_contexts(pairs)
    except DimseError as exc:  # more than 128: the first ones; the rest fail and are said so
        log.warning("C-MOVE: %s", exc)
        return store_contexts(pairs[:1]) + [
            build_context(c, [t]) for c, t in sorted(set(pairs))][: 128 - 2]


class StoredFile(Dataset):
    """A stored instance to be sent as its file's bytes: what pynetdicom's C-GET / C-MOVE
    service hands to ``send_c_store`` (which :func:`send_exact` teaches to send the file)."""

    def __init__(self, inst: Instance) -> None:
        super().__init__()
        assert inst.path is not None
        self.path: Path = inst.path
        self.SOPClassUID = inst.sop_class_uid
        self.SOPInstanceUID = inst.sop_instance_uid


def send_exact(assoc: Any) -> None:
    """Make ``assoc.send_c_store`` send a :class:`StoredFile` from its file (the data set as
    stored, in the stored syntax; pynetdicom reads it in chunks), else the file read and
    converted by pynetdicom as before (a file without file meta, say)."""
    original = assoc.send_c_store

    def send_c_store(dataset: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(dataset, StoredFile):
            return original(dataset, *args, **kwargs)
        try:
            return original(dataset.path, *args, **kwargs)
        except (AttributeError, ValueError, InvalidDicomError) as exc:
            log.info("an instance is sent re-encoded: %s", exc)
            return original(pydicom.dcmread(dataset.path, force=True), *args, **kwargs)

    assoc.send_c_store = send_c_store


def dataset_for_peer(inst: Instance, accepted: Iterable[PresentationContext]) -> Dataset:
    """The stored file, ready for a C-STORE sub-operation on an association that accepted
    ``accepted``: a :class:`StoredFile` (sent byte for byte) when the stored syntax was
    accepted, else converted or decoded to an accepted uncompressed syntax.

    Raises ValueError when no accepted context can carry it (a failed sub-operation)."""
    assert inst.path is not None
    stored = UID(inst.transfer_syntax_uid)
    syntaxes = {UID(c.transfer_syntax[0]) for c in accepted
                if c.abstract_syntax == inst.sop_class_uid and c.transfer_syntax}
    if stored in syntaxes:
        return StoredFile(inst)
    ds = pydicom.dcmread(inst.path)
    if not stored.is_compressed and syntaxes & set(UNCOMPRESSED):
        return ds
    if stored.is_compressed and syntaxes & set(UNCOMPRESSED):
        ds.decompress()  # lossless: the decoded pixels, not a new lossy encoding
        return ds
    raise ValueError(f"the peer accepted no transfer syntax for a {stored.name} instance")
