"""A throw-away PostgreSQL server on loopback for hubs with a PostgreSQL index.

Plain class (no pytest), like :mod:`tests.proxies`. ``initdb`` in a fresh temp folder, the server
on 127.0.0.1 and a free port, one database per hub, stopped by PID. PostgreSQL refuses to run as
root, so as root (CI) the server runs as the ``postgres`` system user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from app.net.devhub import PostgresIndex, free_port

USER = "relay"


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (package ``postgresql``), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """One PostgreSQL server; :meth:`start`, :meth:`database` per hub, :meth:`stop`."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("needs the Debian package postgresql")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="relay-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._n = 0
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=120,
                       cwd=self.root)

    def start(self, timeout: float = 60.0) -> PostgresServer:
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 (the server holds it)
        self.proc = subprocess.Popen(
            [*self._as, str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(self.root), "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.root)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True, timeout=30)
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start; see {self.root / 'server.log'}")

    def database(self) -> PostgresIndex:
        """A new empty database for one hub."""
        self._n += 1
        name = f"hub{self._n}"
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", USER, name)
        return PostgresIndex(host="127.0.0.1", port=self.port, database=name, user=USER)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), by PID; then the folder goes."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
