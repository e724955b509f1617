"""One frame of a render window drawn on a thread of its own, in the window's OpenGL context.

A software OpenGL (Mesa's llvmpipe) compiles the shaders of a context's first frames with LLVM
on the thread that draws them: 0.1-0.8 s on a busy two-core machine. Drawn on this thread, VTK
lets go of the interpreter meanwhile and the GUI thread keeps answering
(``bench/bench_3d_open.py --pieces``). An OpenGL context is current on one thread at a time:
the caller releases it here, and must not touch the window until :meth:`FrameThread.join`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vtkmodules.vtkRenderingCore import vtkRenderWindow


class FrameThread:
    """``window.Render()`` on a new thread; the context released again when it is done.

    Parameters
    ----------
    window
        An initialized render window whose context the calling thread may hold: released
        here before the thread starts.
    before
        Run first on the new thread (e.g. to lower its priority).
    """

    def __init__(self, window: vtkRenderWindow,
                 before: Callable[[], None] | None = None) -> None:
        self.window = window
        self._before = before
        window.ReleaseCurrent()
        self._thread = threading.Thread(target=self._run, name="relay-3d-frame", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._before is not None:
            self._before()
        try:
            self.window.Render()
        finally:
            self.window.ReleaseCurrent()  # for the GUI thread to make it current again

    @property
    def done(self) -> bool:
        """Whether the frame is drawn (the window may be used again)."""
        return not self._thread.is_alive()

    def join(self) -> None:
        """Wait for the frame."""
        self._thread.join()
