"""Start the window: ``relay`` / ``relay PATH...``."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.store import Store


def create_window(home: Path, paths: list[str] | None = None):
    """Build the main window on ``home`` (used by ``run`` and by tests)."""
    from app.ui.main_window import MainWindow

    window = MainWindow(Store(home))
    if paths:
        window._open_after_import = True
        window.import_paths(list(paths))
    return window


def run(home: Path, paths: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Relay")
    app.setOrganizationName("Relay")
    window = create_window(home, paths)
    window.show()
    return app.exec()
