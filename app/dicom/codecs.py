"""Which decoder handles which transfer syntax: a table (data), not code.

Each compressed transfer syntax lists pydicom decoding plugins, fastest first. The order was
measured on 512×512 16-bit CT slices with ``bench/bench_codecs.py`` (JPEG-LS: CharLS through
``pyjpegls`` is about 2.5× faster than libjpeg through ``pylibjpeg``; RLE: the Rust decoder of
``pylibjpeg-rle`` beats pydicom's numpy one). Lossy syntaxes keep pydicom's own default order so
that the pixels match the reference reader exactly.

When no plugin for a syntax is installed, :func:`plugins_for` raises a
:class:`~app.errors.DecodeError` that names the packages to install.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from app.errors import DecodeError

log = logging.getLogger(__name__)

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
#: Uncompressed syntaxes whose pixel bytes can be read straight from the file.
NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE})


@dataclass(frozen=True)
class Codec:
    """One family of transfer syntaxes and how to decode it."""

    name: str
    uids: tuple[str, ...]
    #: pydicom decoding plugin names, fastest first.
    plugins: tuple[str, ...]
    #: What to install when none of ``plugins`` is available.
    install: str
    lossy: bool = False


CODECS: tuple[Codec, ...] = (
    Codec("RLE Lossless", ("1.2.840.10008.1.2.5",), ("pylibjpeg", "pydicom"),
          "pylibjpeg-rle (pip install pylibjpeg pylibjpeg-rle)"),
    Codec("JPEG Baseline", ("1.2.840.10008.1.2.4.50",), ("pylibjpeg", "pillow"),
          "pylibjpeg-libjpeg or Pillow", lossy=True),
    Codec("JPEG Extended", ("1.2.840.10008.1.2.4.51",), ("pylibjpeg", "pillow"),
          "pylibjpeg-libjpeg or Pillow", lossy=True),
    Codec("JPEG Lossless", ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"), ("pylibjpeg",),
          "pylibjpeg-libjpeg (pip install pylibjpeg pylibjpeg-libjpeg)"),
    Codec("JPEG-LS Lossless", ("1.2.840.10008.1.2.4.80",), ("pyjpegls", "pylibjpeg"),
          "pyjpegls or pylibjpeg-libjpeg (pip install pyjpegls)"),
    Codec("JPEG-LS Near-Lossless", ("1.2.840.10008.1.2.4.81",), ("pyjpegls", "pylibjpeg"),
          "pyjpegls or pylibjpeg-libjpeg (pip install pyjpegls)", lossy=True),
    Codec("JPEG 2000 Lossless", ("1.2.840.10008.1.2.4.90",), ("pylibjpeg", "pillow"),
          "pylibjpeg-openjpeg (pip install pylibjpeg pylibjpeg-openjpeg)"),
    Codec("JPEG 2000", ("1.2.840.10008.1.2.4.91",), ("pylibjpeg", "pillow"),
          "pylibjpeg-openjpeg (pip install pylibjpeg pylibjpeg-openjpeg)", lossy=True),
    Codec("HTJ2K", ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                    "1.2.840.10008.1.2.4.203"), ("pylibjpeg",),
          "pylibjpeg-openjpeg 2.2 or later (pip install pylibjpeg pylibjpeg-openjpeg)"),
)

_BY_UID = {uid: codec for codec in CODECS for uid in codec.uids}
_NATIVE_NAMES = {
    IMPLICIT_LE: "Implicit VR Little Endian",
    EXPLICIT_LE: "Explicit VR Little Endian",
    EXPLICIT_BE: "Explicit VR Big Endian",
    DEFLATED_LE: "Deflated Explicit VR Little Endian",
}


def syntax_name(uid: str) -> str:
    """A transfer syntax as people say it ("JPEG-LS Lossless (1.2.840.10008.1.2.4.80)")."""
    name = _NATIVE_NAMES.get(uid) or (_BY_UID[uid].name if uid in _BY_UID else "")
    if not name:
        try:
            from pydicom.uid import UID

            name = UID(uid).name if UID(uid).is_transfer_syntax else ""
        except Exception:
            name = ""
    return f"{name} ({uid})" if name and name != uid else f"transfer syntax {uid or '(none)'}"


@functools.cache
def plugins_for(uid: str) -> tuple[str, ...]:
    """Installed decoding plugins for a compressed syntax, fastest first.

    Raises
    ------
    DecodeError
        No decoder for this syntax is installed (the message says what to install), or the
        syntax is unknown.
    """
    codec = _BY_UID.get(uid)
    if codec is None:
        raise DecodeError(f"{syntax_name(uid)} is not a transfer syntax Relay can decode")
    from pydicom.pixels.decoders.base import get_decoder

    try:
        available = set(get_decoder(uid).available_plugins)
    except NotImplementedError:
        available = set()
    chosen = tuple(p for p in codec.plugins if p in available)
    if not chosen:
        raise DecodeError(f"no decoder installed for {syntax_name(uid)}: install {codec.install}")
    return chosen
