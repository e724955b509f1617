"""Helpers for the technologist's-station tests: a store with real files, an edited file that
carries every attribute of the PS3.15 action table with an identifying value."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.imports.importer import import_paths
from app.store.local import Store
from app.tasks import Progress
from app.workflow.deid_profile import build_profile

SECRET = "ZQXSECRET"  # every identifying value carries it; none may survive


def import_into(home: Path, *paths: Path) -> Store:
    store = Store(home)
    import_paths(store, [str(p) for p in paths], Progress("test"))
    return store


def tagged_value(tag: int, vr: str) -> object | None:
    """An identifying value of ``vr`` for ``tag`` (None when the VR cannot carry one)."""
    n = tag & 0xFFFFFFFF
    text = f"{SECRET}{n:08X}"
    if vr == "PN":
        return f"{SECRET}^P{n:08X}"
    if vr in ("LO", "LT", "SH", "ST", "UC", "UT"):
        return text[:16] if vr == "SH" else text
    if vr == "CS":
        return text[:16]
    if vr == "AE":
        return text[:16]
    if vr == "UI":
        return f"1.2.826.0.1.99.{n}"
    if vr == "DA":
        return "19380212" if tag == 0x00100030 else "19510704"  # the birth date is scrubbed
    if vr == "DT":
        return "19510704123000"
    if vr == "TM":
        return "123000"
    if vr == "AS":
        return "071Y"
    if vr == "UR":
        return f"http://{SECRET.lower()}.example/{n:08X}"
    if vr in ("DS", "IS"):
        return "71"
    if vr in ("US", "SS", "UL", "SL"):
        return 71
    if vr in ("FL", "FD"):
        return 71.5
    if vr in ("OB", "UN"):
        return (SECRET + "!").encode()
    if vr == "SQ":
        item = Dataset()
        item.PatientName = f"{SECRET}^NESTED"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.99.{n}.1"
        item.TextValue = f"{SECRET} nested text"
        return Sequence([item])
    return None


def every_attribute_file(source: Path, out: Path) -> Path:
    """``source`` with every exact tag of the action table set to an identifying value, a
    private block holding the secret, and a nested identifier, written to ``out``."""
    ds = pydicom.dcmread(source)
    skip = {0x7FE00010, 0x00080018, 0x0020000D, 0x0020000E, 0x00080016}
    for (group, element) in build_profile().actions:
        tag = (group << 16) | element
        if group in (0x0000, 0x0002) or tag in skip or group == 0xFFFA or group == 0xFFFC:
            continue
        try:
            vr = str(dictionary_VR(tag)).split(" ")[0]
        except KeyError:
            continue
        value = tagged_value(tag, vr)
        if value is not None:
            ds.add_new(tag, vr, value)
    block = ds.private_block(0x0029, "ACME SECRET", create=True)
    block.add_new(0x10, "LO", f"{SECRET} private")
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.fixture
def ge_files(data: Path) -> list[Path]:
    return sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))


OUTSIDE = {"PatientName": "MUELLER^ANNA", "PatientID": "OUT-778812", "IssuerOfPatientID":
           "COMMUNITY HOSP", "PatientBirthDate": "19480313", "PatientSex": "F",
           "AccessionNumber": "OUTACC991"}


def outside_cd(folder: Path, ge_files: list[Path], count: int = 6) -> list[Path]:
    """An outside hospital's CD: real GE slices carrying the outside patient's identity."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in ge_files[:count]:
        ds = pydicom.dcmread(f)
        for kw, value in OUTSIDE.items():
            setattr(ds, kw, value)
        ds.InstitutionName = "Community Hospital"
        ds.save_as(folder / f.name, enforce_file_format=True)
        out.append(folder / f.name)
    return out
