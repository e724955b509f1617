"""De-identify a study into a new study (PS3.15 Basic profile + the options ticked)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.store.local import Store
from app.ui.format import count, not_done
from app.ui.worker import TaskWorker
from app.workflow.deid_profile import OPTION_CODES, OPTIONS
from app.workflow.deidentify import DeidResult, Excluded, deidentify_study


class DeidOptionsWidget(QGroupBox):
    """The profile options as check boxes, and the pseudonym (used by export too)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        form = QFormLayout(self)
        self.boxes: dict[str, QCheckBox] = {}
        for name in OPTIONS:
            if name == "retain-uids":
                continue  # only meaningful for an export, offered there by the caller
            box = QCheckBox(OPTION_CODES[name].meaning.replace(" Option", ""), self)
            self.boxes[name] = box
            form.addRow(box)
        self.pseudonym = QLineEdit(self)
        self.pseudonym.setPlaceholderText("e.g. TRIAL-007 (default: a keyed code)")
        form.addRow("Pseudonym", self.pseudonym)

    def options(self) -> tuple[str, ...]:
        return tuple(n for n, b in self.boxes.items() if b.isChecked())


class DeidentifyDialog(QDialog):
    """Runs :func:`deidentify_study` off the GUI thread; :attr:`completed` carries the result."""

    completed = Signal(object)

    def __init__(self, store: Store, study_uid: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.study_uid = store, study_uid
        self.task: TaskWorker | None = None
        self.setWindowTitle("De-identify")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("A de-identified copy is made as a new study; the original "
                                "stays as it is.", self))
        self.opts = DeidOptionsWidget("PS3.15 Basic profile, with these options", self)
        layout.addWidget(self.opts)
        self.burned = QCheckBox("Also take images that may carry burned-in text "
                                "(their pixels are not cleaned)", self)
        layout.addWidget(self.burned)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(self)
        self.ok = buttons.addButton("De-identify", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.run)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def run(self) -> TaskWorker | None:
        if self.task is not None:
            return None
        store, uid = self.store, self.study_uid
        options, pseudonym, burned = (self.opts.options(), self.opts.pseudonym.text().strip(),
                                      self.burned.isChecked())
        task = TaskWorker(lambda p: deidentify_study(store, uid, options=options,
                                                     pseudonym=pseudonym,
                                                     include_burned_in=burned, progress=p),
                          "deidentify", self)
        task.succeeded.connect(self._on_done)
        task.failed.connect(lambda msg: self.status.setText(f"Not de-identified: {msg}"))
        task.finished.connect(self._on_finished)
        self.task = task
        self.ok.setEnabled(False)
        self.status.setText("De-identifying…")
        task.start()
        return task

    def _on_done(self, result: DeidResult) -> None:
        lines = [f"{result.instances} instances de-identified into a new study."]
        lines += left_out_lines(self.store, result.excluded)
        if result.failed:
            lines.append(not_done(result.failed, "de-identified: the copy is incomplete"))
        self.status.setText("\n".join(lines))
        self.completed.emit(result)

    def _on_finished(self) -> None:
        self.task = None
        self.ok.setEnabled(True)


def left_out_lines(store: Store, excluded: tuple[Excluded, ...]) -> list[str]:
    """One line per reason, with the series the images are in ("Left out 40 images (#77 Dose
    report): a secondary capture ..."), not one line per image: a study of screenshots
    would push the dialog past the screen."""
    groups: dict[str, dict[str, int]] = {}
    for e in excluded:
        inst = store.instance(e.sop_instance_uid)
        series = store.series(inst.series_instance_uid) if inst is not None else None
        label = "?" if series is None else series.title or series.modality or "?"
        in_series = groups.setdefault(e.reason, {})
        in_series[label] = in_series.get(label, 0) + 1
    lines = []
    for reason, in_series in groups.items():
        names = list(in_series)
        where = ", ".join(names[:3]) + (f" and {len(names) - 3} more series"
                                        if len(names) > 3 else "")
        lines.append(f"Left out {count(sum(in_series.values()), 'image')} (series {where}): "
                     f"{reason}.")
    if lines:
        lines.append("Tick \"Also take images that may carry burned-in text\" only after "
                     "checking them.")
    return lines
