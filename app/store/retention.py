"""Storage rules per practice: which local studies a purge removes, why, and which it keeps back.

A rule (:class:`~app.settings.StorageSettings`) names an age (``keep_days``: received more than N
days ago) and a size (``keep_gb``: the oldest go while the store is larger). A study the rule
reaches is purged only when nothing holds it back:

- it is **open** in a Relay window (:mod:`app.store.opened`), or in an unfinished **transfer**
  (a queued, running, waiting, stuck or paused send, fetch or retrieve);
- with ``only_verified`` (the default), it is not **verified** on a hub or PACS: every instance
  of it must be one a remote confirmed holding (a send verified by QIDO or storage commitment,
  or the instance came from that remote by fetch or retrieve).

:func:`plan` says what would go and why (``relay purge --dry-run``); :func:`purge` removes it,
checking the hold-backs again study by study, through :meth:`Store.delete_study` (index rows and
files atomically). Qt-free.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.net.queue import ACTIVE, FILE_NAME
from app.settings import StorageSettings
from app.store.db import ThreadConnections
from app.store.local import Store
from app.store.opened import open_studies

log = logging.getLogger(__name__)

DAY = 86400.0
GB = 1e9


@dataclass(frozen=True)
class StudyUse:
    """One local study as a rule sees it."""

    study_uid: str
    received: float
    """When it came into the store (epoch seconds)."""
    bytes: int
    instances: int
    held_by: tuple[str, ...]
    """Hubs/PACS holding every instance of it (empty: not verified anywhere)."""


@dataclass(frozen=True)
class Decision:
    """What a purge does with one study the rule reaches, and why."""

    study_uid: str
    purge: bool
    reason: str
    bytes: int
    instances: int
    received: float

    def to_json(self) -> dict[str, Any]:
        return {"study_instance_uid": self.study_uid, "reason": self.reason,
                "bytes": self.bytes, "instances": self.instances,
                "received": round(self.received, 3)}


@dataclass(frozen=True)
class PurgePlan:
    """The studies a rule reaches: those that go and those kept back, with reasons."""

    rule: StorageSettings
    purge: tuple[Decision, ...]
    kept: tuple[Decision, ...]
    store_bytes: int

    @property
    def purge_bytes(self) -> int:
        return sum(d.bytes for d in self.purge)

    def to_json(self) -> dict[str, Any]:
        return {"rule": {"keep_days": self.rule.keep_days, "keep_gb": self.rule.keep_gb,
                         "only_verified": self.rule.only_verified},
                "store_bytes": self.store_bytes, "purge_bytes": self.purge_bytes,
                "purge": [d.to_json() for d in self.purge],
                "kept": [d.to_json() for d in self.kept]}


@dataclass
class PurgeResult:
    """What a purge removed, and what it kept back at the last moment."""

    removed: list[Decision] = field(default_factory=list)
    kept: list[Decision] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"removed": [d.to_json() for d in self.removed],
                "kept": [d.to_json() for d in self.kept],
                "bytes": sum(d.bytes for d in self.removed),
                "instances": sum(d.instances for d in self.removed)}


def has_rule(rule: StorageSettings) -> bool:
    return rule.keep_days > 0 or rule.keep_gb > 0


def study_uses(store: Store) -> list[StudyUse]:
    """Every local study, oldest received first, with its size and where it is verified."""
    rows = store.connection().execute(
        "SELECT s.study_instance_uid, s.added_at, COALESCE(SUM(i.size), 0), COUNT(i.path) "
        "FROM studies s LEFT JOIN instances i ON i.study_instance_uid = s.study_instance_uid "
        "GROUP BY s.study_instance_uid ORDER BY s.added_at, s.study_instance_uid").fetchall()
    remote = _remote_holdings(store.home)
    sops = _instances_by_study(store)
    uses = []
    for uid, added, size, count in rows:
        mine = sops.get(uid, set())
        held = tuple(sorted(hub for hub, held_sops in remote.items()
                            if mine and mine <= held_sops))
        uses.append(StudyUse(uid, float(added), int(size), int(count), held))
    return uses


def plan(store: Store, rule: StorageSettings, now: float | None = None) -> PurgePlan:
    """The studies ``rule`` reaches now, split into those that go and those kept back."""
    now = time.time() if now is None else now
    uses = study_uses(store)
    total = sum(u.bytes for u in uses)
    busy = _in_transfer(store.home)
    opened = open_studies(store.home)
    purge: list[Decision] = []
    kept: list[Decision] = []
    remaining = total
    for use in uses:  # oldest first
        reason = _reached(use, rule, now, remaining)
        if reason is None:
            continue
        hold = _held_back(use, rule, opened, busy)
        if hold is None:
            where = f"; verified on {', '.join(use.held_by)}" if use.held_by else \
                "; not verified on any hub or PACS (the rule allows it)"
            purge.append(_decision(use, True, reason + where))
            remaining -= use.bytes
        else:
            kept.append(_decision(use, False, f"{reason}, but {hold}"))
    return PurgePlan(rule, tuple(purge), tuple(kept), total)


def purge(store: Store, rule: StorageSettings, *, now: float | None = None,
          on_removed: Callable[[Decision], None] | None = None) -> PurgeResult:
    """Remove what :func:`plan` says, checking each study's hold-backs again just before it
    goes (a window may have opened it, a transfer started)."""
    chosen = plan(store, rule, now)
    result = PurgeResult(kept=list(chosen.kept))
    for decision in chosen.purge:
        hold = _held_back_now(store, decision.study_uid, rule)
        if hold is not None:
            result.kept.append(Decision(decision.study_uid, False, hold, decision.bytes,
                                        decision.instances, decision.received))
            continue
        store.delete_study(decision.study_uid)
        result.removed.append(decision)
        log.info("purge: removed a study (%d instances, %.1f MB): %s",
                 decision.instances, decision.bytes / 1e6, decision.reason.split(";")[0])
        if on_removed is not None:
            on_removed(decision)
    return result


# -- the parts -----------------------------------------------------------------------------
def _reached(use: StudyUse, rule: StorageSettings, now: float, remaining: int) -> str | None:
    """Why ``rule`` reaches ``use`` (None: it does not)."""
    age_days = (now - use.received) / DAY
    if rule.keep_days > 0 and age_days > rule.keep_days:
        return f"received {age_days:.0f} days ago (rule: keep {rule.keep_days} days)"
    if rule.keep_gb > 0 and remaining > rule.keep_gb * GB:
        return (f"store holds {remaining / GB:.2f} GB (rule: keep {rule.keep_gb:g} GB; "
                "oldest go first)")
    return None


def _held_back(use: StudyUse, rule: StorageSettings, opened: set[str],
               busy: set[str]) -> str | None:
    if use.study_uid in opened:
        return "it is open in a Relay window"
    if use.study_uid in busy:
        return "it is in an unfinished transfer"
    if rule.only_verified and not use.held_by:
        return "it is not verified on any hub or PACS"
    return None


def _held_back_now(store: Store, study_uid: str, rule: StorageSettings) -> str | None:
    use = next((u for u in study_uses(store) if u.study_uid == study_uid), None)
    if use is None:
        return "it is no longer in the store"
    return _held_back(use, rule, open_studies(store.home), _in_transfer(store.home))


def _decision(use: StudyUse, go: bool, reason: str) -> Decision:
    return Decision(use.study_uid, go, reason, use.bytes, use.instances, use.received)


def _instances_by_study(store: Store) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for study, sop in store.connection().execute(
            "SELECT study_instance_uid, sop_instance_uid FROM instances"):
        found.setdefault(study, set()).add(sop)
    return found


def _queue_rows(home: Path, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows from the transfer queue (read-only; none when there never was a queue)."""
    if not (Path(home) / FILE_NAME).exists():
        return []
    db = ThreadConnections(Path(home) / FILE_NAME)
    try:
        return list(db.get().execute(sql, args))
    finally:
        db.close()


def _remote_holdings(home: Path) -> dict[str, set[str]]:
    """Per hub/PACS, the SOP Instance UIDs it confirmed holding: verified by a send, or
    received from it by a fetch or retrieve."""
    held: dict[str, set[str]] = {}
    for hub, sop in _queue_rows(home, "SELECT j.hub, i.sop_uid FROM items i JOIN jobs j "
                                      "ON j.id = i.job_id WHERE i.state = 'verified'"):
        held.setdefault(hub, set()).add(sop)
    return held


def _in_transfer(home: Path) -> set[str]:
    marks = ",".join("?" * len(ACTIVE))
    return {r[0] for r in _queue_rows(home, f"SELECT DISTINCT study_uid FROM jobs "
                                            f"WHERE state IN ({marks})", tuple(ACTIVE))}
