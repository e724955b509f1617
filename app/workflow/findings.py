"""A reader's findings as standard DICOM objects in the study, and read back from it.

* the ASPECTS score, the affected regions and the regions measured (with their mirror across
  the midline, mean/SD HU) as a Comprehensive 3D SR measurement report (TID 1500, highdicom);
* key images as a Key Object Selection document with a short text;
* lengths, arrows, angles, regions, probes and texts as a Grayscale Softcopy Presentation
  State, so any DICOM viewer draws them on the images; with each shown series' window and the
  area in view (zoom and pan: the Displayed Area), so the images come back as they were read.

Each object goes into the store in its own series of the same study (sent to a hub like any
series). :func:`read_findings` reads the newest Relay report of a study back into
:class:`Findings`, whoever stored it (this Relay or another that fetched the study).
Coordinates in :class:`Mark`, :class:`RegionFinding` and :class:`Display` are the 2D view's
millimetres (x along the row, y down the column, origin at the first pixel's corner) when saved;
in the objects, and as read back, image pixels (column, row from the same corner).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app.dicom.header import rescale_type_of, value_unit
from app.errors import DicomReadError, RelayError
from app.model import Study
from app.store.ingest import store_instance
from app.store.local import Store, StoredFile
from app.workflow.aspects import REGIONS, SIDES, Aspects

log = logging.getLogger(__name__)

MANUFACTURER = "Relay"
SOFTWARE = "Relay 0.1"
#: Private coding scheme for what no public code names (PS3.16 8.2: "99" prefix is local).
SCHEME = "99RELAY"
ASPECTS_SCORE = hd.sr.CodedConcept("ASPECTS", SCHEME, "ASPECTS")
AFFECTED = hd.sr.CodedConcept("ASPECTS-REGION", SCHEME, "ASPECTS region with early ischemic change")
HU_DIFFERENCE = hd.sr.CodedConcept("HU-DIFF", SCHEME, "Mean difference to the mirrored region")
SCORE_UNIT = hd.sr.CodedConcept("{score}", "UCUM", "score")
#: The unit of a region's values on an image whose values are not Hounsfield units (MR, a CT
#: perfusion map): UCUM's unity.
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
HOUNSFIELD = hd.sr.CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
CT_HEAD = hd.sr.CodedConcept("24725-4", "LN", "CT Head")
SR_SERIES, KOS_SERIES, PR_SERIES = 9101, 9102, 9103
SERIES_DESCRIPTIONS = {"SR": "Relay stroke findings", "KO": "Relay key images",
                       "PR": "Relay annotations"}
_SIDE_CODES = {"right": codes.SCT.Right, "left": codes.SCT.Left}


@dataclass(frozen=True)
class RegionFinding:
    """A region measured on one image, and its mirror across the midline when one was set."""

    sop_instance_uid: str
    kind: str  # "ellipse" | "rect"
    p0: tuple[float, float]
    p1: tuple[float, float]
    mean: float
    sd: float
    mirror_mean: float | None = None
    mirror_sd: float | None = None
    midline: tuple[tuple[float, float], tuple[float, float]] | None = None
    unit: str | None = None
    """The UCUM code of ``mean`` and ``sd`` as measured ("HU", "ml/100ml/s" of a perfusion
    map's real-world values, "" for none); None: the image's modality unit (HU for a CT that
    says so, else none)."""
    frame: int | None = None
    """The frame the region is on, counted from 1 as DICOM's Referenced Frame Number, in a
    multi-frame image (an enhanced CT or MR, a perfusion map); None in a single-frame one."""

    @property
    def difference(self) -> float | None:
        return None if self.mirror_mean is None else self.mean - self.mirror_mean


@dataclass(frozen=True)
class Mark:
    """A drawing for the presentation state: "length", "arrow", "ellipse", "rect", "angle"
    or "text", on one image, with an optional label."""

    sop_instance_uid: str
    kind: str
    points: tuple[tuple[float, float], ...]
    label: str = ""
    frame: int | None = None
    """The frame the drawing is on, counted from 1 as DICOM's Referenced Frame Number, in a
    multi-frame image (an enhanced CT or MR, a perfusion map); None in a single-frame one."""


@dataclass(frozen=True)
class Display:
    """How a series was shown, for the presentation state: its window and the area in view
    (zoom and pan), for the images ``sop_instance_uids`` (the slice in view, those marked)."""

    sop_instance_uids: tuple[str, ...]
    window: tuple[float, float] | None = None
    """(centre, width) in modality units."""
    area: tuple[tuple[float, float], tuple[float, float]] | None = None
    """The top-left and bottom-right corners of the area in view."""


@dataclass(frozen=True)
class Findings:
    study_instance_uid: str
    aspects: Aspects | None = None
    aspects_images: tuple[str, ...] = ()
    """SOP Instance UIDs of the images the score was read on."""
    regions: tuple[RegionFinding, ...] = ()
    key_images: tuple[str, ...] = ()
    key_text: str = ""
    marks: tuple[Mark, ...] = ()
    spacing: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """(row, column) mm per referenced SOP Instance UID: view mm <-> pixels."""
    displays: tuple[Display, ...] = ()


def arrow_head(tail: tuple[float, float], tip: tuple[float, float]
               ) -> list[tuple[float, float]]:
    """The arrow's head as a polyline (one wing, the tip, the other wing), in the same units:
    wings a fifth of the arrow long (2 to 8), 25° off the shaft."""
    dx, dy = tip[0] - tail[0], tip[1] - tail[1]
    n = math.hypot(dx, dy)
    if n == 0:
        return [tip, tip, tip]
    size = min(8.0, max(2.0, n / 5))
    back = math.atan2(-dy, -dx)
    wings = [(tip[0] + size * math.cos(back + a), tip[1] + size * math.sin(back + a))
             for a in (math.radians(25), math.radians(-25))]
    return [wings[0], tip, wings[1]]



# -- sources ----------------------------------------------------------------------------------
def source_headers(store: Store, sop_uids: Iterable[str]) -> dict[str, Dataset]:
    """The stored headers (no pixels) of the referenced images; a missing one is an error."""
    out: dict[str, Dataset] = {}
    for uid in dict.fromkeys(sop_uids):
        instance = store.instance(uid)
        if instance is None or instance.path is None:
            raise DicomReadError(f"the image {uid} the findings refer to is not in the store")
        out[uid] = pydicom.dcmread(instance.path, stop_before_pixels=True)
    return out


def _pixels(points: Sequence[tuple[float, float]], spacing: tuple[float, float]) -> np.ndarray:
    dy, dx = spacing
    return np.array([(x / dx, y / dy) for x, y in points], dtype=np.float32)


def view_mm(points: np.ndarray, spacing: tuple[float, float]) -> list[tuple[float, float]]:
    """Image pixel coordinates (column, row) to view millimetres."""
    dy, dx = spacing
    return [(float(c) * dx, float(r) * dy) for c, r in np.asarray(points).reshape(-1, 2)]


def _spacing(ds: Dataset) -> tuple[float, float]:
    """(row, column) mm of the image's pixels: its Pixel Spacing, or an enhanced object's
    (Pixel Measures of its first frame, or shared by its frames); 1 mm when it gives none, as
    the 2D view does."""
    spacing = ds.get("PixelSpacing")
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        if spacing:
            break
        items = ds.get(groups) or [Dataset()]
        measures = items[0].get("PixelMeasuresSequence") or [Dataset()]
        spacing = measures[0].get("PixelSpacing")
    spacing = spacing or [1.0, 1.0]
    return float(spacing[0]), float(spacing[1])


def _outline(kind: str, p0: tuple[float, float], p1: tuple[float, float]
             ) -> tuple[str, list[tuple[float, float]]]:
    """SCOORD graphic type and points: an ellipse by its two axes, a rectangle as a closed
    polyline."""
    (x0, y0), (x1, y1) = p0, p1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if kind == "ellipse":
        return "ELLIPSE", [(x0, cy), (x1, cy), (cx, y0), (cx, y1)]
    return "POLYLINE", [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


# -- the SR -----------------------------------------------------------------------------------
def build_sr(findings: Findings, sources: Mapping[str, Dataset]) -> Dataset:
    """The measurement report (TID 1500) of ``findings``."""
    groups: list[Any] = []
    if findings.aspects is not None:
        images = [sources[u] for u in findings.aspects_images]
        for side in SIDES:
            evaluations = [hd.sr.QualitativeEvaluation(
                AFFECTED, hd.sr.CodedConcept(code, SCHEME, REGIONS[code][0]))
                for code in REGIONS if code in findings.aspects.affected.get(side, ())]
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(), identifier=f"ASPECTS {side}"),
                finding_sites=[hd.sr.FindingSite(codes.SCT.Brain, laterality=_SIDE_CODES[side])],
                measurements=[hd.sr.Measurement(ASPECTS_SCORE, findings.aspects.score(side),
                                                SCORE_UNIT)],
                qualitative_evaluations=evaluations or None,
                source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)
                               for ds in images] or None))
    for n, region in enumerate(findings.regions, start=1):
        ds = sources[region.sop_instance_uid]
        spacing = _spacing(ds)
        graphic, points = _outline(region.kind, region.p0, region.p1)
        unit = _unit_code(region.unit if region.unit is not None else value_unit(
            str(ds.get("Modality", "")), rescale_type_of(ds)))
        measurements = [
            hd.sr.Measurement(codes.SCT.Mean, region.mean, unit),
            hd.sr.Measurement(codes.SCT.StandardDeviation, region.sd, unit)]
        if region.mirror_mean is not None and region.mirror_sd is not None:
            measurements += [
                hd.sr.Measurement(hd.sr.CodedConcept("MIRROR-MEAN", SCHEME,
                                                     "Mean in the mirrored region"),
                                  region.mirror_mean, unit),
                hd.sr.Measurement(hd.sr.CodedConcept("MIRROR-SD", SCHEME,
                                                     "Standard deviation in the mirrored region"),
                                  region.mirror_sd, unit),
                hd.sr.Measurement(HU_DIFFERENCE, region.mean - region.mirror_mean, unit)]
        label = f"Region {n}"
        if region.midline is not None:  # in pixels, as the region's outline
            (ax, ay), (bx, by) = _pixels(region.midline, spacing)
            label += f" midline {ax:.2f},{ay:.2f},{bx:.2f},{by:.2f}"
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=label),
            referenced_region=hd.sr.ImageRegion(
                graphic_type=graphic, graphic_data=_pixels(points, spacing),
                source_image=hd.sr.SourceImageForRegion.from_source_image(
                    ds, referenced_frame_numbers=_frames(region.frame))),
            measurements=measurements))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Device,
                observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                    uid=generate_uid(), name="Relay", manufacturer_name=MANUFACTURER))),
        procedure_reported=CT_HEAD, imaging_measurements=groups or None)
    evidence = list({**{u: sources[u] for u in findings.aspects_images},
                     **{r.sop_instance_uid: sources[r.sop_instance_uid]
                        for r in findings.regions}}.values())
    return hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report, series_instance_uid=generate_uid(),
        series_number=SR_SERIES, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True)


def _frames(frame: int | None) -> list[int] | None:
    """Referenced Frame Number of an image reference: the frame, or none (the whole image)."""
    return None if frame is None else [frame]


def _unit_code(unit: str) -> hd.sr.CodedConcept:
    """The UCUM concept of a region's values: Hounsfield units, a real-world unit such as
    "ml/100ml/s" (its UCUM code, as the image's mapping gives it), or none."""
    if unit == "HU":
        return HOUNSFIELD
    return hd.sr.CodedConcept(unit, "UCUM", unit) if unit else NO_UNITS


def build_kos(sop_uids: Sequence[str], text: str, sources: Mapping[str, Dataset]) -> Dataset:
    """A Key Object Selection document ("Of Interest") of the images, with ``text``."""
    images = [sources[u] for u in sop_uids]
    content = hd.ko.KeyObjectSelection(document_title=codes.DCM.OfInterest,
                                       referenced_objects=images,
                                       description=text.strip()[:1024] or None)
    return hd.ko.KeyObjectSelectionDocument(
        evidence=images, content=content, series_instance_uid=generate_uid(),
        series_number=KOS_SERIES, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER)


#: The presentation state's layers: the drawings with their labels, and free text.
LAYER, TEXT_LAYER = "RELAY", "RELAY_TEXT"


def _graphic(mark: Mark) -> tuple[str, list[tuple[float, float]]]:
    """SCOORD graphic type ("" for none: a text) and points of ``mark`` (view mm)."""
    if mark.kind in ("ellipse", "rect"):
        return _outline(mark.kind, mark.points[0], mark.points[1])
    if mark.kind == "arrow":  # the shaft, then the head: tail, tip, wing, tip, wing
        wing_a, tip, wing_b = arrow_head(mark.points[0], mark.points[-1])
        return "POLYLINE", [mark.points[0], tip, wing_a, tip, wing_b]
    if mark.kind in ("length", "angle"):
        return "POLYLINE", list(mark.points)
    if mark.kind == "probe":
        return "POINT", list(mark.points[:1])
    return "", list(mark.points[:1])


def build_gsps(marks: Sequence[Mark], sources: Mapping[str, Dataset],
               window: tuple[float, float] | None = None,
               displays: Sequence[Display] = ()) -> Dataset:
    """A presentation state drawing ``marks`` on their images, with each display's window
    and area in view (or ``window`` for every image, without displays)."""
    layer = hd.pr.GraphicLayer(layer_name=LAYER, order=1, description="Relay measurements")
    text_layer = hd.pr.GraphicLayer(layer_name=TEXT_LAYER, order=2, description="Relay text")
    annotations = []
    for uid, frame in dict.fromkeys((m.sop_instance_uid, m.frame) for m in marks):
        ds = sources[uid]
        spacing = _spacing(ds)
        graphics: list[hd.pr.GraphicObject] = []
        labels: list[hd.pr.TextObject] = []
        texts: list[hd.pr.TextObject] = []
        for mark in (m for m in marks if (m.sop_instance_uid, m.frame) == (uid, frame)):
            kind, points = _graphic(mark)
            if kind:
                graphics.append(hd.pr.GraphicObject(kind, _pixels(points, spacing), "PIXEL"))
            if mark.label:
                x, y = _pixels(points[:1], spacing)[0]
                (labels if kind else texts).append(hd.pr.TextObject(
                    mark.label[:1024], "PIXEL", anchor_point=(float(x), float(y)),
                    anchor_point_visible=not kind))
        if graphics or labels:
            annotations.append(hd.pr.GraphicAnnotation(
                referenced_images=[ds], graphic_layer=layer, referenced_frame_number=frame,
                graphic_objects=graphics or None, text_objects=labels or None))
        if texts:
            annotations.append(hd.pr.GraphicAnnotation(
                referenced_images=[ds], graphic_layer=text_layer,
                referenced_frame_number=frame, text_objects=texts))
    shown = [u for d in displays for u in d.sop_instance_uids]
    images = [sources[u] for u in dict.fromkeys([*(m.sop_instance_uid for m in marks), *shown])]
    voi = []
    for display in displays:
        if display.window is not None and display.sop_instance_uids:
            voi.append(_voi(display.window, [sources[u] for u in display.sop_instance_uids]))
    if window is not None and not displays:
        voi.append(_voi(window, images))
    pr = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=images, series_instance_uid=generate_uid(),
        series_number=PR_SERIES, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name="Relay",
        software_versions=SOFTWARE, device_serial_number="0", content_label="RELAY",
        content_description="Relay measurements", graphic_layers=[layer, text_layer],
        graphic_annotations=annotations or None, voi_lut_transformations=voi or None)
    areas = [_displayed_area(d, [sources[u] for u in d.sop_instance_uids])
             for d in displays if d.area is not None and d.sop_instance_uids]
    if areas:  # in place of highdicom's one whole-image area for every image
        pr.DisplayedAreaSelectionSequence = areas
    return pr


def _voi(window: tuple[float, float], images: Sequence[Dataset]
         ) -> hd.pr.SoftcopyVOILUTTransformation:
    return hd.pr.SoftcopyVOILUTTransformation(
        window_center=window[0], window_width=max(1.0, window[1]),
        referenced_images=hd.ReferencedImageSequence(referenced_images=images))


def _displayed_area(display: Display, images: Sequence[Dataset]) -> Dataset:
    """A Displayed Area Selection item: the area in view, in whole pixels (1\\1 is the first
    pixel; the corners are signed (SL): an area reaching past the image, as a fitted or panned
    view does, has a corner below 1 or beyond the last pixel), fit to the viewport."""
    assert display.area is not None
    dy, dx = _spacing(images[0])
    (x0, y0), (x1, y1) = display.area
    item = Dataset()
    item.ReferencedImageSequence = hd.ReferencedImageSequence(referenced_images=images)
    item.DisplayedAreaTopLeftHandCorner = [math.floor(x0 / dx) + 1, math.floor(y0 / dy) + 1]
    item.DisplayedAreaBottomRightHandCorner = [max(math.ceil(x1 / dx), 1),
                                               max(math.ceil(y1 / dy), 1)]
    item.PresentationSizeMode = "SCALE TO FIT"
    item.PresentationPixelAspectRatio = [1, 1]
    return item


def save_findings(store: Store, findings: Findings,
                  window: tuple[float, float] | None = None) -> list[StoredFile]:
    """Build the SR (when there is a score or a region), the KOS (key images) and the
    presentation state (marks, windows, areas in view), and add them to the study in the
    store."""
    wanted = [*findings.aspects_images, *(r.sop_instance_uid for r in findings.regions),
              *findings.key_images, *(m.sop_instance_uid for m in findings.marks),
              *(u for d in findings.displays for u in d.sop_instance_uids)]
    sources = source_headers(store, wanted)
    objects: list[Dataset] = []
    with warnings.catch_warnings():  # highdicom's doubts about the source's patient name
        warnings.simplefilter("ignore", UserWarning)
        if findings.aspects is not None or findings.regions:
            objects.append(build_sr(findings, sources))
        if findings.key_images:
            objects.append(build_kos(findings.key_images, findings.key_text, sources))
        if findings.marks or findings.displays:
            objects.append(build_gsps(findings.marks, sources, window, findings.displays))
    stored = []
    for ds in objects:  # built above; written and indexed here
        if ds.Modality == "PR" and "Laterality" not in ds:
            ds.Laterality = ""  # General Series type 2C (paired body parts); dciodvfy asks
        ds.SeriesDescription = SERIES_DESCRIPTIONS.get(ds.Modality, ds.Modality)
        stored.append(store_instance(store, _encode(ds), f"{ds.Modality} findings"))
    log.info("findings saved: %s", ", ".join(ds.Modality for ds in objects) or "nothing")
    return stored


def _encode(ds: Dataset) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# -- reading back -----------------------------------------------------------------------------
def _items(seq: Iterable[Dataset]) -> Iterable[Dataset]:
    for item in seq:
        yield item
        yield from _items(item.get("ContentSequence", []))


def _concept(item: Dataset) -> tuple[str, str]:
    name = item.get("ConceptNameCodeSequence")
    return (str(name[0].CodeValue), str(name[0].CodingSchemeDesignator)) if name else ("", "")


def _groups(ds: Dataset) -> Iterable[Dataset]:
    for item in _items(ds.get("ContentSequence", [])):
        if item.get("ValueType") == "CONTAINER" and _concept(item) == ("125007", "DCM"):
            yield item


def _children(group: Dataset) -> list[Dataset]:
    return list(group.get("ContentSequence", []))


def _num(item: Dataset) -> float | None:
    values = item.get("MeasuredValueSequence")
    return float(values[0].NumericValue) if values else None


def parse_sr(ds: Dataset) -> Findings:
    """The findings of a Relay measurement report (:func:`build_sr`)."""
    affected: dict[str, set[str]] = {side: set() for side in SIDES}
    scored = False
    images: list[str] = []
    regions: list[RegionFinding] = []
    spacing: dict[str, tuple[float, float]] = {}
    for group in _groups(ds):
        children = _children(group)
        ident = next((str(c.TextValue) for c in children if _concept(c) == ("112039", "DCM")
                      and "TextValue" in c), "")
        numbers = {_concept(c)[0]: _num(c) for c in children if c.get("ValueType") == "NUM"}
        if ident.startswith("ASPECTS "):
            side = ident.split(" ", 1)[1]
            if side not in affected:
                continue
            scored = True
            for c in children:
                if _concept(c) == (AFFECTED.value, SCHEME) and "ConceptCodeSequence" in c:
                    affected[side].add(str(c.ConceptCodeSequence[0].CodeValue))
                if c.get("ValueType") == "IMAGE" and "ReferencedSOPSequence" in c:
                    images.append(str(c.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
            continue
        region = _region(children, numbers, ident, spacing)
        if region is not None:
            regions.append(region)
    aspects = Aspects.of(affected["right"], affected["left"]) if scored else None
    return Findings(study_instance_uid=str(ds.StudyInstanceUID), aspects=aspects,
                    aspects_images=tuple(dict.fromkeys(images)), regions=tuple(regions),
                    spacing=spacing)


def _region(children: list[Dataset], numbers: Mapping[str, float | None], ident: str,
            spacing: dict[str, tuple[float, float]]) -> RegionFinding | None:
    scoord = next((c for c in children if c.get("ValueType") == "SCOORD"), None)
    if scoord is None or "ContentSequence" not in scoord:
        return None
    image = scoord.ContentSequence[0].ReferencedSOPSequence[0]
    sop = str(image.ReferencedSOPInstanceUID)
    frame = _first_frame(image)
    mean, sd = numbers.get("373098007"), numbers.get("386136009")
    if mean is None or sd is None:
        return None
    pixels = np.array(scoord.GraphicData, dtype=np.float64).reshape(-1, 2)
    xs, ys = pixels[:, 0], pixels[:, 1]
    kind = "ellipse" if scoord.GraphicType == "ELLIPSE" else "rect"
    midline = None
    if " midline " in ident:
        try:
            ax, ay, bx, by = (float(v) for v in ident.split(" midline ", 1)[1].split(","))
            midline = ((ax, ay), (bx, by))
        except ValueError:
            midline = None
    px = (float(xs.min()), float(ys.min())), (float(xs.max()), float(ys.max()))
    return RegionFinding(sop, kind, px[0], px[1], mean, sd, numbers.get("MIRROR-MEAN"),
                         numbers.get("MIRROR-SD"), midline, frame=frame)


def _first_frame(image: Dataset) -> int | None:
    """The (first) Referenced Frame Number of an image reference, None when it names none."""
    frames = image.get("ReferencedFrameNumber")
    if frames is None or frames == "":
        return None
    value = frames[0] if isinstance(frames, Sequence) and not isinstance(frames, str) \
        else frames
    return int(value)


def in_view_mm(region: RegionFinding, row_col_spacing: tuple[float, float]) -> RegionFinding:
    """``region`` as read from an SR (corners in pixels) in view millimetres."""
    (p0,), (p1,) = (view_mm(np.array(p), row_col_spacing) for p in (region.p0, region.p1))
    midline = None
    if region.midline is not None:
        a, b = view_mm(np.array(region.midline), row_col_spacing)
        midline = (a, b)
    return replace(region, p0=p0, p1=p1, midline=midline)


def read_findings(store: Store, study: Study) -> Findings | None:
    """The newest Relay findings report stored with ``study`` (with its key images), or None.
    A report that cannot be read is logged and skipped."""
    reports: list[tuple[str, Findings]] = []
    keys: tuple[str, ...] = ()
    key_text = ""
    marks: tuple[Mark, ...] = ()
    displays: tuple[Display, ...] = ()
    newest_pr = ""
    for series in study.series:
        if series.modality not in ("SR", "KO", "PR"):
            continue
        for instance in store.instances(series.series_instance_uid):
            if instance.path is None:
                continue
            try:
                ds = pydicom.dcmread(instance.path)
                if series.modality == "KO":
                    keys, key_text = _key_images(ds)
                elif series.modality == "PR":
                    when = f"{ds.get('PresentationCreationDate', '')}" \
                           f"{ds.get('PresentationCreationTime', '')}"
                    if ds.get("Manufacturer") == MANUFACTURER and when >= newest_pr:
                        marks, displays, newest_pr = _marks(ds), _displays(ds), when
                elif ds.get("Manufacturer") == MANUFACTURER:
                    when = f"{ds.get('ContentDate', '')}{ds.get('ContentTime', '')}"
                    reports.append((when, parse_sr(ds)))
            except (OSError, ValueError, AttributeError, IndexError, KeyError, RelayError,
                    pydicom.errors.InvalidDicomError) as exc:
                log.warning("findings object %s not read: %s", instance.sop_instance_uid, exc)
    if not reports and not keys and not marks and not displays:
        return None
    base = max(reports, key=lambda r: r[0])[1] if reports else Findings(
        study.study_instance_uid)
    return Findings(base.study_instance_uid, base.aspects, base.aspects_images, base.regions,
                    keys, key_text, marks, base.spacing, displays)


def _key_images(ds: Dataset) -> tuple[tuple[str, ...], str]:
    uids, text = [], ""
    for item in _items(ds.get("ContentSequence", [])):
        if item.get("ValueType") == "IMAGE" and "ReferencedSOPSequence" in item:
            uids.append(str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
        elif item.get("ValueType") == "TEXT" and not text:
            text = str(item.get("TextValue", ""))
    return tuple(dict.fromkeys(uids)), text


def _marks(ds: Dataset) -> tuple[Mark, ...]:
    """The drawings of a presentation state, in pixels: each graphic object with the text
    anchored on its first point as its label; other texts on their own ("text")."""
    out: list[Mark] = []
    for annotation in ds.get("GraphicAnnotationSequence", []):
        refs = annotation.get("ReferencedImageSequence", [])
        if not refs:
            continue
        sop = str(refs[0].ReferencedSOPInstanceUID)
        frame = _first_frame(refs[0])
        found: list[Mark] = []
        for obj in annotation.get("GraphicObjectSequence", []):
            points = np.array(obj.GraphicData, dtype=np.float64).reshape(-1, 2)
            kind = {"ELLIPSE": "ellipse", "POLYLINE": "length", "CIRCLE": "ellipse",
                    "POINT": "probe"}.get(str(obj.GraphicType), "length")
            if obj.GraphicType == "ELLIPSE":
                points = np.array([points[:, 0].min(), points[:, 1].min(),
                                   points[:, 0].max(), points[:, 1].max()]).reshape(2, 2)
            elif len(points) == 5 and np.allclose(points[1], points[3]):
                kind = "arrow"
                points = points[:2]
            elif len(points) == 5 and np.allclose(points[0], points[-1]):
                kind = "rect"
                points = np.array([points.min(axis=0), points.max(axis=0)])
            elif len(points) == 3 and kind == "length":
                kind = "angle"
            found.append(Mark(sop, kind, tuple((float(x), float(y)) for x, y in points),
                              frame=frame))
        for text in annotation.get("TextObjectSequence", []):
            anchor = text.get("AnchorPoint")
            if anchor is None:
                continue
            at = (float(anchor[0]), float(anchor[1]))
            value = str(text.get("UnformattedTextValue", ""))
            owner = next((n for n, m in enumerate(found)
                          if not m.label and np.allclose(_label_at(m), at, atol=1e-3)), None)
            if owner is not None:
                found[owner] = replace(found[owner], label=value)
            else:
                found.append(Mark(sop, "text", (at,), value, frame=frame))
        out += found
    return tuple(out)


def _label_at(mark: Mark) -> tuple[float, float]:
    """Where :func:`build_gsps` anchors ``mark``'s label: its outline's first point."""
    if mark.kind == "ellipse":
        return mark.points[0][0], (mark.points[0][1] + mark.points[1][1]) / 2
    return mark.points[0]


def _displays(ds: Dataset) -> tuple[Display, ...]:
    """Each window and area in view of a presentation state, for the images it names (in
    pixels: the area's corners from the first pixel's corner)."""
    windows: dict[str, tuple[float, float]] = {}
    for item in ds.get("SoftcopyVOILUTSequence", []):
        if "WindowCenter" not in item or "WindowWidth" not in item:
            continue
        centre, width = (float(v[0] if isinstance(v, Sequence) else v)
                         for v in (item.WindowCenter, item.WindowWidth))
        for ref in item.get("ReferencedImageSequence", []):
            windows[str(ref.ReferencedSOPInstanceUID)] = (centre, width)
    areas: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
    for item in ds.get("DisplayedAreaSelectionSequence", []):
        tl, br = item.get("DisplayedAreaTopLeftHandCorner"), item.get(
            "DisplayedAreaBottomRightHandCorner")
        if tl is None or br is None:
            continue
        area = ((float(tl[0]) - 1, float(tl[1]) - 1), (float(br[0]), float(br[1])))
        for ref in item.get("ReferencedImageSequence", []):
            areas[str(ref.ReferencedSOPInstanceUID)] = area
    groups: dict[tuple[object, object], list[str]] = {}
    for uid in dict.fromkeys([*windows, *areas]):
        groups.setdefault((windows.get(uid), areas.get(uid)), []).append(uid)
    return tuple(Display(tuple(uids), window, area)  # type: ignore[arg-type]
                 for (window, area), uids in groups.items())
