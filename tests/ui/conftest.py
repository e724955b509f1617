import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def shown_window(qtbot, home: Path, width: int, height: int):
    """The main window on the store in ``home``, sized, shown and exposed (closed by qtbot)."""
    from app.store.local import Store
    from app.ui.main_window import MainWindow

    window = MainWindow(Store(home))
    window.resize(width, height)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def reading_window(qtbot, home: Path, width: int, height: int) -> Iterator:
    """:func:`shown_window` for a fixture to yield; its reading tabs' series are closed after
    (their loader threads stop before the next test)."""
    window = shown_window(qtbot, home, width, height)
    yield window
    for viewer in window.viewers.values():
        viewer.close_all()
