"""The "Incoming" list: studies on the hub, what is new since the last check, what is local.

:class:`IncomingPoller` asks the hub (QIDO-RS, paged) for its studies every ``interval_seconds``
and lists those that *arrived* in the last ``lookback_days``, whatever their study date (a study
from an outside CD scanned years ago is as new as this morning's CT). DICOMweb does not say when
a hub received a study (Orthanc 1.10's QIDO answers with ``includefield=all`` hold the study's
main tags only; its received time is in Orthanc's own REST API, outside DICOMweb), so the time
shown is when Relay first saw the study on the hub (at most one interval late), remembered in
``transfers.sqlite`` so a restart does not announce old studies as new. The first poll of a hub
cannot know what arrived when: it lists the studies whose study date is in the window and takes
the others as there before Relay watched. Each study says whether it is local already
(``local``), partly (``partial``) or only on the hub (``remote``). Qt-free: the UI runs
:meth:`IncomingPoller.run` in a thread and hops the updates to its own thread.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.errors import HubError
from app.net.peer import Peer, value
from app.net.queue import FILE_NAME
from app.settings import IncomingSettings
from app.store.local import Store
from app.workflow import audit

log = logging.getLogger(__name__)

#: Seconds between quick searches while a study is arriving (its instance count grows).
ARRIVING_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incoming (
    hub TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (hub, study_uid)
);
CREATE TABLE IF NOT EXISTS incoming_hubs (
    hub TEXT PRIMARY KEY,
    first_poll REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS incoming_findings (
    hub TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    modalities TEXT NOT NULL,
    changed REAL NOT NULL,
    PRIMARY KEY (hub, study_uid)
);
"""

#: Modalities of findings objects: reports (SR), key images (KO), presentation states (PR).
FINDINGS_MODALITIES = ("SR", "KO", "PR")


def remember_arrival(home: Path, source: str, study_uid: str, when: float) -> None:
    """Note that ``study_uid`` arrived from ``source`` (Relay's node: ``DICOM <calling AE>``)
    at ``when``, in the table the hub polls use, so the Incoming list shows it again after a
    restart (the first arrival's time is kept)."""
    conn = sqlite3.connect(Path(home) / FILE_NAME, timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO incoming VALUES (?,?,?)",
                         (source, study_uid, when))
    finally:
        conn.close()


def arrivals(home: Path, prefix: str, since: float) -> list[tuple[str, str, float]]:
    """(source, study UID, first arrival) of the sources named ``prefix...`` since ``since``,
    newest first (none when nothing was ever remembered)."""
    path = Path(home) / FILE_NAME
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.executescript(_SCHEMA)
        rows = conn.execute(
            "SELECT hub, study_uid, first_seen FROM incoming WHERE substr(hub, 1, ?) = ? "
            "AND first_seen >= ? ORDER BY first_seen DESC", (len(prefix), prefix, since))
        return [(str(h), str(u), float(t)) for h, u, t in rows]
    finally:
        conn.close()


@dataclass(frozen=True)
class IncomingStudy:
    """One study on the hub, as the Incoming list shows it."""

    study_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    study_time: str
    description: str
    modalities: tuple[str, ...]
    instances: int
    """Instances on the hub (NumberOfStudyRelatedInstances)."""
    received: float
    """When Relay first saw the study on the hub (epoch seconds; 0: already there at the first
    poll of that hub)."""
    local_instances: int
    new: bool
    """First seen in this poll."""
    findings: tuple[str, ...] = ()
    """Modalities of the findings objects the hub holds for the study ("SR", "KO", "PR")."""
    findings_new: bool = False
    """Findings appeared (or more kinds of them) in this poll, after the study was seen."""

    @property
    def local(self) -> str:
        """``local``, ``partial`` or ``remote``."""
        if self.local_instances == 0:
            return "remote"
        return "local" if self.local_instances >= self.instances else "partial"


@dataclass(frozen=True)
class IncomingUpdate:
    """The outcome of one poll."""

    studies: list[IncomingStudy]
    """The studies that arrived in the window, newest first."""
    checked_at: float
    error: str = ""
    on_hub: int = 0
    """Every study the hub holds (listed or not)."""

    @property
    def new(self) -> list[IncomingStudy]:
        return [s for s in self.studies if s.new]

    @property
    def findings_new(self) -> list[IncomingStudy]:
        """Studies that got findings since the last poll (a reader sent them back)."""
        return [s for s in self.studies if s.findings_new]


class IncomingPoller:
    """Polls one hub for studies."""

    def __init__(self, store: Store, peer: Peer, hub: str,
                 settings: IncomingSettings) -> None:
        self.store = store
        self.peer = peer
        self.hub = hub
        self.settings = settings
        self.db_path = Path(store.home) / FILE_NAME
        self._stop = threading.Event()
        #: What the last full search listed, and how many studies the hub held then.
        self._listed: list[IncomingStudy] = []
        self._on_hub = 0
        #: The last quick search saw a study new or growing: search again soon.
        self.arriving = False
        self._next_full = 0.0
        with self._db() as conn:
            conn.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def poll(self, match: dict[str, str] | None = None) -> IncomingUpdate:
        """Ask the hub once (every study, or those matching ``match``: a quick search, merged
        with what the last full search listed); raises :class:`HubError` when it cannot be
        asked."""
        found = list(self.peer.studies(**(match or {})))
        now = time.time()
        conn = self._db()
        try:
            with conn:
                first_poll = conn.execute("SELECT 1 FROM incoming_hubs WHERE hub=?",
                                          (self.hub,)).fetchone() is None
                conn.execute("INSERT OR IGNORE INTO incoming_hubs VALUES (?,?)", (self.hub, now))
                seen = dict(conn.execute("SELECT study_uid, first_seen FROM incoming WHERE hub=?",
                                         (self.hub,)).fetchall())
                had = {uid: (mods, changed) for uid, mods, changed in conn.execute(
                    "SELECT study_uid, modalities, changed FROM incoming_findings WHERE hub=?",
                    (self.hub,)).fetchall()}
                studies = []
                for d in found:
                    uid = value(d, "0020000D")
                    if not uid:
                        continue
                    new = uid not in seen
                    if new:
                        recent = self._dated_in_window(str(value(d, "00080020", "") or ""), now)
                        seen[uid] = now if not first_poll or recent else 0.0
                        conn.execute("INSERT OR IGNORE INTO incoming VALUES (?,?,?)",
                                     (self.hub, uid, seen[uid]))
                    study = self._study(d, uid, seen[uid], new)
                    found_now = ",".join(study.findings)
                    before, changed = had.get(uid, ("", 0.0))
                    if found_now and found_now != before:
                        changed = now
                        conn.execute("INSERT OR REPLACE INTO incoming_findings VALUES (?,?,?,?)",
                                     (self.hub, uid, found_now, now))
                        if not new and not first_poll:
                            study = replace(study, findings_new=True)
                    if self._in_window(seen[uid], now) or (
                            changed and self._in_window(changed, now)):
                        studies.append(study)
        finally:
            conn.close()
        for study in studies:
            if study.new and study.received:
                audit.record(self.store.home, "arrive", study_uid=study.study_uid,
                             peer=f"{self.hub}@{self.peer.where}",
                             detail={"instances": study.instances})
        if match:  # a quick search: the full list, its studies brought up to date
            listed = {s.study_uid: s for s in self._listed}
            arriving = any(s.study_uid in listed and s.instances > listed[s.study_uid].instances
                           or s.new for s in studies)
            listed.update({s.study_uid: s for s in studies})
            self.arriving = arriving
            studies, on_hub = list(listed.values()), self._on_hub
        else:
            self._listed, self._on_hub = list(studies), len(found)
            on_hub = len(found)
        studies.sort(key=lambda s: s.received, reverse=True)
        return IncomingUpdate(studies=studies, checked_at=now, on_hub=on_hub)

    @staticmethod
    def quick_match(now: float | None = None) -> dict[str, str]:
        """The quick search: studies dated yesterday or today (a stroke study is acquired
        today; yesterday covers midnight and a hub in another time zone)."""
        today = datetime.date.fromtimestamp(now or time.time())
        yesterday = today - datetime.timedelta(days=1)
        return {"StudyDate": f"{yesterday:%Y%m%d}-{today:%Y%m%d}"}

    def next_wait(self) -> float:
        """Seconds until the next quick search: 1 s while a study is arriving."""
        quick = self.settings.quick_seconds
        return min(quick, ARRIVING_SECONDS) if self.arriving else quick

    def _in_window(self, received: float, now: float) -> bool:
        """Did the study arrive in the last ``lookback_days`` (always, with 0 days)?"""
        days = self.settings.lookback_days
        return days <= 0 or (received > 0 and now - received <= days * 86400)

    def _dated_in_window(self, study_date: str, now: float) -> bool:
        """At a hub's first poll: is the study date in the window (or unknown)?"""
        days = self.settings.lookback_days
        if days <= 0:
            return True
        try:
            day = datetime.datetime.strptime(study_date[:8], "%Y%m%d").date()
        except ValueError:
            return True  # no usable date: list it rather than hide it
        since = datetime.date.fromtimestamp(now) - datetime.timedelta(days=days)
        return day >= since

    def _study(self, d: dict[str, Any], uid: str, received: float, new: bool) -> IncomingStudy:
        element = d.get("00080061")  # ModalitiesInStudy: several values
        values = element.get("Value") if isinstance(element, dict) else None
        mods = tuple(str(m) for m in values) if isinstance(values, list) else ()
        local = self.store.study(uid)
        return IncomingStudy(
            study_uid=uid,
            patient_name=str(value(d, "00100010", "") or ""),
            patient_id=str(value(d, "00100020", "") or ""),
            study_date=str(value(d, "00080020", "") or ""),
            study_time=str(value(d, "00080030", "") or ""),
            description=str(value(d, "00081030", "") or ""),
            modalities=mods,
            instances=int(value(d, "00201208", 0) or 0),
            received=received,
            local_instances=local.instance_count if local else 0,
            new=new,
            findings=tuple(m for m in FINDINGS_MODALITIES if m in mods),
        )

    def run(self, on_update: Callable[[IncomingUpdate], None],
            prefetch: Callable[[str, str], object] | None = None) -> None:
        """Poll every ``interval_seconds`` until :meth:`stop`; errors become updates too.

        With ``settings.prefetch`` on, each new study not local yet is handed to ``prefetch``
        as ``(hub, study_uid)`` (e.g. :meth:`app.net.runner.QueueRunner.fetch`).
        """
        while not self._stop.is_set():
            try:
                update = self.poll_due()
            except HubError as exc:
                update = IncomingUpdate(studies=[], checked_at=time.time(), error=str(exc))
            if prefetch is not None and self.settings.prefetch:
                for study in update.new:
                    if study.local != "local":
                        prefetch(self.hub, study.study_uid)
            on_update(update)
            self._stop.wait(self.wait_seconds())

    def poll_due(self, min_full: float = 1.0) -> IncomingUpdate:
        """The search that is due: the full one every ``interval_seconds`` (at least
        ``min_full``), else the quick one."""
        full = time.monotonic() >= self._next_full or self.settings.quick_seconds <= 0
        if full:  # set first: a hub that fails is not asked again at once
            self._next_full = time.monotonic() + max(min_full, self.settings.interval_seconds)
        return self.poll() if full else self.poll(self.quick_match())

    def full_now(self) -> None:
        """Make the next search a full one."""
        self._next_full = 0.0

    def wait_seconds(self) -> float:
        """Seconds until the next search (:meth:`poll_due`) is due."""
        wait = max(0.0, self._next_full - time.monotonic())
        if self.settings.quick_seconds > 0:
            wait = min(wait, self.next_wait())
        return max(0.5, wait)

    def stop(self) -> None:
        self._stop.set()
