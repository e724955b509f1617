"""C-GET and C-MOVE over the local store as Relay's node answers them: the instances an
identifier names, and each one as the peer can take it.

A stored file goes out in its stored transfer syntax when the peer accepted it; otherwise, if
the peer accepted an uncompressed syntax for that SOP class, a compressed file is decoded
(never re-encoded lossy). A file that cannot be sent either way is a failed sub-operation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext, build_context

from app.model import Instance
from app.net.dimse.find_scp import QueryError, level_of
from app.store.local import Store

log = logging.getLogger(__name__)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def instances_for(store: Store, identifier: Dataset) -> list[Instance]:
    """The stored instances a C-GET / C-MOVE identifier names (unique keys, PS3.4 C.4.2.1.4)."""
    level = level_of(identifier)
    studies = _uids(identifier, "StudyInstanceUID")
    series = _uids(identifier, "SeriesInstanceUID")
    sops = _uids(identifier, "SOPInstanceUID")
    if not studies:
        raise QueryError(0xA900, "a retrieve needs StudyInstanceUID")
    if level in ("SERIES", "IMAGE") and not series:
        raise QueryError(0xA900, f"a {level} retrieve needs SeriesInstanceUID")
    if level == "IMAGE" and not sops:
        raise QueryError(0xA900, "an IMAGE retrieve needs SOPInstanceUID")
    out: list[Instance] = []
    for study in store.studies(studies):
        for s in study.series:
            if level != "STUDY" and s.series_instance_uid not in series:
                continue
            out += [i for i in store.instances(s.series_instance_uid)
                    if level != "IMAGE" or i.sop_instance_uid in sops]
    return out


def _uids(identifier: Dataset, keyword: str) -> list[str]:
    value = identifier.get(keyword)
    if value is None or value == "":
        return []
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def contexts_for(instances: Sequence[Instance]) -> list[PresentationContext]:
    """Presentation contexts to propose for sending ``instances`` (C-MOVE's sub-association):
    per SOP class, its stored transfer syntaxes then explicit and implicit VR little endian."""
    by_class: dict[str, list[str]] = {}
    for inst in instances:
        syntaxes = by_class.setdefault(inst.sop_class_uid, [])
        if inst.transfer_syntax_uid not in syntaxes:
            syntaxes.append(inst.transfer_syntax_uid)
    out = []
    for sop_class, syntaxes in list(by_class.items())[:128]:
        ordered = list(dict.fromkeys([*syntaxes, *UNCOMPRESSED]))
        out.append(build_context(sop_class, ordered))
    return out


def dataset_for_peer(inst: Instance, accepted: Iterable[PresentationContext]) -> Dataset:
    """The stored file, ready for a C-STORE sub-operation on an association that accepted
    ``accepted`` (decoded to explicit VR little endian when only uncompressed was accepted).

    Raises ValueError when no accepted context can carry it (a failed sub-operation)."""
    assert inst.path is not None
    ds = pydicom.dcmread(inst.path)
    stored = UID(inst.transfer_syntax_uid)
    syntaxes = {UID(c.transfer_syntax[0]) for c in accepted
                if c.abstract_syntax == inst.sop_class_uid and c.transfer_syntax}
    if stored in syntaxes or (not stored.is_compressed and syntaxes & set(UNCOMPRESSED)):
        return ds
    if stored.is_compressed and syntaxes & set(UNCOMPRESSED):
        ds.decompress()  # lossless: the decoded pixels, not a new lossy encoding
        return ds
    raise ValueError(f"the peer accepted no transfer syntax for a {stored.name} instance")
