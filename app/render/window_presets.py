"""Window presets and the window a series opens in, read from ``resources/window_presets.json``
(data, not code).

:func:`presets_for` lists the presets offered for a modality (number keys, presets menu, in the
file's order, each shown as "W/L" like the overlay). :func:`default_preset` picks the preset a
series without a window in its files opens in, by modality and body part (or words of its
descriptions); a CT that names neither opens in the head preset when the body on its first
slice is no wider than a head (:func:`body_width_mm`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from app.resources import resource_path

#: CT values above this (HU) count as the patient when measuring the body's width (air is
#: -1000, fat about -100; the table's thin shell is ignored by the percentile below).
BODY_HU = -300.0


@dataclass(frozen=True)
class WindowPreset:
    key: str
    name: str
    center: float
    width: float
    modalities: tuple[str, ...] = ()

    def applies_to(self, modality: str) -> bool:
        return not self.modalities or modality in self.modalities

    @property
    def label(self) -> str:
        """How menus show it: key, name and "W width / L centre" (the overlay's order)."""
        key = f"{self.key}  " if self.key else ""
        return f"{key}{self.name}  (W {self.width:g} / L {self.center:g})"


@dataclass(frozen=True)
class DefaultRule:
    """A series of ``modality`` whose body part or descriptions match opens in ``preset``."""

    modality: str
    preset: str
    body_parts: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    def matches(self, modality: str, body_part: str, texts: Iterable[str]) -> bool:
        if modality != self.modality:
            return False
        part = re.sub(r"[^A-Z]", "", body_part.upper())
        if part and part in self.body_parts:
            return True
        found = {w for t in texts for w in re.split(r"[^A-Z0-9]+", t.upper()) if w}
        return bool(found & set(self.words))


@dataclass(frozen=True)
class PresetTable:
    presets: tuple[WindowPreset, ...]
    defaults: tuple[DefaultRule, ...]
    head_preset: str
    head_max_width_mm: float


@lru_cache(maxsize=1)
def preset_table() -> PresetTable:
    """The file's presets and default rules."""
    raw: dict[str, Any] = json.loads(
        resource_path("window_presets.json").read_text(encoding="utf-8"))
    presets = tuple(
        WindowPreset(key=str(p["key"]), name=p["name"], center=float(p["center"]),
                     width=float(p["width"]), modalities=tuple(p.get("modalities", ())))
        for p in raw["presets"])
    defaults = tuple(
        DefaultRule(modality=r["modality"], preset=r["preset"],
                    body_parts=tuple(r.get("body_parts", ())), words=tuple(r.get("words", ())))
        for r in raw.get("defaults", ()))
    return PresetTable(presets, defaults, raw.get("head_preset", ""),
                       float(raw.get("head_max_width_mm", 0.0)))


def window_presets() -> tuple[WindowPreset, ...]:
    """Every preset, in the file's order."""
    return preset_table().presets


def presets_for(modality: str, extra: Iterable[WindowPreset] = ()) -> list[WindowPreset]:
    """The presets offered for ``modality``: the file's, then ``extra`` (the user's own)."""
    return [p for p in (*window_presets(), *extra) if p.applies_to(modality)]


def _named(name: str) -> WindowPreset | None:
    return next((p for p in window_presets() if p.name == name), None)


def default_preset(modality: str, body_part: str = "", texts: Iterable[str] = (),
                   body_width: float | None = None) -> WindowPreset | None:
    """The preset a series without a window of its own opens in, or None (then a window is
    taken from its values). ``texts``: study / series descriptions, protocol name;
    ``body_width``: the patient's width in mm on a slice (see :func:`body_width_mm`)."""
    texts = tuple(texts)
    table = preset_table()
    for rule in table.defaults:
        if rule.matches(modality, body_part, texts):
            return _named(rule.preset)
    if (modality == "CT" and not body_part and body_width is not None
            and 0 < body_width <= table.head_max_width_mm):
        return _named(table.head_preset)
    return None


def body_width_mm(values: np.ndarray, pixel_mm: float) -> float | None:
    """Width (mm) of the patient on a CT slice of ``values`` (HU): a high percentile of how
    many pixels of each row are body, so that the table's few wide rows do not count.
    None when the slice shows no body."""
    body = np.asarray(values) > BODY_HU
    per_row = body.sum(axis=1)
    rows = per_row[per_row > 0]
    if rows.size < 4:
        return None
    return float(np.percentile(rows, 90)) * float(pixel_mm)
