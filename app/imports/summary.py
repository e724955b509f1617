"""What an import brought in, as the import report shows it: patients, studies and series with
counts, each new or already there, series without images flagged, and problems grouped by
reason and folder ("140 files listed in the DICOMDIR are missing from the disc (in SE202)")
instead of one line per file. Qt-free; built from an :class:`ImportReport` and the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.imports.importer import ImportReport
from app.imports.media import Problem
from app.store.local import Store

log = logging.getLogger(__name__)

#: A skipped file whose reason says this is a media index (DICOMDIR or a vendor's): read, not
#: counted as "not DICOM".
MEDIA_INDEX_WORDS = ("DICOMDIR", "directory file")
#: Plain sentences for the commonest reasons, "{n}" files; others read "{n} files: reason".
PHRASES = {
    "listed in the DICOMDIR but missing from the media":
        "{n} listed in the DICOMDIR {are} missing from the disc",
    "not a DICOM file": "{n} {are} not DICOM",
}
#: Paths listed per group at most (the rest are counted).
EXAMPLES = 20


@dataclass(frozen=True)
class SeriesLine:
    """One series the import touched."""

    series_uid: str
    number: int | None
    description: str
    modality: str
    instances: int
    """Instances of the series now in the store."""
    imported: int
    """Files of this import that were new."""
    already: int
    """Files of this import that the store already held (same bytes)."""
    conflicts: int
    """Files of this import with a UID the store held with other bytes (both kept)."""
    images: int
    """Instances that hold pixel data (0: a report, a presentation state, a key-object note)."""

    @property
    def status(self) -> str:
        """``new``, ``already there`` or ``partly new``."""
        if self.imported and not self.already:
            state = "new"
        else:
            state = "already there" if not self.imported else "partly new"
        return f"{state} · {self.conflicts} conflicting" if self.conflicts else state


@dataclass(frozen=True)
class StudyLine:
    study_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    series: tuple[SeriesLine, ...]

    @property
    def status(self) -> str:
        states = {s.status.split(" · ")[0] for s in self.series}
        return states.pop() if len(states) == 1 else "partly new"

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.series)


@dataclass(frozen=True)
class ProblemGroup:
    """Files with one reason in one folder."""

    kind: str
    """``failed``, ``conflict``, ``unsendable`` or ``skipped``."""
    reason: str
    folder: str
    paths: tuple[str, ...]
    """The first :data:`EXAMPLES` paths."""
    count: int

    def sentence(self) -> str:
        """"140 files listed in the DICOMDIR are missing from the disc (in .../SE202)"."""
        n = f"{self.count} file" + ("s" if self.count != 1 else "")
        phrase = PHRASES.get(self.reason)
        text = (phrase.format(n=n, are="are" if self.count != 1 else "is") if phrase
                else f"{n}: {self.reason}")
        return f"{text} (in {short_folder(self.folder)})" if self.folder else text


@dataclass(frozen=True)
class ImportSummary:
    studies: tuple[StudyLine, ...]
    problems: tuple[ProblemGroup, ...]
    media_indexes: int
    """DICOMDIR and vendor index files read (not images, not problems)."""

    @property
    def patients(self) -> int:
        return len({(s.patient_id, s.patient_name) for s in self.studies})

    @property
    def series_without_images(self) -> list[SeriesLine]:
        return [s for st in self.studies for s in st.series if s.images == 0]

    @property
    def not_dicom(self) -> int:
        return sum(g.count for g in self.problems if g.kind == "skipped")

    @property
    def failed(self) -> int:
        return sum(g.count for g in self.problems if g.kind == "failed")


def nothing_words(report: ImportReport) -> str:
    """Why an import that ran to its end brought nothing in, in one sentence ("" when it
    brought something, or was stopped): never a bare "0 images imported"."""
    if report.imported or report.duplicates or report.conflicts or report.stopped \
            or report.cancelled:
        return ""
    if report.failed:
        n = len(report.failed)
        return f"Nothing imported: {n} file{'s' if n != 1 else ''} could not be imported."
    if report.found == 1:
        return "Nothing imported: the one file found is not a DICOM image."
    if report.found:
        return f"Nothing imported: none of the {report.found} files found is a DICOM image."
    where = ", ".join(report.paths) or "the chosen place"
    return (f"Nothing imported: no files found in {where}. Is the disc in the drive, or the "
            "USB stick plugged in?")


def short_folder(folder: str, keep: int = 3) -> str:
    """The last ``keep`` parts of a folder ("…/disc/77654033/CT2"): where on the disc."""
    parts = Path(folder).parts
    return folder if len(parts) <= keep + 1 else "…/" + "/".join(parts[-keep:])


def is_media_index(problem: Problem) -> bool:
    return problem.kind == "skipped" and any(w in problem.reason for w in MEDIA_INDEX_WORDS)


def group_problems(problems: Iterable[Problem]) -> list[ProblemGroup]:
    """Group by (kind, reason, folder); failures first, then the biggest groups."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for p in problems:
        folder = os.path.dirname(p.path)
        groups.setdefault((p.kind, p.reason, folder), []).append(p.path)
    out = [ProblemGroup(kind=k, reason=r, folder=f, paths=tuple(paths[:EXAMPLES]),
                        count=len(paths)) for (k, r, f), paths in groups.items()]
    rank = {"failed": 0, "conflict": 1, "unsendable": 2}
    out.sort(key=lambda g: (rank.get(g.kind, 3), -g.count, g.folder, g.reason))
    return out


def summarize(store: Store, report: ImportReport) -> ImportSummary:
    """The summary of ``report`` with the studies as the store now holds them."""
    studies = []
    for study in store.studies(report.study_uids):
        lines = []
        for series in study.series:
            counts = report.series_counts.get(series.series_instance_uid)
            if counts is None:
                continue  # a series of the study that this import did not touch
            lines.append(SeriesLine(
                series_uid=series.series_instance_uid, number=series.series_number,
                description=series.series_description, modality=series.modality,
                instances=series.instance_count, imported=counts.get("imported", 0),
                already=counts.get("duplicate", 0), conflicts=counts.get("conflict", 0),
                images=store.image_count(series.series_instance_uid)))
        studies.append(StudyLine(
            study_uid=study.study_instance_uid, patient_name=study.patient.patient_name,
            patient_id=study.patient.patient_id, study_date=study.study_date,
            description=study.study_description, series=tuple(lines)))
    order = {uid: i for i, uid in enumerate(report.study_uids)}
    studies.sort(key=lambda s: order.get(s.study_uid, len(order)))
    problems = [p for p in [*report.failed, *report.conflicting, *report.unsendable,
                            *report.skipped] if not is_media_index(p)]
    indexes = sum(1 for p in report.skipped if is_media_index(p))
    return ImportSummary(studies=tuple(studies), problems=tuple(group_problems(problems)),
                         media_indexes=indexes)
