"""Linked MPR state: one point and one frame shared by the axial, coronal and sagittal views.

The three views are mutually perpendicular planes through the crosshair point. Moving the point
in one view moves the others; rotating in one view turns the two other planes about that view's
normal (the view itself stays put); :meth:`Crosshair.reset` goes back to the patient-axis
planes, or to the acquisition planes. Listeners are told after every change (notification
events: many listeners, return values ignored). No Qt here; the UI subscribes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np

from app.render.planes import VIEWS, Plane, View, acquisition_frame, rotation, view_plane
from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

Listener = Callable[["Crosshair"], None]
Alignment = Literal["patient", "acquisition"]


class Crosshair:
    """The crosshair point (LPS mm) and the rotation of the three linked MPR planes.

    Parameters
    ----------
    geometry
        The volume being read; the point is kept inside its bounds.
    align
        ``"patient"`` (planes along the patient axes) or ``"acquisition"`` (the plane closest to
        the stored slices is exactly the stored slice plane, the others perpendicular to it).
    """

    def __init__(self, geometry: VolumeGeometry, *, align: Alignment = "patient") -> None:
        self.geometry = geometry
        self._to_index = np.linalg.inv(geometry.affine)
        self._listeners: list[Listener] = []
        self._center = geometry.center_lps()
        self._frame = np.eye(3)
        self.reset(align=align, notify=False)

    # -- state --------------------------------------------------------------------------------
    @property
    def center(self) -> np.ndarray:
        """The crosshair point in LPS mm (a copy)."""
        return self._center.copy()

    @property
    def frame(self) -> np.ndarray:
        """3×3 rotation whose columns are the rotated x, y, z axes (sagittal, coronal and axial
        plane normals)."""
        return self._frame.copy()

    def plane(self, view: View) -> Plane:
        """The current plane of ``view`` through the crosshair point."""
        return view_plane(view, self._frame, self._center)

    def planes(self) -> dict[str, Plane]:
        """All three planes, by view name."""
        return {view: self.plane(view) for view in VIEWS}

    def lines(self, view: View) -> dict[str, np.ndarray]:
        """Where the other two planes cut ``view``: unit (right, down) screen direction of each
        crosshair line, by the name of the view the line belongs to. Both pass through the
        crosshair point; each direction points to screen right (or straight down)."""
        here = self.plane(view)
        out: dict[str, np.ndarray] = {}
        for other in VIEWS:
            if other == view:
                continue
            direction = np.cross(here.normal, self.plane(other).normal)
            screen = np.array([direction @ here.right, direction @ here.down])
            screen /= np.linalg.norm(screen)
            if screen[0] < -1e-12 or (abs(screen[0]) <= 1e-12 and screen[1] < 0):
                screen = -screen
            out[other] = screen
        return out

    # -- changes ------------------------------------------------------------------------------
    def set_center(self, point: np.ndarray) -> None:
        """Move the crosshair to an LPS point (clamped to the volume)."""
        self._center = self._clamp(np.asarray(point, dtype=np.float64).reshape(3))
        self._notify()

    def move(self, view: View, right_mm: float, down_mm: float) -> None:
        """Drag the point within ``view`` by screen millimetres."""
        plane = self.plane(view)
        self.set_center(self._center + right_mm * plane.right + down_mm * plane.down)

    def scroll(self, view: View, mm: float) -> None:
        """Move ``view``'s plane along its normal (away from the viewer for positive mm)."""
        self.set_center(self._center + mm * self.plane(view).normal)

    def rotate(self, view: View, degrees: float) -> None:
        """Turn the two other planes about ``view``'s normal through the point.

        Positive ``degrees`` turn the crosshair lines counter-clockwise as seen in ``view``;
        ``view`` itself keeps its plane and its screen axes.
        """
        normal = self.plane(view).normal
        # the normal points away from the viewer, so counter-clockwise on screen is negative
        self._frame = _orthonormal(rotation(normal, -degrees) @ self._frame)
        self._notify()

    def reset(self, *, align: Alignment = "patient", notify: bool = True) -> None:
        """Back to the volume centre and the patient-axis (or acquisition) planes."""
        if align == "patient":
            self._frame = np.eye(3)
        elif align == "acquisition":
            self._frame = acquisition_frame(self.geometry)
        else:
            raise ValueError(f"align must be 'patient' or 'acquisition', got {align!r}")
        self._center = self.geometry.center_lps()
        if notify:
            self._notify()

    # -- listeners ----------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(crosshair)`` after every change; returns a function to unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:  # a broken view must not break the others
                log.exception("crosshair listener failed")

    def _clamp(self, point: np.ndarray) -> np.ndarray:
        k, j, i = self.geometry.shape
        ijk = point @ self._to_index[:3, :3].T + self._to_index[:3, 3]
        clamped = np.clip(ijk, 0.0, np.array([i - 1, j - 1, k - 1], dtype=np.float64))
        if np.allclose(clamped, ijk):
            return point
        return self.geometry.index_to_lps(clamped)


def _orthonormal(frame: np.ndarray) -> np.ndarray:
    """Re-orthonormalise a rotation that drifted through many small turns."""
    u, _, vt = np.linalg.svd(frame)
    return np.asarray(u @ vt)
