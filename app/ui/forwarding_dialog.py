"""Settings → Forwarding…: the forwarding rules (what goes on to which hub or PACS as it
arrives) and the batching of forwarded instances.

The rules are edited in a table and a form; "Save" checks every rule
(:class:`app.settings.ForwardingRule`: regular expressions, targets) and says what is wrong in
plain words beside the button. ``saved`` tells the window to apply the new rules (its node is
restarted with them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import RelayError
from app.settings import (
    RULE_PRIORITIES,
    RULE_SOURCES,
    ForwardingRule,
    ForwardingSettings,
    load_settings,
    save_settings,
)
from app.ui.labels import plain_label
from app.ui.tables import list_table, set_row
from app.workflow.rules import example

GOOD, BAD = "#1b7f3b", "#b3261e"
SOURCE_WORDS = {"import": "Imports", "listener": "Received by the node",
                "hub": "Fetched from a hub"}


def rule_summary(rule: ForwardingRule) -> str:
    """``CT, body part ~ HEAD, description ~ STROKE`` (``everything`` when no condition)."""
    parts = ["/".join(rule.modalities)] if rule.modalities else []
    if rule.sources:
        parts.append("from " + "/".join(rule.sources))
    for word, value in (("AE", rule.calling_ae), ("body part", rule.body_part),
                        ("description", rule.description)):
        if value:
            parts.append(f"{word} ~ {value}")
    return ", ".join(parts) or "everything"


class RuleForm(QGroupBox):
    """The fields of one rule; :meth:`rule` builds (and checks) it."""

    def __init__(self, targets: list[str], parent: QWidget | None = None) -> None:
        super().__init__("Rule", parent)
        self.name_edit = QLineEdit(self)
        self.targets_list = QListWidget(self)
        for target in targets:
            item = QListWidgetItem(target, self.targets_list)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
        self.targets_list.setMaximumHeight(80)
        self.source_boxes = {s: QCheckBox(SOURCE_WORDS[s], self) for s in RULE_SOURCES}
        sources = QHBoxLayout()
        for box in self.source_boxes.values():
            sources.addWidget(box)
        self.ae_edit = QLineEdit(self)
        self.modalities_edit = QLineEdit(self)
        self.modalities_edit.setPlaceholderText("CT, MR (empty: any)")
        self.body_edit = QLineEdit(self)
        self.body_edit.setPlaceholderText("regular expression, e.g. HEAD|BRAIN")
        self.description_edit = QLineEdit(self)
        self.description_edit.setPlaceholderText("regular expression, e.g. STROKE|CODE|CTA")
        self.priority_combo = QComboBox(self)
        for p in RULE_PRIORITIES:
            self.priority_combo.addItem("Stroke: before any other transfer" if p == "stroke"
                                        else "Normal", p)
        self.enabled_box = QCheckBox("Apply this rule", self)
        form = QFormLayout(self)
        form.addRow("Name", self.name_edit)
        form.addRow("Send to", self.targets_list)
        form.addRow("Only from (none: any)", sources)
        form.addRow("Calling AE title", self.ae_edit)
        form.addRow("Modalities", self.modalities_edit)
        form.addRow("Body part", self.body_edit)
        form.addRow("Study or series description", self.description_edit)
        form.addRow("Priority", self.priority_combo)
        form.addRow("", self.enabled_box)

    def show_rule(self, rule: ForwardingRule) -> None:
        self.name_edit.setText(rule.name)
        for n in range(self.targets_list.count()):
            item = self.targets_list.item(n)
            item.setCheckState(Qt.CheckState.Checked if item.text() in rule.targets
                               else Qt.CheckState.Unchecked)
        for source, box in self.source_boxes.items():
            box.setChecked(source in rule.sources)
        self.ae_edit.setText(rule.calling_ae)
        self.modalities_edit.setText(", ".join(rule.modalities))
        self.body_edit.setText(rule.body_part)
        self.description_edit.setText(rule.description)
        self.priority_combo.setCurrentIndex(self.priority_combo.findData(rule.priority))
        self.enabled_box.setChecked(rule.enabled)

    def rule(self) -> ForwardingRule:
        """The rule the fields describe (:class:`~app.errors.SettingsError` if it is wrong)."""
        checked = [self.targets_list.item(n).text() for n in range(self.targets_list.count())
                   if self.targets_list.item(n).checkState() == Qt.CheckState.Checked]
        return ForwardingRule(
            name=self.name_edit.text().strip(), targets=checked,
            sources=[s for s, b in self.source_boxes.items() if b.isChecked()],
            calling_ae=self.ae_edit.text().strip(),
            modalities=[m.strip().upper() for m in self.modalities_edit.text().split(",")
                        if m.strip()],
            body_part=self.body_edit.text().strip(),
            description=self.description_edit.text().strip(),
            priority=str(self.priority_combo.currentData()),
            enabled=self.enabled_box.isChecked())


class ForwardingDialog(QDialog):
    """Settings → Forwarding…"""

    saved = Signal(object)  # ForwardingSettings

    COLUMNS = ["Rule", "When", "Send to", "Priority"]

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Forwarding")
        self.home = Path(home)
        settings = load_settings(self.home)
        self.rules: list[ForwardingRule] = list(settings.forwarding.rules)
        self.current = -1
        targets = [f"hub:{h.name}" for h in settings.hubs] + \
            [f"pacs:{p.name}" for p in settings.pacs]
        intro = plain_label("Instances that match a rule are sent on as they arrive, in small "
                            "batches, verified, never twice. Stroke rules go before any other "
                            "transfer.", self)
        intro.setWordWrap(True)
        self.table = list_table(self, self.COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_selected)
        self.form = RuleForm(targets, self)
        self.form.setEnabled(False)
        add_example = QPushButton("Add the stroke example", self)
        add_example.clicked.connect(self.add_example)
        add_new = QPushButton("New rule", self)
        add_new.clicked.connect(lambda: self._add(ForwardingRule(name=self._free_name("rule"))))
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_current)
        buttons_row = QHBoxLayout()
        for b in (add_example, add_new, self.remove_button):
            buttons_row.addWidget(b)
        buttons_row.addStretch(1)
        fwd = settings.forwarding
        batching = QGroupBox("Batches", self)
        self.n_spin = QSpinBox(batching)
        self.n_spin.setRange(1, 500)
        self.n_spin.setValue(fwd.batch_instances)
        self.t_spin = QSpinBox(batching)
        self.t_spin.setRange(10, 60000)
        self.t_spin.setSuffix(" ms")
        self.t_spin.setValue(fwd.batch_ms)
        self.imports_box = QCheckBox("Also apply the rules to imports (CD, folder, zip)",
                                     batching)
        self.imports_box.setChecked(fwd.imports)
        batch_form = QFormLayout(batching)
        batch_form.addRow("Send a batch after this many instances", self.n_spin)
        batch_form.addRow("... or when its first has waited", self.t_spin)
        batch_form.addRow("", self.imports_box)
        self.status = QLabel(self)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                               | QDialogButtonBox.StandardButton.Close, self)
        box.accepted.connect(self.save)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table)
        layout.addLayout(buttons_row)
        widgets: tuple[QWidget, ...] = (self.form, batching, self.status, box)
        for w in widgets:
            layout.addWidget(w)
        self.resize(760, 820)
        self._refresh()

    # -- editing ---------------------------------------------------------------------------
    def add_example(self) -> None:
        fields = example("stroke")
        fields["name"] = self._free_name("stroke")
        hubs = [self.form.targets_list.item(n).text()
                for n in range(self.form.targets_list.count())]
        fields["targets"] = [t for t in hubs if t.startswith("hub:")][:1]
        self._add(ForwardingRule(**fields))

    def remove_current(self) -> None:
        if 0 <= self.current < len(self.rules):
            del self.rules[self.current]
            self.current = -1
            self._refresh()

    def save(self) -> bool:
        """Check and write the rules; False (and why, beside the button) when one is wrong."""
        try:
            self._take_form()
            settings = load_settings(self.home)
            settings.forwarding = ForwardingSettings(
                rules=list(self.rules), imports=self.imports_box.isChecked(),
                batch_instances=self.n_spin.value(), batch_ms=self.t_spin.value(),
                quiet_seconds=settings.forwarding.quiet_seconds)
            save_settings(self.home, settings)
        except RelayError as exc:
            self._say(str(exc), BAD)
            return False
        self._say(f"Saved: {len(self.rules)} rule(s).", GOOD)
        self.saved.emit(settings.forwarding)
        return True

    def _add(self, rule: ForwardingRule) -> None:
        try:
            self._take_form()
        except RelayError as exc:
            self._say(str(exc), BAD)
            return
        self.rules.append(rule)
        self.current = len(self.rules) - 1
        self._refresh()

    def _take_form(self) -> None:
        """The form's rule back into the list (it may raise: the rule is wrong)."""
        if 0 <= self.current < len(self.rules):
            self.rules[self.current] = self.form.rule()

    def _free_name(self, base: str) -> str:
        names = {r.name for r in self.rules}
        return base if base not in names else next(f"{base}-{n}" for n in range(2, 1000)
                                                   if f"{base}-{n}" not in names)

    def _on_selected(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        row = min(rows) if rows else -1
        if row == self.current:
            return
        try:
            self._take_form()
        except RelayError as exc:
            self._say(str(exc), BAD)
        self.current = row
        self._refresh(select=False)

    def _refresh(self, select: bool = True) -> None:
        self.table.setRowCount(len(self.rules))
        for row, rule in enumerate(self.rules):
            set_row(self.table, row, [rule.name + ("" if rule.enabled else " (off)"),
                                      rule_summary(rule), ", ".join(rule.targets) or "—",
                                      rule.priority], Qt.ItemDataRole.UserRole, row)
        self.table.resizeColumnsToContents()
        if select and 0 <= self.current < len(self.rules):
            self.table.blockSignals(True)
            self.table.selectRow(self.current)
            self.table.blockSignals(False)
        valid = 0 <= self.current < len(self.rules)
        self.form.setEnabled(valid)
        self.remove_button.setEnabled(valid)
        if valid:
            self.form.show_rule(self.rules[self.current])

    def _say(self, text: str, colour: str) -> None:
        self.status.setStyleSheet(f"color: {colour}")
        self.status.setText(text)

    def rule_fields(self) -> list[dict[str, object]]:
        """The rules as they stand (for tests and the window)."""
        return [dataclasses.asdict(r) for r in self.rules]
