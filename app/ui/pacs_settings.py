"""Settings → PACS and node…, the PACS half: the PACS Relay queries, retrieves from and sends to
(profiles of kind ``dimse``), added, edited, tested and removed as ``relay pacs`` does.

"Test" is the peer's own check (C-ECHO, then a query matching nothing; see
:meth:`app.net.dimse.peer.DimsePeer.check`) on the form as typed, off the GUI thread, with what
is wrong in plain words. A PACS cannot take a hub's name (one list of names).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import RelayError
from app.net.dimse.node import check_ae_title
from app.net.hubs import HubCheck, check_hub, peer_for
from app.settings import HubProfile, load_settings, save_settings
from app.tasks import Progress
from app.ui.labels import plain_label
from app.ui.worker import TaskWorker

GOOD, BAD = "#1b7f3b", "#b3261e"
#: The retrieve choices: (label, method).
RETRIEVE_CHOICES = [("C-GET (through firewalls)", "get"), ("C-MOVE to Relay's node", "move")]


class PacsSettingsWidget(QGroupBox):
    """The PACS list and the form of the one selected; ``changed`` after a save or removal."""

    changed = Signal()

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__("PACS", parent)
        self.home = Path(home)
        self.last_check: HubCheck | None = None
        self._editing = ""  # name of the PACS in the form ("" for a new one)
        self._test: TaskWorker | None = None
        self.pacs_list = QListWidget(self)
        self.pacs_list.currentTextChanged.connect(self._on_pick)
        self.name_edit = QLineEdit(self)
        self.host_edit = QLineEdit(self)
        self.host_edit.setPlaceholderText("pacs.hospital.org or 10.0.0.9")
        self.port_spin = QSpinBox(self)
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(104)
        self.ae_edit = QLineEdit(self)
        self.ae_edit.setMaxLength(16)
        self.ae_edit.setPlaceholderText("the PACS's AE title (case-sensitive)")
        self.retrieve_combo = QComboBox(self)
        for label, method in RETRIEVE_CHOICES:
            self.retrieve_combo.addItem(label, method)
        self.tls_check = QCheckBox("DICOM over TLS (the PACS's certificate is verified)", self)
        self.ca_edit = QLineEdit(self)
        self.cert_edit = QLineEdit(self)
        self.key_edit = QLineEdit(self)
        for edit, hint in ((self.ca_edit, "PEM CA to trust besides the system's (optional)"),
                           (self.cert_edit, "PEM certificate Relay shows (optional)"),
                           (self.key_edit, "PEM private key of that certificate")):
            edit.setPlaceholderText(hint)
        self.tls_check.toggled.connect(self._on_tls)
        self.new_button = QPushButton("New", self)
        self.save_button = QPushButton("Save PACS", self)
        self.test_button = QPushButton("Test", self)
        self.remove_button = QPushButton("Remove", self)
        self.new_button.clicked.connect(lambda: self._fill(None))
        self.save_button.clicked.connect(self.save_pacs)
        self.test_button.clicked.connect(self.test_pacs)
        self.remove_button.clicked.connect(self.remove_pacs)
        self.result_label = plain_label("", self)
        self.result_label.setWordWrap(True)
        self._layout()
        self._reload()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Host:", self.host_edit)
        form.addRow("Port:", self.port_spin)
        form.addRow("AE title:", self.ae_edit)
        form.addRow("Retrieve by:", self.retrieve_combo)
        form.addRow("", self.tls_check)
        form.addRow("CA file:", self.ca_edit)
        form.addRow("Certificate:", self.cert_edit)
        form.addRow("Key:", self.key_edit)
        buttons = QHBoxLayout()
        for button in (self.new_button, self.save_button, self.test_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addLayout(buttons)
        right.addWidget(self.result_label)
        row = QHBoxLayout(self)
        row.addWidget(self.pacs_list, 1)
        row.addLayout(right, 3)

    # -- the form ----------------------------------------------------------------------------
    def form_profile(self) -> HubProfile:
        """The form as a PACS profile (checked: a :class:`RelayError` says what is wrong)."""
        name = self.name_edit.text().strip()
        if not name:
            raise RelayError("give the PACS a short name")
        tls = self.tls_check.isChecked()
        files = [self.ca_edit.text().strip(), self.cert_edit.text().strip(),
                 self.key_edit.text().strip()]
        if bool(files[1]) != bool(files[2]):
            raise RelayError("a certificate and its key go together")
        files = [str(Path(f).expanduser().resolve()) if f and tls else "" for f in files]
        profile = HubProfile(name=name, kind="dimse", host=self.host_edit.text().strip(),
                             port=self.port_spin.value(),
                             ae_title=check_ae_title(self.ae_edit.text()), tls=tls,
                             ca_file=files[0], cert_file=files[1], key_file=files[2],
                             retrieve=str(self.retrieve_combo.currentData()))
        if tls:
            from app.net.dimse.association import client_ssl_context
            from app.net.dimse.pacs import endpoint

            tls_options = endpoint(profile).tls
            assert tls_options is not None
            client_ssl_context(tls_options)  # unreadable or non-PEM files refused now
        return profile

    def _fill(self, profile: HubProfile | None) -> None:
        self._editing = profile.name if profile is not None else ""
        self.name_edit.setText(profile.name if profile else "")
        self.host_edit.setText(profile.host if profile else "")
        self.port_spin.setValue(profile.port if profile else 104)
        self.ae_edit.setText(profile.ae_title if profile else "")
        method = profile.retrieve if profile else "get"
        self.retrieve_combo.setCurrentIndex(max(0, self.retrieve_combo.findData(method)))
        self.tls_check.setChecked(bool(profile and profile.tls))
        self.ca_edit.setText(profile.ca_file if profile else "")
        self.cert_edit.setText(profile.cert_file if profile else "")
        self.key_edit.setText(profile.key_file if profile else "")
        self.remove_button.setEnabled(profile is not None)
        self._on_tls(self.tls_check.isChecked())
        if profile is None:
            self.pacs_list.clearSelection()
            self.name_edit.setFocus()

    def _on_pick(self, name: str) -> None:
        found = load_settings(self.home).pacs_profile(name) if name else None
        if found is not None:
            self._fill(found)

    def _on_tls(self, on: bool) -> None:
        for edit in (self.ca_edit, self.cert_edit, self.key_edit):
            edit.setEnabled(on)

    def _reload(self, select: str = "") -> None:
        names = [p.name for p in load_settings(self.home).pacs]
        self.pacs_list.blockSignals(True)
        self.pacs_list.clear()
        self.pacs_list.addItems(names)
        self.pacs_list.blockSignals(False)
        target = select if select in names else (names[0] if names else "")
        if target:
            self.pacs_list.setCurrentRow(names.index(target))
            self._on_pick(target)
        else:
            self._fill(None)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter in a field of the form saves the PACS (Save PACS), not the dialog's default
        button, which saves Relay's node and leaves the PACS typed in unsaved."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            self.save_pacs()
            return
        super().keyPressEvent(event)

    # -- actions -----------------------------------------------------------------------------
    def save_pacs(self) -> bool:
        """Store the form as a PACS; False with a reason shown."""
        try:
            profile = self.form_profile()
            settings = load_settings(self.home)
            clash = settings.hub(profile.name)
            if clash is not None and not clash.is_pacs:
                raise RelayError(f"a hub is called '{profile.name}'; choose another name")
            old = self._editing
            kept = [h for h in settings.hubs if h.name not in (old, profile.name)]
            position = next((i for i, h in enumerate(settings.hubs) if h.name == old),
                            len(kept))
            kept.insert(min(position, len(kept)), profile)
            settings.hubs = kept
            save_settings(self.home, settings)
        except RelayError as exc:
            self._show(f"Not saved: {exc}", False)
            return False
        self._reload(select=profile.name)
        self._show(f"Saved PACS '{profile.name}' ({profile.address}).", True)
        self.changed.emit()
        return True

    def remove_pacs(self) -> bool:
        name = self._editing
        if not name:
            return False
        settings = load_settings(self.home)
        settings.hubs = [h for h in settings.hubs if h.name != name]
        save_settings(self.home, settings)
        self._reload()
        self._show(f"PACS '{name}' removed.", True)
        self.changed.emit()
        return True

    def test_pacs(self) -> TaskWorker | None:
        """C-ECHO and a query matching nothing, in the background; the result shows below."""
        try:
            profile = self.form_profile()
        except RelayError as exc:
            self._show(f"Cannot test yet: {exc}", False)
            return None
        self.test_button.setEnabled(False)
        self._show(f"Testing {profile.address} …", True)
        self.result_label.setStyleSheet("")
        home = self.home

        def work(progress: Progress) -> HubCheck:
            # each association asked for is one audit event (110114), with its outcome
            return check_hub(peer_for(profile, None, settings=load_settings(home), home=home))

        self._test = TaskWorker(work, "Testing PACS", self)
        self._test.succeeded.connect(self._on_test_done)
        self._test.failed.connect(lambda message: self._show(f"Test failed: {message}", False))
        self._test.finished.connect(lambda: self.test_button.setEnabled(True))
        self._test.start()
        return self._test

    def _on_test_done(self, check: HubCheck) -> None:
        self.last_check = check
        text = check.message[:1].upper() + check.message[1:]
        self._show(f"{check.headline}: {text}", check.ok)

    def _show(self, text: str, ok: bool) -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(f"color: {GOOD if ok else BAD}")
