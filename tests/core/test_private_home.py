"""The home is private to the user: folders 0700, files 0600, new and old homes alike."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, relay_env, run_relay

CT = ("ct-head", "ge-hispeed-human-gantry-tilt")


def _open_to_others(home: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            if stat.S_IMODE(os.lstat(path).st_mode) & 0o077:
                found.append(f"{oct(stat.S_IMODE(os.lstat(path).st_mode))} {path}")
    if stat.S_IMODE(home.stat().st_mode) & 0o077:
        found.append(f"{oct(stat.S_IMODE(home.stat().st_mode))} {home}")
    return found


def test_a_new_home_is_private(data: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_relay("--home", str(home), "import", str(data.joinpath(*CT)))
    run_relay("--home", str(home), "ls", "--json")
    assert (home / "index.sqlite").exists() and any((home / "store" / "objects").rglob("*"))
    assert _open_to_others(home) == []


def test_temp_and_part_files_are_private(tmp_path: Path) -> None:
    code = (
        "import sys, os\nfrom app.store.local import Store\nfrom app.settings import *\n"
        "s = Store(sys.argv[1])\np = s.new_part()\nopen(p, 'wb').write(b'x')\n"
        "print(oct(os.stat(p).st_mode & 0o777))\n"
        "save_settings(s.home, Settings())\n"
        "print(oct(os.stat(s.home / 'settings.json').st_mode & 0o777))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], env=relay_env(),
                         cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["0o600", "0o600"]


def test_an_old_open_home_is_tightened_on_open(data: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_relay("--home", str(home), "import", str(data.joinpath(*CT)))
    (home / ".private").unlink()
    for folder, dirs, files in os.walk(home):  # as an older Relay left it
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    os.chmod(home, 0o755)
    assert _open_to_others(home)
    run_relay("--home", str(home), "ls")
    assert _open_to_others(home) == []
