"""Free space on the store's disk, and the warning given before an import, a fetch or a
retrieve runs short of it (rather than failing half-way with "No space left on device").
Qt-free."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.settings import StorageSettings

GB = 1e9


def free_bytes(home: Path) -> int:
    """Bytes free for Relay on the disk holding ``home`` (its nearest existing folder)."""
    path = Path(home)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def low_disk_warning(home: Path, rule: StorageSettings, needed: int = 0) -> str | None:
    """A plain-words warning when less than ``rule.low_disk_gb`` (plus ``needed`` bytes, the
    size of what is about to come in when known) is free on the store's disk; None when there is
    room."""
    free = free_bytes(home)
    floor = rule.low_disk_gb * GB + needed
    if free >= floor:
        return None
    need = f" for {needed / GB:.2f} GB coming in" if needed else ""
    return (f"low disk space: {free / GB:.2f} GB free on the disk of {home}{need} (warning below "
            f"{rule.low_disk_gb:g} GB); free space or purge old studies (`relay purge --dry-run` "
            "shows what the storage rule would remove)")
