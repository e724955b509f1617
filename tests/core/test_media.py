"""Outside media as they come: odd DICOMDIRs, CD file names, zips, junk beside the images."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from app.imports.importer import import_paths
from app.store.local import Store

pytestmark = pytest.mark.usefixtures("data")

VARIANTS = ["DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-nooffset",
            "DICOMDIR-nopatient", "DICOMDIR-reordered", "DICOMDIR-empty.dcm"]


def _cd_copy(data: Path, dest: Path, dicomdir: str = "DICOMDIR") -> Path:
    """A CD layout: the pydicom-dicomdirtests images with ``dicomdir`` as its DICOMDIR."""
    src = data / "cd" / "pydicom-dicomdirtests"
    dest.mkdir(parents=True)
    for folder in ("77654033", "98892001", "98892003"):
        shutil.copytree(src / folder, dest / folder)
    shutil.copyfile(src / dicomdir, dest / "DICOMDIR")
    return dest


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_odd_dicomdir_still_gives_all_images(data: Path, tmp_path: Path, variant: str) -> None:
    media = _cd_copy(data, tmp_path / "cd", variant)
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 31
    assert report.failed == []
    assert len(report.study_uids) == 6
    assert [p.reason for p in report.skipped] == [
        "DICOMDIR (media index), checked against the files"
    ]


def test_cd_names_lowercase_and_version_suffix(data: Path, tmp_path: Path) -> None:
    media = _cd_copy(data, tmp_path / "cd")
    # an ISO 9660 CD read on another system: lower case, ";1" version suffixes
    for path in sorted(media.rglob("*"), key=lambda p: -len(p.parts)):
        if path.name == "DICOMDIR":
            path.rename(path.with_name("dicomdir;1"))
        elif path.is_file():
            path.rename(path.with_name(path.name.lower() + ";1"))
        else:
            path.rename(path.with_name(path.name.lower()))
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 31
    assert report.failed == []  # every DICOMDIR entry was found despite the renaming


def test_stale_dicomdir_missing_and_unlisted_files(data: Path, tmp_path: Path) -> None:
    media = _cd_copy(data, tmp_path / "cd")
    missing = media / "98892003" / "MR700" / "4648"
    missing.unlink()
    extra_dir = media / "EXTRA"
    extra_dir.mkdir()
    shutil.copyfile(data / "ct-head" / "ge-hispeed-human-gantry-tilt" / "01.dcm", extra_dir / "X1")
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 31  # 30 listed and present + 1 the DICOMDIR does not know
    assert [(p.path, p.reason) for p in report.failed] == [
        (os.path.join(str(media), "98892003", "MR700", "4648"),
         "listed in the DICOMDIR but missing from the media")
    ]


def test_broken_dicomdir_falls_back_to_scanning(data: Path, tmp_path: Path) -> None:
    media = _cd_copy(data, tmp_path / "cd")
    (media / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 31
    assert report.failed == []


def test_vendor_cd_with_viewer_and_several_filesets(data: Path, tmp_path: Path) -> None:
    cd = tmp_path / "VENDORCD"
    _cd_copy(data, cd / "PATIENT1")
    shutil.copytree(data / "cd" / "pydicom-tiny-alpha", cd / "PATIENT2" / "DICOM")
    (cd / "autorun.inf").write_text("[autorun]\nopen=viewer\\viewer.exe\n")
    viewer = cd / "viewer"
    viewer.mkdir()
    (viewer / "viewer.exe").write_bytes(b"MZ\x90\x00" + os.urandom(4000))
    (viewer / "index.html").write_text("<html><body>Viewer</body></html>")
    (cd / "REPORT.PDF").write_bytes(b"%PDF-1.4\n" + os.urandom(500))
    marker = tmp_path / "ran"
    (viewer / "run.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (viewer / "run.sh").chmod(0o755)
    report = import_paths(Store(tmp_path / "home"), [str(cd)])
    assert report.imported == 31 + 50
    assert report.failed == []
    reasons = {Path(p.path).name: p.reason for p in report.skipped}
    for name in ("autorun.inf", "viewer.exe", "index.html", "REPORT.PDF", "run.sh"):
        assert reasons[name] == "not a DICOM file"
    assert not marker.exists()  # nothing on the media is ever run


def test_a_dicomdir_given_by_itself_imports_its_media(data: Path, tmp_path: Path) -> None:
    """Picking the DICOMDIR in a file chooser, dropping it or "Open with Relay" on it is
    opening the CD: its images come in (before: "0 imported", the DICOMDIR skipped)."""
    media = _cd_copy(data, tmp_path / "cd")
    (media / "77654033" / "CT2" / "17136").unlink()
    report = import_paths(Store(tmp_path / "home"), [str(media / "DICOMDIR")])
    assert report.imported == 30
    assert [(p.path, p.reason) for p in report.failed] == [
        (os.path.join(str(media), "77654033", "CT2", "17136"),
         "listed in the DICOMDIR but missing from the media")]


def test_zip_archive_and_mixed_arguments(data: Path, tmp_path: Path) -> None:
    src = data / "cd" / "pydicom-dicomdirtests"
    archive = tmp_path / "outside.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, "EXAM/" + str(path.relative_to(src)))
        zf.writestr("EXAM/readme.txt", "burned by a PACS")
    single = data / "ct-head" / "ge-hispeed-human-gantry-tilt" / "01.dcm"
    folder = data / "mr-brain" / "philips-elition-3dpcasl-perfusion"
    report = import_paths(Store(tmp_path / "home"), [str(archive), str(single), str(folder)])
    assert report.imported == 31 + 1 + 40
    assert report.failed == []
    names = {p.path for p in report.skipped}
    assert f"{archive}!/EXAM/readme.txt" in names
    assert f"{archive}!/EXAM/DICOMDIR" in names


@pytest.mark.parametrize("sep", ["/", "\\"])
def test_zipped_cd_with_files_missing_says_which(data: Path, tmp_path: Path, sep: str) -> None:
    """A CD zipped by the outside hospital is checked against its DICOMDIR as the CD itself is:
    a series left out of the zip is named, not a silently partial import. Older Windows tools
    write "\\" between the folders of a member's name."""
    media = _cd_copy(data, tmp_path / "cd")
    shutil.rmtree(media / "77654033" / "CT2")
    archive = tmp_path / "outside.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(media.rglob("*")):
            if path.is_file():  # as a Windows tool may write it: lower case, ";1" suffixes
                name = str(path.relative_to(media)).lower()
                name = "exam/" + (name if name == "dicomdir" else name + ";1")
                zf.write(path, name.replace("/", sep))
    report = import_paths(Store(tmp_path / "home"), [str(archive)])
    assert report.imported == 27
    assert sorted((p.path, p.reason) for p in report.failed) == [
        (f"{archive}!/exam/77654033/CT2/{n}", "listed in the DICOMDIR but missing from the media")
        for n in ("17106", "17136", "17166", "17196")
    ]
    assert {(p.path, p.reason) for p in report.skipped} == {
        (f"{archive}!/exam{sep}dicomdir", "DICOMDIR (media index), checked against the files")}


def test_gzipped_image_in_a_zip_imports_as_in_a_folder(data: Path, tmp_path: Path) -> None:
    gz = data / "malformed" / "zipMR.gz"
    archive = tmp_path / "outside.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.write(gz, "EXAM/zipMR.gz")
    in_zip = import_paths(Store(tmp_path / "zip-home"), [str(archive)])
    in_folder = import_paths(Store(tmp_path / "folder-home"), [str(gz)])
    assert (in_folder.imported, in_folder.skipped, in_folder.failed) == (1, [], [])
    assert (in_zip.imported, in_zip.skipped, in_zip.failed) == (1, [], [])
    assert in_zip.study_uids == in_folder.study_uids


def test_a_conflicting_file_is_named(data: Path, tmp_path: Path) -> None:
    """Two files with one SOP Instance UID and other bytes: both kept, and the report says
    which file conflicted (the count alone leaves the tech guessing)."""
    media = tmp_path / "usb"
    media.mkdir()
    for name in ("ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm"):
        shutil.copyfile(data / "malformed" / name, media / name)
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert (report.imported, report.conflicts) == (1, 1)
    assert [(p.path, p.kind) for p in report.conflicting] == [
        (str(media / "ExplVR_LitEndNoMeta.dcm"), "conflict")]
    assert "both kept" in report.conflicting[0].reason


def test_damaged_zip_and_missing_path_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    report = import_paths(Store(tmp_path / "home"), [str(bad), str(tmp_path / "nope")])
    reasons = {p.path: p.reason for p in report.failed}
    assert reasons[str(bad)].startswith("damaged zip archive")
    assert reasons[str(tmp_path / "nope")] == "no such file or folder"


def test_paths_in_report_are_as_given(data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(data.parent)
    report = import_paths(Store(tmp_path / "home"), ["data/malformed"])
    assert all(p.path.startswith("data/malformed/") for p in report.failed)


def test_symlink_loop_and_fifo_do_not_hang(tmp_path: Path, data: Path) -> None:
    media = tmp_path / "usb"
    media.mkdir()
    shutil.copyfile(data / "ct-head" / "ge-hispeed-human-gantry-tilt" / "02.dcm", media / "a.dcm")
    (media / "loop").symlink_to(media)
    os.mkfifo(media / "pipe")
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 1
    assert {p.reason for p in report.skipped} == {"not a regular file"}


def test_what_macos_and_windows_leave_on_a_stick_is_not_counted_as_files(
        data: Path, tmp_path: Path) -> None:
    """A USB stick written on a Mac or a PC carries ._ files, .DS_Store, Thumbs.db, a
    __MACOSX folder in its zips, a System Volume Information folder: none of it is a file
    the tech should read about as "not DICOM"; the images all come in."""
    media = _cd_copy(data, tmp_path / "stick")
    (media / "DICOMDIR").unlink()
    for junk in ("._DICOMDIR", ".DS_Store", "Thumbs.db", "77654033/._CR1", "desktop.ini"):
        (media / junk).write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    (media / "System Volume Information").mkdir()
    (media / "System Volume Information" / "IndexerVolumeGuid").write_bytes(b"{guid}")
    with zipfile.ZipFile(media / "more.zip", "w") as zf:
        first = next((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))
        zf.write(first, "ct/IM1")
        zf.writestr("__MACOSX/ct/._IM1", b"\x00\x05\x16\x07" + bytes(60))
        zf.writestr("ct/.DS_Store", b"Bud1" + bytes(60))
    report = import_paths(Store(tmp_path / "home"), [str(media)])
    assert report.imported == 32 and report.failed == []
    assert report.skipped == []
