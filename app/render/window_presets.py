"""Window presets, read from ``resources/window_presets.json`` (data, not code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from app.resources import resource_path


@dataclass(frozen=True)
class WindowPreset:
    key: str
    name: str
    center: float
    width: float
    modalities: tuple[str, ...] = ()

    def applies_to(self, modality: str) -> bool:
        return not self.modalities or modality in self.modalities


@lru_cache(maxsize=1)
def window_presets() -> tuple[WindowPreset, ...]:
    """Every preset, in the file's order."""
    raw = json.loads(resource_path("window_presets.json").read_text(encoding="utf-8"))
    return tuple(
        WindowPreset(key=str(p["key"]), name=p["name"], center=float(p["center"]),
                     width=float(p["width"]), modalities=tuple(p.get("modalities", ())))
        for p in raw["presets"]
    )


def presets_for(modality: str) -> list[WindowPreset]:
    return [p for p in window_presets() if p.applies_to(modality)]
