"""Import speed: ``relay import`` of a generated 400-slice CT against ``cp -r`` of the same files.

Both run in this one process's run, alternating, each on a cold destination (fresh home / fresh
copy target), a few times; the best of each is compared. ``relay import`` does more than a copy:
it parses every header, hashes every byte (SHA-256), fsyncs every file and indexes it in SQLite.

    .venv/bin/python bench/bench_import.py [--slices 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.dicom.synth import SeriesSpec, generate_series  # noqa: E402


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        src = tmp / "ct"
        t0 = time.perf_counter()
        files = generate_series(src, SeriesSpec(slices=args.slices))
        size = sum(f.stat().st_size for f in files)
        print(f"generated {len(files)} slices 512x512 ({size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t0:.1f} s")
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm
        relay_times, cp_times, inproc_times = [], [], []
        for run in range(args.repeat):
            cp_times.append(_timed(["cp", "-r", str(src), str(tmp / f"copy{run}")]))
            relay_times.append(_timed([sys.executable, "-m", "app", "import", str(src),
                                       "--home", str(tmp / f"home{run}"), "--json"]))
            code = ("import time,sys; from app.store.local import Store; "
                    "from app.imports.importer import import_paths; s=Store(sys.argv[2]); "
                    "t=time.perf_counter(); import_paths(s,[sys.argv[1]]); "
                    "print(time.perf_counter()-t)")
            out = subprocess.run([sys.executable, "-c", code, str(src), str(tmp / f"in{run}")],
                                 capture_output=True, text=True, check=True, cwd=REPO)
            inproc_times.append(float(out.stdout))
            shutil.rmtree(tmp / f"copy{run}")
        best_cp, best_relay, best_in = min(cp_times), min(relay_times), min(inproc_times)
        print(f"cp -r                 : {best_cp:6.3f} s  ({size / 1e6 / best_cp:7.1f} MB/s)")
        print(f"relay import (process): {best_relay:6.3f} s  ({size / 1e6 / best_relay:7.1f} MB/s)")
        print(f"relay import (in-proc): {best_in:6.3f} s  ({size / 1e6 / best_in:7.1f} MB/s)")
        print(f"ratio relay/cp        : {best_relay / best_cp:6.2f}x (process), "
              f"{best_in / best_cp:.2f}x (import work only)")


if __name__ == "__main__":
    main()
