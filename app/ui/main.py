"""Start the window: ``relay`` / ``relay PATH...``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app.resources import resource_path
from app.startup import startup_done
from app.store.local import Store
from app.ui import crash_notice, session_end
from app.ui.shader_cache import use_shader_cache

if TYPE_CHECKING:
    from app.imports.importer import ImportReport
    from app.ui.main_window import MainWindow

log = logging.getLogger(__name__)

#: How long a Python thread may hold the GIL before another gets a turn (Python's default is
#: 5 ms). Loader and network threads run Python between their C calls; with the default, the GUI
#: thread waits up to 5 ms for each hand-over, several times per repaint. At 0.5 ms opening a
#: series drew its first image in 47 ms instead of 161 ms (bench/bench_viewer.py, same run),
#: at no measurable cost to the load itself.
GUI_SWITCH_INTERVAL = 0.0005


def application() -> QApplication:
    """The process's QApplication, set up as the program runs it (also for benches/scripts)."""
    sys.setswitchinterval(GUI_SWITCH_INTERVAL)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Relay")
    app.setOrganizationName("Relay")
    app.setDesktopFileName("relay")  # the desktop entry (packaging/linux/relay.desktop)
    icon = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        icon.addFile(str(resource_path("icons", f"relay-{size}.png")))
    app.setWindowIcon(icon)
    return app


def create_window(home: Path, paths: list[str] | None = None) -> MainWindow:
    """Build the main window on ``home`` (used by ``run`` and by tests); with ``paths``,
    import them and open the first study they brought."""
    from app.ui.main_window import MainWindow

    window = MainWindow(Store(home))
    task = window.import_paths(list(paths)) if paths else None
    if task is not None:
        def open_first(report: ImportReport) -> None:
            if report.study_uids:
                window.open_study(report.study_uids[0])

        task.succeeded.connect(open_first)
    return window


def run(home: Path, paths: list[str] | None = None) -> int:
    use_shader_cache(home)  # before any OpenGL context: the 3D view's shaders compiled once
    app = application()
    window = create_window(home, paths)
    notice = crash_notice.install(window)  # unexpected errors told in plain words
    ending = session_end.install(window)  # SIGTERM / Ctrl-C close it as File -> Quit does
    window.show()
    # the first turn of the event loop comes after the window's first paint: start-up is over
    # (bench/bench_bundle.py times start to this line)
    QTimer.singleShot(0, lambda: log.info("window shown"))
    startup_done()
    code = app.exec()
    ending.uninstall()
    notice.close()
    return code
