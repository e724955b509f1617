"""Export studies (or some of their series) out of the store: one code path, two layouts.

- ``fileset``, a disc (IHE Portable Data for Imaging): a DICOM file-set laid out by pydicom's
  FileSet (DICOMDIR at the root, 8-character upper-case IDs, ISO 9660 level 1 names) with
  README.TXT and INDEX.HTM, and an ISO 9660 image when asked (:mod:`app.workflow.pdi`).
- ``folder``: one folder per study inside the chosen folder, named without patient data,
  ``<study date>_<description>/<series number>_<modality>/<n>.dcm``; a name in use is never
  overwritten (a number is added).

Either way each instance is written with its stored bytes (a re-import gives it back byte for
byte), or de-identified on the way out (nothing is added to the store; images that may carry
burned-in text are left out and listed). A stored file without a Part 10 header is given one and
listed as rewritten. De-identified copies wait in a staging folder beside the export, not in
memory. Every export is recorded in the audit trail.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from app.imports.media import Problem
from app.model import Instance
from app.store.ingest import check_buffer
from app.store.local import Store
from app.tasks import Progress
from app.workflow import audit
from app.workflow.derive import WorkflowError, encode, study_instances

log = logging.getLogger(__name__)

LAYOUTS = ("fileset", "folder")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ExportResult:
    to: Path
    layout: str = "fileset"
    iso: Path | None = None
    studies: list[str] = field(default_factory=list)
    instances: int = 0
    rewritten: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # SOP Instance UID -> path under `to`
    folders: list[Path] = field(default_factory=list)  # folder layout: the study folders
    requested: Path | None = None  # the folder asked for, when the disc went into a new one in it

    def to_json(self) -> dict[str, Any]:
        return {"to": str(self.to), "layout": self.layout,
                "requested": str(self.requested) if self.requested else None,
                "iso": str(self.iso) if self.iso else None,
                "studies": self.studies, "instances": self.instances,
                "rewritten": self.rewritten, "placeholders": self.placeholders,
                "excluded": self.excluded,
                "failed": [{"path": p.path, "reason": p.reason} for p in self.failed],
                "files": self.files, "folders": [str(f) for f in self.folders]}


@dataclass(frozen=True)
class Outgoing:
    """One instance on its way out: its header as written (no pixels) and the file to copy."""

    header: Dataset
    source: Path
    staged: bool = False  # a file of the staging folder (moved into place, not copied)
    origin: str = ""  # the stored file it comes from, for the report's lines
    #: Its study and series as the index has them (a file may lack its UIDs: Relay derived
    #: them at import), which the folder layout groups by.
    group: tuple[str, str] = ("", "")

    def place(self, target: Path) -> None:
        if self.staged:
            self.source.replace(target)
        else:
            shutil.copyfile(self.source, target)


def export_studies(store: Store, study_uids: Iterable[str], to: Path, *,
                   layout: str = "fileset", series_uids: Iterable[str] | None = None,
                   iso: Path | None = None, deidentify: tuple[str, ...] | None = None,
                   pseudonym: str = "", progress: Progress | None = None) -> ExportResult:
    """Write the studies (only ``series_uids`` of them, when given) to ``to`` in ``layout``.

    ``fileset`` writes into ``to`` when it is new or empty, else into a new folder in it
    (:func:`disc_folder`; ``result.to`` says where); ``folder`` adds study folders inside it.
    ``deidentify``: None for the stored instances as they are, else the profile options.
    """
    if layout not in LAYOUTS:
        raise WorkflowError(f"unknown export layout {layout!r} (known: {', '.join(LAYOUTS)})")
    if iso is not None and layout != "fileset":
        raise WorkflowError("an ISO image is made of a disc file-set: use the fileset layout")
    requested = Path(to)
    if requested.exists() and not requested.is_dir():
        raise WorkflowError(f"{requested} is a file: export into a folder")
    to = disc_folder(requested) if layout == "fileset" else requested
    uids = list(dict.fromkeys(study_uids))
    instances = _chosen(store, uids, series_uids)
    result = ExportResult(to=to, layout=layout, studies=uids,
                          requested=requested if to != requested else None)
    engine = _deidentifier(store, deidentify, pseudonym)
    if progress is not None:
        progress.set_total(len(instances))
    to.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".relay-export-", dir=to))  # same disk: moved
    try:
        outgoing = list(_outgoing(instances, engine, staging, result, progress,
                                     store.uid_key))
        if layout == "fileset":
            from app.workflow import pdi

            result.files = pdi.write_fileset(to, outgoing, result)
        else:
            result.files = _write_folders(to, outgoing, result)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.instances = len(result.files)
    if layout == "fileset":
        from app.workflow import pdi

        pdi.write_readme(to, result)
        pdi.write_index(to, [o.header for o in outgoing
                             if str(o.header.SOPInstanceUID) in result.files], result)
        if iso is not None:
            Path(iso).parent.mkdir(parents=True, exist_ok=True)
            pdi.write_iso(to, Path(iso))
            result.iso = Path(iso)
    audit.record(store.home, "export",
                 outcome=audit.SUCCESS if not result.failed else audit.MINOR_FAILURE,
                 study_uid=uids[0] if len(uids) == 1 else "",
                 peer="iso" if iso else layout,
                 detail={"studies": uids, "instances": result.instances, "layout": layout,
                         "deidentified": engine is not None,
                         "options": list(deidentify or ()), "excluded": len(result.excluded),
                         "failed": len(result.failed)})
    log.info("exported %d instances (%s)", result.instances, layout)
    return result


def disc_folder(chosen: Path, today: date | None = None) -> Path:
    """Where a disc file-set asked for in ``chosen`` goes: ``chosen`` itself when it is new or
    empty, else a new folder in it, ``DICOM_<yyyymmdd>_<n>`` with the first ``n`` not in use
    (a USB stick's root always holds something; what is there is never touched).

    Raises WorkflowError for a file, and for a folder that already holds a DICOMDIR at its
    root: a second file-set inside the first would not be read as one disc.
    """
    chosen = Path(chosen)
    if chosen.exists() and not chosen.is_dir():
        raise WorkflowError(f"{chosen} is a file: export into a folder")
    if not chosen.exists() or not any(chosen.iterdir()):
        return chosen
    if any(p.name.upper() == "DICOMDIR" for p in chosen.iterdir()):
        raise WorkflowError(f"{chosen} already holds a disc (a DICOMDIR): export into another "
                            "folder, or an empty one")
    stamp = f"DICOM_{(today or date.today()):%Y%m%d}"
    for n in range(1, 10_000):
        candidate = chosen / f"{stamp}_{n}"
        if not candidate.exists() and not candidate.with_name(candidate.name + ".iso").exists():
            return candidate
    raise WorkflowError(f"{chosen} holds too many exports of today: choose another folder")


def iso_path(chosen: Path, target: Path, documents: Path, today: date | None = None) -> Path:
    """Where the ISO image of a disc asked for in ``chosen`` and written in ``target``
    (:func:`disc_folder`) goes; never inside the disc it images (it would be a stray file on
    the disc, and in its own next image).

    Beside ``target`` (``<name>.iso``) when the disc went into a new folder of ``chosen`` (on
    the stick, beside the disc), or when ``chosen`` is an ordinary folder whose parent can be
    written. When ``chosen`` is a drive's root (an empty USB stick: the disc is the stick,
    and nothing of that drive is beside it) or its parent cannot be written, in ``documents``
    on this computer, where the burner is: ``DICOM_<yyyymmdd>_<n>.iso``, the first not in use.
    """
    chosen, target = Path(chosen), Path(target)
    if target != chosen or not (_drive_root(chosen) or not _writable(chosen.parent)):
        return target.with_name(target.name + ".iso")
    stamp = f"DICOM_{(today or date.today()):%Y%m%d}"
    for n in range(1, 10_000):
        candidate = Path(documents) / f"{stamp}_{n}.iso"
        if not candidate.exists():
            return candidate
    raise WorkflowError(f"{documents} holds too many ISO images of today: remove some")


def _drive_root(folder: Path) -> bool:
    """A mount point (``/media/usb``) or a drive's root (``E:\\``, ``/``)."""
    folder = folder.expanduser().absolute()
    return folder.parent == folder or os.path.ismount(folder)


def _writable(folder: Path) -> bool:
    """Whether ``folder``, or the nearest folder above it that exists, can be written."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return os.access(candidate, os.W_OK)
    return False


def _chosen(store: Store, study_uids: list[str],
            series_uids: Iterable[str] | None) -> list[Instance]:
    instances = [i for uid in study_uids for i in study_instances(store, uid)]
    if series_uids is None:
        return instances
    wanted = set(series_uids)
    chosen = [i for i in instances if i.series_instance_uid in wanted]
    if not chosen:
        raise WorkflowError("none of the chosen series is in these studies")
    return chosen


def _outgoing(instances: list[Instance], engine: Any, staging: Path, result: ExportResult,
              progress: Progress | None, uid_key: bytes) -> Iterator[Outgoing]:
    """Each instance ready to be written (the failed and the excluded go into ``result``)."""
    for n, inst in enumerate(instances):
        if progress is not None:
            progress.check()
            progress.advance()
        path = Path(str(inst.path))
        group = (inst.study_instance_uid, inst.series_instance_uid)
        try:
            ds = pydicom.dcmread(str(path), force=True, stop_before_pixels=engine is None)
        except Exception as exc:  # noqa: BLE001 - one line of the report
            result.failed.append(Problem(str(path), f"cannot be read: {exc}", "failed",
                                         inst.sop_class_uid))
            continue
        if engine is not None:
            reason = engine.exclusion(ds)
            if reason is not None:
                result.excluded.append({"sop_instance_uid": inst.sop_instance_uid,
                                        "reason": reason})
                continue
            try:
                data = encode(engine.apply(ds))
            except Exception as exc:  # noqa: BLE001 - one line of the report
                result.failed.append(Problem(str(path), f"cannot be de-identified: {exc}",
                                             "failed", inst.sop_class_uid))
                continue
            yield Outgoing(_header(ds), _staged(staging, n, data), staged=True, origin=str(path),
                           group=group)
        elif _is_part10(path):
            raw = path.read_bytes()
            checked = check_buffer(raw, len(raw), str(path), uid_key)
            if isinstance(checked, Problem):
                result.failed.append(replace(checked, sop_class_uid=inst.sop_class_uid))
                continue
            yield Outgoing(ds, path, origin=str(path), group=group)
        else:
            full = _with_file_meta(pydicom.dcmread(str(path), force=True))
            result.rewritten.append(inst.sop_instance_uid)
            yield Outgoing(_header(full), _staged(staging, n, encode(full)), staged=True,
                           origin=str(path), group=group)


def _write_folders(to: Path, outgoing: list[Outgoing], result: ExportResult) -> dict[str, str]:
    """The folder layout: study folders named by date and description, series folders by
    number and modality, files numbered in the store's order."""
    studies: dict[str, Path] = {}
    series: dict[str, tuple[Path, list[int]]] = {}
    files: dict[str, str] = {}
    for item in outgoing:
        ds = item.header
        study_uid, series_uid = item.group
        if study_uid not in studies:
            studies[study_uid] = _free(to / safe_name(
                f"{ds.get('StudyDate', '')}_{ds.get('StudyDescription', '')}", "study"))
            result.folders.append(studies[study_uid])
        if series_uid not in series:
            number = ds.get("SeriesNumber")
            label = f"{int(number):03d}" if number not in (None, "") else "000"
            folder = _free(studies[study_uid] / safe_name(
                f"{label}_{ds.get('Modality', '')}", "series"))
            folder.mkdir(parents=True)
            series[series_uid] = (folder, [0])
        folder, counter = series[series_uid]
        counter[0] += 1
        target = folder / f"{counter[0]:05d}.dcm"
        item.place(target)
        files[str(ds.SOPInstanceUID)] = target.relative_to(to).as_posix()
    return files


def safe_name(text: str, fallback: str) -> str:
    """A folder name from a DICOM value: letters, digits, ``._-`` only, at most 60 long."""
    name = _UNSAFE.sub("_", text).strip("._")[:60]
    return name or fallback


def _free(path: Path) -> Path:
    if not path.exists():
        return path
    for n in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(path)


def _staged(staging: Path, n: int, data: bytes) -> Path:
    path = staging / f"{n:07d}.dcm"
    path.write_bytes(data)
    return path


def _header(ds: Dataset) -> Dataset:
    """``ds`` without its pixel data (the DICOMDIR and the index need only the header)."""
    for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
        if tag in ds:
            del ds[tag]
    return ds


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


def _is_part10(path: Path) -> bool:
    with open(path, "rb") as fp:
        head = fp.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"
