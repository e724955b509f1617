"""Two head-CT studies of one patient (today's with a CTA, and a prior), generated: the stroke
layout, prior search and findings tests read them."""

from __future__ import annotations

from pathlib import Path

import pydicom

from app.dicom.synth import SeriesSpec, generate_series

PATIENT_ID = "STROKE-PRIOR-1"


def stroke_study(out: Path, *, date: str, seed: int, cta: bool = True, slices: int = 40,
                 size: int = 96, patient_id: str = PATIENT_ID, issuer: str = "",
                 pixel_spacing: float = 2.0, infarct: bool = True) -> list[Path]:
    """A plain head CT (and its CTA) of ``patient_id`` dated ``date`` (YYYYMMDD); with
    the left MCA infarct, or a normal head (``infarct`` False, as a prior would be)."""
    base = SeriesSpec(slices=slices, rows=size, columns=size, pixel_spacing=pixel_spacing,
                      slice_step=2.5, seed=seed, patient_id=patient_id,
                      study_description="CT HEAD STROKE CODE",
                      series_description="Axial 2.5mm brain",
                      phantom="head" if infarct else "normal")
    files = generate_series(out / "plain", base)
    if cta:
        study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
        spec = SeriesSpec(slices=slices, rows=size, columns=size, pixel_spacing=pixel_spacing,
                          slice_step=2.5, seed=seed, patient_id=patient_id, phantom="cta",
                          series_number=3, series_description="CTA head 2.5mm",
                          study_description="CT HEAD STROKE CODE",
                          study_instance_uid=study_uid)
        files += generate_series(out / "cta", spec)
    for path in files:
        ds = pydicom.dcmread(path)
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.save_as(path)
    return files
