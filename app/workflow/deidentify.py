"""De-identification of a stored study into a new study (PS3.15 Annex E Basic profile + options).

Every attribute, at every depth of every sequence, gets the action of the profile
(:mod:`app.workflow.deid_profile`); private attributes go unless safe-listed; UIDs are replaced
through :class:`~app.workflow.uids.KeyedUids`; then every remaining text value is searched for
the original identifiers (name parts, IDs, accession, birth date, institution...) and cleaned.
Pixel data are not touched: images that may carry burned-in text are excluded and listed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from app.imports.media import Problem
from app.store.local import Store, StoredFile
from app.tasks import Progress
from app.workflow import audit
from app.workflow.deid_profile import (
    BASIC_PROFILE,
    CLEAN,
    DUMMY,
    EMPTY,
    KEEP,
    OPTION_CODES,
    REMOVE,
    SAFE_PRIVATE,
    SAFE_PRIVATE_TAGS,
    SEQUENCE_UIDS,
    Profile,
    build_profile,
)
from app.workflow.deid_profile import UID as UID_ACTION
from app.workflow.derive import (
    WorkflowError,
    fit_character_set,
    link,
    read_datasets,
    stage,
    study_instances,
)
from app.workflow.uids import KeyedUids, store_key

log = logging.getLogger(__name__)

#: Secondary Capture SOP classes: screenshots and scanned pages that may carry burned-in text.
SECONDARY_CAPTURE = frozenset({
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
})
#: Attributes whose text is searched for identifiers to clean out of every other value.
IDENTIFYING = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientBirthDate", "AccessionNumber", "IssuerOfPatientID",
    "InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "PatientAddress",
    "PatientTelephoneNumbers", "StudyID", "MilitaryRank", "MedicalRecordLocator",
    "RequestingPhysician", "StationName", "DeviceSerialNumber",
)
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "DA", "DT", "TM",
                       "AS", "UR", "IS", "DS"})
_MIN_TOKEN = 3


@dataclass(frozen=True)
class Excluded:
    sop_instance_uid: str
    reason: str


@dataclass(frozen=True)
class DeidResult:
    study_instance_uid: str
    deidentified_study_uid: str
    instances: int
    excluded: tuple[Excluded, ...]
    failed: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "deidentified_study_uid": self.deidentified_study_uid,
            "instances": self.instances,
            "excluded": [{"sop_instance_uid": e.sop_instance_uid, "reason": e.reason}
                         for e in self.excluded],
            "failed": [{"path": p.path, "reason": p.reason} for p in self.failed],
        }


@dataclass
class Deidentifier:
    """De-identifies datasets one by one under one profile, one UID map and one pseudonym."""

    profile: Profile
    uids: KeyedUids
    pseudonym: str = ""
    _identifiers: set[str] = field(default_factory=set)
    _kept_private: bool = False

    def exclusion(self, ds: Dataset) -> str | None:
        """Why this image must not go out with its pixels as they are (None: it may)."""
        burned = str(ds.get("BurnedInAnnotation", "")).upper()
        if burned == "YES":
            return "BurnedInAnnotation is YES: the pixels carry burned-in text"
        if str(ds.get("RecognizableVisualFeatures", "")).upper() == "YES":
            return "RecognizableVisualFeatures is YES: the image may show the face"
        if str(ds.get("SOPClassUID", "")) in SECONDARY_CAPTURE and burned != "NO":
            return ("a secondary capture (screenshot or scan) without BurnedInAnnotation NO: "
                    "it may carry burned-in text")
        return None

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place and return it."""
        self._identifiers = _identifiers(ds, self.profile)
        self._kept_private = False
        original_id = str(ds.get("PatientID", ""))
        name = self.pseudonym or f"ANON^{self.uids.token(original_id or ds.StudyInstanceUID)}"
        pid = self.pseudonym or f"ANON-{self.uids.token(original_id or ds.StudyInstanceUID)}"
        self._walk(ds)
        fit_character_set(ds, [name, pid])
        ds.PatientName = name
        ds.PatientID = pid
        self._scrub(ds)
        self._mark(ds)
        self._meta(ds)
        return ds

    # -- the walk ----------------------------------------------------------------------------
    def _walk(self, ds: Dataset) -> None:
        for elem in list(ds):
            tag = elem.tag
            if tag.is_private:
                if self._safe_private(ds, elem):
                    self._kept_private = True
                else:
                    del ds[tag]
                continue
            action = self.profile.action(tag.group, tag.element)
            if action in (None, KEEP, CLEAN):
                self._recurse(elem)
            elif action == REMOVE:
                del ds[tag]
            elif action == EMPTY:
                elem.value = Sequence() if elem.VR == "SQ" else None
            elif action == DUMMY:
                if elem.VR == "SQ":
                    self._recurse(elem)
                else:
                    elem.value = _dummy(elem)
            elif action == UID_ACTION:
                self._replace_uids(elem)
            elif action == SEQUENCE_UIDS:
                if elem.VR == "SQ":
                    self._recurse(elem)
                elif elem.VR == "UI":
                    self._replace_uids(elem)
                else:
                    elem.value = None

    def _recurse(self, elem: DataElement) -> None:
        if elem.VR == "SQ" and elem.value:
            for item in elem.value:
                self._walk(item)

    def _replace_uids(self, elem: DataElement) -> None:
        if elem.VR != "UI" or not elem.value:
            return
        if isinstance(elem.value, MultiValue | list):
            elem.value = [self.uids.new(str(v)) for v in elem.value]
        else:
            elem.value = self.uids.new(str(elem.value))

    def _safe_private(self, ds: Dataset, elem: DataElement) -> bool:
        tag = elem.tag
        if tag.element < 0x1000:  # a private creator: kept only while it has safe members
            return any((tag.group, str(elem.value), off) in SAFE_PRIVATE_TAGS
                       for off in range(0x100) if (tag.group, (tag.element << 8) | off) in ds)
        creator = ds.get((tag.group, tag.element >> 8))
        return creator is not None and (
            (tag.group, str(creator.value), tag.element & 0xFF) in SAFE_PRIVATE_TAGS)

    # -- identifiers left in text ------------------------------------------------------------
    def _scrub(self, ds: Dataset) -> None:
        if self._identifiers:
            _walk_text(ds, self._clean_text, self.profile)

    def _clean_text(self, text: str) -> str:
        low = text.lower()
        for token in self._identifiers:
            if token in low:
                start = low.find(token)
                while start >= 0:
                    text = text[:start] + "" + text[start + len(token):]
                    low = text.lower()
                    start = low.find(token)
        return text

    # -- what was done -----------------------------------------------------------------------
    def _mark(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "YES"
        codes = [BASIC_PROFILE] + [OPTION_CODES[o] for o in self.profile.options]
        if self._kept_private:  # PS3.15 E.3.10: safe private attributes were retained
            codes.append(SAFE_PRIVATE)
        ds.DeidentificationMethod = "PS3.15 E Basic Profile" + "".join(
            f"; {c.meaning}" for c in codes[1:])[:64 - len("PS3.15 E Basic Profile")]
        items = []
        for code in codes:
            item = Dataset()
            item.CodeValue = code.value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = code.meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = (
            "UNMODIFIED" if "retain-dates" in self.profile.options else "REMOVED")

    def _meta(self, ds: Dataset) -> None:
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            return
        for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                   "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
                   "PrivateInformation", "SourcePresentationAddress",
                   "SendingPresentationAddress", "ReceivingPresentationAddress"):
            if kw in meta:
                del meta[kw]


def deidentify_study(store: Store, study_uid: str, *, options: tuple[str, ...] = (),
                     pseudonym: str = "", include_burned_in: bool = False,
                     progress: Progress | None = None) -> DeidResult:
    """De-identify a stored study into a new study in the same store; the original stays."""
    profile = build_profile(options)
    context = "deid:" + ",".join(profile.options) + ":" + pseudonym
    engine = Deidentifier(profile, KeyedUids(store_key(store.home), context), pseudonym)
    if "retain-uids" in profile.options:
        raise WorkflowError("with retain-uids the copy would carry the original's UIDs and "
                            "cannot sit beside it in the store: use it with relay export")
    instances = study_instances(store, study_uid)
    if progress is not None:
        progress.set_total(len(instances))
    staged: list[StoredFile] = []
    excluded: list[Excluded] = []
    failed: list[Problem] = []
    new_study = engine.uids.new(study_uid)
    for inst, ds, _added in read_datasets(instances):  # new UIDs replace them
        if isinstance(ds, Problem):
            failed.append(ds)
        elif (reason := engine.exclusion(ds)) is not None and not include_burned_in:
            excluded.append(Excluded(inst.sop_instance_uid, reason))
        else:
            out = _apply_and_stage(store, engine, ds, str(inst.path))
            if isinstance(out, Problem):
                failed.append(out)
            elif isinstance(out, StoredFile):  # else the same bytes are stored (run twice)
                staged.append(out)
        if progress is not None:
            progress.check()
            progress.advance()
    if staged:
        store.commit(staged)
    done = len(instances) - len(excluded) - len(failed)
    for problem in failed:
        log.warning("de-identification: %s: %s", problem.path, problem.reason)
    if done:
        link(store, study_uid, new_study, "deidentified")
    result = DeidResult(study_uid, new_study if done else "", done, tuple(excluded),
                        tuple(failed))
    audit.record(store.home, "deidentify",
                 outcome=audit.SUCCESS if not failed else audit.MINOR_FAILURE,
                 study_uid=study_uid,
                 detail={"deidentified_study_uid": result.deidentified_study_uid,
                         "instances": done, "excluded": len(excluded), "failed": len(failed),
                         "options": list(profile.options), "new_files": len(staged)})
    return result


def _apply_and_stage(store: Store, engine: Deidentifier, ds: Dataset,
                     source: str) -> StoredFile | Problem | object:
    try:
        changed = engine.apply(ds)
    except Exception as exc:  # noqa: BLE001 - an odd file is one line of the report
        return Problem(source, f"cannot be de-identified: {type(exc).__name__}: {exc}",
                       "failed", str(ds.get("SOPClassUID", "")))
    return stage(store, changed, source)


# -- helpers -------------------------------------------------------------------------------------
def _identifiers(ds: Dataset, profile: Profile) -> set[str]:
    """Lower-case identifier strings of ``ds`` (whole values and name parts, 3+ characters),
    leaving out the attributes an option retains."""
    out: set[str] = set()
    wanted = [kw for kw in IDENTIFYING if _action_of(profile, kw) not in (KEEP, CLEAN)]

    def add(text: str) -> None:
        text = text.strip().lower()
        if len(text) >= _MIN_TOKEN:
            out.add(text)

    def collect(d: Dataset) -> None:
        for kw in wanted:
            value = d.get(kw)
            if value is None or value == "":
                continue
            values = value if isinstance(value, MultiValue | list) else [value]
            for v in values:
                text = str(v)
                add(text)
                for part in text.replace("=", "^").split("^"):
                    add(part)
                    for word in part.split():
                        add(word)
        for seq_kw in ("OtherPatientIDsSequence",):
            for item in d.get(seq_kw, []) or []:
                collect(item)

    collect(ds)
    # Longest first: "SMITH^JOHN" goes before "SMITH".
    return set(sorted(out, key=len, reverse=True))


def _action_of(profile: Profile, kw: str) -> str | None:
    tag = tag_for_keyword(kw)
    return None if tag is None else profile.action(tag >> 16, tag & 0xFFFF)


def _walk_text(ds: Dataset, clean: Callable[[str], str], profile: Profile) -> None:
    """Clean every text value but those an option retains as they are."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or []:
                _walk_text(item, clean, profile)
        elif profile.action(elem.tag.group, elem.tag.element) == KEEP:
            continue
        elif elem.VR in _TEXT_VRS and elem.value not in (None, ""):
            if isinstance(elem.value, MultiValue | list):
                elem.value = [clean(str(v)) for v in elem.value]
            else:
                cleaned = clean(str(elem.value))
                if cleaned != str(elem.value):
                    elem.value = cleaned


def _dummy(elem: DataElement) -> Any:
    vr = elem.VR
    if vr in ("DA",):
        return "19000101"
    if vr == "DT":
        return "19000101000000"
    if vr == "TM":
        return "000000"
    if vr == "UI":
        return UID("2.25.0")
    if vr in ("DS", "IS"):
        return "0"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 0
    if vr == "AS":
        return "000Y"
    if vr == "UR":
        return "http://deidentified.invalid"
    if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
        return b"\0\0"
    if vr == "PN":
        return "DEIDENTIFIED"
    return "DEIDENTIFIED"
