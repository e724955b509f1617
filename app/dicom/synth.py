"""Generate synthetic CT series: a head phantom for the demo, benchmarks and geometry tests.

The phantom is analytic (ellipsoids and rods at known LPS positions, in HU), sampled at the real
world position of every pixel, so tilted or unevenly spaced stacks show the same anatomy in the
same place. Two flavours: ``"head"`` (a non-contrast head with a left MCA infarct and a dense
MCA sign, for stroke windows) and ``"cta"`` (contrast-filled arteries with a left M1 occlusion).
"""

from __future__ import annotations

import datetime
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from app.tasks import Progress

#: Names accepted for ``transfer_syntax``.
SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpegls": JPEGLSLossless,
    "j2k": JPEG2000Lossless,
    "jpeg-lossless": "1.2.840.10008.1.2.4.70",
}


@dataclass(frozen=True)
class Ellipsoid:
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: float


@dataclass(frozen=True)
class Rod:
    """A cylinder between two LPS points."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    radius: float
    hu: float


Shape = Ellipsoid | Rod


def head_phantom(center_z: float = 0.0, kind: str = "head") -> list[Shape]:
    """Shapes (painted in order, later wins) of a head centred at ``(0, 0, center_z)``."""
    z = center_z
    shapes: list[Shape] = [
        Rod((0, 15, z - 200), (0, 15, z - 70), 50, 30),  # neck
        Rod((0, 30, z - 200), (0, 30, z - 60), 12, 700),  # cervical spine
        Ellipsoid((0, 0, z), (78, 98, 95), 30),  # scalp and soft tissue
        Ellipsoid((0, 0, z), (73, 93, 90), 1200),  # skull
        Ellipsoid((0, 0, z + 2), (67, 87, 84), 38),  # brain (grey matter)
        Ellipsoid((0, 5, z + 8), (50, 68, 55), 27),  # white matter
        Ellipsoid((-13, -2, z + 12), (6, 26, 11), 6),  # right lateral ventricle
        Ellipsoid((13, -2, z + 12), (6, 26, 11), 6),  # left lateral ventricle
        Ellipsoid((-30, -82, z - 38), (12, 12, 12), 12),  # right globe
        Ellipsoid((30, -82, z - 38), (12, 12, 12), 12),  # left globe
        Ellipsoid((0, -40, z - 75), (40, 30, 12), 1000),  # skull base
    ]
    if kind == "head":
        shapes += [
            Ellipsoid((46, 6, z + 8), (16, 30, 26), 18),  # left MCA territory infarct
            Rod((6, -4, z - 12), (44, -2, z - 10), 2.2, 68),  # dense left MCA sign
        ]
    elif kind == "cta":
        art = 330.0
        shapes += [
            Rod((-22, 5, z - 200), (-14, 2, z - 20), 3.5, art),  # right ICA
            Rod((22, 5, z - 200), (14, 2, z - 20), 3.5, art),  # left ICA
            Rod((0, 28, z - 200), (0, 18, z - 30), 2.5, art),  # basilar
            Rod((-14, 2, z - 20), (-55, 4, z - 12), 2.2, art),  # right M1/M2
            Rod((14, 2, z - 20), (26, 3, z - 18), 2.2, art),  # left M1, occluded beyond
            Rod((-14, 2, z - 20), (-4, -40, z + 10), 1.6, art),  # right ACA
            Rod((14, 2, z - 20), (4, -40, z + 10), 1.6, art),  # left ACA
            Rod((0, 18, z - 30), (-30, 45, z - 20), 1.6, art),  # right PCA
            Rod((0, 18, z - 30), (30, 45, z - 20), 1.6, art),  # left PCA
        ]
    return shapes


def _inside(shape: Shape, points: np.ndarray) -> np.ndarray:
    if isinstance(shape, Ellipsoid):
        d = (points - np.asarray(shape.center, np.float32)) / np.asarray(shape.radii, np.float32)
        inside: np.ndarray = np.einsum("...i,...i->...", d, d) <= 1.0
        return inside
    a = np.asarray(shape.start, np.float32)
    ab = np.asarray(shape.end, np.float32) - a
    t = np.clip(((points - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    diff = points - (a + t[..., None] * ab)
    near: np.ndarray = np.einsum("...i,...i->...", diff, diff) <= shape.radius**2
    return near


def _bounds(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(shape, Ellipsoid):
        c, r = np.asarray(shape.center), np.asarray(shape.radii)
        return c - r, c + r
    a, b = np.asarray(shape.start), np.asarray(shape.end)
    return np.minimum(a, b) - shape.radius, np.maximum(a, b) + shape.radius


def paint(shapes: Sequence[Shape], points: np.ndarray, background: float = -1000.0) -> np.ndarray:
    """HU at ``points`` (…, 3) in LPS mm."""
    out = np.full(points.shape[:-1], background, dtype=np.float32)
    for shape in shapes:
        out[_inside(shape, points)] = shape.hu
    return out


def paint_plane(shapes: Sequence[Shape], origin: np.ndarray, row_step: np.ndarray,
                col_step: np.ndarray, rows: int, columns: int,
                background: float = -1000.0) -> np.ndarray:
    """HU on an image plane: pixel (j, i) is at ``origin + i*row_step + j*col_step``.

    Only the part of the plane inside each shape's bounding box is evaluated.
    """
    out = np.full((rows, columns), background, dtype=np.float32)
    normal = np.cross(row_step, col_step)
    basis = np.stack([row_step, col_step, normal], axis=1)
    inverse = np.linalg.inv(basis)
    row32, col32 = row_step.astype(np.float32), col_step.astype(np.float32)
    origin32 = np.asarray(origin, np.float32)
    for shape in shapes:
        lo, hi = _bounds(shape)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
        coords = (corners - origin) @ inverse.T  # (i, j, distance along normal)
        if coords[:, 2].min() > 0 or coords[:, 2].max() < 0:
            continue
        i0 = max(0, int(np.floor(coords[:, 0].min())))
        i1 = min(columns, int(np.ceil(coords[:, 0].max())) + 1)
        j0 = max(0, int(np.floor(coords[:, 1].min())))
        j1 = min(rows, int(np.ceil(coords[:, 1].max())) + 1)
        if i0 >= i1 or j0 >= j1:
            continue
        across = np.arange(i0, i1, dtype=np.float32)[None, :, None] * row32
        down = np.arange(j0, j1, dtype=np.float32)[:, None, None] * col32
        pts = (origin32 + across) + down
        block = out[j0:j1, i0:i1]
        block[_inside(shape, pts)] = shape.hu
    return out


@dataclass(frozen=True)
class SeriesSpec:
    """What to generate. Positions are along z (the table); ``tilt_deg`` tilts the gantry."""

    slices: int = 400
    rows: int = 512
    columns: int = 512
    pixel_spacing: float = 0.45
    slice_step: float = 0.5
    slice_thickness: float | None = None
    tilt_deg: float = 0.0
    z_positions: tuple[float, ...] | None = None
    phantom: str = "head"
    transfer_syntax: str = "explicit"
    noise_hu: float = 3.0
    seed: int = 0
    patient_name: str = "DEMO^STROKE"
    patient_id: str = "RELAY-DEMO"
    patient_birth_date: str = "19500101"
    study_description: str = "CT HEAD WO CONTRAST (synthetic demo)"
    series_description: str = "Axial 0.5mm (synthetic)"
    series_number: int = 2
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None

    def positions(self) -> list[float]:
        if self.z_positions is not None:
            return list(self.z_positions)
        top = (self.slices - 1) * self.slice_step / 2.0
        return [-top + i * self.slice_step for i in range(self.slices)]


def _uid(spec: SeriesSpec, *parts: object) -> str:
    return str(generate_uid(entropy_srcs=[str(spec.seed), spec.patient_id, *map(str, parts)]))


def generate_series(out_dir: Path, spec: SeriesSpec,
                    progress: Progress | None = None) -> list[Path]:
    """Write one CT series as DICOM files into ``out_dir``; return the paths in slice order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    syntax = SYNTAXES.get(spec.transfer_syntax)
    if syntax is None:
        raise ValueError(f"unknown transfer syntax {spec.transfer_syntax!r}; "
                         f"use one of {list(SYNTAXES)}")
    study_uid = spec.study_instance_uid or _uid(spec, "study")
    series_uid = spec.series_instance_uid or _uid(spec, "series", spec.series_number, spec.phantom)
    for_uid = _uid(spec, "for")
    shapes = head_phantom(0.0, spec.phantom)
    rng = np.random.default_rng(spec.seed)
    tilt = math.radians(spec.tilt_deg)
    row_dir = np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    dx = dy = spec.pixel_spacing
    x0 = -(spec.columns - 1) * dx / 2.0
    y0 = -(spec.rows - 1) * dy / 2.0
    now = datetime.datetime(2026, 11, 28, 8, 30, 0)
    positions = spec.positions()
    paths = []
    if progress:
        progress.set_total(len(positions), "Generating")
    for k, z in enumerate(positions):
        origin = np.array([x0, y0 * math.cos(tilt), z - y0 * math.sin(tilt)], np.float32)
        hu = paint_plane(shapes, origin, row_dir * dx, col_dir * dy, spec.rows, spec.columns)
        if spec.noise_hu:
            hu += rng.normal(0.0, spec.noise_hu, hu.shape).astype(np.float32)
        stored = np.clip(np.rint(hu + 1024.0), -2048, 4095).astype(np.int16)
        ds = _dataset(spec, study_uid, series_uid, for_uid, k, origin, row_dir, col_dir, now)
        ds.PixelData = stored.tobytes()
        path = out_dir / f"IM{k + 1:05d}.dcm"
        if syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
            ds.compress(syntax, stored, generate_instance_uid=False)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        if progress:
            progress.advance()
            progress.check()
    if syntax == SYNTAXES["jpeg-lossless"]:
        _dcmtk_jpeg_lossless(paths)
    return paths


def _dataset(spec: SeriesSpec, study_uid: str, series_uid: str, for_uid: str, k: int,
             origin: np.ndarray, row_dir: np.ndarray, col_dir: np.ndarray,
             now: datetime.datetime) -> Dataset:
    meta = FileMetaDataset()
    sop_uid = _uid(spec, "sop", series_uid, k)
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.10.1428.1")  # Relay
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = "DEMO0001"
    ds.Modality = "CT"
    ds.Manufacturer = "Relay synthetic phantom"
    ds.InstitutionName = "Relay demo"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = spec.study_description
    ds.SeriesDescription = spec.series_description
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = spec.patient_birth_date
    ds.PatientSex = "O"
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = f"{spec.slice_thickness or spec.slice_step:.3f}"
    ds.KVP = "120"
    ds.GantryDetectorTilt = f"{spec.tilt_deg:.2f}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = spec.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [f"{v:.4f}" for v in origin]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{float(origin[2]):.4f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.PixelSpacing = [f"{spec.pixel_spacing:.4f}"] * 2
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40" if spec.phantom != "cta" else "150"
    ds.WindowWidth = "80" if spec.phantom != "cta" else "600"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def _dcmtk_jpeg_lossless(paths: list[Path]) -> None:
    tool = shutil.which("dcmcjpeg")
    if tool is None:
        raise RuntimeError("JPEG lossless needs dcmtk's dcmcjpeg (Debian package dcmtk)")
    for path in paths:
        tmp = path.with_suffix(".jpll")
        subprocess.run([tool, "+e1", str(path), str(tmp)], check=True, capture_output=True)
        tmp.replace(path)


def demo_study(out_dir: Path, progress: Progress | None = None, slices: int = 160) -> list[Path]:
    """The demo study the window offers on an empty store: a head CT and its CTA."""
    base = SeriesSpec(slices=slices, slice_step=1.25, pixel_spacing=0.45, seed=7,
                      series_description="Axial 1.25mm (synthetic)")
    head = generate_series(Path(out_dir) / "head", base, progress)
    cta_spec = SeriesSpec(
        slices=slices, slice_step=1.25, pixel_spacing=0.45, seed=7, phantom="cta",
        series_number=3, series_description="CTA head 1.25mm (synthetic)",
        study_instance_uid=pydicom.dcmread(head[0], stop_before_pixels=True).StudyInstanceUID,
    )
    return head + generate_series(Path(out_dir) / "cta", cta_spec, progress)
