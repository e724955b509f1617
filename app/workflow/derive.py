"""Reading a stored study and writing a changed copy of it into the store.

Reconciliation and de-identification both read every instance of a study, change its header,
and store the result as new files; the originals' bytes are never touched. The pair (original
study, derived study, kind) is kept in the index so the browser and the senders can tell them
apart.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset

from app.errors import RelayError
from app.imports.media import Problem
from app.model import Instance
from app.store.ingest import Duplicate, stage_bytes
from app.store.local import Store, StoredFile

log = logging.getLogger(__name__)

_LINKS = """CREATE TABLE IF NOT EXISTS derived_studies (
    original_study_uid TEXT NOT NULL,
    derived_study_uid TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (original_study_uid, derived_study_uid, kind))"""


class WorkflowError(RelayError):
    """A reconciliation, de-identification or export cannot be done; the message says why."""


@dataclass(frozen=True)
class Link:
    original_study_uid: str
    derived_study_uid: str
    kind: str  # "reconciled" | "deidentified"
    at: float


def study_instances(store: Store, study_uid: str) -> list[Instance]:
    """Every stored instance of a study, series by series (a clear error when it is unknown)."""
    study = store.study(study_uid)
    if study is None:
        raise WorkflowError(f"no study {study_uid} in the store")
    out: list[Instance] = []
    for series in study.series:
        out += store.instances(series.series_instance_uid)
    if not out:
        raise WorkflowError(f"the study {study_uid} has no instances in the store")
    return out


def read_datasets(instances: list[Instance]
                  ) -> Iterator[tuple[Instance, Dataset | Problem, tuple[str, ...]]]:
    """Each instance with its full dataset, or the reason it cannot be read, and the keywords
    of the UIDs put into it.

    A file without a Study or Series Instance UID gets the one Relay derived for it at import
    (the index's, under which it is shown), so a copy made from it carries real UIDs and can
    be sent; the stored file is not changed."""
    for inst in instances:
        added: list[str] = []
        try:
            ds = pydicom.dcmread(str(inst.path), force=True)
            for kw, uid in (("StudyInstanceUID", inst.study_instance_uid),
                            ("SeriesInstanceUID", inst.series_instance_uid)):
                if not ds.get(kw) and uid:
                    setattr(ds, kw, uid)
                    added.append(kw)
            missing = [kw for kw in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID")
                       if not ds.get(kw)]
            if missing:
                raise ValueError(f"no {missing[0]} (the file is damaged)")
        except Exception as exc:  # noqa: BLE001 - a bad file is one line of the report
            yield inst, Problem(str(inst.path), f"cannot be read: {exc}", "failed",
                                inst.sop_class_uid), ()
        else:
            yield inst, ds, tuple(added)


def fit_character_set(ds: Dataset, texts: list[str]) -> None:
    """Make ``ds`` able to carry ``texts`` (values about to be put in it): when one cannot be
    written in its Specific Character Set ("DVOŘÁK" in ISO_IR 100, "MÜLLER" with none
    declared), every text value is decoded and the dataset is written in UTF-8 (ISO_IR 192)
    instead; pydicom would otherwise write "DVO?ÁK". Call it before putting them in."""
    declared = ds.get("SpecificCharacterSet") or ""
    values = [declared] if isinstance(declared, str) else list(declared)
    if "ISO_IR 192" in values or all(_encodable(t, values) for t in texts):
        return
    ds.decode()  # every text value as str, read with the old character set
    ds.SpecificCharacterSet = "ISO_IR 192"


def _encodable(text: str, charsets: list[str]) -> bool:
    if text.isascii():
        return True
    if not any(charsets):  # the default repertoire: ASCII only
        return False
    for encoding in convert_encodings(charsets):
        try:
            text.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            continue
        return True
    return False


def encode(ds: Dataset) -> bytes:
    """The dataset as a Part 10 file, its meta's SOP Instance UID following the dataset's."""
    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def stage(store: Store, ds: Dataset, source: str) -> StoredFile | Duplicate | Problem:
    """Write a derived dataset into the store (not yet indexed); a Problem naming ``source``
    (the stored file it came from) when the result does not pass the store's check."""
    staged = stage_bytes(store, encode(ds), source)
    if isinstance(staged, Problem):
        return Problem(source, f"the changed copy cannot be stored: {staged.reason}", "failed",
                       str(ds.get("SOPClassUID", "")))
    return staged


def link(store: Store, original: str, derived: str, kind: str) -> None:
    with store.transaction() as conn:
        conn.execute(_LINKS)
        conn.execute("INSERT OR REPLACE INTO derived_studies VALUES (?,?,?,?)",
                     (original, derived, kind, time.time()))


def links(store: Store, study_uid: str | None = None) -> list[Link]:
    """The pairs that involve ``study_uid`` (as original or derived), or all of them."""
    conn = store._connect()
    conn.execute(_LINKS)
    if study_uid is None:
        rows = conn.execute("SELECT * FROM derived_studies ORDER BY at").fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM derived_studies WHERE original_study_uid=? OR derived_study_uid=? "
            "ORDER BY at", (study_uid, study_uid)).fetchall()
    return [Link(r[0], r[1], r[2], r[3]) for r in rows]


def display_name(inst: Instance) -> str:
    return Path(str(inst.path)).name
