"""The MPR side panel: slab, window, mouse mode, reset, loading progress and geometry notes.

Pure controls: it emits what the user chose and shows what it is told; the
:class:`~app.ui.mpr_widget.MprWidget` does the work.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.render.reslice import MAX_SLAB_MM
from app.render.window_presets import WindowPreset
from app.ui.labels import escaped, plain_label

#: Slab choices: (label, mode); mode "" is a thin slice.
SLAB_MODES = (("Thin slice", ""), ("MIP", "mip"), ("MinIP", "minip"), ("Average", "avg"))
HELP = ("Click or drag: move the crosshair · drag a coloured line: tilt the other planes · "
        "wheel or ↑↓: move the plane · Shift+drag: window/level · right drag: zoom · "
        "middle drag: pan · R: reset")


class MprPanelWidget(QWidget):
    """Controls and notes beside the three MPR views."""

    slab_changed = Signal(str, float)  # mode ("" thin), thickness mm
    left_mode_changed = Signal(str)  # "crosshair" | "window"
    preset_chosen = Signal(object)  # WindowPreset
    shared_window_toggled = Signal(bool)
    reset_requested = Signal(str)  # "acquisition" | "patient"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress_label = plain_label("", self)
        self.progress_label.setWordWrap(True)

        self.mode = QComboBox(self)
        for label, mode in SLAB_MODES:
            self.mode.addItem(label, mode)
        self.thickness = QSpinBox(self)
        self.thickness.setRange(1, int(MAX_SLAB_MM))
        self.thickness.setSuffix(" mm")
        self.thickness.setValue(20)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(1, int(MAX_SLAB_MM))
        self.slider.setValue(20)
        self.slider.valueChanged.connect(self.thickness.setValue)
        self.thickness.valueChanged.connect(self.slider.setValue)
        self.mode.currentIndexChanged.connect(self._on_slab_edited)
        self.thickness.valueChanged.connect(self._on_slab_edited)

        self.presets = QComboBox(self)
        self.presets.activated.connect(self._on_preset_activated)
        self.shared = QCheckBox("Same window in all views", self)
        self.shared.setChecked(True)
        self.shared.toggled.connect(self.shared_window_toggled)

        self.crosshair_mode = QRadioButton("Crosshair", self)
        self.window_mode = QRadioButton("Window/level", self)
        self.crosshair_mode.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.crosshair_mode)
        group.addButton(self.window_mode)
        self.crosshair_mode.toggled.connect(
            lambda on: self.left_mode_changed.emit("crosshair" if on else "window"))

        self.reset_acquisition = QPushButton("Reset to acquisition planes", self)
        self.reset_acquisition.clicked.connect(lambda: self.reset_requested.emit("acquisition"))
        self.reset_patient = QPushButton("Patient axes", self)
        self.reset_patient.setToolTip("Planes along the patient's axes (true axial, coronal, "
                                      "sagittal), whatever the acquisition")
        self.reset_patient.clicked.connect(lambda: self.reset_requested.emit("patient"))

        self.notes = QLabel(self)
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        help_label = QLabel(HELP, self)
        help_label.setWordWrap(True)
        help_label.setStyleSheet("color: gray")

        form = QFormLayout()
        slab_row = QHBoxLayout()
        slab_row.addWidget(self.mode)
        slab_row.addWidget(self.thickness)
        form.addRow("Slab", slab_row)
        form.addRow("", self.slider)
        form.addRow("Window", self.presets)
        form.addRow("", self.shared)
        mouse_row = QHBoxLayout()
        mouse_row.addWidget(self.crosshair_mode)
        mouse_row.addWidget(self.window_mode)
        form.addRow("Left drag", mouse_row)
        reset_row = QHBoxLayout()
        reset_row.addWidget(self.reset_acquisition)
        reset_row.addWidget(self.reset_patient)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addLayout(form)
        layout.addLayout(reset_row)
        layout.addWidget(self.notes, 1)
        layout.addWidget(help_label)
        self._sync_enabled()

    # -- shown state --------------------------------------------------------------------------
    def set_title(self, text: str) -> None:
        self.title.setText(f"<b>{escaped(text)}</b>")

    def set_progress(self, done: int, total: int, text: str = "") -> None:
        """Loading progress; hidden once everything is in and there is nothing to say."""
        finished = total > 0 and done >= total
        self.progress.setRange(0, max(total, 1) if total else 0)
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} slices")
        self.progress.setVisible(not finished or total == 0)
        self.progress_label.setText(text)
        self.progress_label.setVisible(bool(text))

    def set_notes(self, issues: list[str], notes: list[str]) -> None:
        """Geometry issues of the series (amber) and what MPR did about them (plain)."""
        parts = [f"<p style='color:#ffb347'>⚠ {escaped(s)}</p>" for s in issues]
        parts += [f"<p>{escaped(s)}</p>" for s in notes]
        self.notes.setText("".join(parts))

    def set_presets(self, presets: list[WindowPreset]) -> None:
        self.presets.clear()
        self.presets.addItem("Presets…", None)
        for preset in presets:
            self.presets.addItem(preset.label, preset)

    def set_slab(self, mode: str, mm: float) -> None:
        """Show a slab chosen elsewhere (no signal)."""
        for widget in (self.mode, self.thickness, self.slider):
            widget.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))
        if mm:
            self.thickness.setValue(round(mm))
            self.slider.setValue(round(mm))
        for widget in (self.mode, self.thickness, self.slider):
            widget.blockSignals(False)
        self._sync_enabled()

    # -- slots --------------------------------------------------------------------------------
    def _on_slab_edited(self, *_: object) -> None:
        self._sync_enabled()
        mode = self.mode.currentData()
        self.slab_changed.emit(mode, float(self.thickness.value()) if mode else 0.0)

    def _on_preset_activated(self, index: int) -> None:
        preset = self.presets.itemData(index)
        if preset is not None:
            self.preset_chosen.emit(preset)
        self.presets.setCurrentIndex(0)

    def _sync_enabled(self) -> None:
        thick = bool(self.mode.currentData())
        self.thickness.setEnabled(thick)
        self.slider.setEnabled(thick)


