"""The user's own window presets: saved in the settings file, offered after the built-in ones.

Menus show every preset the same way ("name  (W width / L centre)", the overlay's order).
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.render.window_presets import WindowPreset, presets_for
from app.settings import UserWindowPreset, load_settings, save_settings

log = logging.getLogger(__name__)


def user_presets(home: Path) -> list[WindowPreset]:
    """The saved presets (none when the settings cannot be read: the menus still work)."""
    try:
        saved = load_settings(home).reading.window_presets
    except Exception as exc:  # noqa: BLE001 - a bad settings file must not break the menu
        log.warning("user window presets not read: %s", exc)
        return []
    return [WindowPreset(key="", name=p.name, center=p.center, width=p.width,
                         modalities=(p.modality,) if p.modality else ()) for p in saved]


def offered_presets(home: Path, modality: str) -> list[WindowPreset]:
    """Built-in presets for ``modality``, then the user's."""
    return presets_for(modality, user_presets(home))


def save_user_preset(home: Path, name: str, center: float, width: float,
                     modality: str = "") -> None:
    """Save (or replace, by name and modality) a preset in the settings file."""
    settings = load_settings(home)
    kept = [p for p in settings.reading.window_presets
            if not (p.name == name and p.modality == modality)]
    kept.append(UserWindowPreset(name=name, center=float(center), width=float(width),
                                 modality=modality))
    settings.reading.window_presets = kept
    save_settings(home, settings)
    log.info("window preset saved (W %g / L %g)", width, center)
