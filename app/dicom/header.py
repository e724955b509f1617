"""Read one DICOM file's header, safely, into the study model.

The reader is built for outside media: files without preamble or file meta, truncated files,
headers that lie about sizes, deeply nested sequences, non-DICOM files mixed in. It never
decodes pixels and never allocates more than the file's own size: pydicom reads from an
in-memory view whose ``read(n)`` returns at most what is there.

Each refusal is a :class:`~app.errors.NotDicomError` (not DICOM at all: skipped) or a
:class:`~app.errors.DicomReadError` (DICOM that cannot be taken: failed), with a reason in plain
words.
"""

from __future__ import annotations

import logging
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from app.dicom.header_fast import scan
from app.errors import DicomReadError, NotDicomError
from app.model import FrameInfo, Header, ImageInfo, Instance, Patient, Series, Study

log = logging.getLogger(__name__)

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
PIXEL_DATA = 0x7FE00010
PIXEL_TAGS = (PIXEL_DATA, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float
#: Largest decoded frame accepted (bytes); beyond this a header is lying or not for us.
MAX_FRAME_BYTES = 1 << 30
#: Values larger than this are not read at header time (pixel data, big private blobs).
DEFER_SIZE = 64 * 1024
#: A deflated dataset may inflate to this many times the file's size (deflate tops out near
#: 1000:1 on zeros; real images reach a few :1), never beyond MAX_INFLATED_BYTES.
MAX_INFLATE_RATIO = 200
INFLATE_FLOOR = 16 << 20
MAX_INFLATED_BYTES = 1 << 30

_VALID_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
}
#: Read plain Part-10 files with :mod:`app.dicom.header_fast` (tests turn it off to compare).
use_fast_reader = True
_FIRST_GROUPS = {0x0000, 0x0002, 0x0004, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028}

warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")


# -- pydicom's complaints, captured per thread -----------------------------------------------
class _Capture(logging.Handler):
    """Collects pydicom's log messages for the thread that asked (thread-safe, unlike warnings)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(self.local, "sink", None)
        if sink is not None:
            sink.append(record.getMessage())


_capture = _Capture()
logging.getLogger("pydicom").addHandler(_capture)


@contextmanager
def _pydicom_messages() -> Iterator[list[str]]:
    sink: list[str] = []
    _capture.local.sink = sink
    try:
        yield sink
    finally:
        _capture.local.sink = None


class BufferReader:
    """A read-only file object over bytes or an mmap.

    Unlike a real file, ``read(n)`` never allocates ``n`` bytes up front, so a header claiming a
    4 GB element in a 1 kB file costs nothing. Seeking past the end is allowed (as for files).
    """

    def __init__(self, buf: Any, name: str = "") -> None:
        # Slices, not a memoryview: a view would pin an mmap (its close raises BufferError)
        # for as long as an exception's traceback keeps this reader alive.
        self._buf = buf
        self._size = len(buf)
        self._pos = 0
        self.name = name
        #: The latest read got some but not all of the bytes asked for: the file ends inside
        #: something (a clean end of file reads nothing at all).
        self.ended_inside = False

    def read(self, n: int | None = -1) -> bytes:
        start = min(self._pos, self._size)
        end = self._size if n is None or n < 0 else min(self._size, start + n)
        self._pos = max(self._pos, end)
        self.ended_inside = n is not None and 0 < end - start < n
        piece = self._buf[start:end]
        return piece if isinstance(piece, bytes) else bytes(piece)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the file")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:  # pydicom may call it
        pass


# -- is it DICOM at all? ---------------------------------------------------------------------
def _plausible_element(buf: Any, at: int) -> bool:
    """Does a DICOM data element plausibly start at ``at`` (any of the three encodings)?"""
    head = bytes(buf[at : at + 8])
    if len(head) < 8:
        return False
    for order in ("<", ">"):
        group, elem = struct.unpack(order + "HH", head[:4])
        if group not in _FIRST_GROUPS or group % 2:
            continue
        if head[4:6] in _VALID_VRS:
            return True
        (length,) = struct.unpack(order + "I", head[4:8])
        if length < len(buf) and elem < 0x1000:
            return True
    return False


def sniff(buf: Any) -> str:
    """Classify a file from its first bytes: ``"part10"``, ``"raw"`` (no meta) or ``"other"``."""
    if len(buf) >= 132 and bytes(buf[128:132]) == b"DICM":
        return "part10"
    if _plausible_element(buf, 0):
        return "raw"
    return "other"


def _junk_prefix(buf: Any, limit: int = 512) -> int:
    """Offset of a plausible DICOM start after some junk bytes, or 0 if none is found."""
    for at in range(1, min(limit, len(buf) - 8)):
        if bytes(buf[at : at + 2]) in (b"\x08\x00", b"\x02\x00") and _plausible_element(buf, at):
            return at
    return 0


# -- reading ---------------------------------------------------------------------------------
def read_header(buf: Any, name: str = "", *, uid_key: bytes = b"") -> Header:
    """Parse the header in ``buf`` (bytes or mmap of one whole file) into a :class:`Header`.

    ``uid_key``: the store's secret (:attr:`app.store.local.Store.uid_key`) for the UIDs made
    up for an object that lacks its study or series UID (a keyed hash: the same in this store,
    not linkable to its patient by anyone who guesses the identifiers).

    Raises
    ------
    NotDicomError
        The bytes are not DICOM, or are a DICOM directory rather than an object to store.
    DicomReadError
        DICOM that cannot be stored; ``reason`` says why in plain words.
    """
    size = len(buf)
    if size == 0:
        raise NotDicomError("empty file")
    kind = sniff(buf)
    if kind == "other":
        junk = _junk_prefix(buf)
        if junk:
            raise DicomReadError(
                f"{junk} byte(s) of unknown data before the DICOM data (no preamble, no file meta)"
            )
        raise NotDicomError("not a DICOM file")

    ds = _dataset(buf, name, kind)
    meta = ds.file_meta
    if kind == "part10":
        if "TransferSyntaxUID" not in meta or not str(meta.TransferSyntaxUID).strip():
            raise DicomReadError("no transfer syntax in file meta")
        ts = str(meta.TransferSyntaxUID).strip()
    else:
        implicit, little = ds.original_encoding
        ts = IMPLICIT_LE if implicit else (EXPLICIT_LE if little else EXPLICIT_BE)

    sop_class = _text(ds, "SOPClassUID") or _text(meta, "MediaStorageSOPClassUID")
    if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        raise NotDicomError("DICOM directory file (DICOMDIR or vendor index), not an image")

    if ts != DEFLATED_LE:  # positions in a deflated file refer to the inflated stream
        _check_complete(ds, size)
    if len(ds) == 0:
        raise DicomReadError("file ends inside the dataset (nothing readable)")
    uids = {k: _text(ds, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    if not uids["SOPInstanceUID"]:
        raise DicomReadError("no SOP Instance UID: not a storable DICOM object")
    # Test files and some old exports lack the study or series UID. Group them the way a
    # workstation would (same patient, date, study ID / series number) under UIDs derived from
    # those values, so a re-import finds the same study again.
    missing = tuple(k for k in ("StudyInstanceUID", "SeriesInstanceUID") if not uids[k])
    if not uids["StudyInstanceUID"]:
        uids["StudyInstanceUID"] = _derived_uid(
            uid_key, "study", ds, ("PatientID", "PatientName", "StudyDate", "StudyTime",
                                   "StudyID", "AccessionNumber"))
    if not uids["SeriesInstanceUID"]:
        uids["SeriesInstanceUID"] = _derived_uid(
            uid_key, "series", ds, ("SeriesNumber", "Modality", "SeriesDescription"),
            uids["StudyInstanceUID"])
    if not sop_class:
        raise DicomReadError("no SOP Class UID: not a storable DICOM object")

    image = _image_info(ds, buf, ts) if any(t in ds for t in PIXEL_TAGS) else None
    return _build(ds, ts, sop_class, uids, image, missing)


def _dataset(buf: Any, name: str, kind: str) -> Any:
    """The parsed dataset: the fast reader's for a plain Part-10 file, else pydicom's."""
    fast = scan(buf) if kind == "part10" and use_fast_reader else None
    return fast if fast is not None else _parse(buf, name)


def header_of_dataset(ds: Any, ts: str = "") -> Header:
    """The :class:`Header` of a dataset read elsewhere (DICOM JSON metadata: no pixel data).

    ``ds`` is a pydicom dataset or anything that answers ``get(keyword)`` and ``in`` like one.

    An object with Rows, Columns and Bits Allocated counts as an image; where its pixel bytes
    sit is unknown (``pixel_offset`` None) until the file itself arrives.

    Raises
    ------
    DicomReadError
        No SOP Instance UID, or an implausible image format.
    """
    uids = {k: _text(ds, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    if not uids["SOPInstanceUID"]:
        raise DicomReadError("no SOP Instance UID: not a storable DICOM object")
    image = None
    if any(t in ds for t in PIXEL_TAGS) or ("Rows" in ds and "Columns" in ds):
        image = _image_info(ds, b"", ts)
    return _build(ds, ts, _text(ds, "SOPClassUID"), uids, image)


def inflate_bounded(data: Any, limit: int) -> bytes:
    """Inflate a raw deflate stream (PS3.5 A.5), refusing to produce more than ``limit`` bytes."""
    try:
        out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, limit + 1)
    except zlib.error as exc:
        raise DicomReadError(f"deflated data is damaged ({exc})") from None
    if len(out) > limit:
        raise DicomReadError(
            f"deflated data inflates to more than {limit >> 20} MB (a deflate bomb?)")
    return out


def inflate_limit(size: int) -> int:
    """How far a deflated file of ``size`` bytes may inflate."""
    return min(MAX_INFLATED_BYTES, max(INFLATE_FLOOR, MAX_INFLATE_RATIO * size))


def _read_deflated(buf: Any, name: str) -> Dataset | None:
    """A Deflated Explicit VR Little Endian file read with a bounded inflate (pydicom inflates
    whatever the stream holds), or None when the file is not deflated."""
    if len(buf) < 132 or bytes(buf[128:132]) != b"DICM":
        return None
    from pydicom.dataset import FileDataset
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble

    reader = BufferReader(buf, name)
    preamble = read_preamble(reader, force=True)  # type: ignore[arg-type]
    meta = _read_file_meta_info(reader)  # type: ignore[arg-type]
    if str(meta.get("TransferSyntaxUID", "")).strip() != DEFLATED_LE:
        return None
    inflated = inflate_bounded(memoryview(buf)[reader.tell():], inflate_limit(len(buf)))
    inner = BufferReader(inflated, name)
    dataset = read_dataset(inner, False, True, defer_size=DEFER_SIZE)  # type: ignore[arg-type]
    ds = FileDataset(name, dataset, preamble, meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds


def _parse(buf: Any, name: str) -> Dataset:
    try:
        reader = BufferReader(buf, name)
        with _pydicom_messages() as messages:
            deflated = _read_deflated(buf, name)
            ds = deflated if deflated is not None else pydicom.dcmread(
                reader, force=True, defer_size=DEFER_SIZE)
    except DicomReadError:
        raise
    except RecursionError:
        raise DicomReadError("sequences nested too deeply to read") from None
    except MemoryError:
        raise DicomReadError("a length in the header is impossibly large") from None
    except (EOFError, struct.error):
        raise DicomReadError("file ends inside the dataset") from None
    except InvalidDicomError as exc:
        raise DicomReadError(f"invalid DICOM: {_first_line(exc)}") from None
    except NotImplementedError as exc:
        raise DicomReadError(f"unsupported encoding: {_first_line(exc)}") from None
    except Exception as exc:  # pydicom raises many kinds on garbage; none may escape
        raise DicomReadError(f"unreadable DICOM header: {_first_line(exc)}") from None
    for msg in messages:
        if "End of file" in msg or "ended before" in msg or "truncated" in msg.lower():
            raise DicomReadError("file ends inside the dataset")
    if reader.ended_inside:
        raise DicomReadError("file ends inside a data element header")
    return ds


def _check_complete(ds: Dataset, size: int) -> None:
    """Refuse a file whose last element runs past the end of the file."""
    for tag in ds._dict:  # raw elements keep their file position and length
        elem = ds._dict[tag]
        if isinstance(elem, RawDataElement) and elem.length != 0xFFFFFFFF:
            if elem.value_tell is not None and elem.value_tell + elem.length > size:
                what = "pixel data" if tag == PIXEL_DATA else _keyword(tag)
                raise DicomReadError(
                    f"file ends inside the {what} "
                    f"({size - elem.value_tell} of {elem.length} bytes present)"
                )


def _image_info(ds: Dataset, buf: Any, ts: str) -> ImageInfo:
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    bits = _int(ds, "BitsAllocated")
    if not rows or not cols or not bits:
        raise DicomReadError("pixel data without Rows, Columns or Bits Allocated")
    frames_raw = ds.get("NumberOfFrames", 1) if "NumberOfFrames" in ds else 1
    try:
        frames = int(str(frames_raw).strip() or 1)
    except (TypeError, ValueError):
        raise DicomReadError(f"invalid Number of Frames {str(frames_raw)!r}") from None
    spp = _int(ds, "SamplesPerPixel") or 1
    if frames < 1 or spp not in (1, 3, 4):
        raise DicomReadError(f"implausible image format ({frames} frames, {spp} samples)")
    frame_bytes = rows * cols * spp * max(bits, 8) // 8
    if frame_bytes > MAX_FRAME_BYTES:
        raise DicomReadError(f"implausible image size {cols}×{rows} at {bits} bits")

    offset: int | None = None
    length: int | None = None
    fragments: tuple[tuple[int, int], ...] = ()
    raw = ds._dict.get(PIXEL_DATA)  # type: ignore[call-overload]
    if isinstance(raw, RawDataElement):
        offset = raw.value_tell if ts != DEFLATED_LE else None
        if raw.length != 0xFFFFFFFF:
            length = raw.length
            expected = (rows * cols * frames * spp * bits + 7) // 8
            if length < expected:
                raise DicomReadError(
                    f"pixel data is shorter than the image ({length} of {expected} bytes: "
                    f"{frames} frame(s) of {cols}×{rows}, {bits} bits)"
                )
        elif offset is not None:
            fragments = _fragments(buf, offset, bool(ds.original_encoding[1]))
            if len(fragments) < frames:
                raise DicomReadError(
                    f"header says {frames} frames, the compressed pixel data holds "
                    f"{len(fragments)} fragment(s)"
                )
    elif PIXEL_DATA in ds:
        length = len(ds.PixelData or b"")

    return ImageInfo(
        rows=rows,
        columns=cols,
        frames=frames,
        samples_per_pixel=spp,
        bits_allocated=bits,
        bits_stored=_int(ds, "BitsStored") or bits,
        pixel_representation=_int(ds, "PixelRepresentation") or 0,
        photometric_interpretation=_text(ds, "PhotometricInterpretation") or "MONOCHROME2",
        planar_configuration=_int(ds, "PlanarConfiguration") or 0,
        pixel_offset=offset,
        pixel_length=length,
        fragments=fragments,
        position=_floats(ds, "ImagePositionPatient", 3),
        orientation=_floats(ds, "ImageOrientationPatient", 6),
        pixel_spacing=_floats(ds, "PixelSpacing", 2),
        slice_thickness=_float(ds, "SliceThickness"),
        spacing_between_slices=_float(ds, "SpacingBetweenSlices"),
        rescale_slope=_float(ds, "RescaleSlope") or 1.0,
        rescale_intercept=_float(ds, "RescaleIntercept") or 0.0,
        rescale_type=rescale_type_of(ds),
        window_center=_float(ds, "WindowCenter"),
        window_width=_float(ds, "WindowWidth"),
        voi_lut_function=_text(ds, "VOILUTFunction"),
        frame_info=_frame_info(ds, frames),
    )


def _fragments(buf: Any, start: int, little: bool) -> tuple[tuple[int, int], ...]:
    """Walk the items of encapsulated pixel data; return the fragments after the offset table."""
    order = "<" if little else ">"
    size = len(buf)
    pos = start
    items: list[tuple[int, int]] = []
    while pos + 8 <= size:
        group, elem, length = struct.unpack(order + "HHI", bytes(buf[pos : pos + 8]))
        pos += 8
        if (group, elem) == (0xFFFE, 0xE0DD):
            return tuple(items[1:])
        if (group, elem) != (0xFFFE, 0xE000):
            raise DicomReadError("compressed pixel data is not a valid item sequence")
        if length == 0xFFFFFFFF or pos + length > size:
            raise DicomReadError("file ends inside the compressed pixel data")
        items.append((pos, length))
        pos += length
    raise DicomReadError("file ends inside the compressed pixel data")


def rescale_type_of(ds: Dataset) -> str:
    """An image's Rescale Type: its own, or an enhanced object's (see below); "" if none."""
    return _text(ds, "RescaleType") or _enhanced_rescale_type(ds)


def value_unit(modality: str, rescale_type: str) -> str:
    """The unit of an image's modality values: "HU" for a CT whose Rescale Type says so or
    says nothing (it is optional for CT images), else none ("US" is unspecified, e.g. a CT
    perfusion map; vendors write words such as "normalized")."""
    kind = rescale_type.strip().upper()
    return "HU" if kind == "HU" or (not kind and modality == "CT") else ""


def _enhanced_rescale_type(ds: Dataset) -> str:
    """An enhanced object's Rescale Type (Pixel Value Transformation, shared or of the first
    frame): "HU", or e.g. "US" (unspecified) for a derived CT perfusion map."""
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = _seq(ds, groups)
        transform = _seq(items[0], "PixelValueTransformationSequence") if items else None
        if transform:
            return _text(transform[0], "RescaleType")
    return ""


def _frame_info(ds: Dataset, frames: int) -> tuple[FrameInfo, ...]:
    """Per-frame geometry and value mapping from enhanced functional groups."""
    per_frame = _seq(ds, "PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return ()
    shared = _seq(ds, "SharedFunctionalGroupsSequence")
    shared_item = shared[0] if shared else Dataset()
    out = []
    for item in per_frame[:frames]:
        def pick(seq_kw: str, kw: str, n: int = 0, as_text: bool = False, _item: Any = item) -> Any:
            for source in (_item, shared_item):
                sub = _seq(source, seq_kw)
                if sub and kw in sub[0]:
                    if as_text:
                        return _text(sub[0], kw) or None
                    return _floats(sub[0], kw, n) if n else _float(sub[0], kw)
            return None

        stack_pos = pick("FrameContentSequence", "InStackPositionNumber")
        temporal = pick("FrameContentSequence", "TemporalPositionIndex")
        out.append(
            FrameInfo(
                position=pick("PlanePositionSequence", "ImagePositionPatient", 3),
                orientation=pick("PlaneOrientationSequence", "ImageOrientationPatient", 6),
                pixel_spacing=pick("PixelMeasuresSequence", "PixelSpacing", 2),
                slice_thickness=pick("PixelMeasuresSequence", "SliceThickness"),
                rescale_slope=pick("PixelValueTransformationSequence", "RescaleSlope"),
                rescale_intercept=pick("PixelValueTransformationSequence", "RescaleIntercept"),
                window_center=pick("FrameVOILUTSequence", "WindowCenter"),
                window_width=pick("FrameVOILUTSequence", "WindowWidth"),
                stack_id=pick("FrameContentSequence", "StackID", as_text=True),
                in_stack_position=int(stack_pos) if stack_pos is not None else None,
                temporal_position=int(temporal) if temporal is not None else None,
            )
        )
    return tuple(out)


def _derived_uid(uid_key: bytes, kind: str, ds: Dataset, keywords: tuple[str, ...],
                 *extra: str) -> str:
    """A stable "2.25." UID from header values (for objects that lack the real one): an HMAC
    under ``uid_key`` (no key: a bare hash, for files read outside a store)."""
    import hashlib
    import hmac

    text = "\x1f".join([kind, *extra, *(_text(ds, k) for k in keywords)]).encode()
    digest = (hmac.new(uid_key, b"derived-uid\x1f" + text, hashlib.sha256).digest() if uid_key
              else hashlib.sha256(text).digest())
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _build(
    ds: Dataset, ts: str, sop_class: str, uids: dict[str, str], image: ImageInfo | None,
    missing: tuple[str, ...] = (),
) -> Header:
    patient = Patient(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
    )
    modality = _text(ds, "Modality")
    study = Study(
        study_instance_uid=uids["StudyInstanceUID"],
        patient=patient,
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        accession_number=_text(ds, "AccessionNumber"),
        study_id=_text(ds, "StudyID"),
        modalities=(modality,) if modality else (),
        institution_name=_text(ds, "InstitutionName"),
    )
    series = Series(
        series_instance_uid=uids["SeriesInstanceUID"],
        study_instance_uid=uids["StudyInstanceUID"],
        series_number=_int(ds, "SeriesNumber"),
        modality=modality,
        series_description=_text(ds, "SeriesDescription"),
        body_part_examined=_text(ds, "BodyPartExamined"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        series_date=_text(ds, "SeriesDate"),
        series_time=_text(ds, "SeriesTime"),
    )
    instance = Instance(
        sop_instance_uid=uids["SOPInstanceUID"],
        sop_class_uid=sop_class,
        series_instance_uid=uids["SeriesInstanceUID"],
        study_instance_uid=uids["StudyInstanceUID"],
        transfer_syntax_uid=ts,
        instance_number=_int(ds, "InstanceNumber"),
        acquisition_number=_int(ds, "AcquisitionNumber"),
        image_type=_text(ds, "ImageType"),
        image=image,
    )
    return Header(patient=patient, study=study, series=series, instance=instance,
                  missing_uids=missing)


# -- tolerant value access -------------------------------------------------------------------
def _value(ds: Dataset, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # an unparsable value is treated as absent
        return None


def _text(ds: Dataset, keyword: str) -> str:
    value = _value(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip().strip("\x00")


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _float(ds: Dataset, keyword: str) -> float | None:
    value = _first(_value(ds, keyword))
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(ds: Dataset, keyword: str) -> int | None:
    value = _first(_value(ds, keyword))
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None


def _floats(ds: Dataset, keyword: str, n: int) -> Any:
    value = _value(ds, keyword)
    try:
        values = tuple(float(v) for v in value) if value is not None else ()
    except (TypeError, ValueError):
        return None
    return values if len(values) == n else None


def _seq(ds: Dataset, keyword: str) -> Any:
    value = _value(ds, keyword)
    return value if value else None


def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return _spaced(keyword_for_tag(tag) or f"element ({tag >> 16:04X},{tag & 0xFFFF:04X})")


def _spaced(keyword: str) -> str:
    """"SOPInstanceUID" -> "SOP Instance UID"."""
    out = ""
    for i, ch in enumerate(keyword):
        prev = keyword[i - 1] if i else ""
        nxt = keyword[i + 1] if i + 1 < len(keyword) else ""
        if i and ch.isupper() and (prev.islower() or (nxt.islower() and prev.isupper())):
            out += " "
        out += ch
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
