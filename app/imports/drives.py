"""Where outside media show up: CD/DVD and USB drives among the mounted volumes, so the "Open
CD / folder" dialog can start there and list them.

On Linux desktops removable media are mounted under ``/media/$USER``, ``/run/media/$USER``
(udisks), ``/media`` or ``/mnt``; an optical drive is a ``/dev/sr*`` device whatever its mount
point. Qt-free: the window passes the mounted volumes it gets from ``QStorageInfo``.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Mount roots of removable media; a volume mounted below one of these is offered.
MEDIA_ROOTS = ("/media", "/run/media", "/mnt", "/Volumes")


@dataclass(frozen=True)
class Volume:
    """A mounted volume as the system reports it."""

    root: str
    device: str = ""
    name: str = ""
    ready: bool = True


def removable(volumes: list[Volume]) -> list[Volume]:
    """The volumes that look like a CD/DVD or a USB stick, in the order given."""
    out = []
    for v in volumes:
        if not v.ready or v.root in MEDIA_ROOTS or v.root == "/":
            continue
        optical = Path(v.device).name.startswith("sr")
        below = any(v.root.startswith(root.rstrip("/") + "/") for root in MEDIA_ROOTS)
        if optical or below:
            out.append(v)
    return out


def start_folder(last: str | None, volumes: list[Volume], home: Path | None = None) -> Path:
    """Where the folder dialog opens: the one removable medium when there is exactly one (a
    disc was just put in), else the last folder used when it still exists, else the media
    root of this user, else the home folder."""
    media = removable(volumes)
    if len(media) == 1:
        return Path(media[0].root)
    if last and Path(last).is_dir():
        return Path(last)
    user = _user()
    for root in (f"/run/media/{user}", f"/media/{user}", "/media"):
        if Path(root).is_dir() and any(Path(root).iterdir()):
            return Path(root)
    return home or Path.home()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: the shared roots still work
        return ""
