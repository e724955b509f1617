"""The secrets passphrase typed in the window stays in the process: never in os.environ."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtWidgets import QInputDialog, QWidget

from app.net import secrets
from app.net.secrets import ENV_PASSPHRASE, SecretStore
from app.settings import SecretSettings, Settings
from app.ui.hubs_dialog import ensure_passphrase


def test_typed_passphrase_is_used_but_never_inherited(qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ENV_PASSPHRASE, raising=False)
    monkeypatch.setenv("RELAY_KEYRING", "encrypted-file")
    monkeypatch.setattr(secrets, "_session_passphrase", None)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("typed", True)))
    parent = QWidget()
    qtbot.addWidget(parent)
    assert ensure_passphrase(parent, Settings())
    assert ENV_PASSPHRASE not in os.environ
    child = subprocess.run([sys.executable, "-c", f"import os; print(os.environ.get("
                            f"{ENV_PASSPHRASE!r}, 'absent'))"], capture_output=True, text=True,
                           check=True, timeout=60).stdout.strip()
    assert child == "absent"
    store = SecretStore(tmp_path, SecretSettings(fallback="encrypted-file"))
    store.set("hub", "pw")
    assert store.get("hub") == "pw"
