"""A large file is imported with bounded memory: hashing and copying it read it piece by piece.

A 270 MB enhanced multi-frame CT (the project's streamed generator) is imported by a ``relay``
process whose peak RSS (``wait4``) must stay below the file's size: the whole file mapped and
touched at once (the old way: ~360 MB here, 2.1 GB for the 2 GB object of
``bench/bench_scale.py``) fails it; pieces dropped once used (~130 MB) pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.dicom.synth import SeriesSpec
from app.dicom.synth_multiframe import generate_multiframe
from tests.conftest import REPO, relay_cmd, relay_env

pytestmark = pytest.mark.slow


def test_a_large_multiframe_is_imported_without_holding_it(tmp_path) -> None:
    path = generate_multiframe(tmp_path / "src" / "mf.dcm", SeriesSpec(
        slices=512, rows=512, columns=512, noise_hu=0), distinct=8)
    size_mb = path.stat().st_size / (1 << 20)
    out = tmp_path / "out.json"
    # Linux keeps a process's peak RSS across fork and exec: a relay started straight from this
    # (big) test process would report the test process's size. A small launcher forks it.
    with open(out, "wb") as fp:
        launched = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, *relay_cmd("--home", str(tmp_path / "home"),
                                                         "import", str(path.parent), "--json")],
            stdout=fp, stderr=subprocess.PIPE, cwd=REPO, env=relay_env(), check=False)
    status, peak_kb = (int(x) for x in launched.stderr.decode().split()[-2:])
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(out.read_text())["imported"] == 1
    peak_mb = peak_kb / 1024
    assert peak_mb < size_mb, f"peak RSS {peak_mb:.0f} MB for a {size_mb:.0f} MB file"


#: Fork and exec the command, wait for it, and write "STATUS MAXRSS_KB" on stderr.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\n{status} {usage.ru_maxrss}\\n")
"""
