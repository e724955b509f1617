"""The bundle's size and its start-up time beside the unbundled program, in one run.

Printed: dist/relay/ unpacked size (goal <= 350 MB) with its ten biggest parts, the .deb's size,
and the time from process start to the window shown (the "window shown" log line, written on the
first turn of the event loop after the window's first paint) for the bundled ``relay`` and for
``python -m app``, alternated run by run on the same empty home (goal: bundle within 1.5x), plus
``relay --version`` both ways (the command line's start).

Build the bundle first (``./setup.sh bundle``), then, from the repository root, on a display
(xvfb-run gives one)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/bench_bundle.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist" / "relay"


def tree_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir())


def biggest_parts(folder: Path, n: int = 10) -> list[tuple[int, str]]:
    inner = folder / "_internal"
    parts = [(tree_bytes(p) if p.is_dir() else p.lstat().st_size, p.name) for p in inner.iterdir()]
    return sorted(parts, reverse=True)[:n]


def time_to_window(cmd: list[str], home: Path, env: dict[str, str], timeout: float = 180) -> float:
    """Seconds from starting ``cmd`` to its "window shown" log line; the window is then closed
    with SIGTERM (as a session ending does) and must exit 0."""
    started = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--home", str(home), "-v"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    shown = None
    deadline = started + timeout
    while time.perf_counter() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if "window shown" in line:
            shown = time.perf_counter() - started
            break
    proc.terminate()
    code = proc.wait(timeout=60)
    if shown is None or code != 0:
        raise SystemExit(f"bench_bundle: {' '.join(cmd)} did not show its window (exit {code})")
    return shown


def time_version(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([*cmd, "--version"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (DIST / "relay").is_file():
        raise SystemExit("bench_bundle: no bundle in dist/relay (run ./setup.sh bundle)")
    size = tree_bytes(DIST)
    print(f"bundle dist/relay: {size / 1e6:.0f} MB unpacked (goal <= 350 MB)")
    for part_bytes, name in biggest_parts(DIST):
        print(f"  {part_bytes / 1e6:7.1f} MB  {name}")
    for deb in sorted(DIST.parent.glob("relay_*.deb")):
        print(f"package {deb.name}: {deb.stat().st_size / 1e6:.0f} MB")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.setdefault("QT_QPA_PLATFORM", "xcb" if env.get("DISPLAY") else "offscreen")
    py_env = dict(env, PYTHONPATH=str(REPO))
    bundled = [str(DIST / "relay")]
    unbundled = [sys.executable, "-m", "app"]
    times: dict[str, list[float]] = {"bundle": [], "python -m app": []}
    versions: dict[str, list[float]] = {"bundle": [], "python -m app": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs + 1):  # the first round warms the page cache; not counted
            for name, cmd, cmd_env in (("bundle", bundled, env),
                                       ("python -m app", unbundled, py_env)):
                home = Path(tmp) / f"{name.split()[0]}-{run}"
                shown = time_to_window(cmd, home, cmd_env)
                version = time_version(cmd, cmd_env)
                if run:
                    times[name].append(shown)
                    versions[name].append(version)
    med = {k: statistics.median(v) for k, v in times.items()}
    ver = {k: statistics.median(v) for k, v in versions.items()}
    print(f"start to window shown, median of {args.runs} (empty store, "
          f"QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']}):")
    for name in times:
        print(f"  {name:14s} {med[name]:6.2f} s   (runs: "
              f"{', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"  ratio bundle / python -m app: {med['bundle'] / med['python -m app']:.2f} "
          "(goal <= 1.5)")
    print(f"relay --version: bundle {ver['bundle']:.2f} s, python -m app "
          f"{ver['python -m app']:.2f} s (ratio {ver['bundle'] / ver['python -m app']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
