"""The end of start-up, shared by the command line and the window."""

from __future__ import annotations

import gc


def startup_done() -> None:
    """Start-up is over: keep what it made (modules, pydicom's dictionaries, Qt wrappers) out
    of the garbage collector's full passes. Each full pass walks every live container; after
    start-up that took ~15 ms here, stalling a first slice or a frame while scrolling."""
    gc.freeze()
