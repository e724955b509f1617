"""The PS3.15 Annex E action table and its options, as data.

The Basic Application Level Confidentiality Profile's per-attribute actions (Table E.1-1) come
from dicom-anonymizer's database generated from the current edition of the standard
(``dicomfields_2026c``), not typed here. The options are the table's other columns, generated
from the standard's table into :mod:`app.workflow.deid_options` (``docs/deid_tables.py``) and
applied on top; an attribute newer than that extraction keeps its Basic Profile action under
every option (more is removed, never less).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.datadict import keyword_for_tag

from app.workflow.deid_options import COLUMNS

#: The edition of PS3.15 the action table comes from.
TABLE_EDITION = "dicomfields_2026c"

# Actions, as the table names them.
KEEP, REMOVE, EMPTY, DUMMY, UID = "K", "X", "Z", "D", "U"
CLEAN = "C"  # keep, with known identifiers scrubbed out of the text
SEQUENCE_UIDS = "X/Z/U*"

#: dicom-anonymizer's categories and the action Relay takes for each. Where the standard leaves
#: the choice to IOD conformance (Type 1/2/3), which is not known per attribute here, Relay takes
#: the choice that keeps every IOD valid: a dummy (D) for "Z/D", "X/D", "X/Z/D"; empty (Z) for
#: "X/Z"; UIDs replaced and the rest cleaned for "X/Z/U*".
CATEGORIES = {
    "D_TAGS": DUMMY, "Z_TAGS": EMPTY, "X_TAGS": REMOVE, "U_TAGS": UID,
    "Z_D_TAGS": DUMMY, "X_Z_TAGS": EMPTY, "X_D_TAGS": DUMMY, "X_Z_D_TAGS": DUMMY,
    "X_Z_U_STAR_TAGS": SEQUENCE_UIDS,
}

OPTIONS = ("retain-dates", "retain-patient-characteristics", "retain-device",
           "clean-descriptors", "retain-uids", "retain-institution")


@dataclass(frozen=True)
class Code:
    value: str
    meaning: str


#: CID 7050 De-identification Method (coding scheme DCM).
BASIC_PROFILE = Code("113100", "Basic Application Confidentiality Profile")
OPTION_CODES = {
    "clean-descriptors": Code("113105", "Clean Descriptors Option"),
    "retain-dates": Code("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-patient-characteristics": Code("113108", "Retain Patient Characteristics Option"),
    "retain-device": Code("113109", "Retain Device Identity Option"),
    "retain-uids": Code("113110", "Retain UIDs Option"),
    "retain-institution": Code("113112", "Retain Institution Identity Option"),
}
SAFE_PRIVATE = Code("113111", "Retain Safe Private Option")

#: Relay's option names -> their column of Table E.1-1 (:mod:`app.workflow.deid_options`).
OPTION_COLUMNS = {
    "retain-dates": "rtnLongFullDatesOpt",
    "retain-patient-characteristics": "rtnPatCharsOpt",
    "retain-device": "rtnDevIdOpt",
    "clean-descriptors": "cleanDescOpt",
    "retain-uids": "rtnUIDsOpt",
    "retain-institution": "rtnInstIdOpt",
}
#: What an option column's letter means; where two options disagree the one that retains
#: more wins (K over C over X).
_OPTION_ACTIONS = {"K": KEEP, "C": CLEAN, "X": REMOVE}
_RANK = {REMOVE: 0, CLEAN: 1, KEEP: 2}

#: Private attributes known to carry no identity (PS3.15 E.3.10): (group, creator, element
#: offset) -> kept. Every other private attribute is removed.
SAFE_PRIVATE_TAGS = frozenset({
    (0x0019, "SIEMENS MR HEADER", 0x0C),  # B_value
    (0x0019, "SIEMENS MR HEADER", 0x0D),  # DiffusionDirectionality
    (0x0019, "SIEMENS MR HEADER", 0x0E),  # DiffusionGradientDirection
    (0x0043, "GEMS_PARM_01", 0x39),  # slop_int_6...9 (b value)
    (0x2001, "Philips MR Imaging DD 001", 0x03),  # Diffusion B-Factor
})


@dataclass(frozen=True)
class Profile:
    """Exact actions by tag, masked actions ((group, element, gmask, emask), action)."""

    actions: dict[tuple[int, int], str]
    masked: tuple[tuple[tuple[int, int, int, int], str], ...]
    options: tuple[str, ...]

    def action(self, group: int, element: int) -> str | None:
        found = self.actions.get((group, element))
        if found is not None:
            return found
        for (g, e, gm, em), act in self.masked:
            if group & gm == g & gm and element & em == e & em:
                return act
        return None


def build_profile(options: tuple[str, ...] = ()) -> Profile:
    """The Basic profile's actions with ``options`` (names from :data:`OPTIONS`) applied."""
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise ValueError(f"unknown de-identification option {unknown[0]!r}; "
                         f"known: {', '.join(OPTIONS)}")
    actions: dict[tuple[int, int], str] = {}
    masked: list[tuple[tuple[int, int, int, int], str]] = []
    for category, tags in _table().items():
        for tag in tags:
            if len(tag) == 4:
                masked.append((tag, CATEGORIES[category]))
            else:
                actions[(tag[0], tag[1])] = CATEGORIES[category]
    _apply_options(actions, set(options))
    return Profile(actions=actions, masked=tuple(masked), options=tuple(sorted(set(options))))


def _apply_options(actions: dict[tuple[int, int], str], options: set[str]) -> None:
    chosen: dict[tuple[int, int], str] = {}
    for option in sorted(options):
        for tag, letter in COLUMNS[OPTION_COLUMNS[option]].items():
            action = _OPTION_ACTIONS[letter]
            if _RANK[action] > _RANK.get(chosen.get(tag, ""), -1):
                chosen[tag] = action
    actions.update(chosen)


def keyword(group: int, element: int) -> str:
    return str(keyword_for_tag((group << 16) | element) or f"({group:04X},{element:04X})")


def _table() -> dict[str, list[Any]]:
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    table = dicom_anonymization_database_selector(TABLE_EDITION)
    return {k: v for k, v in table.items() if k in CATEGORIES}
