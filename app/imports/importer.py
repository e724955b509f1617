"""Import outside media into the local store: ``relay import PATH...``.

Files are read in a small thread pool (reading, hashing and writing release the GIL; header
parsing does not, but it is the cheap part), and indexed in batches from the calling thread. Each
file ends in exactly one place of the :class:`ImportReport`: imported, duplicate, conflict, failed
(DICOM that could not be taken) or skipped (not DICOM). Cancel through the :class:`Progress`.

A store that cannot be written (a full disk) stops the import: every file already placed in the
store, also by workers still busy at the stop, is indexed before it returns, and
:attr:`ImportReport.stopped` says why; the same import run again completes it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app.errors import Cancelled, StoreError
from app.imports.media import MediaItem, Problem, walk
from app.model import Series
from app.store.ingest import Duplicate, stage_bytes
from app.store.local import Store, StoredFile
from app.tasks import Progress
from app.volume.plans import series_plan
from app.workflow import audit

log = logging.getLogger(__name__)

BATCH = 64
#: Why a file is listed as conflicting.
CONFLICT = ("same SOP Instance UID as an image already in the store, different content; "
            "both kept")
BATCH_SECONDS = 0.5
#: Why a file is listed as one a hub or PACS will not take (the UIDs it lacks follow).
UNSENDABLE = "no {}: shown under UIDs Relay makes up, which a hub or PACS will not accept"


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    conflicts: int = 0
    failed: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    #: The files counted in :attr:`conflicts`, each with why (kind "conflict").
    conflicting: list[Problem] = field(default_factory=list)
    #: Files imported that a hub or PACS will refuse: no Study or Series Instance UID (kind
    #: "unsendable"); they are in the store and can be read.
    unsendable: list[Problem] = field(default_factory=list)
    #: Studies that this import touched (imported, duplicate or conflict), in first-seen order.
    study_uids: list[str] = field(default_factory=list)
    #: Per series this import touched: how many files were "imported", "duplicate", "conflict".
    series_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    cancelled: bool = False
    #: Why the import stopped before the end (the disk holding the store is full), else "".
    stopped: str = ""
    #: The paths the import was given, and how many candidate files were found under them.
    paths: list[str] = field(default_factory=list)
    found: int = 0
    seconds: float = 0.0

    def count_series(self, series_uid: str, status: str) -> None:
        counts = self.series_counts.setdefault(series_uid, {})
        counts[status] = counts.get(status, 0) + 1

    def add_problem(self, problem: Problem) -> None:
        (self.skipped if problem.kind == "skipped" else self.failed).append(problem)

    def to_json(self, store: Store) -> dict[str, Any]:
        """The ``relay import --json`` object."""
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "failed": [{"path": p.path, "reason": p.reason} for p in self.failed],
            "skipped": [{"path": p.path, "reason": p.reason} for p in self.skipped],
            "conflicting": [{"path": p.path, "reason": p.reason} for p in self.conflicting],
            "unsendable": [{"path": p.path, "reason": p.reason} for p in self.unsendable],
            "studies": studies_json(store, self.study_uids),
            **({"stopped": self.stopped} if self.stopped else {}),
        }


def studies_json(store: Store, study_uids: list[str] | None = None) -> list[dict[str, Any]]:
    """Studies in the shape ``relay import --json`` and ``relay ls --json`` print."""
    out = []
    for study in store.studies(study_uids):
        out.append(
            {
                "study_instance_uid": study.study_instance_uid,
                "patient_id": study.patient.patient_id,
                "patient_name": study.patient.patient_name,
                "study_date": study.study_date,
                "study_description": study.study_description,
                "modalities": list(study.modalities),
                "series": [series_json(store, s) for s in study.series],
            }
        )
    return out


def series_json(store: Store, series: Series) -> dict[str, Any]:
    """One series in the report shape, with its geometry issues (from the index, no pixels)."""
    return {
        "series_instance_uid": series.series_instance_uid,
        "series_number": series.series_number,
        "modality": series.modality,
        "series_description": series.series_description,
        "instances": series.instance_count,
        "geometry_issues": list(series_plan(store, series.series_instance_uid,
                                            series.frame_of_reference_uid).issues),
    }


def import_paths(
    store: Store,
    paths: list[str],
    progress: Progress | None = None,
    *,
    workers: int = 4,
    on_stored: Callable[[StoredFile], object] | None = None,
) -> ImportReport:
    """Import folders, DICOMDIR media, zips and single files into ``store``.

    ``on_stored`` is told of each file newly in the store, once its index row is committed
    (forwarding rules, :mod:`app.net.forward`)."""
    started = time.monotonic()
    progress = progress or Progress("Importing")
    report = ImportReport(paths=list(paths))
    listing = walk(paths, tmp_dir=store.tmp)
    report.found = len(listing.items) + sum(1 for p in listing.problems if p.kind == "skipped")
    for problem in listing.problems:
        report.add_problem(problem)
    progress.set_total(len(listing.items), "Importing")
    seen_studies: dict[str, None] = {}
    arrivals = audit.Arrivals()

    pending: list[tuple[MediaItem, StoredFile]] = []
    last_commit = time.monotonic()

    def flush() -> None:
        nonlocal last_commit
        if pending:
            statuses = store.commit([f for _, f in pending])
            for (item, stored), status in zip(pending, statuses, strict=True):
                _count(report, status)
                if status == "conflict":
                    report.conflicting.append(Problem(item.display, CONFLICT, "conflict"))
                if status == "imported" and stored.header.missing_uids:
                    missing = " or ".join(re.sub(r"(?<!^)(?=[A-Z])", " ", k).replace(
                        "U I D", "UID") for k in stored.header.missing_uids)
                    report.unsendable.append(Problem(item.display, UNSENDABLE.format(missing),
                                                     "unsendable"))
                report.count_series(stored.header.series.series_instance_uid, status)
                seen_studies.setdefault(stored.header.study.study_instance_uid)
                arrivals.add(stored.header.study.study_instance_uid, status == "imported")
                if on_stored is not None and status == "imported":
                    on_stored(stored)
            pending.clear()
        last_commit = time.monotonic()

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
            window: deque[tuple[MediaItem, Future[Any]]] = deque()
            items = iter(listing.items)
            try:
                while True:
                    while len(window) < workers * 4:
                        item = next(items, None)
                        if item is None:
                            break
                        window.append((item, pool.submit(_prepare, store, item)))
                    if not window:
                        break
                    item, future = window.popleft()
                    result = future.result()
                    if isinstance(result, Problem):
                        report.add_problem(result)
                    elif isinstance(result, Duplicate):
                        report.duplicates += 1
                        report.count_series(result.header.series.series_instance_uid,
                                            "duplicate")
                        seen_studies.setdefault(result.header.study.study_instance_uid)
                        arrivals.add(result.header.study.study_instance_uid, new=False)
                    else:
                        pending.append((item, result))
                    progress.advance(1, item.display)
                    if len(pending) >= BATCH or time.monotonic() - last_commit > BATCH_SECONDS:
                        flush()
                    progress.check()
            finally:
                for _, future in window:
                    future.cancel()
                _placed_meanwhile(window, pending)
        flush()
    except Cancelled:
        flush()
        report.cancelled = True
    except StoreError as exc:
        report.stopped = str(exc)
        log.warning("import stopped: %s", exc)
        try:
            flush()
        except StoreError as again:  # the placed files are adopted by the next import
            log.warning("files placed before the stop are not indexed yet: %s", again)
    finally:
        listing.close()
        progress.finish()
    report.study_uids = list(seen_studies)
    report.seconds = time.monotonic() - started
    outcome = audit.SUCCESS if not report.failed and not report.cancelled \
        else audit.MINOR_FAILURE
    for uid in report.study_uids:
        audit.record(store.home, "import", outcome=outcome, study_uid=uid,
                     detail=arrivals.detail(uid))
    if not report.study_uids and (report.failed or report.cancelled):
        audit.record(store.home, "import", outcome=audit.SERIOUS_FAILURE,
                     detail={"instances": 0, "failed": len(report.failed)})
    log.info(
        "import: %d imported, %d duplicates, %d conflicts, %d failed, %d skipped in %.2fs",
        report.imported, report.duplicates, report.conflicts, len(report.failed),
        len(report.skipped), report.seconds,
    )
    return report


def _placed_meanwhile(window: deque[tuple[MediaItem, Future[Any]]],
                      pending: list[tuple[MediaItem, StoredFile]]) -> None:
    """After a stop: the files that workers still running placed in the store join ``pending``
    (indexed with the rest, never left in the store without an index row)."""
    for item, future in window:
        if future.cancelled():
            continue
        try:
            result = future.result()
        except Exception:  # the stop's own error is reported; this file was not placed
            continue
        if isinstance(result, StoredFile):
            pending.append((item, result))


def _count(report: ImportReport, status: str) -> None:
    if status == "imported":
        report.imported += 1
    elif status == "duplicate":
        report.duplicates += 1
    else:
        report.conflicts += 1


def _prepare(store: Store, item: MediaItem) -> StoredFile | Duplicate | Problem:
    """Read, check and durably store one file (not yet indexed)."""
    try:
        with item.open() as buf:
            return stage_bytes(store, buf, item.display)
    except StoreError:
        raise
    except OSError as exc:
        return Problem(item.display, f"cannot read the file: {exc.strerror or exc}", "failed")
    except Exception as exc:  # the media are hostile; one bad file never stops the import
        log.warning("unexpected %s while importing a file", type(exc).__name__, exc_info=True)
        return Problem(item.display, f"unexpected error: {type(exc).__name__}", "failed")
