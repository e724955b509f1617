"""Fuzz the readers of outside input with atheris, as long as wanted.

    .venv/bin/python bench/fuzz.py --seconds 60                 # every target, 60 s each
    .venv/bin/python bench/fuzz.py --seconds 600 --targets header,multipart --rounds 3

Each target (``tests/fuzz/targets.py``) runs in its own niced process (``tests/fuzz/worker.py``)
with a bound of 1 s of CPU per input (10 s of wall time for inputs that block), an
address-space cap of 256 MB above its start and a libFuzzer RSS limit, seeded from
../shared/data (the corpus is kept under ``--workdir``, so runs build on each other).
A crash, hang or memory finding is saved to ``WORKDIR/findings/`` and the target restarts until
its time is used. Prints executions per target and the total; exits 1 when anything was found.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.targets import DATA, TARGETS  # noqa: E402

_EXECS = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_PEAK = re.compile(rb"stat::peak_rss_mb:\s*(\d+)")
_ARTIFACT = re.compile(rb"Test unit written to (\S+)")
_STATUS = re.compile(rb"^#(\d+)\s", re.MULTILINE)


@dataclass
class Tally:
    executions: int = 0
    seconds: float = 0.0
    peak_rss_mb: int = 0
    findings: list[str] = field(default_factory=list)


def seed(name: str, corpus: Path) -> None:
    """Put the target's seeds into an empty corpus folder."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for i, data in enumerate(TARGETS[name].seeds(DATA)):
        (corpus / f"seed-{i:03d}").write_bytes(data)


def run_target(name: str, seconds: float, workdir: Path, tally: Tally, nice: int) -> None:
    """Fuzz one target for ``seconds`` (restarting after each finding)."""
    corpus, findings = workdir / "corpus" / name, workdir / "findings" / name
    seed(name, corpus)
    findings.mkdir(parents=True, exist_ok=True)
    rss_limit = int(os.environ.get("RELAY_FUZZ_RSS_MB", "1024"))
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) >= 1:
        cmd = [sys.executable, "-m", "tests.fuzz.worker", name, str(corpus),
               f"-max_total_time={int(left)}", "-timeout=10", f"-rss_limit_mb={rss_limit}",
               f"-max_len={TARGETS[name].max_len}", "-print_final_stats=1",
               f"-artifact_prefix={findings}/", "-close_fd_mask=1"]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, check=False,
                              preexec_fn=lambda: os.nice(nice),
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        tally.seconds += time.monotonic() - started
        finals = _EXECS.findall(proc.stderr)
        # No final stats: libFuzzer was ended by its own alarm as the time ran out (seen as
        # -SIGALRM with no input saved); count up to its last status line ("#N ...").
        status = _STATUS.findall(proc.stderr)
        tally.executions += int(finals[-1]) if finals else int(status[-1]) if status else 0
        tally.peak_rss_mb = max([tally.peak_rss_mb, *(int(m) for m in _PEAK.findall(proc.stderr))])
        timed_out = time.monotonic() >= deadline - 1
        if proc.returncode == -signal.SIGALRM and timed_out and not _ARTIFACT.search(
                proc.stderr):
            continue
        if proc.returncode != 0:
            found = [a.decode() for a in _ARTIFACT.findall(proc.stderr)]
            log = findings / f"run-{int(time.time())}.log"
            log.write_bytes(b"\n".join(line for line in proc.stderr.splitlines()
                                       if not line.startswith(b"#"))[-20000:])
            tally.findings.extend(found or [str(log)])
            print(f"  {name}: finding ({proc.returncode}), see {log}", flush=True)
            if not found:
                return  # not a saved input (the runner itself failed): do not loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="per target and round")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/relay-fuzz"))
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args()
    names = [n for n in args.targets.split(",") if n]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    tallies = {n: Tally() for n in names}
    for _ in range(args.rounds):
        for name in names:
            run_target(name, args.seconds, args.workdir, tallies[name], args.nice)
    total = sum(t.executions for t in tallies.values())
    print(f"{'target':<10} {'executions':>11} {'seconds':>8} {'exec/s':>7} {'peak MB':>8} findings")
    for name, t in tallies.items():
        rate = t.executions / t.seconds if t.seconds else 0.0
        print(f"{name:<10} {t.executions:>11,} {t.seconds:>8.0f} {rate:>7.0f} "
              f"{t.peak_rss_mb:>8} {len(t.findings)}")
        for f in t.findings:
            print(f"    {f}")
    print(f"total      {total:>11,} executions, "
          f"{sum(len(t.findings) for t in tallies.values())} finding(s)")
    return 1 if any(t.findings for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
