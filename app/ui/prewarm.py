"""Load the 3D view's VTK modules before the user asks for 3D, on a background thread.

Importing them on the GUI thread when the 3D layout is first chosen froze the window for
over a second (``bench/bench_3d_open.py``); on a thread, the window keeps answering (the
import lets go of the interpreter between modules). Started once per process, when a series
has loaded (3D needs the whole series anyway, and the readers are done by then).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

MODULE = "app.ui.volume3d"
_started = threading.Event()
_done = threading.Event()
#: Render windows made on the prewarm thread, waiting for the 3D view (see
#: :func:`spare_render_window`).
_windows: list[object] = []


def prewarm_3d() -> None:
    """Import :mod:`app.ui.volume3d` (and so VTK) on a daemon thread, once."""
    if _started.is_set() or MODULE in sys.modules:
        return
    _started.set()
    threading.Thread(target=_import, name="relay-prewarm-3d", daemon=True).start()


def prewarmed() -> bool:
    """Whether the 3D view's modules are loaded (by :func:`prewarm_3d` or otherwise)."""
    return _done.is_set() or (MODULE in sys.modules and not _started.is_set())


def spare_render_window() -> Any | None:
    """A ``vtkRenderWindow`` made ahead on the prewarm thread (no OpenGL context yet), or None
    when there is none left: making one costs 20-60 ms holding the interpreter (VTK's factory
    opens a connection to the display to choose the window's kind), which the GUI thread then
    does not spend. Two are made: the 3D view's own and the worker's first offscreen one."""
    try:
        return _windows.pop()
    except IndexError:
        return None


def _import() -> None:
    try:
        importlib.import_module(MODULE)
        from vtkmodules.vtkRenderingCore import vtkRenderWindow
        from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

        # the first render window of a process costs ~30-60 ms more than the next ones (VTK's
        # OpenGL classes setting themselves up), each one 20-50 ms: kept for the 3D view (no
        # OpenGL context is made here). The first ray cast mapper fills tables (20 ms, 0.1 s on a
        # busy machine) holding the interpreter: the window froze as long when 3D opened
        vtkFixedPointVolumeRayCastMapper()
        _windows.extend(vtkRenderWindow() for _ in range(2))
    except Exception:  # the 3D view reports its own failure when it is opened
        log.warning("3D view modules could not be loaded in advance", exc_info=True)
        return
    _done.set()
