"""Forwarding rules: which arriving instance goes where (``relay rules``, Settings → Forwarding).

A rule (:class:`app.settings.ForwardingRule`) matches an :class:`Arrival` when every condition
it gives holds: the source (import, listener, hub), the calling AE title (regular expression),
the modality, the body part and the study or series description (regular expressions, case
insensitive, found anywhere in the value). An instance without Body Part Examined (many
scanners leave it empty) is not held back by a body-part condition: its description decides.
The shipped example (``resources/forwarding/stroke.json``): CT of the head whose description
says STROKE, CODE or CTA, at stroke priority.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from app.errors import SettingsError
from app.resources import resource_path
from app.settings import ForwardingRule

#: Shipped example rules: name -> file in resources/forwarding.
EXAMPLES = {"stroke": "stroke.json"}


@dataclass(frozen=True)
class Arrival:
    """What the rules look at in one arriving instance."""

    source: str
    """``import``, ``listener`` or ``hub``."""
    study_uid: str
    series_uid: str
    sop_uid: str
    relpath: str
    """The file in the store (relative to the store root)."""
    size: int
    modality: str = ""
    body_part: str = ""
    study_description: str = ""
    series_description: str = ""
    calling_ae: str = ""


@dataclass(frozen=True)
class Target:
    """Where a rule sends: ``kind`` ``hub`` or ``pacs``, the profile ``name``, the priority."""

    kind: str
    name: str
    priority: str

    @property
    def stroke(self) -> bool:
        return self.priority == "stroke"


def matches(rule: ForwardingRule, arrival: Arrival) -> bool:
    """Does ``arrival`` meet every condition of ``rule``?"""
    if not rule.enabled:
        return False
    if rule.sources and arrival.source not in rule.sources:
        return False
    if rule.calling_ae and not re.search(rule.calling_ae, arrival.calling_ae.strip()):
        return False
    if rule.modalities and arrival.modality.upper() not in {m.upper() for m in rule.modalities}:
        return False
    if rule.body_part and arrival.body_part.strip() and not re.search(
            rule.body_part, arrival.body_part, re.IGNORECASE):
        return False
    texts = (arrival.study_description, arrival.series_description)
    return not rule.description or any(re.search(rule.description, text, re.IGNORECASE)
                                       for text in texts)


def targets(rules: list[ForwardingRule], arrival: Arrival) -> list[Target]:
    """Every target of every rule ``arrival`` matches, each once (at the highest priority any
    of its rules gives), stroke priority first."""
    found: dict[tuple[str, str], str] = {}
    for rule in rules:
        if not matches(rule, arrival):
            continue
        for text in rule.targets:
            kind, _, name = text.partition(":")
            key = (kind, name)
            if found.get(key) != "stroke":
                found[key] = rule.priority
    out = [Target(k, n, p) for (k, n), p in found.items()]
    return sorted(out, key=lambda t: not t.stroke)


def example(name: str) -> dict[str, Any]:
    """A shipped example rule, as the fields of a :class:`ForwardingRule`."""
    if name not in EXAMPLES:
        raise SettingsError(f"no example rule '{name}' (examples: {', '.join(EXAMPLES)})")
    raw = json.loads(resource_path("forwarding", EXAMPLES[name]).read_text(encoding="utf-8"))
    known = {f.name for f in fields(ForwardingRule)}
    return {k: v for k, v in raw.items() if k in known}


def arrival_of(stored: Any, source: str, calling_ae: str = "") -> Arrival:
    """The :class:`Arrival` of a file just stored (an :class:`app.store.local.StoredFile`)."""
    h = stored.header
    return Arrival(source=source, study_uid=h.study.study_instance_uid,
                   series_uid=h.series.series_instance_uid,
                   sop_uid=h.instance.sop_instance_uid, relpath=stored.relpath,
                   size=stored.size, modality=h.series.modality,
                   body_part=h.series.body_part_examined,
                   study_description=h.study.study_description,
                   series_description=h.series.series_description, calling_ae=calling_ae)


def is_stroke_study(rules: list[ForwardingRule], modalities: Iterable[str],
                    description: str) -> bool:
    """Does a study seen on a hub (its modalities and description: the study level has no body
    part) match a stroke rule: a stroke-priority rule of ``rules``, else the shipped example?"""
    stroke = [r for r in rules if r.enabled and r.priority == "stroke"] or \
        [ForwardingRule(**example("stroke"))]
    for modality in list(modalities) or [""]:
        arrival = Arrival(source="hub", study_uid="", series_uid="", sop_uid="", relpath="",
                          size=0, modality=modality, study_description=description)
        for rule in stroke:
            if matches(dataclasses.replace(rule, sources=[], calling_ae=""), arrival):
                return True
    return False
