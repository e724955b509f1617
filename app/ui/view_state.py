"""What the user was looking at, kept between runs: the last slice viewed per series, and when
the Transfers panel was last cleared of finished jobs."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "view_state.json"
MAX_SERIES = 2000


@dataclass
class ViewState:
    last_slice: dict[str, int] = field(default_factory=dict)
    transfers_cleared: float = 0.0
    """Jobs that ended before this time (epoch seconds) are not listed in Transfers."""
    last_folder: str = ""
    """The folder last opened with "Open CD / folder"."""

    @classmethod
    def load(cls, home: Path) -> ViewState:
        try:
            raw = json.loads((Path(home) / FILE).read_text(encoding="utf-8"))
            return cls(last_slice={str(k): int(v) for k, v in raw.get("last_slice", {}).items()},
                       transfers_cleared=float(raw.get("transfers_cleared", 0.0)),
                       last_folder=str(raw.get("last_folder", "")))
        except (OSError, ValueError, AttributeError):
            return cls()

    def save(self, home: Path) -> None:
        items = list(self.last_slice.items())[-MAX_SERIES:]
        path = Path(home) / FILE
        tmp = path.with_suffix(".part")
        try:
            raw = {"schema": 1, "last_slice": dict(items),
                   "transfers_cleared": self.transfers_cleared, "last_folder": self.last_folder}
            tmp.write_text(json.dumps(raw), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            log.warning("could not save the view state", exc_info=True)
