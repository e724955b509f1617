"""ASPECTS (Alberta Stroke Program Early CT Score), scored by hand on the plain head CT.

The ten regions of each middle-cerebral-artery territory (Barber et al., Lancet 2000): at the
ganglionic level the caudate (C), lentiform nucleus (L), internal capsule (IC), insular ribbon
(I) and the cortex M1-M3; at the supraganglionic level M4-M6. :class:`Guide` places a schematic
of those regions on the slice (moved and scaled by the user, turned with the midline); the
reader clicks a region to mark it affected and the score is 10 minus the affected regions, per
hemisphere. The schematic is a guide for the eye, not a segmentation: the reader decides.

Coordinates: the template is in units of the brain's half width, ``u`` to the image's right and
``v`` down (anterior at the top, as axial CT is shown); the view is in millimetres.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

SIDES = ("right", "left")
LEVELS = ("ganglionic", "supraganglionic")
#: Region codes in the order of the ASPECTS form, with their names and level.
REGIONS: dict[str, tuple[str, str]] = {
    "C": ("Caudate", "ganglionic"),
    "L": ("Lentiform nucleus", "ganglionic"),
    "IC": ("Internal capsule", "ganglionic"),
    "I": ("Insular ribbon", "ganglionic"),
    "M1": ("Anterior MCA cortex", "ganglionic"),
    "M2": ("MCA cortex lateral to the insular ribbon", "ganglionic"),
    "M3": ("Posterior MCA cortex", "ganglionic"),
    "M4": ("Anterior MCA territory above M1", "supraganglionic"),
    "M5": ("Lateral MCA territory above M2", "supraganglionic"),
    "M6": ("Posterior MCA territory above M3", "supraganglionic"),
}

#: The template of the hemisphere shown on the image's right (``u`` > 0): polygons in
#: half-width units. The other hemisphere is its mirror image.
_TEMPLATE: dict[str, tuple[tuple[float, float], ...]] = {
    "C": ((0.06, -0.36), (0.18, -0.40), (0.24, -0.28), (0.20, -0.14), (0.08, -0.12)),
    "IC": ((0.08, -0.10), (0.20, -0.12), (0.30, 0.10), (0.26, 0.22), (0.16, 0.14)),
    "L": ((0.24, -0.28), (0.38, -0.30), (0.46, -0.08), (0.44, 0.16), (0.32, 0.14),
          (0.22, -0.10)),
    "I": ((0.46, -0.36), (0.54, -0.34), (0.58, 0.00), (0.54, 0.28), (0.46, 0.26),
          (0.50, 0.00)),
    "M1": ((0.10, -0.62), (0.30, -0.84), (0.62, -0.76), (0.70, -0.44), (0.52, -0.38),
           (0.26, -0.44)),
    "M2": ((0.56, -0.36), (0.72, -0.44), (0.94, -0.20), (0.96, 0.16), (0.80, 0.38),
           (0.58, 0.28), (0.62, 0.00)),
    "M3": ((0.48, 0.30), (0.80, 0.40), (0.78, 0.70), (0.52, 0.86), (0.30, 0.72),
           (0.34, 0.40)),
    "M4": ((0.10, -0.30), (0.12, -0.70), (0.36, -0.86), (0.66, -0.72), (0.60, -0.30)),
    "M5": ((0.60, -0.30), (0.66, -0.72), (0.92, -0.36), (0.96, 0.14), (0.86, 0.34),
           (0.62, 0.30)),
    "M6": ((0.10, 0.30), (0.62, 0.30), (0.86, 0.34), (0.76, 0.66), (0.46, 0.86),
           (0.14, 0.74)),
}


def regions_at(level: str) -> list[str]:
    """Region codes drawn at ``level``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    return [code for code, (_, at) in REGIONS.items() if at == level]


@dataclass(frozen=True)
class Guide:
    """Where the schematic sits: its centre on the midline (mm), the brain's half width (mm)
    and the midline's turn (degrees, clockwise from straight down the image)."""

    cx: float
    cy: float
    half_width: float = 70.0
    angle_deg: float = 0.0

    def moved(self, dx: float, dy: float) -> Guide:
        return replace(self, cx=self.cx + dx, cy=self.cy + dy)

    def scaled(self, factor: float) -> Guide:
        if not factor > 0:
            raise ValueError(f"scale factor must be positive, got {factor}")
        return replace(self, half_width=self.half_width * factor)

    def _rotation(self) -> np.ndarray:
        a = math.radians(self.angle_deg)
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    def to_view(self, uv: np.ndarray) -> np.ndarray:
        """Template points (..., 2) to view millimetres."""
        result: np.ndarray = (np.asarray(uv, dtype=np.float64) * self.half_width
                              @ self._rotation().T + (self.cx, self.cy))
        return result

    def to_template(self, xy: np.ndarray) -> np.ndarray:
        """View millimetres (..., 2) to template units."""
        rel = np.asarray(xy, dtype=np.float64) - (self.cx, self.cy)
        result: np.ndarray = rel @ self._rotation() / self.half_width
        return result


def image_side(side: str, right_on_image_left: bool = True) -> float:
    """+1 when ``side`` (the patient's) is drawn on the image's right, else -1. Axial CT is
    shown as if from the feet (radiological convention): the patient's right on the left."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    return -1.0 if (side == "right") == right_on_image_left else 1.0


def polygon(code: str, side: str, guide: Guide, right_on_image_left: bool = True) -> np.ndarray:
    """The region's outline in view millimetres, (n, 2)."""
    points = np.array(_TEMPLATE[code], dtype=np.float64)
    points[:, 0] *= image_side(side, right_on_image_left)
    return guide.to_view(points)


def _contains(poly: np.ndarray, x: float, y: float) -> bool:
    """Even-odd rule point-in-polygon."""
    inside = False
    n = len(poly)
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def region_at(point: tuple[float, float], level: str, guide: Guide,
              right_on_image_left: bool = True) -> tuple[str, str] | None:
    """(side, code) of the region under ``point`` (view mm) at ``level``, or None."""
    for side in SIDES:
        for code in regions_at(level):
            if _contains(polygon(code, side, guide, right_on_image_left), *point):
                return side, code
    return None


@dataclass(frozen=True)
class Aspects:
    """The regions marked affected, per hemisphere ("right" -> {"C", "M2"})."""

    affected: dict[str, frozenset[str]] = field(
        default_factory=lambda: {side: frozenset() for side in SIDES})

    def score(self, side: str) -> int:
        """10 minus the affected regions of ``side``."""
        return 10 - len(self.affected.get(side, frozenset()))

    def toggled(self, side: str, code: str) -> Aspects:
        """A copy with ``code`` of ``side`` marked (or unmarked, when it was)."""
        if code not in REGIONS:
            raise ValueError(f"unknown ASPECTS region {code!r}")
        current = self.affected.get(side, frozenset())
        changed = current - {code} if code in current else current | {code}
        return Aspects({**self.affected, side: frozenset(changed)})

    @classmethod
    def of(cls, right: Iterable[str] = (), left: Iterable[str] = ()) -> Aspects:
        for code in [*right, *left]:
            if code not in REGIONS:
                raise ValueError(f"unknown ASPECTS region {code!r}")
        return cls({"right": frozenset(right), "left": frozenset(left)})

    def text(self, side: str) -> str:
        """"ASPECTS 8 (right: C, M2)" as the overlay and the report say it."""
        codes = [c for c in REGIONS if c in self.affected.get(side, frozenset())]
        marked = ", ".join(codes) if codes else "none affected"
        return f"ASPECTS {self.score(side)} ({side}: {marked})"
