"""What the viewport writes over the image: corner texts, orientation letters, scale bar.

Pure functions of the displayed state (no painting here), so they are easy to test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.model import Series, Study
from app.ui.format import format_date, format_name, format_time
from app.volume.geometry import VolumeGeometry, direction_label


@dataclass(frozen=True)
class Corners:
    top_left: list[str]
    top_right: list[str]
    bottom_left: list[str]
    bottom_right: list[str]


def corner_texts(study: Study, series: Series, *, k: int, n: int, position_mm: float | None,
                 thickness_mm: float | None, center: float, width: float, zoom: float,
                 invert: bool, loaded: int, probe: str = "", label: str = "") -> Corners:
    """What the four corners say. ``label`` replaces "Im k / n" (a preview names its own
    instance: its place in the series is not known yet)."""
    patient = study.patient
    top_left = [format_name(patient.patient_name),
                f"ID {patient.patient_id or '—'}"
                + (f"   {format_date(patient.patient_birth_date)}" if patient.patient_birth_date
                   else "")
                + (f"   {patient.patient_sex}" if patient.patient_sex else "")]
    top_right = [study.study_description or "(no study description)",
                 f"{format_date(study.study_date)} {format_time(study.study_time)}".strip()]
    number = f"#{series.series_number} " if series.series_number is not None else ""
    bottom_left = [f"{number}{series.series_description or series.modality}",
                   (label or f"Im {k + 1} / {n}")
                   + (f"   {position_mm:+.1f} mm" if position_mm is not None else "")
                   + (f"   th {thickness_mm:g} mm" if thickness_mm else "")]
    if loaded < n:
        bottom_left.append(f"loading {loaded} / {n}")
    if probe:
        bottom_left.append(probe)
    bottom_right = [f"W {width:.0f}  L {center:.0f}" + ("  inverted" if invert else ""),
                    f"zoom {zoom:.2f}×"]
    return Corners(top_left, top_right, bottom_left, bottom_right)


def edge_labels(geometry: VolumeGeometry) -> dict[str, str]:
    """Orientation letters at the four edges of an (unflipped) slice of ``geometry``.

    Screen right is the row direction (+i), screen down the column direction (+j).
    """
    row, col = geometry.row_direction, geometry.column_direction
    return {
        "left": direction_label(-row),
        "right": direction_label(row),
        "top": direction_label(-col),
        "bottom": direction_label(col),
    }


def slice_position(geometry: VolumeGeometry, k: int) -> float:
    """Signed position (mm) of slice ``k`` along the slice normal (like Slice Location)."""
    normal = np.cross(geometry.row_direction, geometry.column_direction)
    origin = geometry.index_to_lps(np.array([0.0, 0.0, float(k)]))
    return float(origin @ normal)


def scale_bar_mm(view_width_mm: float) -> float:
    """A round scale-bar length near 1/8 of the visible width: 1, 2, 5, 10, 20... mm."""
    target = max(view_width_mm / 8.0, 1e-3)
    power = 10 ** math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        if step * power >= target * 0.7:
            return float(step * power)
    return float(10 * power)
