"""A transfer job in the words a radiology tech reads: state, counts, speed, ETA, and why.

Qt-free: the window's Transfers panel shows a :class:`JobStatus` per job; :func:`explain` turns
the queue's technical message into one plain sentence ("Hub unreachable — retrying in 20 s").
:class:`SpeedMeter` measures MB/s and instances/s over the last few seconds, so a pause or a
stall shows at once instead of being averaged away.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from app.net.queue import Job
from app.tasks import ProgressState

STATE_WORDS = {
    "queued": "Queued", "running": "Running", "waiting": "Waiting for {peer}", "stuck": "Stuck",
    "paused": "Paused", "cancelled": "Cancelled", "verified": "Verified", "failed": "Failed",
    "sent": "Sent, not verified",
}

# (words in the queue's message, plain headline): first match wins; {Peer} is "Hub" or "PACS"
_PROBLEMS = (
    ("(401)", "Hub refused the password (401) — check the hub's settings"),
    ("(403)", "Hub refused access (403) — the account lacks the permission"),
    ("tls", "Secure connection failed (TLS) — check the hub's certificate or CA file"),
    ("certificate", "Secure connection failed (TLS) — check the hub's certificate or CA file"),
    ("cannot reach", "{Peer} unreachable"),
    ("was lost", "{Peer} unreachable"),
    ("(dns)", "{Peer}'s host name unknown (DNS)"),
    ("stopped answering", "{Peer} stopped answering"),
    ("internal error", "{Peer} error"),
    ("not in the keyring", "Hub password missing — enter it again in Settings → Hubs"),
    ("no hub called", "Hub no longer configured — add it again in Settings → Hubs"),
    ("keyring", "Password store unavailable — see Settings → Hubs"),
    ("no dicomweb service", "Wrong hub URL — check it in Settings → Hubs"),
    ("not with dicom json", "Wrong hub URL — check it in Settings → Hubs"),
    ("does not answer in http", "Wrong hub URL — check it in Settings → Hubs"),
)

#: What a job does, as the Transfers panel names it: to a peer, from a hub, from a PACS.
DIRECTIONS = ("Send", "Fetch", "Retrieve")


@dataclass(frozen=True)
class JobStatus:
    """One row of the Transfers panel."""

    direction: str
    """``Send``, ``Fetch`` (from a hub) or ``Retrieve`` (from a PACS), as the user guide
    says."""
    state: str
    """The state in one or two words (``Waiting for hub``)."""
    done: int
    total: int
    bytes_per_second: float | None
    """While running and measurable."""
    eta_seconds: float | None
    explanation: str
    """Why it is stuck, failed, waiting or what it ended as; empty while all is well."""

    @property
    def speed_text(self) -> str:
        if self.bytes_per_second is None:
            return ""
        return f"{self.bytes_per_second / 1e6:.1f} MB/s"

    @property
    def eta_text(self) -> str:
        return "" if self.eta_seconds is None else format_duration(self.eta_seconds)


def format_duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class SpeedMeter:
    """Throughput of one job from ``(time, instances done, bytes)`` samples: over the last
    ``window`` seconds, or since the run started when nothing was confirmed in that window
    (a send confirms a whole batch at once, so on a slow link the recent window can hold no
    change for longer than it lasts: the row would lose its speed and ETA part way)."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int, int]] = deque()
        self._first: tuple[float, int, int] | None = None

    def add(self, done: int, nbytes: int | None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._samples and (done < self._samples[-1][1] or (nbytes or 0) < self._samples[-1][2]):
            self._samples.clear()  # a new run of the job starts its counters again
            self._first = None
        sample = (now, done, nbytes or 0)
        self._samples.append(sample)
        if self._first is None:
            self._first = sample
        while len(self._samples) > 2 and now - self._samples[1][0] > self.window:
            self._samples.popleft()

    def rates(self) -> tuple[float, float] | None:
        """(instances per second, bytes per second), or None before two samples a moment apart."""
        if len(self._samples) < 2 or self._first is None:
            return None
        t0, d0, b0 = self._samples[0]
        t1, d1, b1 = self._samples[-1]
        if d1 == d0 and b1 == b0:  # nothing confirmed lately: the average of this run
            t0, d0, b0 = self._first
        if t1 - t0 < 0.5:
            return None
        return (d1 - d0) / (t1 - t0), (b1 - b0) / (t1 - t0)


def explain(job: Job, now: float | None = None, *, peer_word: str = "hub") -> str:
    """The plain sentence for a job that needs a word: waiting, stuck, failed, paused, done
    (``peer_word``: what the job's peer is called, ``hub`` or ``PACS``)."""
    now = time.time() if now is None else now
    if job.state == "waiting":
        headline = _headline(job.message, peer_word) or f"{_sentence(peer_word)} not available"
        wait = job.next_try - now
        retry = f"retrying in {format_duration(wait)}" if wait >= 1 else "retrying now"
        return f"{headline} — {retry}"
    if job.state == "stuck":
        return (_headline(job.message, peer_word) or _sentence(job.message)) + \
            "; then press Retry"
    if job.state == "failed":
        return _missing(job, peer_word)
    if job.state == "paused":
        return "Paused — press Resume to continue"
    if job.state == "cancelled":
        return "Cancelled — press Retry to start it again"
    if job.state == "verified":
        return _sentence(job.message) or f"{job.total} of {job.total} verified"
    if job.state == "sent":  # why not verified, and what was decoded to be sent
        return _sentence(job.message) or (f"{job.total} of {job.total} sent; the {peer_word} "
                                          "cannot be asked whether it keeps them")
    return ""


def job_status(job: Job, progress: ProgressState | None, meter: SpeedMeter | None = None,
               now: float | None = None, *, peer_word: str = "hub") -> JobStatus:
    """The row for ``job``; ``progress`` is the live state while it runs (``peer_word``: what
    the job's peer is called, ``hub`` or ``PACS``)."""
    total = job.total
    done = job.count("sent", "verified") if _sending(job) else job.count("verified")
    speed = eta = None
    if progress is not None and job.state in ("running", "queued"):
        done = max(done, progress.done)
        total = max(total, progress.total or 0)
        rates = meter.rates() if meter is not None else None
        if rates is not None:
            per_instance, per_byte = rates
            speed = per_byte
            if per_instance > 0 and total > done:
                eta = (total - done) / per_instance
    state = STATE_WORDS.get(job.state, job.state).format(peer=peer_word)
    explanation = explain(job, now, peer_word=peer_word)
    # a hub's study is fetched, a PACS's retrieved (the Q/R dialog's button, the user guide)
    direction = "Send" if _sending(job) else "Retrieve" if peer_word == "PACS" else "Fetch"
    if progress is not None and job.state == "running":
        state = {"Send": "Sending", "Fetch": "Fetching", "Retrieve": "Retrieving"}[direction]
        explanation = (f"Sending; every instance is checked on the {peer_word} at the end"
                       if _sending(job) else f"{state} into the local store")
        if progress.total and done >= progress.total and _sending(job):
            state = "Verifying"
            explanation = f"Checking that every instance is on the {peer_word}"
    return JobStatus(direction=direction, state=state,
                     done=done, total=total, bytes_per_second=speed, eta_seconds=eta,
                     explanation=explanation)


def _headline(message: str, peer_word: str = "hub") -> str:
    low = message.lower()
    words = next((words for key, words in _PROBLEMS if key in low), "")
    return words.format(Peer=_sentence(peer_word))


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] if message else ""


def _missing(job: Job, peer_word: str = "hub") -> str:
    done = job.count("verified")
    short = job.total - done
    where = f"on the {peer_word}" if _sending(job) else "in the local store"
    reason = f": {job.message}" if job.message else ""
    if short <= 0:
        return _sentence(job.message) or "Failed"
    return f"{short} of {job.total} instances missing {where}{reason}"


def _sending(job: Job) -> bool:
    """A send (to a hub or a PACS), not a fetch."""
    return job.kind == "send"
