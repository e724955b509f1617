"""Labels for values that come from files or hubs: always plain text, never rich text.

A patient name such as ``<b>DOE</b>`` or ``<img src=...>`` is shown as those characters.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def plain_label(text: str, parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows ``text`` as typed (Qt.PlainText)."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


def make_plain(label: QLabel) -> QLabel:
    """``label`` showing its text as typed from now on."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def escaped(text: str) -> str:
    """``text`` made safe to put inside rich text built around it."""
    return html.escape(text, quote=False)


def tooltip(text: str) -> str:
    """A tool tip showing ``text`` as typed, line breaks kept (Qt renders a tool tip that merely
    looks like HTML as HTML)."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text, quote=False)}</p>"
