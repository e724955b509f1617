"""From the index's rows of a series to stacks of slices with a geometry, and the doubts about it.

A *slice* is one 2D image: a classic file, or one frame of a multi-frame object. Slices are put
in order along the slice normal (``cross(row, column)`` of ImageOrientationPatient), never by
InstanceNumber or file name. What does not fit one regular stack is *reported*, as short
sentences on :attr:`SeriesPlan.issues`, and never silently resampled or dropped:

* images of different sizes or orientations (the largest group becomes the first stack),
* missing position data (file order, distances unknown),
* several images at one position (repeats, time points, the same image in several syntaxes):
  the series is split into several stacks, the first is the default,
* gantry tilt (the angle between the slice normal and the line through the slice positions),
* uneven spacing, and gaps (missing slices) when the steps are whole multiples of the usual step.

Only the index is used (no pixel reads), so this is cheap enough for ``relay ls``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from app.model import ImageInfo
from app.volume.geometry import VolumeGeometry

#: Positions closer than this (mm, along the normal) are "the same position".
SAME_POSITION_MM = 0.01
#: Orientation vectors differing by less than this (per component) are "the same plane".
SAME_ORIENTATION = 1e-3
#: Below this angle (degrees) a stack counts as not tilted.
TILT_DEGREES = 0.1
#: How the issue of a tilted stack begins ("gantry tilt of 18.5°: …").
TILT_ISSUE = "gantry tilt of"
#: Steps that differ from the usual step by more than this fraction are "uneven".
UNEVEN_FRACTION = 0.05


@dataclass(frozen=True)
class SliceRef:
    """One 2D image: frame ``frame`` of the stored file at ``path``."""

    path: Path | None
    sop_instance_uid: str
    transfer_syntax_uid: str
    info: ImageInfo
    frame: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    rescale_slope: float
    rescale_intercept: float
    window: tuple[float, float] | None
    #: Tie-break among images at one position: (temporal, acquisition, instance, frame).
    order: tuple[int, int, int, int]

    @property
    def slice_thickness(self) -> float | None:
        """Slice Thickness (mm): the frame's (an enhanced object's Pixel Measures), else the
        file's."""
        frames = self.info.frame_info
        fi = frames[self.frame] if self.frame < len(frames) else None
        return fi.slice_thickness if fi and fi.slice_thickness else self.info.slice_thickness


@dataclass(frozen=True, eq=False)
class Stack:
    """Slices forming one volume, in order along the normal, with their geometry."""

    slices: tuple[SliceRef, ...]
    geometry: VolumeGeometry
    #: LPS position of each slice's first pixel, ``(n, 3)`` (NaN where unknown).
    positions: np.ndarray
    issues: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape


@dataclass(frozen=True)
class SeriesPlan:
    """All stacks of a series (largest first) and the sentences describing its doubts."""

    stacks: tuple[Stack, ...] = ()
    issues: tuple[str, ...] = field(default_factory=tuple)

    @property
    def main(self) -> Stack | None:
        return self.stacks[0] if self.stacks else None


# -- slices from the index -------------------------------------------------------------------
class Imaged(Protocol):
    """What planning reads of an instance: an :class:`~app.model.Instance`, or the lighter
    :class:`~app.store.instances.ImageRow` (``Store.image_rows``)."""

    @property
    def sop_instance_uid(self) -> str: ...
    @property
    def transfer_syntax_uid(self) -> str: ...
    @property
    def instance_number(self) -> int | None: ...
    @property
    def acquisition_number(self) -> int | None: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def image(self) -> ImageInfo | None: ...


def slices_of(instances: Sequence[Imaged]) -> list[SliceRef]:
    """Every frame of every image instance, as :class:`SliceRef` (index order)."""
    out: list[SliceRef] = []
    for inst in instances:
        info = inst.image
        if info is None:
            continue
        for f in range(info.frames):
            out.append(_slice(inst, info, f))
    return out


def _slice(inst: Imaged, info: ImageInfo, f: int) -> SliceRef:
    fi = info.frame_info[f] if f < len(info.frame_info) else None
    position = fi.position if fi and fi.position else (info.position if info.frames == 1 else None)
    orientation = (fi.orientation if fi and fi.orientation else None) or info.orientation
    spacing = (fi.pixel_spacing if fi and fi.pixel_spacing else None) or info.pixel_spacing
    slope = fi.rescale_slope if fi and fi.rescale_slope is not None else info.rescale_slope
    intercept = (fi.rescale_intercept if fi and fi.rescale_intercept is not None
                 else info.rescale_intercept)
    center = fi.window_center if fi and fi.window_center is not None else info.window_center
    width = fi.window_width if fi and fi.window_width is not None else info.window_width
    temporal = (fi.temporal_position if fi and fi.temporal_position is not None else 0)
    return SliceRef(
        path=inst.path, sop_instance_uid=inst.sop_instance_uid,
        transfer_syntax_uid=inst.transfer_syntax_uid, info=info, frame=f,
        position=position, orientation=orientation, pixel_spacing=spacing,
        rescale_slope=slope if slope else 1.0, rescale_intercept=intercept or 0.0,
        window=(center, width) if center is not None and width else None,
        order=(temporal, inst.acquisition_number or 0, inst.instance_number or 0, f),
    )


# -- planning --------------------------------------------------------------------------------
def plan_series(instances: Sequence[Imaged], frame_of_reference_uid: str = "") -> SeriesPlan:
    """Sort a series' images into stacks and describe what is irregular.

    Parameters
    ----------
    instances
        The series' instances from the index (``Store.instances``, or ``Store.image_rows``);
        non-images are ignored.
    frame_of_reference_uid
        Copied into each stack's :class:`~app.volume.geometry.VolumeGeometry`.

    Returns
    -------
    SeriesPlan
        Stacks, the first being the one to show by default, and the issues as sentences.
    """
    refs = slices_of(instances)
    if not refs:
        return SeriesPlan()
    groups = _plane_groups(refs)
    issues: list[str] = []
    if len(groups) > 1:
        issues.append(_mixed_sentence(groups))
    stacks: list[Stack] = []
    for g, group in enumerate(groups):
        group_stacks, group_issues = _stacks_of(group, frame_of_reference_uid)
        stacks += group_stacks
        if g == 0:
            issues += group_issues
    return SeriesPlan(stacks=tuple(stacks), issues=tuple(issues))


def _plane_key(ref: SliceRef) -> tuple[int, int, int]:
    return (ref.info.rows, ref.info.columns, ref.info.samples_per_pixel)


def _plane_groups(refs: list[SliceRef]) -> list[list[SliceRef]]:
    """Group by image size and orientation (within a tolerance); largest group first."""
    groups: list[tuple[tuple[int, int, int], tuple[float, ...] | None, list[SliceRef]]] = []
    for ref in refs:
        key = _plane_key(ref)
        orient = tuple(ref.orientation) if ref.orientation else None
        for gkey, gorient, members in groups:
            # in plain Python: a series of hundreds of slices is planned while its first
            # image waits, and numpy's per-call cost is most of the work at six numbers
            same_orient = orient == gorient or (
                orient is not None and gorient is not None
                and max(abs(a - b) for a, b in zip(orient, gorient, strict=True))
                < SAME_ORIENTATION)
            if gkey == key and same_orient:
                members.append(ref)
                break
        else:
            groups.append((key, orient, [ref]))
    ordered = sorted(groups, key=lambda g: -len(g[2]))  # stable: first seen wins ties
    return [members for _, _, members in ordered]


def _mixed_sentence(groups: list[list[SliceRef]]) -> str:
    sizes = {_size_label(g[0]) for g in groups}
    planes = {_plane_label(g[0]) for g in groups}
    what = ("sizes and orientations" if len(sizes) > 1 and len(planes) > 1
            else "sizes" if len(sizes) > 1 else "orientations")
    shown = ", ".join(f"{len(g)} {_group_label(g[0])}" for g in groups[:4])
    more = ", …" if len(groups) > 4 else ""
    return (f"mixed image {what}: {len(groups)} groups ({shown}{more}); each group is a "
            f"separate stack, the first is shown")


def _group_label(ref: SliceRef) -> str:
    plane = _plane_label(ref)
    return f"{plane} {_size_label(ref)}" if plane else _size_label(ref)


def _size_label(ref: SliceRef) -> str:
    return f"{ref.info.columns}×{ref.info.rows}"


def _plane_label(ref: SliceRef) -> str:
    if not ref.orientation:
        return ""
    o = np.asarray(ref.orientation)
    normal = np.cross(o[:3], o[3:])
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _stacks_of(group: list[SliceRef], for_uid: str) -> tuple[list[Stack], list[str]]:
    if any(r.position is None or r.orientation is None for r in group):
        return _unpositioned(group, for_uid)
    first = np.asarray(group[0].orientation, dtype=np.float64)
    normal = _unit(np.cross(first[:3], first[3:]))
    clusters = _position_clusters(group, normal)
    issues: list[str] = []
    repeats = max(len(c) for c in clusters)
    if repeats > 1:
        issues.append(_repeat_sentence(clusters, repeats))
    stacks = []
    for r in range(repeats):
        members = [c[r] for c in clusters if len(c) > r]
        stacks.append(_regular_stack(members, normal, for_uid))
    issues += stacks[0].issues
    return stacks, issues


def _position_clusters(group: list[SliceRef], normal: np.ndarray) -> list[list[SliceRef]]:
    """Slices grouped by position along the normal, ascending; each group in repeat order."""
    nx, ny, nz = (float(v) for v in normal)
    dist = sorted(((nx * r.position[0] + ny * r.position[1] + nz * r.position[2], r)  # type: ignore[index]
                   for r in group), key=lambda t: (t[0], t[1].order))
    clusters: list[list[SliceRef]] = []
    last = -math.inf
    for d, ref in dist:
        if d - last > SAME_POSITION_MM or not clusters:
            clusters.append([])
        clusters[-1].append(ref)
        last = d
    for c in clusters:
        c.sort(key=lambda r: (r.order, r.sop_instance_uid))
    return clusters


def _repeat_sentence(clusters: list[list[SliceRef]], repeats: int) -> str:
    counts = {len(c) for c in clusters}
    if len(clusters) == 1:
        return (f"{repeats} images at the same position: several stacks in one series "
                f"(repeated scans or the same image stored {repeats} times); "
                f"each is its own stack, the first is shown")
    if len(counts) == 1:
        return (f"{repeats} stacks of the same {len(clusters)} positions in one series "
                f"(repeated scans or time points): each is its own stack, the first is shown")
    dup = sum(1 for c in clusters if len(c) > 1)
    return (f"duplicate positions: {dup} of {len(clusters)} positions hold more than one image; "
            f"the first image at each position is shown, the others form extra stacks")


def _regular_stack(members: list[SliceRef], normal: np.ndarray, for_uid: str) -> Stack:
    positions = np.array([m.position for m in members], dtype=np.float64)
    ref = members[0]
    n = len(members)
    issues: list[str] = []
    if n > 1:
        step = (positions[-1] - positions[0]) / (n - 1)
        tilt = _angle(step, normal)
        if tilt > TILT_DEGREES:
            issues.append(f"{TILT_ISSUE} {tilt:.1f}°: the slices are sheared along the stack, "
                          f"not stacked straight (MPR and 3D correct it by resampling)")
        issues += _spacing_issues(positions @ normal)
    else:
        step = normal * _thickness(ref)
    issues += _spacing_consistency(members)
    affine = _affine(ref, positions[0], step)
    geometry = VolumeGeometry(affine=affine, shape=(n, ref.info.rows, ref.info.columns),
                              frame_of_reference_uid=for_uid)
    return Stack(slices=tuple(members), geometry=geometry, positions=positions,
                 issues=tuple(issues))


def _spacing_issues(d: np.ndarray) -> list[str]:
    steps = np.diff(d)
    if len(steps) < 2:
        return []
    usual = _median(steps)
    off = np.abs(steps - usual) > max(UNEVEN_FRACTION * usual, SAME_POSITION_MM)
    if not off.any():
        return []
    ratios = steps[off] / usual
    whole = np.abs(ratios - np.rint(ratios)) < UNEVEN_FRACTION
    if whole.all() and (np.rint(ratios) >= 2).all():
        missing = int(np.sum(np.rint(ratios) - 1))
        where = ", ".join(f"after slice {int(i) + 1}" for i in np.flatnonzero(off)[:3])
        more = "…" if off.sum() > 3 else ""
        return [f"{missing} missing slice{'s' if missing > 1 else ''} (gaps in a stack "
                f"spaced {_mm(usual)}: {where}{more})"]
    distinct = _distinct(steps)
    shown = ", ".join(_mm(s, unit=False) for s in distinct[:4]) + ("…" if len(distinct) > 4
                                                                      else "")
    return [f"uneven slice spacing: steps of {_and(shown)} mm between slices"]


def _median(values: np.ndarray) -> float:
    """The median of a non-empty 1-D array (``np.median`` imports ``numpy.ma`` on first use,
    18 ms that a fresh process would spend before its first slice)."""
    s = np.sort(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else float((s[mid - 1] + s[mid]) / 2)


def _spacing_consistency(members: list[SliceRef]) -> list[str]:
    spacings = {m.pixel_spacing for m in members}
    if None in spacings:
        return ["no pixel spacing in the header: distances in the image plane are unknown "
                "(1 mm per pixel assumed)"]
    if len(spacings) > 1:
        return [f"pixel spacing changes within the stack ({len(spacings)} different values)"]
    return []


def _unpositioned(group: list[SliceRef], for_uid: str) -> tuple[list[Stack], list[str]]:
    members = sorted(group, key=lambda r: (r.order, r.sop_instance_uid))
    missing = sum(1 for r in group if r.position is None or r.orientation is None)
    ref = members[0]
    if ref.orientation:
        o = np.asarray(ref.orientation, dtype=np.float64)
        normal = _unit(np.cross(o[:3], o[3:]))
    else:
        normal = np.array([0.0, 0.0, 1.0])
    origin = np.asarray(ref.position, dtype=np.float64) if ref.position else np.zeros(3)
    step = normal * _thickness(ref)
    positions = np.full((len(members), 3), np.nan)
    stack = Stack(slices=tuple(members), geometry=VolumeGeometry(
        affine=_affine(ref, origin, step), shape=(len(members), ref.info.rows, ref.info.columns),
        frame_of_reference_uid=for_uid), positions=positions)
    whole = "the images have" if missing == len(group) else f"{missing} of {len(group)} images"
    sentence = (f"no position data (Image Position/Orientation Patient): {whole} none, so the "
                f"slices are in file order and the distances between them are unknown")
    if missing == len(group) and len(group) == 1:
        return [stack], []  # one lone image: nothing to stack
    return [stack], [sentence]


def _affine(ref: SliceRef, origin: np.ndarray, step: np.ndarray) -> np.ndarray:
    o = np.asarray(ref.orientation or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), dtype=np.float64)
    row_mm, col_mm = ref.pixel_spacing or (1.0, 1.0)
    affine = np.eye(4)
    affine[:3, 0] = o[:3] * col_mm
    affine[:3, 1] = o[3:] * row_mm
    affine[:3, 2] = step
    affine[:3, 3] = origin
    return affine


def _thickness(ref: SliceRef) -> float:
    for value in (ref.info.spacing_between_slices, ref.info.slice_thickness):
        if value and value > 0:
            return float(value)
    return 1.0


def _angle(step: np.ndarray, normal: np.ndarray) -> float:
    norm = float(np.linalg.norm(step))
    if norm == 0:
        return 0.0
    cos = min(1.0, abs(float(np.dot(step, normal))) / norm)
    return math.degrees(math.acos(cos))


def _distinct(values: np.ndarray) -> list[float]:
    out: list[float] = []
    for v in sorted(float(x) for x in values):
        if not out or v - out[-1] > max(UNEVEN_FRACTION * abs(out[-1]), SAME_POSITION_MM):
            out.append(v)
    return out


def _mm(value: float, unit: bool = True) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} mm" if unit else text


def _and(listing: str) -> str:
    parts = listing.split(", ")
    return listing if len(parts) < 2 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n else v


__all__ = ["Imaged", "SeriesPlan", "SliceRef", "Stack",
           "plan_series", "slices_of"]
