"""Scale: a 10,000-instance study and a 2 GB enhanced multi-frame object, end to end.

Each is generated with the project's generators (:mod:`app.dicom.synth`, 5 series x 2,000
thin slices of 64 x 64; :mod:`app.dicom.synth_multiframe`, 4,096 frames of 512 x 512), then
each step runs as its own ``relay`` process, timed, with that process's peak RSS (``wait4``):
import, list, first image (``relay render --slice 0``), send to a local Orthanc hub
(``relay dev-hub`` machinery), fetch into a second home, and ``relay check``.

    .venv/bin/python bench/bench_scale.py [--series 5 --slices 2000] [--frames 4096]
                                          [--skip-study] [--skip-multiframe] [--keep DIR]

Needs the Debian packages orthanc and orthanc-dicomweb for the send and fetch steps.

Measured 2026-12-03 on the 2-core machine with a load average of 10-15 (the full test suite and
other helpers' work running beside it; process start-up alone took 2-6 s), Orthanc 1.10.1:

| case | step | time | peak RSS | note |
|---|---|---|---|---|
| 10,000 instances | generate | 631 s | | 95 MB, 5 series x 2,000 slices of 64 x 64 |
| 10,000 instances | import | 102 s | 92 MB | 10,000 imported |
| 10,000 instances | ls | 26.6 s | 91 MB | series planning of 5 x 2,000 slices dominates |
| 10,000 instances | first image | 8.3 s | 61 MB | ``relay render --slice 0`` |
| 10,000 instances | check | 23.3 s | 65 MB | every SHA-256 against the index |
| 10,000 instances | send | 120 s | 61 MB | 10,000 verified |
| 10,000 instances | fetch | 107 s | 73 MB | 10,000 verified |
| 2 GB multi-frame | generate | 25-40 s | | 2.15 GB, 4,096 frames of 512 x 512 |
| 2 GB multi-frame | import | 172 s | 150 MB | was 2,134 MB before the import read it in pieces |
| 2 GB multi-frame | ls | 12-16 s | 92 MB | |
| 2 GB multi-frame | first image | 8.9 s | 92 MB | |
| 2 GB multi-frame | check | 39-44 s | 92 MB | |
| 2 GB multi-frame | send | 189 s | 92 MB | verified (11 MB/s) |
| 2 GB multi-frame | fetch | failed | 64 MB | Orthanc cannot send it (below) |

The 2 GB fetch: Orthanc 1.10.1 (CivetWeb 1.15) announces the answer's Content-Length, then closes
before its first byte for any body over 2^31 - 1 bytes (its log: "This HTTP answer has not sent
the proper number of bytes in its body"); its own REST ``/instances/{id}/file`` fails the same
way, while a 2,144,842,176-byte object (4,090 frames) comes back whole. No setting changes it
(docs/hub-limits.md). Relay used to retry for its 600 s and leave the job "waiting"; it now fails
the job at the first answer (2026-12-04: 26 s, 63 MB peak RSS, ``relay fetch`` exit 1) with "the
hub cannot send this 2.15 GB object: its web server ends every answer over 2 GiB before its first
byte (a limit of Orthanc), so trying again will not help".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.dicom.synth import SeriesSpec, generate_series  # noqa: E402
from app.dicom.synth_multiframe import generate_multiframe  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO), "RELAY_KEYRING": "encrypted-file",
       "RELAY_KEYRING_PASSPHRASE": "bench-only-passphrase",
       "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


class StepFailed(Exception):
    """A relay step ended non-zero (its last words kept)."""


def relay(home: Path, *args: str) -> tuple[float, float, str]:
    """Run one relay command; (seconds, its peak RSS in MB from ``wait4``, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "app", "--home", str(home), *args],
                                stdout=out, stderr=err, cwd=REPO, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            last = err.read().decode().strip().splitlines()
            raise StepFailed(f"exit {proc.returncode}: {last[-2] if len(last) > 1 else last}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def _row(name: str, step: str, seconds: float, rss: float, extra: str = "") -> None:
    print(f"| {name} | {step} | {seconds:8.1f} s | {rss:8.0f} MB | {extra} |", flush=True)


def run_case(name: str, src: Path, work: Path, hub: OrthancHub | None, nbytes: int) -> None:
    home, reader = work / f"{name}-home", work / f"{name}-reader"
    s, rss, out = relay(home, "import", str(src), "--json")
    report = json.loads(out)
    _row(name, "import", s, rss, f"{report['imported']} imported, {nbytes / 1e6:,.0f} MB "
                                 f"({nbytes / 1e6 / s:,.0f} MB/s)")
    s, rss, out = relay(home, "ls", "--json")
    studies = json.loads(out)["studies"]
    study = studies[0]["study_instance_uid"]
    series = studies[0]["series"][0]["series_instance_uid"]
    count = sum(x["instances"] for st in studies for x in st["series"])
    _row(name, "ls", s, rss, f"{count} instances listed")
    s, rss, _ = relay(home, "render", series, "--slice", "0", "--out",
                      str(work / f"{name.replace(' ', '-')}-first.png"))
    _row(name, "first image", s, rss, "relay render --slice 0 (process start included)")
    s, rss, _ = relay(home, "check", "--json")
    _row(name, "check", s, rss, "every file's SHA-256 against the index")
    if hub is None:
        return
    for h in (home, reader):
        h.mkdir(mode=0o700, exist_ok=True)
        subprocess.run([sys.executable, "-m", "app", "--home", str(h), "hub", "add", "local",
                        "--url", hub.url], check=True, cwd=REPO, env=ENV,
                       stdout=subprocess.DEVNULL)
    for step, where, args in (("send", home, ("send", study, "--hub", "local")),
                              ("fetch", reader, ("fetch", "--hub", "local", study))):
        started = time.perf_counter()
        try:
            s, rss, out = relay(where, *args, "--json")
        except StepFailed as exc:
            _row(name, step, time.perf_counter() - started, 0.0, f"FAILED {exc}")
            continue
        _row(name, step, s, rss, f"{json.loads(out)['verified']} verified "
                                 f"({nbytes / 1e6 / s:,.0f} MB/s)")


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5)
    parser.add_argument("--slices", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--skip-multiframe", action="store_true")
    parser.add_argument("--no-hub", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="relay-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    hub = None
    if not args.no_hub:
        hub = OrthancHub(HubConfig(storage=work / "hub", http_port=free_port(),
                                   extra={"HttpTimeout": 600})).start(timeout=60)
    print("| case | step | time | peak RSS | note |\n|---|---|---|---|---|", flush=True)
    try:
        if not args.skip_study:
            src = work / "study"
            started = time.perf_counter()
            files: list[Path] = []
            for i in range(args.series):
                files += generate_series(src / f"s{i}", SeriesSpec(
                    slices=args.slices, rows=64, columns=64, slice_step=0.5, noise_hu=0,
                    series_number=i + 1, study_instance_uid="2.25.1000000001",
                    series_instance_uid=f"2.25.100000000{i + 2}"))
            _row(f"{len(files)} instances", "generate", time.perf_counter() - started, 0.0,
                 f"{_size(files) / 1e6:,.0f} MB")
            run_case(f"{len(files)} instances", src, work, hub, _size(files))
        if not args.skip_multiframe:
            src = work / "multiframe"
            started = time.perf_counter()
            path = generate_multiframe(src / "enhanced-ct.dcm", SeriesSpec(
                slices=args.frames, rows=512, columns=512, noise_hu=0), distinct=64)
            size = path.stat().st_size
            _row("multi-frame", "generate", time.perf_counter() - started, 0.0,
                 f"{size / 1e9:.2f} GB, {args.frames} frames")
            run_case("multi-frame", src, work, hub, size)
    finally:
        if hub is not None:
            hub.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
