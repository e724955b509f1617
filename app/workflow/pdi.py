"""Export to disc (IHE Portable Data for Imaging): a DICOM file-set and, when asked, its ISO.

The file-set is laid out by pydicom's :class:`~pydicom.fileset.FileSet` (DICOMDIR at the root,
8-character upper-case IDs, ISO 9660 level 1 names) with a README.TXT. Each instance is written
with the stored bytes as they are when the stored file is already a Part 10 file (so a re-import
gives it back byte for byte); a stored file without a Part 10 header is written by pydicom with
one, and listed as rewritten. With de-identification the instances are de-identified on the way
out (nothing is added to the store). The ISO 9660 image (level 1) is written by pycdlib: pure
Python, so the same code writes it in every bundle, with no burner program needed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from app import __version__
from app.imports.media import Problem
from app.store.ingest import check_buffer
from app.store.local import Store
from app.tasks import Progress
from app.workflow import audit
from app.workflow.derive import WorkflowError, encode, study_instances

log = logging.getLogger(__name__)

FILESET_ID = "RELAY"
#: Placeholders for DICOMDIR Type 1 keys the instance leaves empty (the file keeps its values).
RECORD_DEFAULTS = {"PatientID": "UNKNOWN", "StudyDate": "19000101", "StudyTime": "000000",
                   "StudyID": "1", "SeriesNumber": "1", "InstanceNumber": "1", "Modality": "OT"}


@dataclass
class ExportResult:
    to: Path
    iso: Path | None = None
    studies: list[str] = field(default_factory=list)
    instances: int = 0
    rewritten: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # SOP Instance UID -> file ID

    def to_json(self) -> dict[str, Any]:
        return {"to": str(self.to), "iso": str(self.iso) if self.iso else None,
                "studies": self.studies, "instances": self.instances,
                "rewritten": self.rewritten, "placeholders": self.placeholders,
                "excluded": self.excluded,
                "failed": [{"path": p.path, "reason": p.reason} for p in self.failed],
                "files": self.files}


def export_studies(store: Store, study_uids: Iterable[str], to: Path, *,
                   iso: Path | None = None, deidentify: tuple[str, ...] | None = None,
                   pseudonym: str = "", progress: Progress | None = None) -> ExportResult:
    """Write the studies as a PDI file-set in ``to`` (empty or new), and an ISO when asked.

    ``deidentify``: None for the stored instances as they are, else the profile options.
    """
    to = Path(to)
    if to.exists() and any(to.iterdir()):
        raise WorkflowError(f"{to} is not empty: export into a new or empty folder")
    uids = list(dict.fromkeys(study_uids))
    instances = [i for uid in uids for i in study_instances(store, uid)]
    result = ExportResult(to=to, studies=uids)
    engine = _deidentifier(store, deidentify, pseudonym)
    if progress is not None:
        progress.set_total(len(instances))
    fs = FileSet()
    fs.ID = FILESET_ID
    payload: dict[str, Path | bytes] = {}  # SOP Instance UID -> the file's bytes (or source)
    for inst in instances:
        if progress is not None:
            progress.check()
            progress.advance()
        ds: Dataset
        try:
            ds = pydicom.dcmread(str(inst.path), force=True,
                                 stop_before_pixels=engine is None)
        except Exception as exc:  # noqa: BLE001 - one line of the report
            result.failed.append(Problem(str(inst.path), f"cannot be read: {exc}", "failed"))
            continue
        if engine is not None:
            reason = engine.exclusion(ds)
            if reason is not None:
                result.excluded.append({"sop_instance_uid": inst.sop_instance_uid,
                                        "reason": reason})
                continue
            try:
                payload[ds.SOPInstanceUID] = encode(engine.apply(ds))
            except Exception as exc:  # noqa: BLE001 - one line of the report
                result.failed.append(Problem(str(inst.path), f"cannot be de-identified: {exc}",
                                             "failed"))
                continue
        elif _is_part10(inst.path):
            raw = Path(str(inst.path)).read_bytes()
            checked = check_buffer(raw, len(raw), str(inst.path), store.uid_key)
            if isinstance(checked, Problem):
                result.failed.append(checked)
                continue
            payload[ds.SOPInstanceUID] = Path(str(inst.path))
        else:
            ds = _with_file_meta(pydicom.dcmread(str(inst.path), force=True))
            payload[ds.SOPInstanceUID] = encode(ds)
            result.rewritten.append(inst.sop_instance_uid)
        if _add(fs, ds):
            result.placeholders.append(ds.SOPInstanceUID)
    to.mkdir(parents=True, exist_ok=True)
    fs.write(str(to))
    for instance in fs:
        uid = instance.SOPInstanceUID
        result.files[uid] = "/".join(Path(instance.FileID.replace("\\", "/")).parts)
        source = payload[uid]
        if isinstance(source, bytes):
            Path(instance.path).write_bytes(source)
        else:
            shutil.copyfile(source, instance.path)
    result.instances = len(result.files)
    _readme(to, result)
    if iso is not None:
        write_iso(to, Path(iso), volume_id=FILESET_ID)
        result.iso = Path(iso)
    audit.record(store.home, "export",
                 outcome=audit.SUCCESS if not result.failed else audit.MINOR_FAILURE,
                 study_uid=uids[0] if len(uids) == 1 else "",
                 peer="iso" if iso else "folder",
                 detail={"studies": uids, "instances": result.instances,
                         "deidentified": engine is not None,
                         "options": list(deidentify or ()), "excluded": len(result.excluded),
                         "failed": len(result.failed)})
    return result


def _add(fs: FileSet, ds: Dataset) -> bool:
    """Stage ``ds``'s records in the file-set; DICOMDIR Type 1 keys it leaves empty get a
    placeholder in the DICOMDIR only (the file is written afterwards, as it is).
    True when one was needed."""
    missing = {kw: v for kw, v in RECORD_DEFAULTS.items() if not ds.get(kw)}
    record = ds.copy()
    for kw, value in missing.items():
        setattr(record, kw, value)
    fs.add(record)
    return bool(missing)


def _with_file_meta(ds: Dataset) -> Dataset:
    """``ds`` with the Part 10 file meta a file without one lacks (its own encoding kept)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                  ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    return ds


def _deidentifier(store: Store, options: tuple[str, ...] | None, pseudonym: str) -> Any:
    if options is None:
        return None
    from app.workflow.deid_profile import build_profile
    from app.workflow.deidentify import Deidentifier
    from app.workflow.uids import KeyedUids, store_key

    profile = build_profile(tuple(options))
    context = "deid:" + ",".join(profile.options) + ":" + pseudonym
    return Deidentifier(profile, KeyedUids(store_key(store.home), context), pseudonym)


def _is_part10(path: Any) -> bool:
    with open(str(path), "rb") as fp:
        head = fp.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def _readme(to: Path, result: ExportResult) -> None:
    text = (
        "DICOM images (IHE Portable Data for Imaging)\r\n"
        "=============================================\r\n\r\n"
        f"Written by Relay {__version__} on {datetime.now().astimezone():%Y-%m-%d %H:%M %z}.\r\n"
        f"{len(result.studies)} study/studies, {result.instances} DICOM instances.\r\n\r\n"
        "The DICOMDIR file at the root of this disc lists every image. Open it with any DICOM\r\n"
        "viewer (for example Weasis, Horos, RadiAnt or the hospital's PACS import); no viewer\r\n"
        "is included on this disc. The images are not a diagnosis; the report, if any, is\r\n"
        "sent separately.\r\n"
    )
    if result.excluded:
        text += (f"\r\n{len(result.excluded)} image(s) were left out on purpose because they\r\n"
                 "may carry burned-in patient details.\r\n")
    (to / "README.TXT").write_bytes(text.encode("ascii", "replace"))


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
