"""Where Relay keeps its data: store, index, settings, transfer queue.

``--home DIR`` on the command line wins, then ``RELAY_HOME``, then the user's data dir from
platformdirs (``~/.local/share/Relay`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Relay"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the data dir to use, created if needed."""
    if explicit:
        home = Path(explicit)
    elif os.environ.get("RELAY_HOME"):
        home = Path(os.environ["RELAY_HOME"])
    else:
        home = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home
