"""One version everywhere: app.__version__ (the one place it is written), pyproject.toml,
CHANGELOG.md's newest entry and `relay --version` (Help -> About: tests/ui/test_storage_help.py)."""

from __future__ import annotations

import re
import subprocess
import tomllib

from app import __version__
from tests.conftest import REPO, relay_cmd, relay_env


def test_changelog_pyproject_and_relay_version_agree() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\S+)", changelog, re.M)
    assert newest is not None, "CHANGELOG.md has no '## VERSION' entry"
    assert newest.group(1) == __version__
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == __version__
    out = subprocess.run(relay_cmd("--version"), capture_output=True, text=True, env=relay_env(),
                         check=True).stdout
    assert out.strip() == f"relay {__version__}"
