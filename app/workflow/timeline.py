"""A study's way from the scanner to the reader's screen, stage by stage, from the audit trail
and the images: ``relay timeline STUDY`` and the window's Timeline panel.

Stages (each with when it began, where, how many instances, and when it ended if it lasted):

- ``acquired``: the earliest Acquisition DateTime (else Acquisition, then Content Date and Time)
  of the study's stored images, in the scanner's Timezone Offset From UTC when the images carry
  one, else this computer's time zone;
- ``imported`` / ``received``: the first and last instance stored here from media or from a
  DICOM sender (audit ``import`` / ``receive``);
- ``sent``: the hub or PACS confirmed the first and the last instance (audit ``send``);
- ``verified``: every instance sent was found there (audit ``verify``);
- ``arrived``: this Relay saw the study on the hub (audit ``arrive``) or stored its first
  instance from there (``retrieve``), whichever came first;
- ``first_image``: the study's first image was drawn in the window (audit ``view``).

The stages are in time order. Several homes' records can be read together (a spoke's and a hub
workstation's, e.g. copied from both machines), so one timeline covers the whole way.
``door_to_image_seconds`` is from the first stage Relay knows (acquisition, else the first
arrival at a Relay) to the first image: the door time itself is in the hospital's records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from app.workflow import audit

log = logging.getLogger(__name__)

STAGES = ("acquired", "imported", "received", "sent", "verified", "arrived", "first_image")
#: Audit event -> the stage it gives, and the detail field holding when the stage began / ended.
FROM_EVENTS: dict[str, tuple[str, str, str]] = {
    "import": ("imported", "first", "last"),
    "receive": ("received", "first", "last"),
    "send": ("sent", "first", "last"),
    "verify": ("verified", "", ""),
    "arrive": ("arrived", "", ""),
    "retrieve": ("arrived", "first", "last"),
    "view": ("first_image", "first_image", ""),
}
#: At most this many image headers are read for the acquisition time (the earliest series'
#: first and last images are what matter; a huge study is sampled evenly).
MAX_HEADERS = 400


@dataclass(frozen=True)
class Stage:
    """One stage of the way: when it began (and ended), where, how many instances."""

    stage: str
    time: datetime
    where: str
    instances: int | None = None
    until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "time": _iso(self.time),
                               "where": self.where, "instances": self.instances}
        if self.until is not None and self.until != self.time:
            out["until"] = _iso(self.until)
        return out


@dataclass(frozen=True)
class Timeline:
    """The stages of one study, in time order."""

    study_instance_uid: str
    stages: list[Stage] = field(default_factory=list)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.stage == name), None)

    @property
    def door_to_image_seconds(self) -> float | None:
        """From the first stage known (acquired, else imported/received) to the first image."""
        shown = self.stage("first_image")
        start = self.stage("acquired") or self.stage("received") or self.stage("imported")
        if shown is None or start is None:
            return None
        return (shown.time - start.time).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {"study_instance_uid": self.study_instance_uid,
                "stages": [s.to_json() for s in self.stages],
                "door_to_image_seconds": _round(self.door_to_image_seconds)}


def study_timeline(homes: Sequence[Path], study_uid: str,
                   image_paths: Iterable[Path] = ()) -> Timeline:
    """The timeline of ``study_uid`` from the audit records of ``homes`` and the acquisition
    time in the headers of ``image_paths`` (the study's stored files)."""
    stages: list[Stage] = []
    acquired = acquisition_time(image_paths)
    if acquired is not None:
        stages.append(Stage("acquired", acquired[0], acquired[1], acquired[2]))
    events = [e for home in homes for e in audit.select(home, study_uid=study_uid)]
    for name in STAGES[1:]:
        stage = _stage(name, [e for e in events if FROM_EVENTS.get(e.get("event", ""),
                                                                     ("",))[0] == name])
        if stage is not None:
            stages.append(stage)
    stages.sort(key=lambda s: (s.time, STAGES.index(s.stage)))
    return Timeline(study_uid, stages)


def _stage(name: str, events: list[dict[str, Any]]) -> Stage | None:
    """One stage from its events (successful ones: a failed send is not a ``sent``)."""
    starts: list[tuple[datetime, dict[str, Any]]] = []
    ends: list[datetime] = []
    count = 0
    for e in events:
        if e.get("outcome", 0) not in (audit.SUCCESS, audit.MINOR_FAILURE):
            continue
        _, first_key, last_key = FROM_EVENTS[str(e["event"])]
        detail = e.get("detail") or {}
        began = _time(detail.get(first_key) if first_key else None) or _time(e.get("time"))
        if began is None:
            continue
        starts.append((began, e))
        ended = _time(detail.get(last_key)) if last_key else None
        ends.append(ended or began)
        if isinstance(detail.get("instances"), int):
            count += detail["instances"]
    if not starts:
        return None
    began, first = min(starts, key=lambda p: p[0])
    where = str(first.get("peer") or "") if name not in ("first_image", "imported") else ""
    where = where or str(first.get("host") or "")
    if name in ("verified", "arrived", "first_image"):  # not a sum: a count at one moment
        count = int((first.get("detail") or {}).get("instances") or 0)
    return Stage(name, began, where, count or None, max(ends))


def study_files(store: Any, study_uid: str) -> list[Path]:
    """The stored files of a study (none when it is not in ``store``: a :class:`Store`)."""
    study = store.study(study_uid)
    if study is None:
        return []
    return [i.path for s in study.series for i in store.instances(s.series_instance_uid)
            if i.path is not None]


def acquisition_time(paths: Iterable[Path]) -> tuple[datetime, str, int] | None:
    """(earliest acquisition time, the station that made it, images read) from the headers."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    listed = list(paths)
    step = max(1, len(listed) // MAX_HEADERS)
    best: tuple[datetime, str] | None = None
    read = 0
    for path in listed[::step]:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
                "AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime", "ContentDate",
                "ContentTime", "TimezoneOffsetFromUTC", "StationName", "Modality"])
        except (OSError, InvalidDicomError, ValueError) as exc:
            log.info("timeline: a header could not be read: %s", type(exc).__name__)
            continue
        read += 1
        when = dicom_time(ds)
        if when is not None and (best is None or when < best[0]):
            best = (when, str(ds.get("StationName", "") or ds.get("Modality", "") or ""))
    return (best[0], best[1], len(listed)) if best is not None else None


def dicom_time(ds: Any) -> datetime | None:
    """The acquisition (else content) time of a header, as an aware datetime."""
    zone = _zone(str(ds.get("TimezoneOffsetFromUTC", "") or ""))
    text = str(ds.get("AcquisitionDateTime", "") or "")
    if not text:
        for date_kw, time_kw in (("AcquisitionDate", "AcquisitionTime"),
                                 ("ContentDate", "ContentTime")):
            date, time_ = str(ds.get(date_kw, "") or ""), str(ds.get(time_kw, "") or "")
            if date and time_:
                text = date + time_
                break
    return parse_dt(text, zone)


def parse_dt(text: str, zone: timezone | None = None) -> datetime | None:
    """A DICOM DT value (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) as an aware datetime; its own offset
    wins over ``zone``; neither: this computer's time zone."""
    text = text.strip()
    if len(text) < 12 or not text[:12].isdigit():
        return None
    offset = None
    for sign in ("+", "-"):
        if sign in text[8:]:
            text, _, off = text.rpartition(sign)
            offset = _zone(sign + off)
    main, _, frac = text.partition(".")
    try:
        when = datetime.strptime(main[:14].ljust(14, "0"), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if frac.isdigit():
        when += timedelta(microseconds=int(frac[:6].ljust(6, "0")))
    zone = offset or zone
    return when.replace(tzinfo=zone) if zone is not None else when.astimezone()


def _zone(text: str) -> timezone | None:
    """``+HHMM`` / ``-HHMM`` as a timezone, or None."""
    text = text.strip()
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        return None
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return audit.parse_time(value)
    except ValueError:
        return None


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
