"""The fast frame reader against pydicom, on every file of the shared data that has pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.dicom import codecs
from app.dicom.codecs import Codec
from app.dicom.header import read_header
from app.dicom.pixels import read_frame
from app.errors import DecodeError, DicomReadError, NotDicomError
from tests.reference import reference_frames

pytestmark = pytest.mark.usefixtures("data")

FOLDERS = ["compressed", "malformed", "multiframe", "mr-brain", "ct-head", "cd"]


def _images(folder: Path):
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            header = read_header(path.read_bytes(), str(path))
        except (NotDicomError, DicomReadError):
            continue
        if header.instance.image is not None:
            yield path, header.instance


def _fast(path: Path, inst) -> np.ndarray:
    info = inst.image
    return np.stack([read_frame(path, inst.transfer_syntax_uid, info, f)
                     for f in range(info.frames)])


@pytest.mark.parametrize("folder", FOLDERS)
def test_fast_path_equals_pydicom(data: Path, folder: str) -> None:
    checked = 0
    for path, inst in _images(data / folder):
        try:
            expected = reference_frames(path)
        except Exception:
            with pytest.raises(DecodeError) as err:
                _fast(path, inst)
            assert str(path) in str(err.value)
            continue
        got = _fast(path, inst)
        assert got.shape == expected.shape, path
        assert np.array_equal(got, expected), path
        if inst.image.photometric_interpretation != "PALETTE COLOR":
            assert got.dtype == expected.dtype, path
        checked += 1
    assert checked > 0


def test_same_image_in_nine_syntaxes_decodes_identically(data: Path) -> None:
    folder = data / "compressed" / "same-image-9-syntaxes"
    arrays = {p.name: _fast(p, inst) for p, inst in _images(folder)}
    assert len(arrays) == 9
    first = arrays["1.dcm"]
    assert first.shape == (1, 384, 384)
    for name, arr in arrays.items():
        assert np.array_equal(arr, first), name


def test_palette_and_ybr_come_out_rgb(data: Path) -> None:
    palette = data / "malformed" / "OT-PAL-8-face.dcm"
    (_, inst), = _images_of(palette)
    rgb = _fast(palette, inst)
    assert rgb.shape == (1, 480, 640, 3)
    ybr = data / "compressed" / "jpeg-baseline-extended" / "SC_rgb_jpeg_dcmtk.dcm"
    (_, inst), = _images_of(ybr)
    out = _fast(ybr, inst)
    assert out.shape == (1, 100, 100, 3)
    # the test image is red, green, blue and white bands: red at the top left after YBR -> RGB
    r, g, b = (int(v) for v in out[0, 5, 5])
    assert r > 200 and g < 50 and b < 50


def _images_of(path: Path):
    header = read_header(path.read_bytes(), str(path))
    return [(path, header.instance)]


def test_corrupt_stream_error_names_file_syntax_and_cause(data: Path) -> None:
    path = data / "malformed" / "JPEG2000-embedded-sequence-delimiter.dcm"
    (_, inst), = _images_of(path)
    with pytest.raises(DecodeError) as err:
        _fast(path, inst)
    text = str(err.value)
    assert str(path) in text and "JPEG 2000" in text and "1.2.840.10008.1.2.4.91" in text
    assert "corrupt" in text and "\n" not in text


def test_missing_codec_says_what_to_install(data: Path, monkeypatch) -> None:
    path = data / "compressed" / "jpeg-ls" / "JLSL_16_15_1_1F.dcm"
    (_, inst), = _images_of(path)
    uid = inst.transfer_syntax_uid
    # gdcm really is not installed here: a codec table that only knows it has no decoder
    monkeypatch.setitem(codecs._BY_UID, uid, Codec("JPEG-LS Lossless", (uid,), ("gdcm",),
                                                   "pyjpegls (pip install pyjpegls)"))
    codecs.plugins_for.cache_clear()
    try:
        with pytest.raises(DecodeError) as err:
            _fast(path, inst)
    finally:
        codecs.plugins_for.cache_clear()
    text = str(err.value)
    assert "JPEG-LS Lossless" in text and "install pyjpegls" in text


def test_fastest_decoder_is_first(data: Path) -> None:
    assert codecs.plugins_for("1.2.840.10008.1.2.4.80")[0] == "pyjpegls"
    assert codecs.plugins_for("1.2.840.10008.1.2.5")[0] == "pylibjpeg"


@pytest.mark.parametrize("positioned", [True, False], ids=["preadv", "file-object"])
def test_a_native_frame_cut_short_names_the_bytes_it_had(
        data: Path, tmp_path: Path, monkeypatch, positioned: bool) -> None:
    """Both ways of reading an uncompressed frame (a positioned read where the system has one,
    a file object elsewhere) read the same pixels and say where a truncated file ends."""
    from app.dicom import pixels

    monkeypatch.setattr(pixels, "_PREADV", positioned and pixels._PREADV)
    source = data / "ct-head" / "visible-human-male-head-1mm" / "vhm.1100.dcm"
    inst = read_header(source.read_bytes(), str(source)).instance
    info = inst.image
    expected = reference_frames(source)[0]
    assert np.array_equal(read_frame(source, inst.transfer_syntax_uid, info, 0), expected)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(source.read_bytes()[:info.pixel_offset + 1000])
    with pytest.raises(DecodeError, match=r"ends inside the pixel data \(1000 of 524288 bytes"):
        read_frame(cut, inst.transfer_syntax_uid, info, 0)
