"""Headers that lie: huge sizes, absurd frame counts, endless nesting, impossible lengths.

Each file must end in ``failed`` with a plain reason, quickly, without the importer allocating
anything near what the header claims.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from app.imports.importer import import_paths
from app.store.local import Store
from tests.conftest import REPO, relay_env


def _base(rows: int, cols: int, frames: int | None = None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows, ds.Columns = rows, cols
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _nested_sequences(path: Path, depth: int) -> Path:
    """A file whose one sequence nests ``depth`` levels deep (undefined lengths)."""
    ds = _base(2, 2)
    ds.PixelData = b"\0" * 8
    _write(ds, path)
    data = path.read_bytes()
    pixel = data.index(b"\xe0\x7f\x10\x00")
    seq_open = b"\x40\x00\x30\xa7SQ\0\0\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    seq_close = b"\xfe\xff\x0d\xe0\0\0\0\0" + b"\xfe\xff\xdd\xe0\0\0\0\0"
    path.write_bytes(data[:pixel] + seq_open * depth + seq_close * depth + data[pixel:])
    return path


def make_hostile_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    ds = _base(65535, 65535, 1)
    ds.PixelData = b"\0" * 64
    files["huge_size"] = _write(ds, folder / "huge_size.dcm")

    ds = _base(512, 512, 2_000_000_000)
    ds.PixelData = b"\0" * (512 * 512 * 2)
    files["huge_frames"] = _write(ds, folder / "huge_frames.dcm")

    ds = _base(512, 512, 100_000)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])
    files["encapsulated_frames"] = _write(ds, folder / "encapsulated_frames.dcm")

    files["deep_nesting"] = _nested_sequences(folder / "deep_nesting.dcm", 20_000)

    ds = _base(16, 16)
    ds.PixelData = b"\0" * 512
    path = _write(ds, folder / "lying_length.dcm")
    data = bytearray(path.read_bytes())
    at = data.index(b"\xe0\x7f\x10\x00OW\0\0")
    data[at + 8 : at + 12] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    files["lying_length"] = path

    ds = _base(16, 16)
    ds.PixelData = b"\0" * 512
    path = _write(ds, folder / "truncated_in_header.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\x28\x00\x10\x00") + 5])
    files["truncated_in_header"] = path
    return files


def test_each_lie_is_a_plain_failure(tmp_path: Path) -> None:
    files = make_hostile_files(tmp_path / "media")
    report = import_paths(Store(tmp_path / "home"), [str(tmp_path / "media")])
    reasons = {Path(p.path).stem: p.reason for p in report.failed}
    assert report.imported == 0
    assert set(reasons) == set(files)
    assert "implausible image size" in reasons["huge_size"]
    assert "shorter than the image" in reasons["huge_frames"]
    assert "100000 frames" in reasons["encapsulated_frames"]
    assert ("nested too deeply" in reasons["deep_nesting"]
            or "ends inside" in reasons["deep_nesting"])
    assert "ends inside" in reasons["lying_length"]
    assert "ends inside" in reasons["truncated_in_header"]


def test_lies_cost_no_memory(tmp_path: Path) -> None:
    """Import the hostile files in a fresh process and look at its peak RSS."""
    make_hostile_files(tmp_path / "media")
    code = (
        "from app.store.local import Store\nfrom app.imports.importer import import_paths\n"
        f"r = import_paths(Store({str(tmp_path / 'home')!r}), [{str(tmp_path / 'media')!r}])\n"
        # VmHWM is this process's own peak; ru_maxrss carries a big parent's across fork+exec
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0]\n"
        "print(len(r.failed), hwm.split()[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=relay_env(), cwd=REPO, timeout=120, check=True).stdout.split()
    failed, peak_kb = int(out[0]), int(out[1])
    assert failed == 6
    assert peak_kb < 400 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


def test_a_refused_header_read_from_an_mmap_leaves_the_mapping_closable(tmp_path) -> None:
    """Fuzz finding (tests/fuzz/cases/tree): the reader's memoryview pinned the mapping through
    the refusal's traceback, so closing the mapping raised BufferError over the real reason."""
    import mmap

    from app.dicom.header import read_header
    from app.errors import DicomReadError

    path = tmp_path / "no-ts.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    refused = ""
    try:  # the refusal leaves the with-block: the mapping is closed while it is raised
        with open(path, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            read_header(buf, path.name)
    except DicomReadError as exc:
        refused = exc.reason
    assert refused == "no transfer syntax in file meta"
