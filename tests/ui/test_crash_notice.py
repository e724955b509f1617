"""An unexpected error in the window is told in plain words, once, not a silent death."""

from __future__ import annotations

import logging
import threading

import pytest
from PySide6.QtCore import QTimer, qWarning
from PySide6.QtWidgets import QWidget

from app.ui import crash_notice


def _fail() -> None:
    raise ZeroDivisionError("^".join(["DOE", "JOHN"]))  # a name only in the message


@pytest.mark.qt_no_exception_capture
def test_errors_in_a_slot_and_in_a_thread_are_told_in_one_box(qtbot, caplog):
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    notice = crash_notice.install(parent)
    try:
        QTimer.singleShot(0, _fail)  # a slot that raises: PySide6 hands it to sys.excepthook
        qtbot.waitUntil(lambda: notice.box is not None and notice.box.isVisible(), timeout=10_000)
        assert notice.box is not None
        assert notice.box.text().startswith("Relay ran into an unexpected problem "
                                            "(ZeroDivisionError")
        assert "restart Relay" in notice.box.text()
        worker = threading.Thread(target=_fail, name="worker")
        worker.start()
        worker.join(10)
        qtbot.waitUntil(lambda: notice.count == 2, timeout=10_000)  # hopped to the GUI thread
        assert notice.box.informativeText() == "This happened 2 times."
        assert len([w for w in parent.findChildren(type(notice.box)) if w.isVisible()]) == 1
        assert "unexpected ZeroDivisionError" in caplog.text and "DOE^JOHN" not in caplog.text
    finally:
        notice.close()


def test_qt_messages_go_to_the_log(qtbot, caplog):
    parent = QWidget()
    qtbot.addWidget(parent)
    notice = crash_notice.install(parent)
    try:
        with caplog.at_level(logging.WARNING, logger="qt"):
            qWarning("a warning from Qt")
        assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
            ("qt", logging.WARNING, "a warning from Qt")]
    finally:
        notice.close()
