"""The study model: Patient / Study / Series / Instance.

Frozen dataclasses with snake_case DICOM keywords. They hold header values and file references,
never pixels. :class:`ImageInfo` keeps what a volume load needs from one instance (geometry,
pixel format, rescale, where the pixel bytes sit in the file) so that loading a series parses
no header again.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

Vec3 = tuple[float, float, float]
Vec6 = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Patient:
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    issuer_of_patient_id: str = ""


@dataclass(frozen=True)
class FrameInfo:
    """Per-frame values of an enhanced (multi-frame) object, from its functional groups."""

    position: Vec3 | None = None
    orientation: Vec6 | None = None
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    window_center: float | None = None
    window_width: float | None = None
    stack_id: str | None = None
    in_stack_position: int | None = None
    temporal_position: int | None = None


@dataclass(frozen=True)
class ImageInfo:
    """Pixel format, geometry and value mapping of one image instance."""

    rows: int
    columns: int
    frames: int = 1
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    photometric_interpretation: str = "MONOCHROME2"
    planar_configuration: int = 0
    #: File offset of the Pixel Data value (None when not addressable, e.g. deflated files).
    pixel_offset: int | None = None
    #: Length of the Pixel Data value; None for encapsulated (undefined-length) data.
    pixel_length: int | None = None
    #: (offset, length) in the file of each encapsulated fragment, after the offset table.
    fragments: tuple[tuple[int, int], ...] = ()
    position: Vec3 | None = None
    orientation: Vec6 | None = None
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    rescale_type: str = ""
    window_center: float | None = None
    window_width: float | None = None
    voi_lut_function: str = ""
    #: Per-frame values for enhanced objects (empty for classic single-frame images).
    frame_info: tuple[FrameInfo, ...] = ()

    @property
    def is_encapsulated(self) -> bool:
        return self.pixel_length is None

    def to_json(self) -> str:
        # What ``asdict`` gives (every value is a number, text, None or a tuple of them), built
        # directly: indexing a download does this once per instance, and ``asdict`` deep-copies.
        raw = {name: getattr(self, name) for name in _IMAGE_FIELDS}
        raw["frame_info"] = [{name: getattr(f, name) for name in _FRAME_FIELDS}
                             for f in self.frame_info]
        return json.dumps(raw, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ImageInfo:
        raw: dict[str, Any] = json.loads(text)
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImageInfo:
        # Built without calling __init__: opening a series builds hundreds of these from the
        # index, and the generated __init__ of a frozen dataclass costs more than the JSON.
        kw = dict(_IMAGE_DEFAULTS)
        kw.update((k, v) for k, v in raw.items() if k in _IMAGE_DEFAULTS)
        for key in ("position", "orientation", "pixel_spacing"):
            if kw[key] is not None:
                kw[key] = tuple(kw[key])
        kw["fragments"] = tuple(tuple(f) for f in kw["fragments"])
        kw["frame_info"] = tuple(_frame_from_dict(f) for f in kw["frame_info"])
        info = object.__new__(cls)
        info.__dict__.update(kw)
        return info

    def for_file(self, position: Vec3 | None, pixel_offset: int | None,
                 pixel_length: int | None, fragments: tuple[tuple[int, int], ...]) -> ImageInfo:
        """This info with the values of :data:`FILE_FIELDS` replaced: the images of a series
        share the rest, so the index parses the shared part once per series, not per image."""
        info = object.__new__(ImageInfo)
        info.__dict__.update(self.__dict__, position=position, pixel_offset=pixel_offset,
                             pixel_length=pixel_length, fragments=fragments)
        return info


#: The :class:`ImageInfo` fields that differ from image to image of one series (where the
#: slice is, where its pixels sit in its file); the others are usually the same for all.
FILE_FIELDS = ("position", "pixel_offset", "pixel_length", "fragments")

_IMAGE_FIELDS = tuple(f.name for f in fields(ImageInfo))
_FRAME_FIELDS = tuple(f.name for f in fields(FrameInfo))
_IMAGE_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(ImageInfo) if f.default is not MISSING
} | {"rows": 0, "columns": 0}


def _frame_from_dict(raw: dict[str, Any]) -> FrameInfo:
    kw = dict(raw)
    for key in ("position", "orientation", "pixel_spacing"):
        if kw.get(key) is not None:
            kw[key] = tuple(kw[key])
    return FrameInfo(**kw)


@dataclass(frozen=True)
class Instance:
    """One stored DICOM object: identity, file reference and (for images) :class:`ImageInfo`."""

    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str
    transfer_syntax_uid: str
    instance_number: int | None = None
    acquisition_number: int | None = None
    image_type: str = ""
    image: ImageInfo | None = None
    #: Where the bytes are (in the store once imported).
    path: Path | None = None
    sha256: str = ""
    size: int = 0


@dataclass(frozen=True)
class Series:
    series_instance_uid: str
    study_instance_uid: str
    series_number: int | None = None
    modality: str = ""
    series_description: str = ""
    body_part_examined: str = ""
    frame_of_reference_uid: str = ""
    series_date: str = ""
    series_time: str = ""
    instance_count: int = 0

    @property
    def title(self) -> str:
        """"#2 HEAD": its number and description, as far as it has them ("" for neither)."""
        number = f"#{self.series_number}" if self.series_number is not None else ""
        return f"{number} {self.series_description}".strip()


@dataclass(frozen=True)
class Study:
    study_instance_uid: str
    patient: Patient = field(default_factory=Patient)
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    study_id: str = ""
    modalities: tuple[str, ...] = ()
    series: tuple[Series, ...] = ()
    institution_name: str = ""

    @property
    def instance_count(self) -> int:
        return sum(s.instance_count for s in self.series)


@dataclass(frozen=True)
class Header:
    """Everything the index keeps from one file's header (read without pixel data)."""

    patient: Patient
    study: Study
    series: Series
    instance: Instance
    missing_uids: tuple[str, ...] = ()
    """Keywords of the UIDs the file lacks (``StudyInstanceUID``, ``SeriesInstanceUID``): it
    is grouped under UIDs derived here, which its bytes do not carry (a hub or PACS refuses
    it)."""
