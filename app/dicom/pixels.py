"""Decode one frame of one stored file, using what the index recorded at import.

This is the fast path: no header is parsed again. Uncompressed little-endian frames are read
with ``readinto`` straight into the caller's array; big-endian ones are swapped in place;
compressed frames are read fragment by fragment (offsets from :class:`~app.model.ImageInfo`) and
handed to the fastest installed decoder (:mod:`app.dicom.codecs`) through pydicom's decoder API,
which
also applies pydicom's corrections (JPEG 2000 / JPEG-LS signedness, YBR to RGB), so the result is
identical to :func:`tests.reference.reference_frames`.

Colour: YBR and RGB come out as RGB (``(rows, columns, 3)``); PALETTE COLOR is mapped through
the file's palette to RGB; MONOCHROME1 is left as stored (inverting is the display's job, see
:mod:`app.render.voi`).

Every failure is a :class:`~app.errors.DecodeError` whose message names the file, the transfer
syntax and what is wrong or what to install.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from app.dicom.codecs import DEFLATED_LE, EXPLICIT_BE, NATIVE, plugins_for, syntax_name
from app.errors import DecodeError
from app.model import ImageInfo

log = logging.getLogger(__name__)

_ITEM = b"\xfe\xff\x00\xe0"
_EMPTY_BOT = _ITEM + b"\x00\x00\x00\x00"


def frame_shape(info: ImageInfo) -> tuple[int, ...]:
    """Shape of one decoded frame: ``(rows, columns)`` or ``(rows, columns, 3)`` for colour."""
    if is_color(info):
        return (info.rows, info.columns, 3)
    return (info.rows, info.columns)


def is_color(info: ImageInfo) -> bool:
    return info.samples_per_pixel > 1 or info.photometric_interpretation == "PALETTE COLOR"


def frame_dtype(info: ImageInfo) -> np.dtype[Any]:
    """The dtype a decoded frame has: pixels as stored (RGB of a palette: its LUT's width)."""
    if info.photometric_interpretation == "PALETTE COLOR":
        return np.dtype(np.uint16)  # LUT entries are 8 or 16 bits; 16 holds both
    bits = info.bits_allocated
    size = 1 if bits <= 8 else 2 if bits <= 16 else 4 if bits <= 32 else 8
    if info.samples_per_pixel > 1:
        return np.dtype(f"u{size}")
    return np.dtype(f"{'i' if info.pixel_representation else 'u'}{size}")


def frame_nbytes(info: ImageInfo) -> int:
    return int(np.prod(frame_shape(info))) * frame_dtype(info).itemsize


def read_frame(path: Path | str, transfer_syntax: str, info: ImageInfo, frame: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """Decode frame ``frame`` (0-based) of the file at ``path`` into ``out``.

    Parameters
    ----------
    path
        The stored file.
    transfer_syntax
        Its Transfer Syntax UID (from the index).
    info
        Its :class:`~app.model.ImageInfo` (from the index).
    frame
        Which frame, 0 for single-frame images.
    out
        A C-contiguous array of :func:`frame_shape` and :func:`frame_dtype` to fill; a new one
        is allocated when None.

    Returns
    -------
    numpy.ndarray
        ``out`` (or the new array), holding stored pixel values (RGB for colour images).

    Raises
    ------
    DecodeError
        The frame cannot be decoded; the message names the file and the transfer syntax.
    """
    if out is None:
        out = np.empty(frame_shape(info), frame_dtype(info))
    if not 0 <= frame < info.frames:
        raise DecodeError(f"{path}: frame {frame + 1} asked of an image with {info.frames}")
    try:
        if is_native_direct(transfer_syntax, info):
            _read_native(path, transfer_syntax, info, frame, out)
        else:
            _decode(path, transfer_syntax, info, frame, out)
    except DecodeError:
        raise
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:
        raise DecodeError(
            f"{path}: {syntax_name(transfer_syntax)}: the pixel data cannot be decoded "
            f"({_first_line(exc)})"
        ) from None
    return out


def is_native_direct(ts: str, info: ImageInfo) -> bool:
    """Can the frame's bytes go straight from the file into the array (maybe byte-swapped)?

    True for uncompressed grey images of 8, 16 or 32 bits with a known pixel data offset;
    everything else (colour, 1-bit, deflated, compressed) goes through a decoder.
    """
    return is_native_format(ts, info.samples_per_pixel, info.bits_allocated,
                            info.photometric_interpretation, info.pixel_offset is not None)


def is_native_format(ts: str, samples_per_pixel: int, bits_allocated: int, photometric: str,
                     offset_known: bool) -> bool:
    """:func:`is_native_direct` from the fields it looks at (as :meth:`Store.pixel_formats`
    gives them)."""
    return (
        ts in NATIVE
        and offset_known
        and samples_per_pixel == 1
        and bits_allocated in (8, 16, 32)
        and photometric in ("MONOCHROME1", "MONOCHROME2")
        and not (ts == EXPLICIT_BE and bits_allocated == 8)
    )


def needs_decoder(formats: Iterable[tuple[str, int, int, str, bool]]) -> bool:
    """Does any of these pixel formats (:meth:`Store.pixel_formats`) need pydicom's decoders
    (compressed, colour, deflated, ...)? A program imports the codecs at start-up only then."""
    return not all(is_native_format(*f) for f in formats)


def _read_native(path: Path | str, ts: str, info: ImageInfo, frame: int,
                 out: np.ndarray) -> None:
    nbytes = out.nbytes
    assert info.pixel_offset is not None
    start = info.pixel_offset + frame * nbytes
    view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    got = _read_at(path, start, view)
    if got < nbytes:
        raise DecodeError(
            f"{path}: {syntax_name(ts)}: the file ends inside the pixel data "
            f"({got} of {nbytes} bytes of frame {frame + 1})"
        )
    if ts == EXPLICIT_BE and out.dtype.itemsize > 1:
        out.byteswap(inplace=True)


_PREADV = hasattr(os, "preadv")


def _read_at(path: Path | str, offset: int, view: memoryview) -> int:
    """Read the file's bytes from ``offset`` into ``view`` (until it is full or the file
    ends); returns how many were read. A positioned read on a bare descriptor (no file
    object, no seek) where the system has one: a load does this once per slice."""
    if not _PREADV:
        with open(path, "rb", buffering=0) as fp:
            fp.seek(offset)
            got = 0
            while got < len(view) and (n := fp.readinto(view[got:])):
                got += n
            return got
    fd = os.open(path, os.O_RDONLY)
    try:
        got = 0
        while got < len(view) and (n := os.preadv(fd, [view[got:]], offset + got)):
            got += n
        return got
    finally:
        os.close(fd)


def _decode(path: Path | str, ts: str, info: ImageInfo, frame: int, out: np.ndarray) -> None:
    """Everything that is not a plain native frame goes through pydicom's decoders."""
    if ts == DEFLATED_LE or info.pixel_offset is None:
        arr = _decode_whole_file(path, frame)
    elif ts in NATIVE:
        arr = _decode_native_buffer(path, ts, info, frame)
    else:
        arr = _decode_encapsulated(path, ts, info, frame)
    if info.photometric_interpretation == "PALETTE COLOR":
        arr = _apply_palette(path, arr)
    if arr.shape != out.shape:
        raise DecodeError(
            f"{path}: {syntax_name(ts)}: decoded image is {_dims(arr.shape)}, the header says "
            f"{_dims(out.shape)}"
        )
    np.copyto(out, arr, casting="unsafe")


def _decode_native_buffer(path: Path | str, ts: str, info: ImageInfo, frame: int) -> np.ndarray:
    from pydicom.pixels.decoders.base import get_decoder

    assert info.pixel_offset is not None
    nbytes = (info.rows * info.columns * info.samples_per_pixel * info.bits_allocated + 7) // 8
    with open(path, "rb") as fp:
        fp.seek(info.pixel_offset + frame * nbytes)
        data = fp.read(nbytes + (nbytes % 2))
    arr, _ = get_decoder(ts).as_array(
        data, index=0, **_options(info), pixel_vr="OW")  # type: ignore[arg-type]
    return arr


def _decode_encapsulated(path: Path | str, ts: str, info: ImageInfo, frame: int) -> np.ndarray:
    from pydicom.pixels.decoders.base import get_decoder

    plugins = plugins_for(ts)  # raises with "install ..." when nothing can decode this syntax
    data = _frame_items(path, ts, info, frame)
    decoder = get_decoder(ts)
    errors = []
    for plugin in plugins:
        try:
            arr, _ = decoder.as_array(data, index=0, decoding_plugin=plugin, **_options(info))
            return arr
        except Exception as exc:
            errors.append(_first_line(exc))
    raise DecodeError(
        f"{path}: {syntax_name(ts)}: the compressed frame {frame + 1} is corrupt or not "
        f"decodable ({errors[0] if errors else 'no decoder'})"
    )


def _frame_items(path: Path | str, ts: str, info: ImageInfo, frame: int) -> bytes:
    """A minimal encapsulated Pixel Data value (empty offset table + this frame's fragments)."""
    frags = info.fragments
    if info.frames == 1:
        chosen = frags
    elif len(frags) == info.frames:
        chosen = (frags[frame],)
    else:
        chosen = _split_fragments(path, ts, info)[frame]
    parts = [_EMPTY_BOT]
    with open(path, "rb") as fp:
        for offset, length in chosen:
            fp.seek(offset)
            data = fp.read(length)
            if len(data) != length:
                raise DecodeError(f"{path}: {syntax_name(ts)}: the file ends inside the "
                                  f"compressed pixel data")
            parts += [_ITEM, struct.pack("<I", length), data]
    return b"".join(parts)


def _split_fragments(path: Path | str, ts: str,
                     info: ImageInfo) -> list[tuple[tuple[int, int], ...]]:
    """Group fragments into frames by the codestream start marker each frame begins with."""
    starts = (b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP")
    groups: list[list[tuple[int, int]]] = []
    with open(path, "rb") as fp:
        for offset, length in info.fragments:
            fp.seek(offset)
            head = fp.read(12)
            if not groups or any(head.startswith(s) for s in starts):
                groups.append([])
            groups[-1].append((offset, length))
    if len(groups) != info.frames:
        raise DecodeError(f"{path}: {syntax_name(ts)}: cannot tell which of the "
                          f"{len(info.fragments)} fragments belong to which of the "
                          f"{info.frames} frames")
    return [tuple(g) for g in groups]


def _options(info: ImageInfo) -> dict[str, Any]:
    return {
        "rows": info.rows,
        "columns": info.columns,
        "samples_per_pixel": info.samples_per_pixel,
        "bits_allocated": info.bits_allocated,
        "bits_stored": info.bits_stored,
        "pixel_representation": info.pixel_representation,
        "photometric_interpretation": info.photometric_interpretation,
        "planar_configuration": info.planar_configuration,
        "number_of_frames": 1,
        "pixel_keyword": "PixelData",
    }


def _decode_whole_file(path: Path | str, frame: int) -> np.ndarray:
    """Deflated files (and others without addressable pixel data): pydicom reads it all."""
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return arr[frame] if frames > 1 else arr


@functools.lru_cache(maxsize=8)
def _palette_dataset(path: str) -> Any:
    import pydicom

    return pydicom.dcmread(path, force=True, stop_before_pixels=True)


def _apply_palette(path: Path | str, arr: np.ndarray) -> np.ndarray:
    from pydicom.pixels.processing import apply_color_lut

    return np.asarray(apply_color_lut(arr, _palette_dataset(str(path))))


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[-1] if len(lines) > 1 and lines[0].endswith(":") else (lines[0] if lines else "")
    return (text or type(exc).__name__)[:200]
