"""The disc parts of an export (IHE Portable Data for Imaging, PS3.10/PS3.12): the DICOM
file-set, README.TXT, INDEX.HTM and the ISO 9660 image.

The file-set is laid out by pydicom's :class:`~pydicom.fileset.FileSet` (DICOMDIR at the root,
8-character upper-case IDs, ISO 9660 level 1 names); the instances' bytes are then put in place
as :mod:`app.workflow.export` prepared them. INDEX.HTM (optional in PS3.12, carried by most
discs) lists the studies for someone without a DICOM viewer and points at README.TXT. The ISO
9660 image (level 1) is written by pycdlib: pure Python, so the same code writes it in every
bundle, with no burner program needed.
"""

from __future__ import annotations

import copy
import html
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.datadict import dictionary_description, dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.fileset import (  # the record types FileSet.add gives
    FileSet,
    _four_level_record_type,
    _single_level_record_type,
)
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from app import __version__
from app.dicom.vr import conform
from app.imports.media import Problem
from app.workflow.derive import WorkflowError

if TYPE_CHECKING:
    from app.workflow.export import ExportResult, Outgoing

log = logging.getLogger(__name__)

FILESET_ID = "RELAY"
#: The keys the PATIENT, STUDY, SERIES and IMAGE records take from an instance.
RECORD_KEYS = ("PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription",
               "StudyID", "AccessionNumber", "Modality", "SeriesNumber", "InstanceNumber")
_CONTENT = ("ContentDate", "ContentTime")
_CONTENT_ID = (*_CONTENT, "ContentLabel")
_CREATOR = ("ContentDescription", "ContentCreatorName")
#: The keys the other leaf records take from an instance (PS3.3 F.5): those the record needs
#: (Type 1), then those it may hold empty (Type 2 and 3). pydicom copies the sequences; an
#: SR's or a KOS's Content Sequence keeps only the root's concept modifiers (HAS CONCEPT MOD).
LEAF_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PRESENTATION": (("PresentationCreationDate", "PresentationCreationTime", "ContentLabel"),
                     _CREATOR),
    "SR DOCUMENT": (("CompletionFlag", "VerificationFlag", *_CONTENT), ()),
    "KEY OBJECT DOC": (_CONTENT, ()),
    "ENCAP DOC": (("MIMETypeOfEncapsulatedDocument",), (*_CONTENT, "DocumentTitle")),
    "RT DOSE": (("DoseSummationType",), ()),
    "RT STRUCTURE SET": (("StructureSetLabel",), ("StructureSetDate", "StructureSetTime")),
    "RT PLAN": (("RTPlanLabel",), ("RTPlanDate", "RTPlanTime")),
    "RT TREAT RECORD": ((), ("TreatmentDate", "TreatmentTime")),
    "WAVEFORM": (_CONTENT, ()),
    "RAW DATA": (_CONTENT, ()),
    "SPECTROSCOPY": (_CONTENT, ()),
    "SURFACE SCAN": (_CONTENT, ()),
    **{kind: (_CONTENT_ID, _CREATOR) for kind in (
        "REGISTRATION", "FIDUCIAL", "VALUE MAP", "MEASUREMENT", "SURFACE", "TRACT")},
    "ASSESSMENT": (("InstanceCreationDate",), ("InstanceCreationTime",)),
    "RADIOTHERAPY": ((), _CREATOR),
}
#: Placeholders for the Type 1 keys an instance leaves empty or invalid, in the DICOMDIR only
#: (the file keeps its values). Each claims nothing: no date (1900-01-01), an SR "PARTIAL" and
#: "UNVERIFIED". A key with none here (an RT dose's summation type, a document's MIME type)
#: keeps the instance off the disc when it lacks a valid value.
RECORD_DEFAULTS = {"PatientID": "UNKNOWN", "StudyDate": "19000101", "StudyTime": "000000",
                   "StudyID": "1", "SeriesNumber": "1", "InstanceNumber": "1", "Modality": "OT",
                   "ContentDate": "19000101", "ContentTime": "000000",
                   "PresentationCreationDate": "19000101", "PresentationCreationTime": "000000",
                   "InstanceCreationDate": "19000101", "ContentLabel": "UNNAMED",
                   "StructureSetLabel": "UNNAMED", "RTPlanLabel": "UNNAMED",
                   "CompletionFlag": "PARTIAL", "VerificationFlag": "UNVERIFIED"}
#: The leaf records below a PATIENT, STUDY and SERIES record.
FOUR_LEVEL = frozenset({"IMAGE", "PLAN", "STEREOMETRIC", *LEAF_KEYS})
_TYPE1 = {"PatientID", "StudyDate", "StudyTime", "StudyID", "SeriesNumber", "InstanceNumber",
          "Modality"}


def write_fileset(to: Path, outgoing: list[Outgoing], result: ExportResult) -> dict[str, str]:
    """Lay the instances out as a file-set in ``to`` (DICOMDIR written by pydicom's FileSet),
    then copy each one's bytes into its place; SOP Instance UID -> file ID path.

    An instance whose DICOMDIR record cannot be made (a key the record needs, with no valid
    value and no placeholder) is left out, a line in ``result.failed``; the rest is written."""
    fs = FileSet()
    fs.ID = FILESET_ID
    sources: dict[str, Outgoing] = {}
    for item in outgoing:
        try:
            placeholder = _add(fs, item.header)
        except ValueError as exc:
            result.failed.append(Problem(item.origin, str(exc), "failed",
                                         str(item.header.get("SOPClassUID", ""))))
            continue
        sources[str(item.header.SOPInstanceUID)] = item
        if placeholder:
            result.placeholders.append(str(item.header.SOPInstanceUID))
    fs.write(str(to))
    files: dict[str, str] = {}
    for instance in fs:
        uid = instance.SOPInstanceUID
        files[uid] = "/".join(Path(instance.FileID.replace("\\", "/")).parts)
        sources[uid].place(Path(instance.path))
    return files


def _add(fs: FileSet, ds: Dataset) -> bool:
    """Stage ``ds``'s records in the file-set with values their VRs allow
    (:func:`record_values`); Type 1 keys it leaves empty or invalid get a placeholder in the
    DICOMDIR only (the file is written afterwards, as it is). True when one was needed.

    Raises ValueError, saying what and why, when a record cannot be made."""
    kind = record_type(ds)
    lacking = [_described(kw) for kw in ("StudyInstanceUID", "SeriesInstanceUID")
               if not ds.get(kw)]
    if lacking and kind in FOUR_LEVEL:
        raise ValueError(f"left off the disc: the file carries no {' and no '.join(lacking)}, "
                         "which its DICOMDIR records need; reconcile the study to make a copy "
                         "that carries them, and export that")
    needed, optional = LEAF_KEYS.get(kind, ((), ()))
    record = copy.deepcopy(ds)  # ds.copy() shares its elements: the header is INDEX.HTM's
    values = record_values(record, (*RECORD_KEYS, *needed, *optional))
    required = _TYPE1.union(needed)
    missing = {kw for kw in required if not values.get(kw)}
    unfilled = sorted(kw for kw in missing if kw not in RECORD_DEFAULTS)
    if unfilled:
        raise ValueError(f"left off the disc: this {_sop_name(ds)} has no valid "
                         f"{', '.join(map(_described, unfilled))}, which its DICOMDIR record "
                         f"({kind}) needs")
    for kw, value in values.items():
        if kw in missing:
            setattr(record, kw, RECORD_DEFAULTS[kw])
        elif value is not None:
            setattr(record, kw, value)
    if "ContentSequence" in record:  # pydicom would copy a document's whole content tree
        modifiers = [i for i in record.ContentSequence
                     if i.get("RelationshipType") == "HAS CONCEPT MOD"]
        if modifiers:
            record.ContentSequence = modifiers
        else:
            del record.ContentSequence
    try:
        fs.add(record)
    except (ValueError, AttributeError, KeyError) as exc:  # pydicom's recorders' checks
        cause = exc.__cause__ or exc
        raise ValueError(f"left off the disc: no DICOMDIR record ({kind}) can be made for "
                         f"this {_sop_name(ds)}: {cause}") from exc
    return bool(missing)


def record_type(ds: Dataset) -> str:
    """The DICOMDIR record type pydicom's FileSet gives ``ds``'s leaf record: one in
    :data:`FOUR_LEVEL` below a PATIENT, STUDY and SERIES record, or a top-level one (a
    hanging protocol, a colour palette)."""
    single = _single_level_record_type(ds)
    return single if single != "PATIENT" else _four_level_record_type(ds)



def _described(keyword: str) -> str:
    return dictionary_description(tag_for_keyword(keyword) or 0)


def _sop_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID")
    name = getattr(uid, "name", "") or "object"
    return str(name).removesuffix(" Storage")


def record_values(ds: Dataset, keys: tuple[str, ...] = RECORD_KEYS) -> dict[str, str | None]:
    """The values ``ds`` gives the DICOMDIR records' ``keys``, as their VRs allow them
    (:func:`app.dicom.vr.conform`): repaired when they have one valid reading, "" when
    they do not (a placeholder stands in for a Type 1 key), None when ``ds`` lacks the key."""
    values: dict[str, str | None] = {}
    for kw in keys:
        tag = Tag(tag_for_keyword(kw) or 0)
        if tag not in ds:
            values[kw] = None
            continue
        vr, raw = dictionary_VR(tag), ds.get_item(tag).value
        if vr in ("PN", "SH", "LO") or not isinstance(raw, bytes):
            value = ds[tag].value
            text = None if isinstance(value, MultiValue) else str(value or "")
        else:  # DA, TM, IS, CS: ASCII, read as stored (pydicom would warn or refuse)
            text = raw.decode("latin-1")
            text = None if "\\" in text else text
        values[kw] = (conform(vr, text) if text is not None else None) or ""
    return values


def write_readme(to: Path, result: ExportResult) -> None:
    """README.TXT: what the disc holds and how to open it, in plain words."""
    text = (
        "DICOM images (IHE Portable Data for Imaging)\r\n"
        "=============================================\r\n\r\n"
        f"Written by Relay {__version__} on {datetime.now().astimezone():%Y-%m-%d %H:%M %z}.\r\n"
        f"{len(result.studies)} study/studies, {result.instances} DICOM instances.\r\n\r\n"
        "The DICOMDIR file at the root of this disc lists every image. Open it with any DICOM\r\n"
        "viewer (for example Weasis, Horos, RadiAnt or the hospital's PACS import); no viewer\r\n"
        "is included on this disc. INDEX.HTM, opened in a web browser, lists the studies.\r\n"
        "The images are not a diagnosis; the report, if any, is sent separately.\r\n"
    )
    if result.excluded:
        text += (f"\r\n{len(result.excluded)} image(s) were left out on purpose because they\r\n"
                 "may carry burned-in patient details.\r\n")
    (to / "README.TXT").write_bytes(text.encode("ascii", "replace"))


def write_index(to: Path, headers: list[Dataset], result: ExportResult) -> None:
    """INDEX.HTM: the disc's contents (patients, studies, series and image counts) as plain
    XHTML 1.0 with no script and no outside reference, linking README.TXT."""
    studies: dict[str, dict[str, Any]] = {}
    for ds in headers:
        study = studies.setdefault(str(ds.StudyInstanceUID), {"ds": ds, "series": {}})
        series = study["series"].setdefault(str(ds.get("SeriesInstanceUID", "")),
                                            {"ds": ds, "images": 0})
        series["images"] += 1
    rows = []
    for study in sorted(studies.values(), key=lambda s: str(s["ds"].get("StudyDate", ""))):
        ds = study["ds"]
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                *(_esc(v) for v in (_name(ds.get("PatientName")), ds.get("PatientID", ""),
                                     _date(ds.get("PatientBirthDate", "")),
                                     _date(ds.get("StudyDate", "")),
                                     ds.get("StudyDescription", ""),
                                     _series_text(study["series"])))))
    left_out = (f"<p>{len(result.excluded)} image(s) were left out on purpose because they may "
                "carry burned-in patient details.</p>\n" if result.excluded else "")
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        "<head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />"
        "<title>DICOM images</title></head>\n<body>\n"
        "<h1>DICOM images (IHE Portable Data for Imaging)</h1>\n"
        f"<p>{result.instances} DICOM image(s) of {len(studies)} study/studies, written by Relay "
        f"{_esc(__version__)} on {datetime.now().astimezone():%Y-%m-%d %H:%M}. Open the "
        "DICOMDIR file at the root of this disc with a DICOM viewer; how is told in "
        '<a href="README.TXT">README.TXT</a>. The images are not a diagnosis.</p>\n'
        + left_out +
        "<table border=\"1\" cellpadding=\"4\">\n<tr><th>Patient</th><th>Patient ID</th>"
        "<th>Birth date</th><th>Study date</th><th>Study</th><th>Series (images)</th></tr>\n"
        + "\n".join(rows) + "\n</table>\n</body>\n</html>\n")
    (to / "INDEX.HTM").write_bytes(text.encode("utf-8"))


def _series_text(series: dict[str, dict[str, Any]]) -> str:
    parts = []
    for entry in series.values():
        ds = entry["ds"]
        label = " ".join(str(v) for v in (ds.get("Modality", ""), ds.get("SeriesDescription", ""))
                         if v)
        parts.append(f"{label or 'series'} ({entry['images']})")
    return "; ".join(parts)


def _esc(value: object) -> str:
    return html.escape(str(value if value is not None else ""))


def _name(value: object) -> str:
    """A person name as people write it: ``FAMILY, Given Middle``."""
    parts = [p for p in str(value or "").split("=")[0].split("^")]
    family, given = parts[0], " ".join(p for p in parts[1:3] if p)
    return f"{family}, {given}" if family and given else family or given


def _date(value: object) -> str:
    """A DA value as people read it (``1996-10-29``); "" when it is no date."""
    text = conform("DA", str(value or "")) or ""
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if text else ""


def write_iso(folder: Path, iso: Path, *, volume_id: str = FILESET_ID) -> None:
    """An ISO 9660 (level 1) image of ``folder``: every name must already be an 8.3 name."""
    import pycdlib

    image = pycdlib.PyCdlib()
    image.new(interchange_level=1, vol_ident=volume_id[:32].upper(), app_ident_str="RELAY")
    handles: list[Any] = []
    try:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            iso_path = "/" + "/".join(p.upper() for p in rel.parts)
            if path.is_dir():
                image.add_directory(iso_path)
            else:
                fp = open(path, "rb")  # noqa: SIM115 - pycdlib reads them when writing
                handles.append(fp)
                name = iso_path if "." in rel.name else iso_path + "."
                image.add_fp(fp, path.stat().st_size, name + ";1")
        tmp = iso.with_name(iso.name + ".part")
        image.write(str(tmp))
        tmp.replace(iso)
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise WorkflowError(f"the ISO image cannot be written: {exc}") from exc
    finally:
        image.close()
        for fp in handles:
            fp.close()
