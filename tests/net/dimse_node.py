"""Helpers for tests of Relay's DICOM node: a listener on loopback, dcmtk tools, byte checks."""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.net.devhub import free_port
from app.net.dimse.listener import Listener
from app.net.dimse.node import MoveDestination, NodeSettings
from app.store.local import Store
from tests.conftest import relay_cmd, relay_env

needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None,
                                 reason="needs the Debian package dcmtk")


@contextmanager
def running_node(home: Path, **settings) -> Iterator[Listener]:
    """Relay's node on 127.0.0.1 (a free port) over the store in ``home``, stopped after."""
    node = NodeSettings(bind="127.0.0.1", **{"port": free_port(), **settings})
    listener = Listener(Store(home), node)
    listener.start()
    try:
        yield listener
    finally:
        listener.stop(grace=2.0)


def dcmtk(tool: str, *args: str, cwd: Path | None = None, timeout: float = 120):
    """Run a dcmtk tool; the CompletedProcess (output kept for the assertions)."""
    try:
        return subprocess.run([tool, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=cwd)
    except subprocess.TimeoutExpired as exc:  # what it said before it hung, for the report
        faulthandler.dump_traceback(sys.stderr, all_threads=True)  # where the node's threads are
        raise AssertionError(f"{tool} did not end within {timeout:.0f} s; it said:\n"
                             f"{exc.stdout!r}\n{exc.stderr!r}") from exc


def peer(listener: Listener) -> list[str]:
    """dcmtk's ``-aec AE HOST PORT`` for the listener."""
    host, port = listener.address or ("", 0)
    return ["-aec", listener.node.ae_title, host, str(port)]


def dataset_bytes(path: Path) -> bytes:
    """A Part-10 file's data set as encoded (what follows the file meta group)."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM", path
    # (0002,0000) UL group length, explicit VR: tag(4) VR(2) len(2) value(4) from offset 132.
    assert raw[132:136] == b"\x02\x00\x00\x00", f"{path}: no meta group length"
    (length,) = struct.unpack("<I", raw[140:144])
    return raw[144 + length:]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def destination(ae: str, port: int) -> MoveDestination:
    return MoveDestination(ae_title=ae, host="127.0.0.1", port=port)


def stored_hashes(store: Store) -> dict[str, str]:
    """sop uid -> sha256 of the stored file, each file re-hashed from disk."""
    out = {}
    for study in store.studies():
        for series in study.series:
            for inst in store.instances(series.series_instance_uid):
                assert inst.path is not None
                assert sha256(inst.path) == inst.sha256
                out[inst.sop_instance_uid] = inst.sha256
    return out


def start_listen(home: Path, port: int, *extra: str, json_out: bool = True) -> subprocess.Popen:
    """``relay listen`` (``--json`` when ``json_out``) in a subprocess, once it says it listens
    (within 60 s, or it is killed). What it wrote to stderr so far is kept in
    ``proc.early_stderr``."""
    proc = subprocess.Popen(
        relay_cmd("--home", str(home), "listen", "--bind", "127.0.0.1", "--port", str(port),
                  *(["--json"] if json_out else []), *extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=relay_env())
    assert proc.stderr is not None
    seen = _read_until(proc.stderr, b"Ctrl-C stops it", 60.0, 1.0)
    if b"Ctrl-C stops it" not in seen:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError("relay listen did not start:\n" + seen.decode(errors="replace"))
    proc.early_stderr = seen.decode(errors="replace")  # type: ignore[attr-defined]
    return proc


def read_until(proc: subprocess.Popen, text: str, timeout: float = 30.0) -> str:
    """What ``proc`` printed on stdout until ``text`` appeared (or ``timeout`` seconds)."""
    assert proc.stdout is not None
    return _read_until(proc.stdout, text.encode(), timeout, 0.5).decode(errors="replace")


def _read_until(stream, marker: bytes, timeout: float, poll: float) -> bytes:
    """What ``stream`` gave until ``marker`` appeared, it ended, or ``timeout`` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], poll)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break  # it exited
            seen += chunk
    return seen


def stop_listen(proc: subprocess.Popen) -> tuple[dict, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    err_text = proc.early_stderr + err.decode(errors="replace")  # type: ignore[attr-defined]
    assert proc.returncode == 0, err_text
    return json.loads(out), err_text
