"""Find files in ``resources/`` (a source checkout, an editable install or a PyInstaller bundle)."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """Path of a file shipped in ``resources/``."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parents[1]
    return base.joinpath("resources", *parts)


def docs_path(*parts: str) -> Path:
    """Path of a file shipped in ``docs/`` (the user guide, the Conformance Statement)."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parents[1]
    return base.joinpath("docs", *parts)
