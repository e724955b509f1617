"""The core runs without Qt: importing it pulls in neither PySide6 nor VTK, and the core tests
pass in a process where PySide6, pyqtgraph and VTK cannot be imported at all."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import pytest

import app
from tests.conftest import REPO, relay_env

BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "vtk", "vtkmodules")

# Installed before anything else in the child: any attempt to import a blocked package fails,
# exactly as if it were not installed.
BLOCKER = f"""
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked: the core must run without it")
        return None
sys.meta_path.insert(0, _Block())
"""


def _core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(app.__path__, "app."):
        if info.name.startswith(("app.ui", "app.render")) or info.name == "app.__main__":
            continue
        names.append(info.name)
    return names


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=relay_env(), cwd=REPO, timeout=300)


def test_core_imports_neither_qt_nor_vtk() -> None:
    modules = _core_modules()
    assert "app.store.local" in modules and "app.imports.importer" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r})\n"
        "print(bad)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_render_imports_no_qt() -> None:
    code = (
        "import importlib, pkgutil, sys, app.render\n"
        "for i in pkgutil.walk_packages(app.render.__path__, 'app.render.'):\n"
        "    importlib.import_module(i.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', "
        "'pyqtgraph') or m.startswith('vtkmodules.qt')))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.timeout(900)  # the child's own bound; the suite-wide 300 s cut it when busy
def test_core_suite_passes_with_qt_and_vtk_uninstalled(tmp_path) -> None:
    # sitecustomize runs first in the child and in every process it starts (the CLI tests)
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = relay_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/core", "-q", "-x", "-p", "no:pytest-qt",
         "-p", "no:cacheprovider", "-k",
         "not test_core_suite_passes_with_qt and not test_render_imports_no_qt"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout
