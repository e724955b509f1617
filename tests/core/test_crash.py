"""Unexpected exceptions are logged without their message and told to listeners."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

from app import crash
from app.settings import _build

PATIENT = "DOE^JOHN"


def _fail() -> None:
    """Fails inside Relay's code with a message that holds a patient's name."""
    _build(dict, ["not", "an", "object"], f"/media/cd/{PATIENT}/settings.json")


@pytest.fixture
def heard():
    found: list[crash.Crash] = []
    undo = crash.install(found.append)
    yield found
    undo()


def test_a_thread_that_dies_is_logged_and_told_without_patient_data(heard, caplog):
    caplog.set_level(logging.INFO, logger="app.crash")
    thread = threading.Thread(target=_fail, name="loader-7")
    thread.start()
    thread.join(10)
    assert heard == [crash.Crash(kind="SettingsError", where="app.settings._build",
                                 thread="loader-7")]
    text = caplog.text
    assert "unexpected SettingsError in app.settings._build (thread loader-7)" in text
    assert "in _fail" in text  # the stack says where, frame by frame
    assert PATIENT not in text  # the message is not logged at INFO and above
    assert "unexpected problem (SettingsError in app.settings._build)" in heard[0].words


def test_the_main_thread_hook_reports_and_names_relays_own_frame(heard, caplog):
    try:
        _fail()
    except Exception:
        sys.excepthook(*sys.exc_info())  # what Python does with an uncaught exception
    assert len(heard) == 1 and heard[0].where == "app.settings._build"
    assert "unexpected SettingsError in app.settings._build" in caplog.text
    assert PATIENT not in caplog.text


def test_keyboard_interrupt_and_thread_exit_are_not_errors(heard, capsys):
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
    thread = threading.Thread(target=sys.exit, args=(0,))
    thread.start()
    thread.join(10)
    assert heard == []
    assert "KeyboardInterrupt" in capsys.readouterr().err  # Python's own handling


def test_undo_gives_the_hooks_back():
    before = (sys.excepthook, threading.excepthook)
    undo = crash.install()
    assert sys.excepthook is not before[0]
    undo()
    assert (sys.excepthook, threading.excepthook) == before
