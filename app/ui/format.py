"""Display formatting of DICOM values (names, dates) as people read them."""

from __future__ import annotations

from collections.abc import Sequence

from app.dicom.sop import object_noun
from app.imports.media import Problem
from app.model import Study


def format_name(pn: str) -> str:
    """"DOE^JOHN^^DR" -> "DOE, JOHN"; empty components are dropped."""
    parts = [p.strip() for p in (pn or "").split("=")[0].split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p for p in parts[1:3] if p)
    if family and given:
        return f"{family}, {given}"
    return family or given or "(no name)"


def format_date(da: str) -> str:
    """"20260131" -> "2026-01-31"; other forms are shown as they are."""
    da = (da or "").strip()
    if len(da) == 8 and da.isdigit():
        return f"{da[:4]}-{da[4:6]}-{da[6:]}"
    return da.replace(".", "-") if da else ""


def format_time(tm: str) -> str:
    """"083015.123" -> "08:30:15"."""
    tm = (tm or "").strip().replace(":", "")
    if len(tm) >= 4 and tm[:4].isdigit():
        out = f"{tm[:2]}:{tm[2:4]}"
        if len(tm) >= 6 and tm[4:6].isdigit():
            out += f":{tm[4:6]}"
        return out
    return tm


def study_title(study: Study) -> str:
    """"DOE, JOHN · 2026-01-31" for a study tab (the date left out when the study has none)."""
    date = format_date(study.study_date)
    name = format_name(study.patient.patient_name)
    return f"{name} · {date}" if date else name


def count(n: int, noun: str, plural: str = "") -> str:
    """"1 study", "3 studies", "0 images"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def not_done(failed: Sequence[Problem], what: str) -> str:
    """"1 image NOT written (file ends inside the dataset)": the part of a study a
    reconcile, de-identification or export could not do, and the first reason. Named as
    what they are: "1 document" (an SR), "2 objects" (key object selections, presentation
    states), "3 files" when of several kinds or unknown."""
    if not failed:
        return ""
    nouns = {object_noun(p.sop_class_uid) for p in failed}
    noun = nouns.pop() if len(nouns) == 1 else "file"
    more = f"; and {len(failed) - 1} more" if len(failed) > 1 else ""
    return f"{count(len(failed), noun)} NOT {what} ({failed[0].reason}{more})"


SEX_WORDS = {"M": "Male", "F": "Female", "O": "Other"}


def format_sex(cs: str) -> str:
    """"F" -> "Female"; empty -> "—"; other values as they are."""
    cs = (cs or "").strip().upper()
    return SEX_WORDS.get(cs, cs or "—")


def study_details(study: Study) -> list[tuple[str, str]]:
    """(label, value) pairs that identify the patient and the study, as dialogs show them and
    "Copy details" copies them."""
    p = study.patient
    return [("Patient", format_name(p.patient_name)), ("Patient ID", p.patient_id or "—"),
            ("Birth date", format_date(p.patient_birth_date) or "—"),
            ("Sex", format_sex(p.patient_sex)),
            ("Accession", study.accession_number or "—"),
            ("Study", f"{format_date(study.study_date) or 'no date'} · "
                      f"{study.study_description or '(no description)'} · "
                      f"{len(study.series)} series, {study.instance_count} images")]
