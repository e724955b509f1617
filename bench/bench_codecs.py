"""Which installed decoder is fastest for each compressed syntax, on one 512×512 CT slice.

Prints milliseconds per frame for every available pydicom plugin, side by side, so the order in
:data:`app.dicom.codecs.CODECS` can be checked on this machine. Run from the repository root::

    PYTHONPATH=. python bench/bench_codecs.py [--cache /tmp/relay-bench]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pydicom.pixels import get_decoder

from app.dicom.header import read_header
from app.dicom.pixels import _frame_items, _options
from app.dicom.synth import SeriesSpec, generate_series

SYNTAXES = ["rle", "jpeg-lossless", "jpegls", "j2k"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "relay-bench")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'syntax':<16}{'plugin':<12}{'ms/frame':>10}")
    for syntax in SYNTAXES:
        folder = args.cache / f"codec-{syntax}"
        path = folder / "IM00001.dcm"
        if not path.exists():
            generate_series(folder, SeriesSpec(slices=1, transfer_syntax=syntax))
        inst = read_header(path.read_bytes(), str(path)).instance
        data = _frame_items(path, inst.transfer_syntax_uid, inst.image, 0)
        decoder = get_decoder(inst.transfer_syntax_uid)
        for plugin in decoder.available_plugins:
            decoder.as_array(data, index=0, decoding_plugin=plugin, **_options(inst.image))
            t = time.perf_counter()
            for _ in range(args.repeat):
                decoder.as_array(data, index=0, decoding_plugin=plugin, **_options(inst.image))
            ms = (time.perf_counter() - t) / args.repeat * 1000
            print(f"{syntax:<16}{plugin:<12}{ms:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
