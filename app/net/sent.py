"""What was sent where: the send history of a study, read from the transfer queue.

The send dialog warns before a second job for a study already sent to that hub; the study
browser shows per study whether it went out and was verified. Qt-free.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from app.errors import SettingsError
from app.net.queue import ACTIVE, FILE_NAME, Job, TransferQueue
from app.settings import load_settings

log = logging.getLogger(__name__)

#: Plain words per job state, as the send history tells them.
STATE_WORDS = {"verified": "verified", "failed": "failed", "stuck": "stuck",
               "cancelled": "cancelled", "paused": "paused", "queued": "queued",
               "running": "sending", "waiting": "waiting to retry",
               "sent": "sent, not verified"}


@dataclass(frozen=True)
class SendRecord:
    """One send job of a study to a hub or a PACS (both are ``send`` jobs)."""

    hub: str
    study_uid: str
    state: str
    created: float
    """When the job was queued (epoch seconds)."""
    verified: int
    """Instances the hub confirmed holding."""
    total: int
    series_uids: tuple[str, ...]
    """Empty: the whole study."""
    peer_word: str = "hub"
    """What the destination is: ``hub`` or ``PACS``."""

    @classmethod
    def from_job(cls, job: Job, peer_word: str = "hub") -> SendRecord:
        return cls(hub=job.hub, study_uid=job.study_uid, state=job.state, created=job.created,
                   verified=job.count("verified"), total=job.total, series_uids=job.series_uids,
                   peer_word=peer_word)

    def describe(self) -> str:
        """"sent to hub on 2026-12-03 14:02, verified (120 of 120 images)"."""
        when = datetime.datetime.fromtimestamp(self.created).strftime("%Y-%m-%d %H:%M")
        what = f", {len(self.series_uids)} series" if self.series_uids else ""
        return (f"sent to {self.hub} on {when}{what}, {STATE_WORDS.get(self.state, self.state)}"
                f" ({self.verified} of {self.total} images on the {self.peer_word})")


def peer_words(home: Path) -> dict[str, str]:
    """Profile name -> ``hub`` or ``PACS`` (what a transfer's peer is called in words)."""
    try:
        settings = load_settings(Path(home))
    except SettingsError as exc:
        log.info("the settings cannot be read: %s", exc)
        return {}
    return {h.name: "PACS" if h.is_pacs else "hub" for h in settings.hubs}


def send_history(home: Path) -> list[SendRecord]:
    """Every send job recorded in ``home``, to hubs and PACS, newest first (none when nothing
    was ever queued)."""
    if not (Path(home) / FILE_NAME).exists():
        return []
    words = peer_words(home)
    queue = TransferQueue(Path(home))
    try:
        return [SendRecord.from_job(j, words.get(j.hub, "hub")) for j in queue.jobs()
                if j.kind == "send"]
    finally:
        queue.close()


def transfers_using(home: Path, study_uid: str, series_uids: list[str] | None = None
                    ) -> list[Job]:
    """Unfinished transfers (queued, running, waiting, stuck or paused; sends and fetches) of
    the study, or of any of ``series_uids`` in it: deleting those files now would break them."""
    if not (Path(home) / FILE_NAME).exists():
        return []
    queue = TransferQueue(Path(home))
    try:
        jobs = [j for j in queue.jobs(ACTIVE) if j.study_uid == study_uid]
    finally:
        queue.close()
    if series_uids is None:
        return jobs
    wanted = set(series_uids)
    return [j for j in jobs if not j.series_uids or wanted & set(j.series_uids)]


def sends_of(history: list[SendRecord], study_uid: str, hub: str | None = None
             ) -> list[SendRecord]:
    """The sends of one study (to one hub when ``hub`` is given), newest first."""
    return [r for r in history if r.study_uid == study_uid and hub in (None, r.hub)]


def sent_state(history: list[SendRecord], study_uid: str) -> str:
    """A study's send state in one word for the browser: "" (never sent), "verified" (every
    image of some send is on its hub), or the state of its latest send."""
    records = sends_of(history, study_uid)
    if not records:
        return ""
    if any(r.state == "verified" for r in records):
        return "verified"
    return STATE_WORDS.get(records[0].state, records[0].state)
