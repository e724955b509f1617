"""The fuzz targets in CI: every saved finding replays clean, every seed passes, and a short
atheris run of each target (``bench/fuzz.py``) finds nothing. Long runs: ``bench/fuzz.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO, relay_env
from tests.fuzz.targets import TARGETS, cases

pytestmark = pytest.mark.usefixtures("data")

SAVED = [(name, path) for name in TARGETS for path in cases(name)]


@pytest.mark.parametrize(("name", "path"), SAVED, ids=[f"{n}/{p.name}" for n, p in SAVED])
def test_a_saved_finding_is_refused_cleanly(name: str, path: Path) -> None:
    TARGETS[name].run(path.read_bytes())


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_seed_passes_its_target(name: str) -> None:
    seeds = list(TARGETS[name].seeds(DATA))
    assert seeds, f"no seeds for {name} in {DATA}"
    for data in seeds:
        TARGETS[name].run(data)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # six instrumented processes: ~1 min idle, far more on a busy machine
def test_a_short_fuzz_run_of_every_target_finds_nothing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [sys.executable, "bench/fuzz.py", "--seconds", "2", "--workdir", str(tmp_path),
         "--nice", "0"], cwd=REPO, env=relay_env(), capture_output=True, text=True, timeout=1100)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = int(proc.stdout.split("total")[-1].split("executions")[0].replace(",", ""))
    assert total > 0, proc.stdout
