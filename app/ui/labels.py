"""Labels for values that come from files or hubs: always plain text, never rich text.

A patient name such as ``<b>DOE</b>`` or ``<img src=...>`` is shown as those characters.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def plain_label(text: str, parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows ``text`` as typed (Qt.PlainText)."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label
