"""The layers, enforced by reading every import of every module of ``app`` (``ast``: also the
imports inside functions, which a run of the program only meets on some paths).

- the core (``app`` minus ``cli``, ``render``, ``ui``) imports neither ``app.cli``,
  ``app.render``, ``app.ui``, Qt (PySide6, shiboken6), pyqtgraph nor VTK;
- ``app.render`` imports neither Qt, pyqtgraph, VTK's Qt glue, ``app.ui`` nor ``app.cli``;
- ``app.cli`` may use ``app.render``, but not Qt, pyqtgraph nor ``app.ui``, except the one lazy
  window start (``app.cli.main`` imports ``app.ui.main`` inside a function).

Imports by name at run time (``importlib.import_module``) are not seen here; the runtime check
in ``test_headless.py`` imports every core and render module and looks at ``sys.modules``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import app

QT = ("PySide6", "shiboken6", "pyqtgraph", "vtkmodules.qt")
VTK = ("vtk", "vtkmodules")
#: Layer -> the modules it must never import (a name and everything under it).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("app.cli", "app.render", "app.ui", *QT, *VTK),
    "render": ("app.cli", "app.ui", *QT),
    "cli": ("app.ui", *QT),
    "ui": (),
}
#: (importing module, imported module) allowed inside a function only: the window's start.
LAZY_ALLOWED = {("app.cli.main", "app.ui.main")}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (``from a import b``: ``a.b`` and ``a`` are checked)
    line: int
    lazy: bool  # inside a function


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("cli", "render", "ui"):
        return parts[1]
    return "core"


def imports_of(path: Path, module: str) -> list[Import]:
    """Every import statement of one source file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append(Import(module, base, child.lineno, lazy))
                found.extend(Import(module, f"{base}.{a.name}", child.lineno, lazy)
                             for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def _under(target: str, modules: Iterable[str]) -> bool:
    return any(target == m or target.startswith(m + ".") for m in modules)


def violations(root: Path, package: str) -> list[str]:
    """``module:line imports target`` for every import a layer must not make."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        if module == f"{package}.__main__":
            continue  # the entry point: it starts the CLI
        forbidden = FORBIDDEN[layer_of(module)]
        for imp in imports_of(path, module):
            if _under(imp.target, forbidden) and not (
                    imp.lazy and _under(imp.target, [t for m, t in LAZY_ALLOWED if m == module])):
                bad.append(f"{module}:{imp.line} imports {imp.target}")
    return bad


def test_no_layer_imports_what_is_above_it():
    assert violations(Path(app.__file__).parent, "app") == []


def test_every_module_is_read():
    root = Path(app.__file__).parent
    counted = {layer_of("app." + ".".join(p.relative_to(root).with_suffix("").parts))
               for p in root.rglob("*.py")}
    assert counted == {"core", "cli", "render", "ui"}
    imports = imports_of(root / "cli" / "main.py", "app.cli.main")
    assert [i.lazy for i in imports if i.target == "app.ui.main"] == [True]


def test_a_bad_import_is_caught_wherever_it_hides(tmp_path):
    """The checker fails when a layer is broken: top level, inside a function, relative."""
    pkg = tmp_path / "app"
    (pkg / "store").mkdir(parents=True)
    (pkg / "render").mkdir()
    (pkg / "cli").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "local.py").write_text(
        "import json\n\ndef thumbs():\n    from ..render import thumbnails\n")
    (pkg / "render" / "__init__.py").write_text("")
    (pkg / "render" / "view.py").write_text("import vtk\nfrom PySide6.QtCore import QObject\n")
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "cli" / "main.py").write_text(
        "from app.render import view\nfrom app.ui.main import run\n"
        "def gui():\n    from app.ui.main import run\n")
    (pkg / "dicom.py").write_text("import pyqtgraph as pg\n")
    assert violations(pkg, "app") == [
        "app.cli.main:2 imports app.ui.main",
        "app.cli.main:2 imports app.ui.main.run",
        "app.dicom:1 imports pyqtgraph",
        "app.render.view:2 imports PySide6.QtCore",
        "app.render.view:2 imports PySide6.QtCore.QObject",
        "app.store.local:4 imports app.render",
        "app.store.local:4 imports app.render.thumbnails",
    ]
