"""Two Relay processes on one home: writers side by side, maintenance alone and said plainly.

Real processes: two imports at once (SQLite's busy timeout orders their index writes); a
``relay reindex`` or ``relay check --repair`` refused, naming who holds the store, while
another Relay has it open or is itself repairing it; an import refused while a reindex runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, relay_cmd, relay_env, run_relay

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def data() -> Path:
    if not (DATA / "mr-brain").is_dir():
        pytest.skip(f"test data missing: {DATA}")
    return DATA


def _holding(home: Path, code: str) -> subprocess.Popen[str]:
    """A Python process that runs ``code`` (holding something of ``home``), prints "ready" and
    waits for its stdin to close."""
    script = (f"import sys; from pathlib import Path; home = Path({str(home)!r})\n{code}\n"
              "print('ready', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO, env=relay_env())
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)


def _one_sentence(run: subprocess.CompletedProcess[str], *words: str) -> str:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_two_imports_at_once_both_complete(tmp_path, data) -> None:
    home = tmp_path / "home"
    run_relay("--home", str(home), "ls")  # the home exists before both start
    procs = [subprocess.Popen(relay_cmd("--home", str(home), "import", str(data / sub), "--json"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO, env=relay_env())
             for sub in ("mr-brain", "ct-head")]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and json.loads(out)["failed"] == []
    alone = tmp_path / "alone"  # the same imports one after the other
    for sub in ("mr-brain", "ct-head"):
        run_relay("--home", str(alone), "import", str(data / sub))
    assert _listing(home) == _listing(alone)
    assert run_relay("--home", str(home), "check", check=False).returncode == 0


def _listing(home: Path) -> list[tuple[str, int]]:
    found = json.loads(run_relay("--home", str(home), "ls", "--json").stdout)
    return sorted((s["series_instance_uid"], s["instances"])
                  for st in found["studies"] for s in st["series"])


def test_reindex_and_repair_are_refused_while_another_relay_has_the_store(tmp_path) -> None:
    home = tmp_path / "home"
    holder = _holding(home, "from app.store.local import Store; store = Store(home)")
    try:
        for args in (["reindex"], ["check", "--repair"]):
            _one_sentence(run_relay("--home", str(home), *args, check=False),
                          "in use by another Relay", "needs it alone")
        assert run_relay("--home", str(home), "ls", check=False).returncode == 0  # readers go on
    finally:
        _release(holder)
    assert run_relay("--home", str(home), "reindex", check=False).returncode == 0


def test_while_one_repairs_the_others_are_told_who_holds_the_store(tmp_path) -> None:
    home = tmp_path / "home"
    run_relay("--home", str(home), "ls")
    holder = _holding(home, "from app.store import lock\n"
                            "held = lock.exclusive(home, 'relay reindex'); held.__enter__()")
    try:
        for args in (["reindex"], ["check", "--repair"], ["import", str(REPO / "README.md")]):
            line = _one_sentence(run_relay("--home", str(home), *args, check=False),
                                 "`relay reindex`", f"Relay process {holder.pid}")
        assert "try again when it has finished" in line
    finally:
        _release(holder)
    assert run_relay("--home", str(home), "check", "--repair", check=False).returncode == 0
