"""Zip import scales linearly: reading every member of a big zip, opened once vs per member.

Builds a zip of N small members (a CT perfusion export easily has 20,000) and reads every member
the way import does (:func:`app.imports.media.walk`, then ``MediaItem.open``), side by side with
the way it was done before (a fresh ``ZipFile`` per member, re-reading the central directory),
which is quadratic and so only run on the first ``--old`` members. Then a full
``import_paths`` of the whole zip into a fresh store.

    .venv/bin/python bench/bench_zip.py [--members 20000] [--old 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.imports.importer import import_paths  # noqa: E402
from app.imports.media import walk  # noqa: E402
from app.store.local import Store  # noqa: E402


def _make(path: Path, members: int) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for n in range(members):
            zf.writestr(f"EXAM/SER{n // 1000:03d}/IM{n:05d}", n.to_bytes(4, "little") * 256)


def _read_once(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    listing = walk([str(path)])
    total = 0
    for item in listing.items:
        with item.open() as buf:
            total += len(buf)
    listing.close()
    return len(listing.items), time.perf_counter() - start


def _read_reopening(path: Path, limit: int) -> tuple[int, float]:
    start = time.perf_counter()
    with zipfile.ZipFile(path) as zf:
        names = [i.filename for i in zf.infolist()][:limit]
    for name in names:
        with zipfile.ZipFile(path) as zf, zf.open(name) as fp:
            fp.read()
    return len(names), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--old", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-bench-zip-") as tmp_dir:
        archive = Path(tmp_dir) / "exam.zip"
        _make(archive, args.members)
        n_new, t_new = _read_once(archive)
        n_old, t_old = _read_reopening(archive, args.old)
        per_new, per_old = t_new / n_new, t_old / n_old
        print(f"opened once:       {n_new:6d} members in {t_new:7.2f} s "
              f"({per_new * 1e6:8.1f} µs per member)")
        print(f"reopened per member: {n_old:4d} members in {t_old:7.2f} s "
              f"({per_old * 1e6:8.1f} µs per member; it grows with the archive)")
        print(f"per member: {per_old / per_new:.0f}x faster; the old way would need "
              f"~{per_old * args.members:.0f} s for all {args.members}")
        start = time.perf_counter()
        report = import_paths(Store(Path(tmp_dir) / "home"), [str(archive)])
        print(f"import_paths of the whole zip: {time.perf_counter() - start:.2f} s "
              f"({len(report.skipped)} members looked at, none DICOM)")


if __name__ == "__main__":
    main()
