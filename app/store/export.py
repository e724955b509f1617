"""Export studies or series from the store to a folder, byte-exact, with names free of patient
data: ``<folder>/<study date>_<study description>/<series number>_<modality>/<n>.dcm``.

A name that exists already is never overwritten (a number is added). Qt-free; reports through
:class:`app.tasks.Progress` and can be cancelled.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.errors import Cancelled
from app.model import Series, Study
from app.store.local import Store
from app.tasks import Progress
from app.workflow import audit

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    """The study's folder inside the chosen folder."""
    files: int


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


def export_study(store: Store, study: Study, folder: Path, series_uids: list[str] | None = None,
                 progress: Progress | None = None) -> ExportResult:
    """Copy the study's files (or only ``series_uids``) under ``folder``."""
    progress = progress or Progress("Exporting")
    chosen: list[Series] = [s for s in study.series
                            if series_uids is None or s.series_instance_uid in series_uids]
    progress.set_total(sum(s.instance_count for s in chosen), "Exporting")
    study_dir = _free(Path(folder) / safe_name(
        f"{study.study_date}_{study.study_description}", "study"))
    copied = 0
    outcome = audit.SERIOUS_FAILURE
    try:
        for series in chosen:
            number = f"{series.series_number:03d}" if series.series_number is not None else "000"
            series_dir = _free(study_dir / safe_name(f"{number}_{series.modality}", "series"))
            series_dir.mkdir(parents=True)
            for n, instance in enumerate(store.instances(series.series_instance_uid), start=1):
                progress.check()
                assert instance.path is not None  # the store names every file
                shutil.copyfile(instance.path, series_dir / f"{n:05d}.dcm")
                copied += 1
                progress.advance(1)
        outcome = audit.SUCCESS
    except Cancelled:
        outcome = audit.MINOR_FAILURE
        raise
    finally:
        # the folder is not recorded: the user may have named it after the patient
        audit.record(store.home, "export", outcome=outcome, study_uid=study.study_instance_uid,
                     detail={"instances": copied, "media": "folder"})
    progress.finish()
    log.info("exported %d files", copied)
    return ExportResult(folder=study_dir, files=copied)
