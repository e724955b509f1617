"""Settings → Hubs…: hub profiles (secrets in the keyring), a background "Test", Incoming options.

Hub changes are saved when "Save hub" or "Remove" is pressed; the Incoming options as soon as they
change. Passwords and tokens go to the keyring (:class:`app.net.secrets.SecretStore`), never into
the settings file. "Test" is :func:`app.net.hubs.check_hub` on the form as typed, off the GUI
thread, and says in plain words what is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import RelayError
from app.net.http import HubSession, ssl_context
from app.net.hubs import HubCheck, check_hub, peer_for
from app.net.secrets import (
    SecretStore,
    has_passphrase,
    set_session_passphrase,
    system_keyring,
)
from app.settings import HubProfile, Settings, load_settings, save_settings
from app.tasks import Progress
from app.ui.labels import plain_label
from app.ui.worker import TaskWorker

AUTH_LABELS = {"none": "None", "basic": "User name and password", "bearer": "Token (bearer)"}
GOOD, BAD = "#1b7f3b", "#b3261e"


def ensure_passphrase(parent: QWidget, settings: Settings) -> bool:
    """Without a keyring service, the encrypted secrets file needs its passphrase: ask once
    per session (never on a terminal the user cannot see). False: the user declined."""
    if system_keyring() is not None or has_passphrase():
        return True
    chosen = (settings.secrets.fallback == "encrypted-file"
              or os.environ.get("RELAY_KEYRING", "").lower() == "encrypted-file")
    if not chosen:
        return True  # SecretStore explains that there is no keyring service
    text, ok = QInputDialog.getText(parent, "Relay secrets",
                                    "Passphrase of Relay's encrypted secrets file:",
                                    QLineEdit.EchoMode.Password)
    if ok and text:
        set_session_passphrase(text)  # this process only: children never inherit it
    return bool(ok and text)


def saved_text(profile: HubProfile, where: str) -> str:
    """What the user reads once a hub is saved: no storage jargon ("secret: none")."""
    if profile.auth == "none":
        return f"Saved the hub {profile.name}. It needs no sign-in."
    what = "password" if profile.auth == "basic" else "access token"
    place = ("the system's password store" if where.startswith("system")
             else "Relay's encrypted password file" if where.startswith("encrypted")
             else where)
    return f"Saved the hub {profile.name}. Its {what} is kept in {place}, not in the settings."


class HubsDialog(QDialog):
    """List, add, edit, remove and test hubs; set the Incoming options."""

    hubs_changed = Signal()

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = Path(home)
        self.settings = load_settings(self.home)
        self.last_check: HubCheck | None = None
        self._test: TaskWorker | None = None
        self._editing: str | None = None
        self.setWindowTitle("Hubs")
        self.resize(760, 560)
        self._build()
        self._reload_list()

    # -- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.hub_list = QListWidget(self)
        self.hub_list.currentTextChanged.connect(self._on_hub_selected)
        self.add_button = QPushButton("Add hub", self)
        self.add_button.clicked.connect(self._on_add)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self._on_remove)
        left = QVBoxLayout()
        left.addWidget(self.hub_list, 1)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        left.addLayout(row)

        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("short name, e.g. stroke-centre")
        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("https://hub.example.org/dicom-web")
        self.auth_combo = QComboBox(self)
        for key, label in AUTH_LABELS.items():
            self.auth_combo.addItem(label, key)
        self.auth_combo.currentIndexChanged.connect(self._on_auth_changed)
        self.user_edit = QLineEdit(self)
        self.secret_edit = QLineEdit(self)
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.ca_edit = QLineEdit(self)
        self.ca_edit.setPlaceholderText("optional: PEM file of the hub's own CA")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._on_browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("DICOMweb URL", self.url_edit)
        form.addRow("Sign-in", self.auth_combo)
        form.addRow("User", self.user_edit)
        self.secret_label = QLabel("Password", self)
        form.addRow(self.secret_label, self.secret_edit)
        form.addRow("CA file", ca_row)
        self.test_button = QPushButton("Test", self)
        self.test_button.clicked.connect(self._on_test)
        self.save_button = QPushButton("Save hub", self)
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self._on_save)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.test_button)
        buttons.addWidget(self.save_button)
        self.result_label = plain_label("", self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addLayout(buttons)
        right.addWidget(self.result_label)
        right.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(left, 1)
        top.addLayout(right, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(self._incoming_box())
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self._on_auth_changed()

    def _incoming_box(self) -> QGroupBox:
        box = QGroupBox("Incoming studies", self)
        inc = self.settings.incoming
        self.watch_combo = QComboBox(box)
        self.interval_spin = QSpinBox(box)
        self.interval_spin.setRange(5, 3600)
        self.interval_spin.setSuffix(" s")
        self.interval_spin.setValue(int(inc.interval_seconds))
        self.lookback_spin = QSpinBox(box)
        self.lookback_spin.setRange(0, 3650)
        self.lookback_spin.setSpecialValueText("all studies")
        self.lookback_spin.setSuffix(" days")
        self.lookback_spin.setValue(inc.lookback_days)
        self.prefetch_check = QCheckBox("Prefetch new studies (download them in the background "
                                        "so they are local before anyone opens them)", box)
        self.prefetch_check.setChecked(inc.prefetch)
        self.quick_spin = QSpinBox(box)
        self.quick_spin.setRange(0, 600)
        self.quick_spin.setSuffix(" s")
        self.quick_spin.setSpecialValueText("off")
        self.quick_spin.setValue(int(inc.quick_seconds))
        self.quick_spin.setToolTip("One small search of the studies dated today and yesterday "
                                   "between the full checks (every second while a study is "
                                   "arriving), so a new study is listed within seconds")
        self.stroke_check = QCheckBox("Open a new stroke study at once (a sound and a tray "
                                      "message announce it either way)", box)
        self.stroke_check.setChecked(inc.open_stroke)
        self.encrypted_check = QCheckBox("No keyring service on this computer: keep hub "
                                         "passwords in an encrypted file (passphrase asked once "
                                         "per session)", box)
        self.encrypted_check.setChecked(self.settings.secrets.fallback == "encrypted-file")
        self.encrypted_check.setVisible(system_keyring() is None)
        form = QFormLayout(box)
        form.addRow("Watch", self.watch_combo)
        form.addRow("Check every", self.interval_spin)
        form.addRow("Studies that arrived in the last", self.lookback_spin)
        form.addRow("Look for today's new studies every", self.quick_spin)
        form.addRow(self.prefetch_check)
        form.addRow(self.stroke_check)
        form.addRow(self.encrypted_check)
        self.watch_combo.currentIndexChanged.connect(self._on_incoming_changed)
        self.interval_spin.valueChanged.connect(self._on_incoming_changed)
        self.lookback_spin.valueChanged.connect(self._on_incoming_changed)
        self.prefetch_check.toggled.connect(self._on_incoming_changed)
        self.quick_spin.valueChanged.connect(self._on_incoming_changed)
        self.stroke_check.toggled.connect(self._on_incoming_changed)
        self.encrypted_check.toggled.connect(self._on_incoming_changed)
        return box

    def _reload_list(self, select: str | None = None) -> None:
        self.hub_list.blockSignals(True)
        self.hub_list.clear()
        for hub in self.settings.web_hubs:
            self.hub_list.addItem(hub.name)
        self.hub_list.blockSignals(False)
        self.watch_combo.blockSignals(True)
        self.watch_combo.clear()
        self.watch_combo.addItem("All hubs", "")
        for hub in self.settings.web_hubs:
            self.watch_combo.addItem(hub.name, hub.name)
        index = self.watch_combo.findData(self.settings.incoming.hub)
        self.watch_combo.setCurrentIndex(max(0, index))
        self.watch_combo.blockSignals(False)
        names = [h.name for h in self.settings.web_hubs]
        target = select if select in names else (names[0] if names else None)
        if target is None:
            self._on_add()
        else:
            self.hub_list.setCurrentRow(names.index(target))
            self._on_hub_selected(target)

    # -- the form ----------------------------------------------------------------------------
    def set_form(self, profile: HubProfile | None) -> None:
        self._editing = profile.name if profile else None
        self.name_edit.setText(profile.name if profile else "")
        self.url_edit.setText(profile.url if profile else "")
        self.auth_combo.setCurrentIndex(max(0, self.auth_combo.findData(
            profile.auth if profile else "none")))
        self.user_edit.setText(profile.user if profile else "")
        self.secret_edit.clear()
        self.ca_edit.setText(profile.ca_file if profile else "")
        self.result_label.clear()
        self._on_auth_changed()

    def form_profile(self) -> HubProfile:
        """The profile as typed (checked: URL scheme, CA file readable)."""
        name = self.name_edit.text().strip()
        if not name:
            raise RelayError("give the hub a short name")
        url = self.url_edit.text().strip().rstrip("/")
        if not url:
            raise RelayError("enter the hub's DICOMweb URL")
        auth = self.auth_combo.currentData()
        profile = HubProfile(name=name, url=url, auth=auth,
                             user=self.user_edit.text().strip() if auth == "basic" else "",
                             ca_file=self.ca_edit.text().strip())
        if auth == "basic" and not profile.user:
            raise RelayError("enter the user name")
        if profile.ca_file:
            ssl_context(profile.ca_file)
        HubSession(profile)  # refuses a URL that is not http(s)
        return profile

    def _secret(self, profile: HubProfile) -> str | None:
        """The typed secret, else the stored one of the hub being edited."""
        if profile.auth == "none":
            return None
        typed = self.secret_edit.text()
        if typed:
            return typed
        if self._editing and ensure_passphrase(self, self.settings):
            stored = SecretStore(self.home, self.settings.secrets).get(self._editing)
            if stored:
                return stored
        what = "password" if profile.auth == "basic" else "token"
        raise RelayError(f"enter the {what}")

    def _show(self, text: str, ok: bool) -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(f"color: {GOOD if ok else BAD}")

    def _on_hub_selected(self, name: str) -> None:
        if name:
            self.set_form(self.settings.hub(name))

    def _on_add(self) -> None:
        self.hub_list.clearSelection()
        self.set_form(None)
        self.name_edit.setFocus()

    def _on_auth_changed(self) -> None:
        auth = self.auth_combo.currentData()
        self.user_edit.setEnabled(auth == "basic")
        self.secret_edit.setEnabled(auth != "none")
        self.secret_label.setText("Token" if auth == "bearer" else "Password")
        stored = self._editing is not None and auth != "none"
        self.secret_edit.setPlaceholderText("stored in the keyring — leave empty to keep"
                                            if stored else "")

    def _on_browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA certificate (PEM)", "",
                                              "PEM files (*.pem *.crt);;All files (*)")
        if path:
            self.ca_edit.setText(path)

    # -- actions -----------------------------------------------------------------------------
    def save_hub(self) -> bool:
        """Store the form as a hub (its secret in the keyring); False with a reason shown."""
        try:
            profile = self.form_profile()
            clash = self.settings.hub(profile.name)
            if clash is not None and clash.is_pacs:
                raise RelayError(f"a PACS is called '{profile.name}'; choose another name")
            secret = self._secret(profile)
            self._store_secret(profile, secret)
        except RelayError as exc:
            self._show(f"Not saved: {exc}", False)
            return False
        old = self._editing
        hubs = [h for h in self.settings.hubs if h.name not in (old, profile.name)]
        position = next((i for i, h in enumerate(self.settings.hubs) if h.name == old), len(hubs))
        hubs.insert(min(position, len(hubs)), profile)
        self.settings.hubs = hubs
        save_settings(self.home, self.settings)
        self._reload_list(select=profile.name)
        self._show(saved_text(profile, self._where() if secret is not None else ""), True)
        self.hubs_changed.emit()
        return True

    def _store_secret(self, profile: HubProfile, secret: str | None) -> None:
        store = SecretStore(self.home, self.settings.secrets)
        old = self.settings.hub(self._editing) if self._editing else None
        if secret is not None:
            if not ensure_passphrase(self, self.settings):
                raise RelayError("the encrypted secrets file needs its passphrase")
            store.set(profile.name, secret)
        if old is not None and old.auth != "none" and (secret is None or old.name != profile.name):
            store.delete(old.name)

    def _where(self) -> str:
        return SecretStore(self.home, self.settings.secrets).describe()

    def remove_hub(self) -> None:
        name = self._editing
        profile = self.settings.hub(name) if name else None
        if profile is None:
            return
        if profile.auth != "none":
            try:
                SecretStore(self.home, self.settings.secrets).delete(profile.name)
            except RelayError:
                pass  # nothing to delete, or no keyring: the profile goes anyway
        self.settings.hubs = [h for h in self.settings.hubs if h.name != name]
        save_settings(self.home, self.settings)
        self._reload_list()
        self._show(f"Removed the hub {name}.", True)
        self.hubs_changed.emit()

    def _on_save(self) -> None:
        self.save_hub()

    def _on_remove(self) -> None:
        self.remove_hub()

    def test_hub(self) -> TaskWorker | None:
        """Run the QIDO round trip in the background; the result shows below the form."""
        try:
            profile = self.form_profile()
            clash = self.settings.hub(profile.name)
            if clash is not None and clash.is_pacs:
                raise RelayError(f"a PACS is called '{profile.name}'; choose another name")
            secret = self._secret(profile)
        except RelayError as exc:
            self._show(f"Cannot test yet: {exc}", False)
            return None
        self.test_button.setEnabled(False)
        self._show(f"Testing {profile.url} …", True)
        self.result_label.setStyleSheet("")

        def work(progress: Progress) -> HubCheck:
            return check_hub(peer_for(profile, secret, pool_size=1))

        self._test = TaskWorker(work, "Testing hub", self)
        self._test.succeeded.connect(self._on_test_done)
        self._test.failed.connect(lambda message: self._show(f"Test failed: {message}", False))
        self._test.finished.connect(lambda: self.test_button.setEnabled(True))
        self._test.start()
        return self._test

    def _on_test(self) -> None:
        self.test_hub()

    def _on_test_done(self, check: HubCheck) -> None:
        self.last_check = check
        text = check.message[:1].upper() + check.message[1:]
        self._show(f"{check.headline}: {text}", check.ok)

    def _on_incoming_changed(self, *_args: object) -> None:
        inc = self.settings.incoming
        inc.hub = self.watch_combo.currentData() or ""
        inc.interval_seconds = float(self.interval_spin.value())
        inc.lookback_days = self.lookback_spin.value()
        inc.prefetch = self.prefetch_check.isChecked()
        inc.quick_seconds = float(self.quick_spin.value())
        inc.open_stroke = self.stroke_check.isChecked()
        self.settings.secrets.fallback = ("encrypted-file" if self.encrypted_check.isChecked()
                                          else "none")
        save_settings(self.home, self.settings)
        self.hubs_changed.emit()
