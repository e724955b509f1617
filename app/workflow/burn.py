"""Handing an ISO image to the operating system's disc burner.

:func:`find_burner` says which optical drive and which burning program would be used, or why
none can be (no drive, no program); :func:`burn` runs it. Linux: ``xorriso`` (or ``cdrecord`` /
``wodim``) on ``/dev/sr*``; Windows: ``isoburn.exe`` (the system's Disc Image Burner); macOS:
``hdiutil burn``.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.workflow.derive import WorkflowError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Burner:
    drive: str
    program: str

    def command(self, iso: Path) -> list[str]:
        name = Path(self.program).name.lower()
        if name.startswith("xorriso"):
            return [self.program, "-as", "cdrecord", "-v", f"dev={self.drive}", "-eject",
                    str(iso)]
        if name.startswith(("cdrecord", "wodim")):
            return [self.program, "-v", f"dev={self.drive}", "-eject", str(iso)]
        if name.startswith("isoburn"):
            return [self.program, "/Q", self.drive, str(iso)]
        return [self.program, "burn", str(iso)]  # hdiutil


def find_burner() -> Burner | None | str:
    """A :class:`Burner`, or a sentence saying why there is none."""
    if sys.platform.startswith("win"):
        program = shutil.which("isoburn.exe") or shutil.which("isoburn")
        drives = [f"{d}:" for d in "DEFGHIJKLMNOPQRSTUVWXYZ" if _is_cdrom_windows(f"{d}:\\")]
        if not drives:
            return "no optical drive found on this computer"
        return Burner(drives[0], program) if program else "the Windows disc burner is missing"
    if sys.platform == "darwin":
        program = shutil.which("hdiutil")
        return Burner("", program) if program else "hdiutil is missing"
    drives = sorted(glob.glob("/dev/sr[0-9]*"))
    if not drives:
        return "no optical drive found on this computer (no /dev/sr*)"
    program = next((p for p in (shutil.which(n) for n in ("xorriso", "cdrecord", "wodim"))
                    if p), None)
    if program is None:
        return "no burning program found: install xorriso"
    if not os.access(drives[0], os.R_OK | os.W_OK):
        return f"the drive {drives[0]} is not writable by this user (add them to 'cdrom')"
    return Burner(drives[0], program)


def burn(iso: Path, burner: Burner, timeout: float = 3600.0) -> None:
    """Write ``iso`` to the disc in the drive; raise with the program's last words if it fails."""
    run = subprocess.run(burner.command(iso), capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise WorkflowError(f"burning failed on {burner.drive}: {' '.join(tail)}")
    log.info("disc burned on %s", burner.drive)


def _is_cdrom_windows(root: str) -> bool:  # pragma: no cover - Windows only
    try:
        import ctypes

        return bool(ctypes.windll.kernel32.GetDriveTypeW(root) == 5)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False
