"""Run Relay commands on a real, small tmpfs: a full disk, for real.

The tmpfs is mounted in a private mount namespace (``unshare -rm``: as root in CI, as a mapped
user elsewhere), so nothing outside the test sees it. Steps run in one shell inside the
namespace, in order: a ``relay`` command (its stdout, stderr and exit code are kept), ``grow`` (the
tmpfs is remounted larger: space freed), or ``copy`` (a prepared Relay home copied onto it).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, relay_env


@dataclass(frozen=True)
class Ran:
    """One ``relay`` step's outcome."""

    rc: int
    stdout: str
    stderr: str


def need_namespaces() -> None:
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no user/mount namespaces here (unshare -rm) to mount a small tmpfs")


def on_small_disk(tmp: Path, size_mb: int, steps: list[tuple[str, ...]], *,
                  reserve: int | None = None) -> list[Ran]:
    """Run ``steps`` with a ``size_mb`` tmpfs at ``tmp/disk``; return the relay steps' outcomes.

    Steps: ``("relay", *args)`` (``{disk}`` in an argument is the mount point),
    ``("grow", mb)``, ``("copy", src, name)`` (``src`` copied to ``{disk}/name``).
    ``reserve``: :data:`app.store.local.RESERVE_BYTES` for the relay steps (0: the disk really
    fills up to the last byte).
    """
    need_namespaces()
    disk, out = tmp / "disk", tmp / "out"
    disk.mkdir()
    out.mkdir()
    lines = [f"mount -t tmpfs -o size={size_mb}m,mode=0700 tmpfs {disk} || exit 99"]
    relay = [sys.executable, "-c",
             "import sys; import app.store.local as l; "
             + (f"l.RESERVE_BYTES = {reserve}; " if reserve is not None else "")
             + "from app.cli.main import main; sys.exit(main(sys.argv[1:]))"]
    n = 0
    for step in steps:
        if step[0] == "relay":
            args = [a.replace("{disk}", str(disk)) for a in step[1:]]
            cmd = " ".join(shlex.quote(a) for a in relay + args)
            lines.append(f"{cmd} >{out}/{n}.out 2>{out}/{n}.err; echo $? >{out}/{n}.rc")
            n += 1
        elif step[0] == "grow":
            lines.append(f"mount -o remount,size={step[1]}m {disk} || exit 98")
        elif step[0] == "copy":
            lines.append(f"cp -a {shlex.quote(step[1])} {disk}/{shlex.quote(step[2])} || exit 97")
        else:
            raise ValueError(step[0])
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", "\n".join(lines)], cwd=REPO,
                          env=relay_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [Ran(int((out / f"{i}.rc").read_text()), (out / f"{i}.out").read_text(),
                (out / f"{i}.err").read_text()) for i in range(n)]
