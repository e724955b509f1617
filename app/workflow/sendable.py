"""What a send of an outside study sends once it has been reconciled: one rule for the window,
``relay send`` and the transfer queue, so that the outside identity never leaves by accident.

- Reconciled with **new UIDs**: the outside original stays a study of its own. Sending it sends
  the reconciled copy instead, unless the tech explicitly asks for the original; a job queued
  for the original before the reconcile is refused (the reason names the copy).
- Reconciled with its **UIDs kept**: the copy replaced the original in place, under the same
  UIDs; the outside bytes are kept in the store as a record only and are never sent. Asking for
  the original is refused with the reason; a job queued before the reconcile sends the copy's
  files; an instance a hub already received in its outside version is not counted as delivered
  (the hub files both under one SOP Instance UID and keeps the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.errors import TransferError
from app.store.local import Store
from app.workflow.derive import links


@dataclass(frozen=True)
class SendTarget:
    """The study a send of ``asked`` sends, and the note that says why when it differs."""

    asked: str
    study_uid: str
    note: str = ""

    @property
    def redirected(self) -> bool:
        return self.study_uid != self.asked


@dataclass(frozen=True)
class Repoint:
    """A queued instance whose file is the superseded outside original: send ``path`` ("" when
    the reconciled copy is no longer in the store: nothing may be sent)."""

    sop_uid: str
    path: str  # relative to the store's root, as queue items are
    size: int


def reconciled_copy(store: Store, study_uid: str) -> str | None:
    """The newest copy of ``study_uid`` reconciled under new UIDs, if any."""
    copies = [lk for lk in links(store, study_uid) if lk.kind == "reconciled"
              and lk.original_study_uid == study_uid and lk.derived_study_uid != study_uid]
    return copies[-1].derived_study_uid if copies else None


def reconciled_at(store: Store, study_uid: str) -> float | None:
    """When ``study_uid`` (as the outside original) was last reconciled, if ever."""
    times = [lk.at for lk in links(store, study_uid)
             if lk.kind == "reconciled" and lk.original_study_uid == study_uid]
    return max(times) if times else None


def replaced_in_place(store: Store, study_uid: str) -> bool:
    """Was ``study_uid`` reconciled with its UIDs kept (the copy now answers to its UIDs)?"""
    return any(lk.kind == "reconciled" and lk.original_study_uid == lk.derived_study_uid
               == study_uid for lk in links(store, study_uid))


def send_target(store: Store, study_uid: str, *, original: bool = False,
                series: bool = False) -> SendTarget:
    """The study to send when ``study_uid`` is asked for (``original``: the tech chose the
    outside study as it came; ``series``: only some of its series are asked for).

    Raises TransferError, naming the reconciled copy, when the outside original cannot be sent
    that way.
    """
    copy = reconciled_copy(store, study_uid)
    if copy is not None and not original:
        if series:
            raise TransferError(
                f"study {study_uid} is the outside original as it came on the disc; its "
                f"reconciled copy is study {copy}: send the copy's series, or ask for the "
                "outside original explicitly")
        return SendTarget(study_uid, copy,
                          f"study {study_uid} is the outside original as it came on the disc; "
                          f"its reconciled copy, study {copy}, is sent instead")
    if original and copy is None and replaced_in_place(store, study_uid):
        raise TransferError(
            f"the outside original of study {study_uid} was reconciled with its UIDs kept: "
            f"the reconciled copy (study {study_uid}, same UIDs) replaced it and is what is "
            "sent; the outside version is kept only as a record and cannot be sent, since a "
            "hub or PACS would file both under the same UIDs (reconcile with new UIDs to keep "
            "both sendable)")
    return SendTarget(study_uid, study_uid)


def job_refusal(store: Store, study_uid: str, queued_at: float) -> str:
    """Why a job for ``study_uid`` queued at ``queued_at`` must not run ("" when it may): the
    study was reconciled under new UIDs after the job was queued."""
    copy = reconciled_copy(store, study_uid)
    at = reconciled_at(store, study_uid)
    if copy is None or at is None or at < queued_at:
        return ""
    return (f"not sent: study {study_uid} was reconciled after this job was queued; its "
            f"reconciled copy, study {copy}, is the one to send (the outside original is sent "
            "only when asked for explicitly)")


def repoints(store: Store, study_uid: str, paths: dict[str, str]) -> list[Repoint]:
    """For queued ``{sop_uid: path}`` of a study, the instances whose file was superseded by a
    reconciled copy kept under the same UID, with the copy's file."""
    old = outside_versions(store, study_uid)
    out: list[Repoint] = []
    for sop_uid, path in paths.items():
        if path not in old:
            continue
        current = store.instance(sop_uid)
        if current is None or current.path is None:
            out.append(Repoint(sop_uid, "", 0))
            continue
        rel = str(Path(current.path).relative_to(store.root))
        if rel != path:
            out.append(Repoint(sop_uid, rel, current.size))
    return out


def outside_versions(store: Store, study_uid: str) -> set[str]:
    """Paths (relative to the store's root) of the outside originals a UID-keeping reconcile
    superseded in this study."""
    return {str(Path(row["path"]).relative_to(store.root)) for row in store.superseded(study_uid)
            if row["reason"] == "reconciled"}
