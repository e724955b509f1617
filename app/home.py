"""Where Relay keeps its data: store, index, settings, transfer queue; private to the user.

``--home DIR`` on the command line wins, then ``RELAY_HOME``, then the user's data dir from
platformdirs (``~/.local/share/Relay`` on Linux).

Everything in a home is private to the user: folders 0700, files 0600 (the index, settings,
queue, stored objects, temp and part files). A Relay process creates files with umask 077, and
a home made by an older Relay is tightened the first time it is opened.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "Relay"
#: Written once every file and folder of the home has been made private.
PRIVATE_MARK = ".private"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the data dir to use, created if needed (and private)."""
    if explicit:
        home = Path(explicit)
    elif os.environ.get("RELAY_HOME"):
        home = Path(os.environ["RELAY_HOME"])
    else:
        home = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    home = home.expanduser().resolve()
    make_private(home)
    return home


def make_private(home: Path) -> None:
    """Create ``home`` if needed, 0700, and make sure every file below it is the user's only.

    Sets this process's umask to 077 (files Relay creates from now on are 0600, folders 0700,
    SQLite's journal files included), then tightens what an older Relay left readable, once.
    """
    os.umask(0o077)
    home.mkdir(parents=True, exist_ok=True)
    try:
        if stat.S_IMODE(home.stat().st_mode) & 0o077:
            os.chmod(home, 0o700)
    except OSError as exc:  # a home on a file system without modes (FAT USB stick)
        log.debug("cannot make the home private: %s", exc.strerror)
        return
    if (home / PRIVATE_MARK).exists():
        return
    for folder, dirs, files in os.walk(home):
        for name in dirs:
            _tighten(os.path.join(folder, name), 0o700)
        for name in files:
            _tighten(os.path.join(folder, name), 0o600)
    try:
        (home / PRIVATE_MARK).touch()
    except OSError:  # a read-only home: tightened again next time
        pass


def _tighten(path: str, mode: int) -> None:
    try:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
    except OSError:
        pass
