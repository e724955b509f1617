"""The list tables of the exchange panels: whole rows selected one at a time, read-only."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QWidget

#: Pixels a cell takes beside its text (its margins and the grid line).
CELL_PADDING = 24


def list_table(parent: QWidget, columns: list[str]) -> QTableWidget:
    """A read-only table of ``columns`` where a click selects one whole row."""
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    return table


def cell(table: QTableWidget, row: int, col: int) -> QTableWidgetItem:
    """The item of a cell that :func:`set_row` filled."""
    item = table.item(row, col)
    assert item is not None, f"cell ({row}, {col}) was never filled"
    return item


def set_row(table: QTableWidget, row: int, texts: list[str], role: int, key: Any) -> None:
    """Put ``texts`` in ``row`` (making the cells on first use), each cell carrying ``key``
    under ``role`` so a click on any cell finds the row's object."""
    for col, text in enumerate(texts):
        item = table.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            table.setItem(row, col, item)
        item.setText(text)
        item.setData(role, key)


def fit_column(table: QTableWidget, col: int, *samples: str) -> None:
    """Make column ``col`` as wide as its header or the widest of ``samples`` (the longest
    text its cells hold, e.g. "9999" for a count), and no wider: the rest of the row is left
    to the columns that stretch (names, descriptions)."""
    cells = max((table.fontMetrics().horizontalAdvance(s) for s in samples), default=0)
    table.setColumnWidth(col, max(table.horizontalHeader().sectionSizeHint(col),
                                  cells + CELL_PADDING))
