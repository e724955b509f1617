"""The append-only audit record in the Relay home: hash-chained JSON lines.

Each line is one event: when, what (a PS3.15 A.5 audit event ID code), the outcome, the local
user and host, the peer, the study UID and a detail object. Each line carries the SHA-256 of the
previous line (``prev``) and of itself (``hash``), so :func:`verify` finds a removed, reordered
or edited line. No patient name or ID goes in: the study UID identifies the study.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

AUDIT_FILE = "audit/audit.jsonl"
GENESIS = "0" * 64


@dataclass(frozen=True)
class EventCode:
    """A DICOM audit event ID (CID 400, coding scheme DCM) and its EventActionCode."""

    code: str
    meaning: str
    action: str  # C create, R read, U update, D delete, E execute


#: Relay's events and their PS3.15 A.5 codes (issue 16 adds send, receive, view, query...).
EVENTS: dict[str, EventCode] = {
    "import": EventCode("110107", "Import", "C"),
    "export": EventCode("110106", "Export", "R"),
    "transfer": EventCode("110104", "DICOM Instances Transferred", "R"),
    "access": EventCode("110103", "DICOM Instances Accessed", "R"),
    "query": EventCode("110112", "Query", "E"),
    "login": EventCode("110114", "User Authentication", "E"),
    # Reconciliation updates the patient record of a study's instances (A.5.3.9 Patient Record).
    "reconcile": EventCode("110110", "Patient Record", "U"),
    # De-identification creates new instances from stored ones (A.5.3.2 Instances Accessed, C).
    "deidentify": EventCode("110103", "DICOM Instances Accessed", "C"),
}

#: EventOutcomeIndicator values (PS3.15 A.5.3): success, minor, serious, major failure.
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = 0, 4, 8, 12

_THREAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Verification:
    """Result of :func:`verify`: ``ok``, how many lines were read, the first bad line (1-based)."""

    ok: bool
    lines: int
    bad_line: int | None = None
    reason: str = ""


def audit_path(home: Path) -> Path:
    return Path(home) / AUDIT_FILE


def record(home: Path, event: str, *, outcome: int = SUCCESS, study_uid: str = "",
           peer: str = "", detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append one event to the home's audit record and return the line written.

    ``detail`` must hold no patient identifier (UIDs, counts, options and reasons only).
    """
    code = EVENTS[event]
    entry: dict[str, Any] = {
        "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "event": event,
        "event_id": {"code": code.code, "scheme": "DCM", "meaning": code.meaning},
        "action": code.action,
        "outcome": outcome,
        "user": _user(),
        "host": socket.gethostname(),
        "peer": peer,
        "study_uid": study_uid,
        "detail": detail or {},
    }
    path = audit_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path) as fp:
        entry["prev"] = _last_hash(fp)
        entry["hash"] = _line_hash(entry)
        fp.seek(0, os.SEEK_END)
        fp.write((json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode())
        fp.flush()
        os.fsync(fp.fileno())
    log.info("audit: %s outcome %d study %s", event, outcome, study_uid or "-")
    return entry


def read(home: Path) -> Iterator[dict[str, Any]]:
    """The events in order (lines that do not parse are skipped; :func:`verify` reports them)."""
    path = audit_path(home)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def verify(home: Path) -> Verification:
    """Check the chain: every line parses, hashes to its ``hash`` and names its predecessor."""
    path = audit_path(home)
    if not path.exists():
        return Verification(ok=True, lines=0)
    prev = GENESIS
    n = 0
    with open(path, encoding="utf-8") as fp:
        for n, line in enumerate(fp, 1):  # noqa: B007
            try:
                entry = json.loads(line)
            except ValueError:
                return Verification(False, n, n, "the line is not JSON")
            if entry.get("prev") != prev:
                return Verification(False, n, n, "a line before it was removed or changed")
            if entry.get("hash") != _line_hash(entry):
                return Verification(False, n, n, "the line was edited")
            prev = entry["hash"]
    return Verification(ok=True, lines=n)


def _line_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _last_hash(fp: Any) -> str:
    fp.seek(0, os.SEEK_END)
    end = fp.tell()
    if end == 0:
        return GENESIS
    pos, tail = end, b""
    while pos > 0 and tail.count(b"\n") < 2:
        step = min(4096, pos)
        pos -= step
        fp.seek(pos)
        tail = fp.read(step) + tail
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        return str(json.loads(last)["hash"])
    except (ValueError, KeyError):
        return hashlib.sha256(last).hexdigest()  # a broken last line: verify() will say so


@contextmanager
def _locked(path: Path) -> Iterator[Any]:
    """The audit file open for appending, locked against other threads and processes."""
    with _THREAD_LOCK, open(path, "a+b") as fp:
        try:
            import fcntl
        except ImportError:  # Windows: one process writes (the window or a command)
            yield fp
            return
        fcntl.flock(fp.fileno(), fcntl.LOCK_EX)
        try:
            yield fp
        finally:
            fcntl.flock(fp.fileno(), fcntl.LOCK_UN)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
