"""Import outside media into the local store: ``relay import PATH...``.

Each file's bytes go through the ingest pipeline every download and every C-STORE goes through
(:class:`app.store.part_ingest.PartIngest`): the calling thread reads the media; the pipeline's
writer thread writes and hashes the bytes (both release the GIL), its workers check the header
and place the file, and each batch is fsync'ed side by side and indexed in one transaction. Each
file ends in exactly one place of the :class:`ImportReport`, in the order of the media: imported,
duplicate, conflict, failed (DICOM that could not be taken) or skipped (not DICOM). Cancel
through the :class:`Progress`.

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
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from app.errors import Cancelled, StoreError
from app.imports.media import MediaItem, Problem, walk
from app.model import Series
from app.store.ingest import Duplicate
from app.store.local import Store, StoredFile
from app.store.part_ingest import PartIngest, Ticket
from app.tasks import Progress
from app.volume.plans import series_plan
from app.workflow import audit

log = logging.getLogger(__name__)

BATCH = 64
#: Why a file is listed as conflicting.
CONFLICT = ("same SOP Instance UID as an image already in the store, different content; "
            "both kept")
BATCH_SECONDS = 0.5
#: Files handed to the pipeline whose outcome is not counted yet, at most (the pipeline's own
#: bounds hold the memory; this bounds the report's lag behind the media).
WINDOW = 4 * BATCH
#: Why a file is listed as one a hub or PACS will not take (the UIDs it lacks follow).
UNSENDABLE = ("no {}: shown under UIDs Relay makes up, which a hub or PACS will not accept; "
              "reconcile the study to make a copy that carries them")


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
    workers: int = 2,
    on_stored: Callable[[StoredFile], object] | None = None,
) -> ImportReport:
    """Import folders, DICOMDIR media, zips and single files into ``store``.

    ``on_stored`` is told of each file newly in the store, once its index row is committed
    (forwarding rules, :mod:`app.net.forward`), on the thread that commits it; ``workers``:
    the pipeline's threads checking headers and placing files."""
    started = time.monotonic()
    progress = progress or Progress("Importing")
    report = ImportReport(paths=list(paths))
    listing = walk(paths)
    report.found = len(listing.items) + sum(1 for p in listing.problems if p.kind == "skipped")
    for problem in listing.problems:
        report.add_problem(problem)
    progress.set_total(len(listing.items), "Importing")
    seen_studies: dict[str, None] = {}
    arrivals = audit.Arrivals()

    def commit(files: list[StoredFile]) -> list[str]:
        """Index a synced batch; ``on_stored`` hears of each new file as its row is committed
        (on the pipeline's thread: a send pressed meanwhile knows the import still writes)."""
        statuses = store.commit(files, synced=True)
        if on_stored is not None:
            for file, status in zip(files, statuses, strict=True):
                if status == "imported":
                    try:
                        on_stored(file)
                    except Exception:  # a listener's fault never costs an import its files
                        log.exception("a listener to imported files failed")
        return statuses

    ingest = PartIngest(store, workers=max(1, workers), batch=BATCH,
                        batch_seconds=BATCH_SECONDS, commit=commit, report_problems=False)
    # each file's outcome, in the order of the media; settled once its batch is indexed
    window: deque[tuple[MediaItem, Ticket]] = deque()

    def settle(item: MediaItem, ticket: Ticket) -> None:
        try:
            staged, status = ticket.future.result()
        except Exception:  # not stored (the stop's own error is reported once)
            return
        if isinstance(staged, Problem):
            report.add_problem(staged)
        elif isinstance(staged, Duplicate) or status == "duplicate":
            report.duplicates += 1
            report.count_series(staged.header.series.series_instance_uid, "duplicate")
            seen_studies.setdefault(staged.header.study.study_instance_uid)
            arrivals.add(staged.header.study.study_instance_uid, new=False)
        else:
            assert isinstance(staged, StoredFile) and status is not None
            _count(report, status)
            if status == "conflict":
                report.conflicting.append(Problem(item.display, CONFLICT, "conflict"))
            if status == "imported" and staged.header.missing_uids:
                missing = " or ".join(re.sub(r"(?<!^)(?=[A-Z])", " ", k).replace(
                    "U I D", "UID") for k in staged.header.missing_uids)
                report.unsendable.append(Problem(item.display, UNSENDABLE.format(missing),
                                                 "unsendable"))
            report.count_series(staged.header.series.series_instance_uid, status)
            seen_studies.setdefault(staged.header.study.study_instance_uid)
            arrivals.add(staged.header.study.study_instance_uid, status == "imported")
        progress.advance(1, item.display)

    def settle_ready(keep: int) -> None:
        """Count the outcomes known, in order; wait while more than ``keep`` are not."""
        while len(window) > keep or window and window[0][1].future.done():
            item, ticket = window[0]
            if not ticket.future.done():
                try:
                    ticket.future.result(timeout=BATCH_SECONDS)
                except FutureTimeout:
                    ingest.flush()  # a batch not yet due: index what is placed
                    continue
                except Exception:
                    pass
            window.popleft()
            settle(item, ticket)

    try:
        try:
            for item in listing.items:
                progress.check()
                window.append((item, _pipe(ingest, item)))
                settle_ready(WINDOW)
            ingest.drain()
        finally:
            try:
                ingest.close()  # every file placed is indexed, also after a stop
            except (StoreError, Cancelled) as exc:
                if not report.stopped and isinstance(exc, StoreError):
                    report.stopped = str(exc)
            for item, left in window:  # the pipeline is closed: every outcome is known
                if left.future.done():
                    settle(item, left)
                else:
                    log.error("an imported file was left without an outcome")
    except Cancelled:
        report.cancelled = True
    except StoreError as exc:
        report.stopped = report.stopped or str(exc)
        log.warning("import stopped: %s", exc)
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


def _count(report: ImportReport, status: str) -> None:
    if status == "imported":
        report.imported += 1
    elif status == "duplicate":
        report.duplicates += 1
    else:
        report.conflicts += 1


def _pipe(ingest: PartIngest, item: MediaItem) -> Ticket:
    """Hand one file's bytes to the ingest pipeline: written and hashed on its writer thread,
    its header checked, placed, synced and indexed in batches on its workers; the
    :class:`Ticket` says how it ended (settled at once with its :class:`Problem` for a file
    that cannot be read); a full disk (:class:`StoreError`) stops the import."""
    part = ingest.open_part({}, item.display)
    part.ticket = Ticket()
    try:
        if not item.pour(part):
            part.discard()
            return _settled(Problem(item.display, "empty file", "skipped"))  # as not DICOM
    except StoreError:
        part.discard()
        raise
    except OSError as exc:
        part.discard()
        return _settled(Problem(item.display, f"cannot read the file: {exc.strerror or exc}",
                                "failed"))
    except Exception as exc:  # the media are hostile; one bad file never stops the import
        part.discard()
        log.warning("unexpected %s while importing a file", type(exc).__name__, exc_info=True)
        return _settled(Problem(item.display, f"unexpected error: {type(exc).__name__}",
                                "failed"))
    ingest.submit(part)
    return part.ticket


def _settled(problem: Problem) -> Ticket:
    """The outcome of a file the pipeline never took (it could not be read)."""
    ticket = Ticket()
    ticket.settle(problem)
    return ticket
