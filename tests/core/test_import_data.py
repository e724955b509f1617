"""Importing the real shared data: counts per study and series, and re-import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.home import resolve_home
from app.imports.importer import import_paths
from app.store.local import Store
from tests.conftest import relay_json

pytestmark = pytest.mark.usefixtures("data")


def _series_counts(report_json: dict) -> dict[str, int]:
    return {
        s["series_description"] or s["series_instance_uid"]: s["instances"]
        for st in report_json["studies"]
        for s in st["series"]
    }


def test_ct_head_imports_with_expected_counts(data: Path, home: Path) -> None:
    out = relay_json("import", str(data / "ct-head"), "--home", str(home))
    assert out["failed"] == []
    assert out["imported"] == 245 + 140 + 28
    counts = _series_counts(out)
    assert counts["Resampled to 1mm voxels"] == 245  # Visible Human head
    assert counts["STD BRAIN 1MM, iDose"] == 140
    assert sorted(counts.values()) == [28, 140, 245]
    # the Philips DIRFILE next to the images is a directory object, skipped with a reason
    assert [s["path"] for s in out["skipped"]] == [
        str(data / "ct-head" / "philips-ingenuity-headphantom-std-1mm" / "DIRFILE")
    ]


def test_mr_and_multiframe_import(data: Path, home: Path) -> None:
    out = relay_json("import", str(data / "mr-brain"), str(data / "multiframe"),
                     "--home", str(home))
    assert out["failed"] == [] and out["skipped"] == []
    assert out["imported"] == 170 + 40 + 5
    counts = _series_counts(out)
    assert counts["ADNI_Sag3D MPRAGE"] == 170
    assert counts["3DpCASL"] == 40


def test_every_compressed_file_imports(data: Path, home: Path) -> None:
    files = [p for p in (data / "compressed").rglob("*") if p.is_file()]
    out = relay_json("import", str(data / "compressed"), "--home", str(home))
    assert out["failed"] == [] and out["skipped"] == []
    # emri_small and MR_small appear in several syntaxes with the same SOP Instance UID:
    # the first copy is the instance, every other copy is a conflict (kept and reported)
    assert out["imported"] + out["conflicts"] == len(files)
    assert out["conflicts"] > 0


def test_dicomdir_cd_counts_match_readme(data: Path, home: Path) -> None:
    out = relay_json("import", str(data / "cd" / "pydicom-dicomdirtests"), "--home", str(home))
    assert out["failed"] == []
    studies = out["studies"]
    assert len({s["patient_id"] for s in studies}) == 2
    assert len(studies) == 6
    assert sum(len(s["series"]) for s in studies) == 13
    assert out["imported"] == 31
    descriptions = {s["study_description"] for s in studies}
    assert {"CT, HEAD/BRAIN WO CONTRAST", "Carotids", "Brain", "Brain-MRA"} <= descriptions
    # the six odd DICOMDIR variants beside the real one are directory objects, not images
    skipped = {Path(s["path"]).name for s in out["skipped"]}
    assert {"DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-nooffset",
            "DICOMDIR-nopatient", "DICOMDIR-reordered", "DICOMDIR-empty.dcm",
            "README.txt"} == skipped


def test_tiny_alpha_headers_without_pixels_import(data: Path, home: Path) -> None:
    out = relay_json("import", str(data / "cd" / "pydicom-tiny-alpha"), "--home", str(home))
    assert out["imported"] == 50 and out["failed"] == []


def test_whole_data_folder_then_reimport_gives_only_duplicates(data: Path, home: Path) -> None:
    store = Store(resolve_home(home))
    first = import_paths(store, [str(data)])
    assert first.imported > 700
    again = import_paths(store, [str(data)])
    assert again.imported == 0 and again.conflicts == 0
    assert again.duplicates == first.imported + first.conflicts
    assert [p.path for p in again.failed] == [p.path for p in first.failed]
    assert store.counts()["instances"] == first.imported


def test_malformed_files_are_each_accounted_for(data: Path, home: Path) -> None:
    files = sorted(p for p in (data / "malformed").iterdir() if p.is_file())
    out = relay_json("import", str(data / "malformed"), "--home", str(home))
    failed = {f["path"]: f["reason"] for f in out["failed"]}
    assert out["skipped"] == []  # everything in there is DICOM (or gzip'ed DICOM)
    # the two RT plans without file meta share one SOP Instance UID (LE and BE copies):
    # the second is a conflict, kept and reported
    assert out["imported"] + out["conflicts"] + len(failed) == len(files)
    assert out["conflicts"] == 1
    for reason in failed.values():
        assert reason and "\n" not in reason and "Traceback" not in reason
    by_name = {Path(p).name: r for p, r in failed.items()}
    assert by_name["meta_missing_tsyntax.dcm"] == "no transfer syntax in file meta"
    assert "ends inside" in by_name["MR_truncated.dcm"]
    assert "ends inside" in by_name["rtplan_truncated.dcm"]
    assert "ends inside" in by_name["emri_small_jpeg_2k_lossless_too_short.dcm"]
    assert "unknown data before the DICOM data" in by_name["no_meta.dcm"]
    assert "Number of Frames" in by_name["badVR.dcm"]
    stored = {s["series_description"] for st in out["studies"] for s in st["series"]}
    assert stored  # the readable ones really are in the store
    # the gzip'ed MR imports after unpacking
    assert "zipMR.gz" not in by_name


def test_ls_json_lists_store_in_report_shape(data: Path, home: Path) -> None:
    imported = relay_json("import", str(data / "ct-head" / "ge-hispeed-human-gantry-tilt"),
                          "--home", str(home))
    listed = relay_json("ls", "--home", str(home))
    assert listed["studies"] == imported["studies"]
    study = listed["studies"][0]
    assert set(study) >= {"study_instance_uid", "patient_id", "patient_name", "study_date",
                          "study_description", "modalities", "series"}
    series = study["series"][0]
    assert set(series) >= {"series_instance_uid", "series_number", "modality",
                           "series_description", "instances"}
    assert isinstance(series["series_number"], int) and series["instances"] == 28
    json.dumps(listed)  # plain JSON types only


def test_relay_import_does_not_count_the_dicomdir_as_a_file_not_dicom(data: Path,
                                                                      tmp_path: Path) -> None:
    """A CD's first line: its DICOMDIR was read, not skipped as "not DICOM" beside the README
    (which made a clean CD look as if a file had been left behind)."""
    import shutil
    import subprocess

    from tests.conftest import relay_cmd, relay_env

    cd = tmp_path / "cd"
    shutil.copytree(data / "cd" / "pydicom-tiny-alpha", cd)
    proc = subprocess.run(relay_cmd("--home", str(tmp_path / "home"), "import", str(cd)),
                          capture_output=True, text=True, env=relay_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("50 imported, 1 skipped (not DICOM), 1 DICOMDIR read in "), first


def test_relay_import_piped_into_a_reader_that_stops_is_not_a_crash(data: Path,
                                                                    tmp_path: Path) -> None:
    """`relay import /media/cdrom | head`: the reader stops early; Relay ends quietly (141, as
    a shell reports SIGPIPE) instead of printing "unexpected BrokenPipeError" tracebacks."""
    import shutil
    import subprocess

    from tests.conftest import relay_cmd, relay_env

    usb = tmp_path / "usb"
    usb.mkdir()
    for n in range(800):  # one "failed" line each: more than a pipe holds
        shutil.copyfile(data / "malformed" / "MR_truncated.dcm", usb / f"IMAGE{n:04d}.dcm")
    proc = subprocess.Popen(relay_cmd("--home", str(tmp_path / "home"), "import", str(usb)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=relay_env())
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"0 imported, 800 failed")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_images_without_a_study_or_series_uid_are_imported_and_named_as_not_sendable(
        tmp_path: Path, data: Path) -> None:
    """Files that lack a Study or Series Instance UID are grouped here under UIDs Relay
    derives, which their bytes do not carry: the tech reads at import, not at the hub's
    refusal, that they cannot be sent."""
    from app.imports.summary import summarize
    from tests.conftest import run_relay

    lacking = data / "compressed" / "jpeg-ls" / "JLSL_08_07_0_1F.dcm"
    whole = sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))[0]
    store = Store(tmp_path / "home")
    report = import_paths(store, [str(lacking), str(whole)])
    assert report.imported == 2
    (line,) = report.unsendable
    assert line.path == str(lacking) and line.kind == "unsendable"
    assert line.reason.startswith("no Study Instance UID or Series Instance UID: ")
    assert "which a hub or PACS will not accept" in line.reason
    assert report.to_json(store)["unsendable"] == [{"path": str(lacking),
                                                    "reason": line.reason}]
    (group,) = [g for g in summarize(store, report).problems if g.kind == "unsendable"]
    assert group.count == 1
    out = run_relay("--home", str(tmp_path / "cli"), "import", str(lacking)).stdout
    assert f"  not sendable: {lacking}: no Study Instance UID" in out


def test_of_two_files_with_one_uid_and_other_bytes_the_later_on_the_media_is_the_conflict(
        tmp_path: Path, home: Path) -> None:
    """The report names the file found second as the conflicting one, as the media list them,
    even when the pipeline's workers finish the first (large: its header read from its file)
    after the second (small: read from memory)."""
    import pydicom

    from app.dicom.synth import SeriesSpec, generate_series

    media = tmp_path / "usb"
    big = generate_series(tmp_path / "big", SeriesSpec(slices=12, rows=1024, columns=1024,
                                                       noise_hu=0))
    for n, path in enumerate(big):
        ds = pydicom.dcmread(path)
        (media / f"{n:02d}").mkdir(parents=True)
        ds.save_as(media / f"{n:02d}" / "a_big.dcm")
        ds.Rows = ds.Columns = 16  # the same instance's UIDs, other (small) pixel data
        ds.PixelData = bytes(16 * 16 * 2)
        ds.save_as(media / f"{n:02d}" / "b_small.dcm")
    report = import_paths(Store(home), [str(media)])
    assert (report.imported, report.conflicts) == (12, 12)
    assert sorted(p.path for p in report.conflicting) == \
        [str(media / f"{n:02d}" / "b_small.dcm") for n in range(12)]


def test_an_empty_file_on_the_media_is_skipped_as_not_dicom(tmp_path: Path, home: Path) -> None:
    media = tmp_path / "usb"
    media.mkdir()
    (media / "IM0001").touch()
    report = import_paths(Store(home), [str(media)])
    assert [(p.path, p.reason) for p in report.skipped] == [(str(media / "IM0001"), "empty file")]
    assert report.failed == [] and report.imported == 0
