"""Finding CD/DVD and USB media among mounted volumes (the "Open CD / folder" dialog)."""

from __future__ import annotations

from pathlib import Path

from app.imports.drives import Volume, removable, start_folder

SYSTEM = [Volume("/", "/dev/nvme0n1p2"), Volume("/boot/efi", "/dev/nvme0n1p1"),
          Volume("/home", "/dev/nvme0n1p3")]


def test_cd_and_usb_mounts_are_found_and_system_ones_are_not() -> None:
    cd = Volume("/media/tech/STUDY_CD", "/dev/sr0", "STUDY_CD")
    usb = Volume("/run/media/tech/USB", "/dev/sdb1", "USB")
    odd_cd = Volume("/cdrom", "/dev/sr1", "DISC")  # an optical drive anywhere
    unready = Volume("/media/tech/EMPTY", "/dev/sr2", ready=False)  # a drive with no disc
    found = removable([*SYSTEM, cd, usb, odd_cd, unready, Volume("/media", "tmpfs")])
    assert found == [cd, usb, odd_cd]


def test_the_dialog_starts_at_the_one_disc_else_the_last_folder(tmp_path: Path) -> None:
    disc = Volume("/media/tech/STUDY_CD", "/dev/sr0")
    assert start_folder(str(tmp_path), [*SYSTEM, disc]) == Path("/media/tech/STUDY_CD")
    two = [disc, Volume("/media/tech/USB", "/dev/sdb1")]
    assert start_folder(str(tmp_path), [*SYSTEM, *two]) == tmp_path  # which one? the last
    assert start_folder(str(tmp_path / "gone"), SYSTEM, home=tmp_path / "h") in (
        tmp_path / "h", Path("/media"), *Path("/media").glob("*"), *Path("/run/media").glob("*"))
