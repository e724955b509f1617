"""Render a scene without a screen into a numpy RGB image (tests, CLI, thumbnails).

Which OpenGL VTK uses offscreen is VTK's choice at window creation: EGL when available, OSMesa
when ``VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow`` is set (no GPU, no display needed).
"""

from __future__ import annotations

import logging

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter

# Registers the OpenGL implementations of the rendering classes (window, mappers).
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  # isort: skip
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  # isort: skip

log = logging.getLogger(__name__)


def capture(window: vtkRenderWindow) -> np.ndarray:
    """What ``window`` shows now (any render window, e.g. one hosted by a Qt widget), as
    ``(height, width, 3)`` uint8, top row first. Renders it first."""
    window.Render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOff()
    return _grab_pixels(grab)


def _grab_pixels(grab: vtkWindowToImageFilter) -> np.ndarray:
    grab.Modified()
    grab.Update()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    rgb = numpy_support.vtk_to_numpy(  # type: ignore[no-untyped-call]
        image.GetPointData().GetScalars())
    return np.ascontiguousarray(rgb.reshape(height, width, -1)[::-1, :, :3])


class OffscreenView:
    """An offscreen render window showing one renderer; :meth:`render` returns the pixels.

    Parameters
    ----------
    renderer
        E.g. :attr:`app.render.scene3d.VolumeScene.renderer`. A renderer belongs to one window
        at a time: :meth:`close` before handing it to another.
    size
        (width, height) in pixels.
    window
        A render window to use (e.g. made ahead of time: making one opens a connection to the
        display, 15-50 ms that hold the interpreter, more on a busy machine); a new one by
        default. :meth:`close` leaves it fit for another view.
    """

    def __init__(self, renderer: vtkRenderer, size: tuple[int, int] = (512, 512),
                 window: vtkRenderWindow | None = None) -> None:
        self.renderer = renderer
        self.window = window if window is not None else vtkRenderWindow()
        self.window.SetOffScreenRendering(True)
        self.window.SetMultiSamples(0)
        self.window.SetSize(int(size[0]), int(size[1]))
        self.window.AddRenderer(renderer)
        self._grab = vtkWindowToImageFilter()
        self._grab.SetInput(self.window)
        self._grab.SetInputBufferTypeToRGB()
        self._grab.ReadFrontBufferOff()
        self._grab.ShouldRerenderOff()

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.window.GetSize()
        return int(width), int(height)

    def resize(self, width: int, height: int) -> None:
        self.window.SetSize(int(width), int(height))

    def render(self) -> np.ndarray:
        """Render and return the image as ``(height, width, 3)`` uint8, top row first."""
        self.window.Render()
        return _grab_pixels(self._grab)

    def close(self) -> None:
        """Release the window (and its GL context); the renderer can be reused elsewhere."""
        self.window.RemoveRenderer(self.renderer)
        self.window.Finalize()
