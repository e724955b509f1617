"""Which studies a running Relay window has open, so a purge in another process (``relay
purge``, a scheduled retention run) never removes a study someone is reading.

Each window process keeps one small file, ``HOME/open-studies/PID.json``, listing the Study
Instance UIDs of its reading tabs, rewritten atomically on every change and removed when the
window closes. A file whose process is gone (killed) is ignored and cleaned up by the next reader.
Qt-free.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from app.errors import StoreError
from app.store.db import pid_alive

log = logging.getLogger(__name__)

FOLDER = "open-studies"


class OpenStudies:
    """This process's open studies in ``home`` (the window's side)."""

    def __init__(self, home: Path) -> None:
        self._folder = Path(home) / FOLDER
        self._path = self._folder / f"{os.getpid()}.json"
        self._uids: set[str] = set()

    def add(self, study_uid: str) -> None:
        if study_uid not in self._uids:
            self._uids.add(study_uid)
            self._write()

    def discard(self, study_uid: str) -> None:
        if study_uid in self._uids:
            self._uids.discard(study_uid)
            self._write()

    def clear(self) -> None:
        """The window closed: nothing is open any more."""
        self._uids.clear()
        self._path.unlink(missing_ok=True)

    def _write(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self._uids)), encoding="utf-8")
        os.replace(tmp, self._path)


def open_studies(home: Path) -> set[str]:
    """Study Instance UIDs open in any live Relay window on ``home``."""
    folder = Path(home) / FOLDER
    if not folder.is_dir():
        return set()
    found: set[str] = set()
    for path in folder.glob("*.json"):
        pid = int(path.stem) if path.stem.isdigit() else -1
        if not pid_alive(pid):
            path.unlink(missing_ok=True)  # a window that was killed
            continue
        try:
            found.update(str(u) for u in json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:  # written atomically, so only a damaged disk
            raise StoreError(f"cannot tell which studies a Relay window has open "
                             f"({path}: {exc}); close Relay's windows and try again") from exc
    return found


