"""A study's hanging protocol, and its findings, in a reading tab.

:func:`apply_stage` lays a stage of a protocol (:mod:`app.workflow.hanging`) out in a
:class:`~app.ui.viewer.ViewerWidget`: a grid of series in their windows (today's and the
prior's, scrolling together) or MPR of one series with a slab. :func:`collect_findings` gathers
what the reader marked (ASPECTS, regions with their mirror, key images, measurements) for
:func:`app.workflow.findings.save_findings`; :func:`show_findings` puts saved findings back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QRectF

from app.dicom.value_maps import Quantity
from app.render.roi import mirror_stats, roi_stats
from app.render.window_presets import WindowPreset
from app.ui.annotations import Annotation, angle_deg, length_mm, mean_text
from app.ui.series_session import LoadedSeries
from app.ui.user_presets import offered_presets
from app.ui.viewport import ViewportWidget
from app.volume.stack import SliceRef
from app.workflow.findings import (
    Display,
    Findings,
    Mark,
    RegionFinding,
    in_view_mm,
    view_mm,
)
from app.workflow.hanging import HungStage, stage_shape

if TYPE_CHECKING:
    from app.ui.mpr_widget import MprWidget
    from app.ui.viewer import ViewerWidget

log = logging.getLogger(__name__)


def _preset(viewer: ViewerWidget, modality: str, name: str) -> WindowPreset | None:
    return next((p for p in offered_presets(viewer.store.home, modality) if p.name == name),
                None)


def _window_when_open(viewport: ViewportWidget, preset: WindowPreset) -> None:
    """``preset`` in ``viewport`` now, or once its series has opened (after the viewport set
    itself up for it: the series' carried window would override it)."""
    session = viewport.session
    if session is None:
        return
    if viewport.volume is not None:
        viewport.apply_preset(preset)
        return

    def later() -> None:
        try:
            session.opened.disconnect(later)
        except (RuntimeError, TypeError):
            pass
        if viewport.session is session and viewport.volume is not None:
            viewport.apply_preset(preset)

    session.opened.connect(later)


def apply_stage(viewer: ViewerWidget, hung: HungStage) -> None:
    """Show one stage of the study's protocol."""
    stage = hung.stage
    if stage.view == "mpr" and hung.mpr_series is not None:
        uid = hung.mpr_series.series_instance_uid
        viewer.show_series(uid)
        mpr = viewer.show_mpr()
        if mpr is None:
            return
        mpr.show_planes(stage.planes)
        if stage.slab_mode and stage.slab_mm:
            mpr.set_slab(stage.slab_mode, stage.slab_mm)
        preset = _preset(viewer, hung.mpr_series.modality, stage.preset)
        if preset is not None:
            mpr.apply_preset(preset)
        return
    (rows, cols), slabs = stage_shape(hung)
    if not hung.image_cells:  # only planes: the MPR layout with them
        viewer.show_series(hung.slab_cells[0].series.series_instance_uid)
        _show_slabs(viewer.show_mpr, viewer, hung)
        return
    viewer.set_layout(f"{rows}×{cols}", slabs=slabs)
    viewer.link_by_position = stage.link == "position"
    for viewport, cell in zip(viewer.visible_viewports(), hung.image_cells, strict=False):
        uid = cell.series.series_instance_uid
        viewer.show_series(uid, viewport)
        preset = _preset(viewer, cell.series.modality, cell.preset) if cell.preset else None
        if preset is not None:
            _window_when_open(viewport, preset)
    viewer.set_active_viewport(viewer.visible_viewports()[0])
    if slabs:
        widget = viewer.slab_widget()
        _show_slabs(lambda: widget, viewer, hung)


def _show_slabs(mpr_for: Callable[[], MprWidget | None], viewer: ViewerWidget,
                hung: HungStage) -> None:
    """The stage's plane cells: their series in an MPR, those planes, the slab, the window."""
    cells = hung.slab_cells
    first = cells[0]
    session = viewer.session(first.series.series_instance_uid)
    mpr = mpr_for()
    if mpr is None:
        return
    mpr.set_series(session)
    mpr.show_planes(tuple(c.plane for c in cells))
    mpr.set_slab(first.slab_mode, first.slab_mm)
    preset = _preset(viewer, first.series.modality, first.preset) if first.preset else None
    if preset is not None:
        mpr.apply_preset(preset)


# -- findings ---------------------------------------------------------------------------------
def _current_sessions(viewer: ViewerWidget) -> list[LoadedSeries]:
    uids = {s.series_instance_uid for s in viewer.study.series}
    return [s for uid, s in viewer.sessions.items() if uid in uids and s.volume is not None]


def _label(note: Annotation, values: np.ndarray, spacing: tuple[float, float],
           quantity: Quantity) -> str:
    """What the presentation state writes beside ``note`` (other viewers show it)."""
    if note.kind == "length" and len(note.points) == 2:
        return f"{length_mm(*note.points):.1f} mm"
    if note.kind == "angle" and len(note.points) == 3:
        return f"{angle_deg(*note.points):.1f}°"
    if note.kind == "text":
        return note.text
    if note.kind == "probe" and note.points:
        x, y = note.points[0]
        j, i = int(y / spacing[0]), int(x / spacing[1])
        if 0 <= j < values.shape[0] and 0 <= i < values.shape[1]:
            value = float(values[j, i])
            return "" if np.isnan(value) else quantity.text(value)
        return ""
    if note.kind in ("ellipse", "rect") and len(note.points) == 2:
        stats = roi_stats(values, note.kind, note.points[0], note.points[1], spacing)
        return mean_text(stats, quantity) if stats else ""
    return ""


def _display(viewer: ViewerWidget, session: LoadedSeries, marked: list[str]) -> Display | None:
    """How the first viewport showing ``session`` shows it: window, area in view (view mm),
    for the slice in view and the images marked."""
    viewport = next((v for v in viewer.visible_viewports()
                     if v.session is session and v.volume is not None), None)
    if viewport is None or viewport.volume is None:
        return None
    window = viewport.state.window
    (x0, x1), (y0, y1) = viewport.view.viewRange()
    sops = (viewport.volume.slices[viewport.state.k].sop_instance_uid, *marked)
    return Display(tuple(dict.fromkeys(sops)), window.pair if window.known else None,
                   ((float(x0), float(y0)), (float(x1), float(y1))))


def frame_number(ref: SliceRef) -> int | None:
    """The slice's frame counted from 1 (Referenced Frame Number) in a multi-frame image;
    None in a single-frame one."""
    return ref.frame + 1 if ref.info.frames > 1 else None


def collect_findings(viewer: ViewerWidget) -> Findings:
    """What the reader marked in today's study, and how its series are shown, ready to be
    saved."""
    regions: list[RegionFinding] = []
    marks: list[Mark] = []
    displays: list[Display] = []
    for session in _current_sessions(viewer):
        volume = session.volume
        assert volume is not None
        midline = viewer.midline_tool.midlines.get(session.series.series_instance_uid)
        spacing = (volume.spacing[1], volume.spacing[2])
        marked: list[str] = []
        for k, notes in session.annotations.items():
            values = session.slice_values(k) if notes else None
            if values is None:
                continue
            sop = volume.slices[k].sop_instance_uid
            frame = frame_number(volume.slices[k])
            marked.append(sop)
            quantity = session.quantity(k)
            unit = quantity.unit
            for note in notes:
                marks.append(Mark(sop, note.kind, tuple(note.points),
                                  _label(note, values, spacing, quantity), frame=frame))
                if note.kind not in ("ellipse", "rect"):
                    continue
                p0, p1 = note.points[0], note.points[1]
                mirrored = mirror_stats(values, note.kind, p0, p1, spacing, midline) \
                    if midline is not None else None
                if mirrored is not None:
                    regions.append(RegionFinding(sop, note.kind, p0, p1, mirrored.here.mean,
                                                 mirrored.here.sd, mirrored.there.mean,
                                                 mirrored.there.sd, midline, unit=unit,
                                                 frame=frame))
                elif (stats := roi_stats(values, note.kind, p0, p1, spacing)) is not None:
                    regions.append(RegionFinding(sop, note.kind, p0, p1, stats.mean, stats.sd,
                                                 unit=unit, frame=frame))
        display = _display(viewer, session, marked)
        if display is not None:
            displays.append(display)
    tool = viewer.aspects_tool
    return Findings(
        viewer.study.study_instance_uid, aspects=tool.aspects if tool.scored else None,
        aspects_images=tuple(tool.images), regions=tuple(regions),
        key_images=tuple(viewer.key_images), key_text=viewer.key_text, marks=tuple(marks),
        displays=tuple(displays))


def show_findings(viewer: ViewerWidget, findings: Findings) -> None:
    """Saved findings back on screen: the ASPECTS marks, the regions and the midline on
    their slices, the key images, the drawings and texts, the window and the area in view.
    Series not open yet get theirs when they open."""
    if findings.aspects is not None:
        viewer.aspects_tool.aspects = findings.aspects
        viewer.aspects_tool.images = list(findings.aspects_images)
    viewer.key_images = list(dict.fromkeys([*viewer.key_images, *findings.key_images]))
    if findings.key_text:
        viewer.key_text = findings.key_text
    viewer.pending_findings = findings
    for session in viewer.sessions.values():
        if session.volume is not None:
            viewer.findings_opened(session)
    viewer.refresh_views()


#: Drawings a presentation state gives back as annotations.
PLACED_KINDS = ("length", "arrow", "angle", "ellipse", "rect", "probe", "text")


def place_regions(viewer: ViewerWidget, session: LoadedSeries,
                  shown: Findings | None = None) -> None:
    """The pending findings' regions, drawings and texts that belong to ``session``, as
    annotations (a region of the report and the same outline in the presentation state: once);
    those of ``shown`` (findings placed on it already) are not placed again."""
    findings = viewer.pending_findings
    volume = session.volume
    if findings is None or volume is None:
        return
    index = {s.sop_instance_uid: k for k, s in enumerate(volume.slices)}
    frames = {(s.sop_instance_uid, frame_number(s)): k for k, s in enumerate(volume.slices)}

    def slice_of(found: RegionFinding | Mark) -> int | None:
        """The slice of a region or drawing: its frame's (a report or presentation state
        that names none: its image's)."""
        k = frames.get((found.sop_instance_uid, found.frame))
        return index.get(found.sop_instance_uid) if k is None and found.frame is None else k

    spacing = (volume.spacing[1], volume.spacing[2])
    placed = [r for r in findings.regions if slice_of(r) is not None]
    outlines = {(slice_of(r), r.kind, *r.p0, *r.p1) for r in placed}
    if shown is not None:
        placed = [r for r in placed if r not in shown.regions]
    for region in placed:
        k = slice_of(region)
        assert k is not None
        region = in_view_mm(region, spacing)
        notes = session.annotations.setdefault(k, [])
        notes.append(Annotation(region.kind, [region.p0, region.p1]))
        if region.midline is not None:
            viewer.midline_tool.midlines[session.series.series_instance_uid] = region.midline
    for mark in findings.marks:
        at = slice_of(mark)
        if at is None or mark.kind not in PLACED_KINDS or (
                shown is not None and mark in shown.marks):
            continue
        if mark.kind in ("ellipse", "rect") and any(
                o[:2] == (at, mark.kind) and np.allclose(
                    o[2:], [*mark.points[0], *mark.points[1]], atol=0.01) for o in outlines):
            continue  # drawn from the report already
        points = view_mm(np.array(mark.points), spacing)
        session.annotations.setdefault(at, []).append(
            Annotation(mark.kind, points, text=mark.label if mark.kind == "text" else ""))
    if placed:
        log.info("%d saved regions shown", len(placed))


def show_display(viewer: ViewerWidget, session: LoadedSeries) -> bool:
    """The saved window and area in view (zoom / pan) of ``session``, in the first viewport
    showing it (the one they were saved from). False when it is not shown (yet)."""
    findings = viewer.pending_findings
    volume = session.volume
    if findings is None or volume is None:
        return False
    uids = {s.sop_instance_uid for s in volume.slices}
    display = next((d for d in findings.displays if uids & set(d.sop_instance_uids)), None)
    viewport = next((v for v in viewer.visible_viewports()
                     if v.session is session and v.volume is volume), None)
    if display is None or viewport is None:
        return False
    if display.window is not None:
        viewport.set_window(*display.window)
    if display.area is not None:
        spacing = (volume.spacing[1], volume.spacing[2])
        (x0, y0), (x1, y1) = view_mm(np.array(display.area), spacing)
        viewport.view.setRange(QRectF(x0, y0, x1 - x0, y1 - y0), padding=0)
    return True
