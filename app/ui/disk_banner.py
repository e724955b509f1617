"""The low-disk banner: before an import, a fetch or a retrieve starts, the window says plainly
when the store's disk has less free space than the storage rule's ``low_disk_gb``.

Non-blocking, as a workstation should be in a stroke workflow: the work goes on (an urgent
study is never held back by a dialog), the banner stays above the tabs until dismissed or until
there is room again, and it offers the storage settings (where old studies are purged)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.settings import load_settings
from app.store.space import GB, free_bytes


def low_disk_text(home: Path, what: str) -> str | None:
    """The banner's words when the store's disk is below the rule, else None."""
    floor_gb = load_settings(home).storage.low_disk_gb
    free = free_bytes(home)
    if free >= floor_gb * GB:
        return None
    return (f"Low disk space: {free / GB:.1f} GB free for Relay's store (the warning is below "
            f"{round(floor_gb, 1):g} GB). The {what} goes on, but it will stop if the disk fills "
            "up. Free space on the disk, or purge old studies in Storage settings.")


class DiskSpaceBanner(QFrame):
    """A yellow bar with the warning, "Storage settings…" and "Dismiss"; hidden when there is
    room."""

    storage_settings = Signal()

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = Path(home)
        self.setObjectName("diskSpaceBanner")
        self.setStyleSheet("#diskSpaceBanner { background: #fff3cd; border-bottom: 1px solid "
                           "#e0c060; } QLabel { color: #533f03; }")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.settings_button = QPushButton("Storage settings…", self)
        self.settings_button.clicked.connect(self.storage_settings.emit)
        self.dismiss_button = QPushButton("Dismiss", self)
        self.dismiss_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(self.label, 1)
        row.addWidget(self.settings_button)
        row.addWidget(self.dismiss_button)
        self.hide()

    def check(self, what: str) -> str | None:
        """Before ``what`` ("import", "fetch", "retrieve") starts: show the warning when the disk
        is low (returned), hide the banner when there is room again (None)."""
        text = low_disk_text(self.home, what)
        if text is None:
            self.hide()
            return None
        self.label.setText(text)
        self.show()
        return text
