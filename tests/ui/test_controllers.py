"""The window's controllers: their Qt-free words, and the split (the window composes them)."""

from __future__ import annotations

from pathlib import Path

from app.net.send import TransferResult
from app.ui.controllers.incoming import tab_title
from app.ui.controllers.remote import result_text


def test_incoming_tab_counts_unseen_studies() -> None:
    assert tab_title(0) == "Incoming" and tab_title(3) == "Incoming (3 new)"


def test_remote_read_result_in_plain_words() -> None:
    done = TransferResult(job="j1", state="verified", instances=120, verified=120)
    assert result_text(done) == "120 of 120 images from the hub are local now."
    assert result_text(done, "orthanc") == "120 of 120 images from orthanc are local now."
    stopped = TransferResult(job="j2", state="failed", instances=120, verified=80,
                             message="hub gone")
    assert result_text(stopped) == "Download stopped: hub gone (80 of 120 local)"


def test_the_window_composes_one_controller_per_job(qtbot, home: Path) -> None:
    from app.store.local import Store
    from app.ui.controllers.imports import ImportController
    from app.ui.controllers.incoming import IncomingController
    from app.ui.controllers.manage import ManageController
    from app.ui.controllers.reading import ReadingController
    from app.ui.controllers.remote import RemoteReadingController
    from app.ui.controllers.transfers import TransfersController
    from app.ui.main_window import MainWindow

    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    kinds = {type(c) for c in (window.importer, window.reading, window.remote, window.transfer,
                               window.incoming_tabs, window.manage)}
    assert kinds == {ImportController, ReadingController, RemoteReadingController,
                     TransfersController, IncomingController, ManageController}
    assert window.viewers is window.reading.viewers
    assert window.transfers is window.transfer.panel
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Studies",
                                                                            "Incoming"]
