"""The identity values a reconciliation compares and coerces (IHE Import Reconciliation).

:class:`PatientValues` is one side: what the outside study says, what the worklist or the PACS
says, or what the technologist typed. :func:`compare` lists each attribute with both values and
whether they disagree; birth date and sex disagreeing need an explicit confirmation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

#: DICOM keyword of each field, in the order a reconcile view shows them.
KEYWORDS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "issuer_of_patient_id": "IssuerOfPatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "accession_number": "AccessionNumber",
}
#: Fields that, when they disagree, suggest another person: the tech must confirm.
CONFIRM = ("patient_birth_date", "patient_sex")


@dataclass(frozen=True)
class PatientValues:
    patient_name: str = ""
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    accession_number: str = ""

    @classmethod
    def from_dataset(cls, ds: Any) -> PatientValues:
        return cls(**{f: str(ds.get(kw, "") or "") for f, kw in KEYWORDS.items()})

    def merged(self, **typed: str | None) -> PatientValues:
        """These values with the non-None ``typed`` ones put over them."""
        return replace(self, **{k: v for k, v in typed.items() if v is not None})

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Row:
    """One attribute of the comparison."""

    field: str
    keyword: str
    outside: str
    local: str

    @property
    def differs(self) -> bool:
        return _norm(self.field, self.outside) != _norm(self.field, self.local)

    @property
    def needs_confirmation(self) -> bool:
        return self.differs and self.field in CONFIRM and bool(self.outside) and bool(self.local)


def compare(outside: PatientValues, local: PatientValues) -> list[Row]:
    return [Row(f.name, KEYWORDS[f.name], getattr(outside, f.name), getattr(local, f.name))
            for f in fields(PatientValues)]


def confirmation_needed(outside: PatientValues, local: PatientValues) -> list[str]:
    """Keywords of the attributes that disagree in a way the tech must confirm."""
    return [r.keyword for r in compare(outside, local) if r.needs_confirmation]


def _norm(field: str, value: str) -> str:
    value = value.strip().upper()
    if field == "patient_name":
        return "^".join(p.strip() for p in value.split("^")).rstrip("^")
    return value
