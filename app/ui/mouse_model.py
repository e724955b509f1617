"""One mouse model for 2D and MPR: what a plain left drag does, saved in the settings file.

``"tool"``: left drag is the tool (2D: the selected tool, W/L when that is the W/L tool; MPR:
the crosshair), Shift + left drag is window/level. ``"window"``: left drag is window/level in
2D and in every MPR plane, Ctrl + left drag is the tool (measure / crosshair). The setting lives
in the ``reading`` section (``left_drag``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.settings import load_settings, save_settings

log = logging.getLogger(__name__)

#: The choices, with the words the View menu shows.
LEFT_DRAG_MODES = {"tool": "Left drag = tool (measure / crosshair)",
                   "window": "Left drag = window / level"}


def load_left_drag(home: Path) -> str:
    """The saved choice ("tool" when none, unknown, or the settings cannot be read)."""
    try:
        mode = load_settings(home).reading.left_drag
    except Exception as exc:  # noqa: BLE001 - a bad settings file must not break the viewer
        log.warning("mouse setting not read: %s", exc)
        return "tool"
    return mode if mode in LEFT_DRAG_MODES else "tool"


def save_left_drag(home: Path, mode: str) -> None:
    """Remember ``mode`` ("tool" or "window") for the next reading windows."""
    if mode not in LEFT_DRAG_MODES:
        raise ValueError(f"unknown left-drag mode {mode!r}")
    settings = load_settings(home)
    settings.reading.left_drag = mode
    save_settings(home, settings)
    log.info("left drag set to %s", mode)
