"""Media that attack the reader: shrinking files, deflate and zip bombs, FIFOs, links out.

Each case ends in a report line naming the file and the reason; the process neither dies
(SIGBUS), hangs, nor allocates near what the media claim. Cases that would crash or hang the
process without the guard run in a child process with a timeout and a memory limit.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import generate_uid

from app.imports.importer import import_paths
from app.store.local import Store
from tests.conftest import REPO, relay_env

CT = ("ct-head", "ge-hispeed-human-gantry-tilt")


def _child(code: str, *args: str, timeout: float = 120, memory_mb: int = 3000):
    """Run ``code`` in a fresh Python with an address-space limit; return the CompletedProcess."""
    limit = (
        f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({memory_mb << 20}, "
        f"{memory_mb << 20}))\n"
    )
    return subprocess.run([sys.executable, "-c", limit + code, *args], capture_output=True,
                          text=True, env=relay_env(), cwd=REPO, timeout=timeout)


def _ct(data: Path, n: int) -> Path:
    return data.joinpath(*CT) / f"{n:02d}.dcm"


# -- 1. plain reads --------------------------------------------------------------------------
SHRINK = """
import json, os, sys
import app.imports.importer as imp
from app.store.local import Store
from app.store.part_ingest import PipedPart
media, home, during, before = sys.argv[1:5]
real_filled, real_walk = PipedPart.filled, imp.walk

def filled_while_shrinking(part, n):
    if part.name.endswith("during.dcm") and os.path.getsize(during) > 100:
        os.truncate(during, 100)  # the stick is pulled once the file's bytes are read
    return real_filled(part, n)

def walk_then_shrink(paths):
    listing = real_walk(paths)
    os.truncate(before, 1000)  # the file shrinks between the scan and the read
    return listing

PipedPart.filled, imp.walk = filled_while_shrinking, walk_then_shrink
r = imp.import_paths(Store(home), [media], workers=1)
print(json.dumps({"imported": r.imported, "failed": {p.path: p.reason for p in r.failed}}))
"""


def test_file_shrinking_during_import_is_a_failed_line_not_sigbus(data: Path,
                                                                   tmp_path: Path) -> None:
    media = tmp_path / "usb"
    media.mkdir()
    shutil.copyfile(_ct(data, 1), media / "during.dcm")
    shutil.copyfile(_ct(data, 2), media / "before.dcm")
    proc = _child(SHRINK, str(media), str(tmp_path / "home"), str(media / "during.dcm"),
                  str(media / "before.dcm"))
    assert proc.returncode == 0, f"import died ({proc.returncode}): {proc.stderr[-2000:]}"
    out = json.loads(proc.stdout)
    assert out["imported"] == 1  # the bytes read before the stick was pulled are whole
    reason = out["failed"][str(media / "before.dcm")]
    assert "changed while it was read" in reason


# -- 2. deflate bomb -------------------------------------------------------------------------
def _deflate_bomb(path: Path, inflated_mb: int) -> Path:
    """A Deflated Explicit VR LE file whose pixel data inflates to ``inflated_mb`` MB of zeros."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=False)
    ds = Dataset()
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 8192
    ds.NumberOfFrames = inflated_mb // 128
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.set_original_encoding(False, True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunks = [packer.compress(body.getvalue() + b"\xe0\x7f\x10\x00OW\0\0"
                              + struct.pack("<I", inflated_mb << 20))]
    zeros = b"\0" * (16 << 20)
    chunks += [packer.compress(zeros) for _ in range(inflated_mb // 16)]
    chunks.append(packer.flush())
    path.write_bytes(head.getvalue() + b"".join(chunks))
    return path


BOMB = """
import json, sys
from app.imports.importer import import_paths
from app.store.local import Store
r = import_paths(Store(sys.argv[2]), [sys.argv[1]])
hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0]
print(json.dumps({"failed": [p.reason for p in r.failed], "imported": r.imported,
                  "peak_mb": int(hwm.split()[1]) // 1024}))
"""


def test_deflate_bomb_is_a_failed_line_with_bounded_memory(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    bomb = _deflate_bomb(tmp_path / "media" / "bomb.dcm", 768)
    assert bomb.stat().st_size < 2 << 20
    proc = _child(BOMB, str(tmp_path / "media"), str(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["imported"] == 0
    assert len(out["failed"]) == 1 and "deflate bomb" in out["failed"][0]
    assert out["peak_mb"] < 400, out


def test_real_deflated_file_still_imports(data: Path, tmp_path: Path) -> None:
    report = import_paths(Store(tmp_path / "home"),
                          [str(data / "compressed" / "deflate" / "image_dfl.dcm")])
    assert report.imported == 1 and report.failed == []


# -- 3 and 9. only regular files, links stay on the media ------------------------------------
WALK = """
import json, sys
from app.imports.importer import import_paths
from app.store.local import Store
r = import_paths(Store(sys.argv[2]), [sys.argv[1]])
print(json.dumps({"imported": r.imported,
                  "problems": {p.path: p.reason for p in [*r.failed, *r.skipped]}}))
"""


def test_fifo_dicomdir_and_link_to_dev_zero_neither_hang_nor_eat_memory(data: Path,
                                                                        tmp_path: Path) -> None:
    media = tmp_path / "cd"
    (media / "A").mkdir(parents=True)
    (media / "B").mkdir()
    shutil.copyfile(_ct(data, 1), media / "A" / "IM1")
    shutil.copyfile(_ct(data, 2), media / "B" / "IM2")
    os.mkfifo(media / "A" / "DICOMDIR")
    (media / "B" / "DICOMDIR").symlink_to("/dev/zero")
    (media / "zero.dcm").symlink_to("/dev/zero")
    proc = _child(WALK, str(media), str(tmp_path / "home"), timeout=60, memory_mb=2000)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["imported"] == 2
    problems = out["problems"]
    assert problems[str(media / "A" / "DICOMDIR")] == "not a regular file"
    assert "outside the media" in problems[str(media / "B" / "DICOMDIR")]
    assert "outside the media" in problems[str(media / "zero.dcm")]


def test_links_out_of_the_media_are_not_followed(data: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "home-of-someone"
    elsewhere.mkdir()
    shutil.copyfile(_ct(data, 3), elsewhere / "private.dcm")
    media = tmp_path / "usb"
    (media / "sub").mkdir(parents=True)
    shutil.copyfile(_ct(data, 1), media / "sub" / "a.dcm")
    (media / "root").symlink_to("/")
    (media / "out").symlink_to(elsewhere)
    (media / "out.dcm").symlink_to(elsewhere / "private.dcm")
    (media / "inside").symlink_to(media / "sub")  # a link that stays on the media is fine
    (media / "inside.dcm").symlink_to(media / "sub" / "a.dcm")
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 1 and report.duplicates == 1
    outside = {Path(p.path).name for p in report.skipped if "outside the media" in p.reason}
    assert outside == {"root", "out", "out.dcm"}


# -- 7 and 8. zips: opened once, capped --------------------------------------------------------
def test_zip_is_opened_once_for_all_members(data: Path, tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(1, 11):
            zf.write(_ct(data, n), f"EXAM/{n:02d}.dcm")
    opened: list[object] = []
    real_init = zipfile.ZipFile.__init__

    def counting_init(self, *args, **kwargs):
        opened.append(args[0] if args else None)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "__init__", counting_init)
    report = import_paths(Store(tmp_path / "home"), [str(archive)])
    assert report.imported == 10
    assert len(opened) == 1


def test_duplicate_zip_members_are_refused(data: Path, tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(_ct(data, 1), "EXAM/IM1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.write(_ct(data, 2), "EXAM/IM1")
        zf.write(_ct(data, 3), "EXAM/IM3")
    report = import_paths(Store(tmp_path / "home"), [str(archive)])
    assert report.imported == 1
    assert [p.path for p in report.failed] == [f"{archive}!/EXAM/IM1"] * 2
    assert all("2 members of this name" in p.reason for p in report.failed)


def test_overlapping_zip_members_refuse_the_archive(data: Path, tmp_path: Path) -> None:
    archive = tmp_path / "overlap.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(_ct(data, 1), "A")
        zf.write(_ct(data, 2), "B")
    raw = bytearray(archive.read_bytes())
    second = raw.index(b"PK\x01\x02", raw.index(b"PK\x01\x02") + 4)
    raw[second + 42 : second + 46] = struct.pack("<I", 0)  # B's local header is A's
    archive.write_bytes(bytes(raw))
    report = import_paths(Store(tmp_path / "home"), [str(archive)])
    assert report.imported == 0
    assert [(p.path, "overlapping" in p.reason) for p in report.failed] == [(str(archive), True)]


def test_zip_member_ratio_and_archive_total_are_capped(tmp_path: Path) -> None:
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.dcm", b"\0" * (10 << 20))  # 10 MB from ~10 kB: a bomb's member
        zf.writestr("small.txt", os.urandom(200_000))  # the archive as a whole looks sane
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(40):  # each under the per-member floor, 120 MB from ~120 kB in all
            zf.writestr(f"IM{n}", b"\0" * (3 << 20))
    report = import_paths(Store(tmp_path / "home"), [str(one), str(many)])
    reasons = {p.path: p.reason for p in report.failed}
    assert "zip bomb" in reasons[f"{one}!/big.dcm"]
    assert "zip bomb" in reasons[str(many)] and "nothing taken" in reasons[str(many)]
    assert [p.path for p in report.skipped] == [f"{one}!/small.txt"]


def test_gzip_bomb_is_capped_by_ratio(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    with gzip.open(media / "image.dcm.gz", "wb") as gz:
        for _ in range(20):
            gz.write(b"\0" * (1 << 20))
    with zipfile.ZipFile(media / "exam.zip", "w", zipfile.ZIP_STORED) as zf:
        zf.write(media / "image.dcm.gz", "image.dcm.gz")  # the same bomb inside a zip
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert sorted((os.path.relpath(p.path, media), "compression bomb" in p.reason)
                  for p in report.failed) == [("exam.zip!/image.dcm.gz", True),
                                              ("image.dcm.gz", True)]
