"""app.render is numpy + VTK only: importing all of it must not pull in Qt."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, relay_env

CHECK = """
import pkgutil, importlib, sys
import app.render
names = [m.name for m in pkgutil.iter_modules(app.render.__path__, "app.render.")]
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph")
             or m.startswith("vtkmodules.qt"))
print(len(names), bad)
assert not bad, bad
"""


def test_render_imports_no_qt():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          env=relay_env(), cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[0]) >= 10
