"""The DICOM tag viewer: every element of one instance's header, sequences as a tree, private
tags named by their creator, and a search box that keeps the rows (and their parents) whose
tag, name, VR or value matches. Values are plain text; long ones are cut in the list and shown
whole in the tooltip. The pixel data is never read. Given the series' images, a spin box
picks which one (by its place in the series, its Instance Number shown beside it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.labels import plain_label

log = logging.getLogger(__name__)

#: Characters of a value shown in the list (the tooltip holds the rest, up to TOOLTIP_CHARS).
VALUE_CHARS = 200
TOOLTIP_CHARS = 4000
#: Elements listed at most per dataset level (a hostile file can hold millions).
MAX_ELEMENTS = 5000
COLUMNS = ["Tag", "Name", "VR", "Value"]


def element_row(elem: DataElement) -> list[str]:
    """[tag, name, VR, value] as the viewer lists them."""
    tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
    if elem.tag.is_private:
        creator = getattr(elem, "private_creator", "") or ""
        name = elem.name if elem.name and elem.name != "Private tag data" else "Private tag"
        name = f"{name} [{creator}]" if creator else name
    else:
        name = elem.name or "Unknown"
    if elem.VR == "SQ":
        value = f"{len(elem.value)} item(s)"
    elif elem.tag == 0x7FE00010 or elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        size = len(elem.value) if isinstance(elem.value, (bytes, bytearray)) else 0
        value = f"({size} bytes)" if size else "(binary)"
    elif elem.VM > 1 and isinstance(elem.value, MultiValue):
        value = "\\".join(str(v) for v in elem.value)  # as DICOM writes several values
    else:
        value = "" if elem.value is None else str(elem.value)
    return [tag, name, elem.VR, value]


class TagViewerDialog(QDialog):
    """The header of ``path`` (opened with ``title`` as the window title).

    ``images`` (instance number or None, path) in series order adds an image picker; ``path``
    is then the one shown first.
    """

    def __init__(self, path: Path, title: str = "DICOM tags",
                 parent: QWidget | None = None,
                 images: Sequence[tuple[int | None, Path]] = ()) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(900, 700)
        self.images = list(images)
        layout = QVBoxLayout(self)
        self.picker = QSpinBox(self)
        self.picker_label = QLabel(self)
        if self.images:
            row = QHBoxLayout()
            row.addWidget(QLabel("Image", self))
            self.picker.setRange(1, len(self.images))
            self.picker.setSuffix(f" of {len(self.images)}")
            self.picker.setKeyboardTracking(False)
            row.addWidget(self.picker)
            row.addWidget(self.picker_label)
            row.addStretch(1)
            layout.addLayout(row)
        else:
            self.picker.hide()
            self.picker_label.hide()
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tag, name or value (e.g. 0010,0010 or Window)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filter)
        layout.addWidget(self.search)
        self.note = plain_label("", self)
        layout.addWidget(self.note)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.tree.setColumnWidth(1, 260)
        layout.addWidget(self.tree, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        paths = [p for _, p in self.images]
        if path in paths:
            self.picker.setValue(paths.index(path) + 1)
            self._show_number(paths.index(path))
        self.picker.valueChanged.connect(self.pick)
        self.load(path)

    def pick(self, position: int) -> None:
        """Show the header of the series' image at ``position`` (1-based)."""
        if not 1 <= position <= len(self.images):
            return
        self._show_number(position - 1)
        self.load(self.images[position - 1][1])
        self.filter(self.search.text())

    def _show_number(self, index: int) -> None:
        number = self.images[index][0]
        self.picker_label.setText(f"Instance Number {number}" if number is not None
                                  else "no Instance Number")

    def load(self, path: Path) -> None:
        self.tree.clear()
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:  # a hostile file: say so, never crash
            log.info("tag viewer cannot read a file: %s", type(exc).__name__)
            self.note.setText(f"Cannot read {path.name}: {exc}")
            return
        self.note.setText(f"{path.name} · {len(ds.keys())} elements at the top level")
        meta = getattr(ds, "file_meta", None)
        if meta:
            self._add(self.tree.invisibleRootItem(), meta)
        self._add(self.tree.invisibleRootItem(), ds)

    def _add(self, parent: QTreeWidgetItem, ds: Dataset) -> None:
        tags = list(ds.keys())
        for n, tag in enumerate(tags):
            if n >= MAX_ELEMENTS:
                QTreeWidgetItem(parent, ["", f"… {len(tags) - n} more elements not listed"])
                return
            try:
                elem = ds[tag]
                texts = element_row(elem)
            except Exception as exc:  # one bad element is shown as such, the rest go on
                label = f"({tag.group:04X},{tag.element:04X})"
                QTreeWidgetItem(parent, [label, "Unreadable element", "", str(exc)[:VALUE_CHARS]])
                continue
            full = texts[3]
            texts[3] = full if len(full) <= VALUE_CHARS else full[:VALUE_CHARS] + "…"
            item = QTreeWidgetItem(parent, texts)
            item.setToolTip(3, full[:TOOLTIP_CHARS])
            if elem.VR == "SQ":
                for i, child in enumerate(elem.value):
                    entry = QTreeWidgetItem(item, ["", f"Item {i + 1}", "", ""])
                    self._add(entry, child)

    def filter(self, text: str) -> int:
        """Show only rows matching every word (with their parents); returns how many match."""
        words = [w.lower() for w in text.split() if w]
        return self._filter(self.tree.invisibleRootItem(), words)

    def _filter(self, item: QTreeWidgetItem, words: list[str]) -> int:
        matched = 0
        for i in range(item.childCount()):
            child = item.child(i)
            assert child is not None
            haystack = " ".join(child.text(c) for c in range(len(COLUMNS))).lower()
            haystack += " " + haystack.replace("(", "").replace(")", "")
            own = all(w in haystack for w in words)
            below = self._filter(child, words if not own else [])
            visible = own or below > 0
            child.setHidden(not visible)
            if words and below:
                child.setExpanded(True)
            matched += int(own and bool(words)) + below
        return matched

    def rows(self) -> list[list[str]]:
        """Visible rows, depth-first (for tests)."""
        out: list[list[str]] = []

        def walk(item: QTreeWidgetItem) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                if child is not None and not child.isHidden():
                    out.append([child.text(c) for c in range(len(COLUMNS))])
                    walk(child)

        walk(self.tree.invisibleRootItem())
        return out
