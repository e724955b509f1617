"""Render tests: phantoms, and offscreen OpenGL through OSMesa unless told otherwise."""

from __future__ import annotations

import os

import pytest

# Before VTK creates a window: OSMesa renders without a display or a GPU. Override from outside
# (e.g. vtkEGLRenderWindow, or unset under Xvfb) by setting the variable before pytest starts.
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")

from tests.render import phantom as ph  # noqa: E402


@pytest.fixture(scope="session")
def sagittal() -> ph.Phantom:
    """Sagittal-stored, 10°-rotated, anisotropic phantom."""
    return ph.sagittal_oblique_phantom()


@pytest.fixture(scope="session")
def tilted() -> ph.Phantom:
    """Axial stack with 20° gantry tilt (sheared affine)."""
    return ph.tilted_phantom(20.0)
