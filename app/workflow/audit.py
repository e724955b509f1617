"""The append-only audit record in the Relay home: hash-chained JSON lines.

Each line is one event: when, what (a PS3.15 A.5 audit event ID code), the outcome, the local
user and host, the peer, the study UID and a detail object. Each line carries the SHA-256 of the
previous line (``prev``) and of itself (``hash``), so :func:`verify` finds a removed, reordered
or edited line. No patient name or ID goes in: the study UID identifies the study.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterable, Iterator
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


#: Relay's events and their PS3.15 A.5 codes. Transfers follow A.5.3.4: the receiving side
#: records 110104 with action C (create), the sending side with action R (read).
EVENTS: dict[str, EventCode] = {
    "import": EventCode("110107", "Import", "C"),
    "export": EventCode("110106", "Export", "R"),
    "transfer": EventCode("110104", "DICOM Instances Transferred", "R"),
    "send": EventCode("110104", "DICOM Instances Transferred", "R"),
    "receive": EventCode("110104", "DICOM Instances Transferred", "C"),
    "retrieve": EventCode("110104", "DICOM Instances Transferred", "C"),
    "access": EventCode("110103", "DICOM Instances Accessed", "R"),
    # A study opened in the window (detail ``first_image``: when its first image was drawn).
    "view": EventCode("110103", "DICOM Instances Accessed", "R"),
    "query": EventCode("110112", "Query", "E"),
    # A send verified by searching the hub for every instance sent (QIDO-RS).
    "verify": EventCode("110112", "Query", "E"),
    # A new study noticed on the hub by the Incoming list's search.
    "arrive": EventCode("110112", "Query", "E"),
    "login": EventCode("110114", "User Authentication", "E"),
    # Relay's node answering a peer's C-FIND (the peer asked: it is the requestor).
    "answer": EventCode("110112", "Query", "E"),
    # Relay's node sending instances a peer asked for (C-GET, C-MOVE): A.5.3.4, action R.
    "serve": EventCode("110104", "DICOM Instances Transferred", "R"),
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


class Arrivals:
    """When each study's instances came (first, last) and how many: the ``detail`` of an
    import, receive or retrieve event, from which the timeline reads its stages. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[Any]] = {}  # study UID -> [first, last, new instances]

    def add(self, study_uid: str, new: bool = True) -> None:
        """An instance of ``study_uid`` arrived (``new``: it was not in the store before)."""
        stamp = now()
        with self._lock:
            seen = self._seen.setdefault(study_uid, [stamp, stamp, 0])
            seen[1] = stamp
            seen[2] += int(new)

    def studies(self) -> list[str]:
        with self._lock:
            return list(self._seen)

    def pop(self, study_uid: str) -> dict[str, Any]:
        """:meth:`detail` of the study, forgotten afterwards."""
        detail = self.detail(study_uid)
        with self._lock:
            self._seen.pop(study_uid, None)
        return detail

    def detail(self, study_uid: str) -> dict[str, Any]:
        """``{"instances", "first", "last"}`` for the audit event of ``study_uid``."""
        with self._lock:
            seen = self._seen.get(study_uid)
        if seen is None:
            return {"instances": 0}
        return {"instances": seen[2], "first": seen[0], "last": seen[1]}


def audit_path(home: Path) -> Path:
    return Path(home) / AUDIT_FILE


def record(home: Path, event: str, *, outcome: int = SUCCESS, study_uid: str = "",
           peer: str = "", detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append one event to the home's audit record and return the line written.

    ``detail`` must hold no patient identifier (UIDs, counts, options and reasons only).
    """
    code = EVENTS[event]
    entry: dict[str, Any] = {
        "time": now(),
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path) as fp:
            entry["prev"] = _last_hash(fp)
            entry["hash"] = _line_hash(entry)
            end = fp.seek(0, os.SEEK_END)
            try:
                fp.write((json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
                         .encode())
                fp.flush()
                os.fsync(fp.fileno())
            except OSError:
                with contextlib.suppress(OSError):  # no half line: the chain stays whole
                    fp.truncate(end)
                raise
    except OSError as exc:
        # a full or failing disk must not stop the work it records (an import that stops
        # plainly on a full disk, a send); the record misses this event and the log says so
        log.error("audit: the %s event could not be written to %s: %s", event, path.name,
                  exc.strerror or type(exc).__name__)
        return entry
    # the study UID stays in the record: log lines name no patient and no study
    log.info("audit: %s outcome %d", event, outcome)
    from app.workflow import audit_syslog

    audit_syslog.forward_soon(Path(home))
    return entry


def query(home: Path, peer: str, answers: int, *, level: str = "study",
          failed: str = "", keys: Iterable[str] = (), study_uid: str = "",
          event: str = "query", stopped: bool = False, **extra: Any) -> None:
    """A search of a hub, PACS or worklist (``event`` ``answer``: one Relay's node answered):
    where, at which level, which kinds of keys were matched on (``keys``: their names, never
    their values, which may name the patient), how many answers (``stopped``: the search was
    cancelled or ended early)."""
    record(home, event, outcome=SERIOUS_FAILURE if failed else SUCCESS, peer=peer,
           study_uid=study_uid,
           detail={"level": level.lower(), "keys": sorted(set(keys)), "answers": answers,
                   **extra, **({"stopped": True} if stopped else {}),
                   **({"reason": failed} if failed else {})})


#: Elements of an identifier that are no matching keys.
_NOT_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle",
             "TimezoneOffsetFromUTC"}


def matching_keys(identifier: Any, prefix: str = "") -> list[str]:
    """The keywords of a C-FIND identifier's matching keys (elements with a value; items of a
    sequence as ``Sequence.Keyword``): what kind of keys a search used, never their values."""
    keys: set[str] = set()
    for elem in identifier:
        keyword = getattr(elem, "keyword", "") or str(getattr(elem, "tag", ""))
        if keyword in _NOT_KEYS:
            continue
        value = elem.value
        if getattr(elem, "VR", "") == "SQ":
            for item in value or []:
                keys.update(matching_keys(item, f"{prefix}{keyword}."))
        elif not _empty(value):
            keys.add(prefix + keyword)
    return sorted(keys)


def _empty(value: Any) -> bool:
    """A key without a value (universal matching): None, "", or a list of empty values."""
    if value is None or isinstance(value, str | bytes):
        return not value
    if hasattr(value, "__iter__") and not hasattr(value, "components"):  # a list, MultiValue
        return not any(not _empty(v) for v in value)
    return not str(value)  # a PersonName, a number


def now() -> str:
    """The time now as the audit writes it: ISO 8601, milliseconds, with the local offset."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


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


def select(home: Path, *, study_uid: str = "", since: datetime | None = None
           ) -> Iterator[dict[str, Any]]:
    """The events of one study (all: ``""``) at or after ``since`` (all: None), in order."""
    for entry in read(home):
        if study_uid and entry.get("study_uid") != study_uid:
            continue
        if since is not None:
            try:
                if parse_time(str(entry.get("time", ""))) < since:
                    continue
            except ValueError:
                continue
        yield entry


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware datetime (no offset given: local time)."""
    when = datetime.fromisoformat(text.strip())
    return when if when.tzinfo is not None else when.astimezone()


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
