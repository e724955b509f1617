"""Text from headers, hubs and media is shown as text, never as HTML.

Qt renders a label or tool tip whose text merely *looks* like HTML as rich text, so a patient
name such as ``<b style="font-size:1px">X</b>REAL`` could hide or restyle the patient a user is
confirming. Every label that can show such text is made with :func:`plain_label` (or turned plain
with :func:`make_plain`); rich text built around outside values escapes them with
:func:`escaped`; tool tips go through :func:`tooltip`.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def make_plain(label: QLabel) -> QLabel:
    """``label`` showing its text literally from now on."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A label that shows ``text`` literally."""
    label = make_plain(QLabel(parent))
    label.setText(text)
    return label


def escaped(text: str) -> str:
    """``text`` made safe to put inside rich text."""
    return html.escape(text, quote=False)


def tooltip(text: str) -> str:
    """A tool tip that shows ``text`` literally, line breaks kept."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text, quote=False)}</p>"
