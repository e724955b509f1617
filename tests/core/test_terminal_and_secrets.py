"""Small leaks closed: escape sequences in media file names, the secrets file written safely."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.net.cryptfile import EncryptedFileKeyring
from tests.conftest import REPO, relay_env, run_relay


def test_media_file_names_are_escaped_on_the_terminal(tmp_path: Path) -> None:
    media = tmp_path / "usb"
    media.mkdir()
    hostile = "\x1b]0;pwned\x07\x1b[2Jreadme.txt"
    (media / hostile).write_text("not DICOM")
    out = run_relay("--home", str(tmp_path / "home"), "import", str(media)).stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2Jreadme.txt" in out


def test_secrets_file_saved_through_a_fresh_exclusive_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.enc"
    planted = tmp_path / "planted"
    planted.write_text("someone else's")
    (tmp_path / "secrets.tmp").symlink_to(planted)  # the old fixed temp name
    ring = EncryptedFileKeyring(path, "passphrase")
    ring.set_password("Relay", "hub:a", "one")
    assert planted.read_text() == "someone else's"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert ring.get_password("Relay", "hub:a") == "one"


CONCURRENT = """
import sys
from app.net.cryptfile import EncryptedFileKeyring
ring = EncryptedFileKeyring(sys.argv[1], "passphrase")
for n in range(15):
    ring.set_password("Relay", f"hub:{sys.argv[2]}{n}", "x")
"""


def test_two_processes_writing_secrets_lose_no_entry(tmp_path: Path) -> None:
    path = tmp_path / "secrets.enc"
    EncryptedFileKeyring(path, "passphrase").set_password("Relay", "hub:first", "x")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(path), who],
                              env=relay_env(), cwd=REPO) for who in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    ring = EncryptedFileKeyring(path, "passphrase")
    missing = [f"{who}{n}" for who in "ab" for n in range(15)
               if ring.get_password("Relay", f"hub:{who}{n}") is None]
    assert missing == []
