"""Hub profiles, secrets, settings, logs and the dev hub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from app.errors import SecretsError, SettingsError, ToolMissingError
from app.net import cryptfile, devhub
from app.net.cryptfile import EncryptedFileKeyring
from app.net.devhub import free_port
from app.net.secrets import SecretStore
from app.settings import SecretSettings, Settings, load_settings, save_settings
from tests.conftest import relay_cmd, relay_env
from tests.net.conftest import HUB_PASSWORD, add_hub, import_study, relay


def test_no_keyring_refuses_without_writing_anything(relay_home, monkeypatch):
    monkeypatch.delenv("RELAY_KEYRING")
    proc = add_hub(relay_home, "http://127.0.0.1:9/dicom-web")
    assert proc.returncode == 2
    assert "no keyring service" in proc.stderr and "RELAY_KEYRING=encrypted-file" in proc.stderr
    assert not (relay_home / "settings.json").exists()
    assert not (relay_home / "secrets.enc").exists()
    # Without a secret there is nothing to refuse.
    proc = relay(relay_home, "hub", "add", "open", "--url", "http://127.0.0.1:9/dicom-web")
    assert proc.returncode == 0, proc.stderr


def test_secret_only_encrypted_and_never_in_settings(relay_home):
    assert add_hub(relay_home, "https://hub.example.org/dicom-web").returncode == 0
    settings_text = (relay_home / "settings.json").read_text()
    assert HUB_PASSWORD not in settings_text
    raw = (relay_home / "secrets.enc").read_bytes()
    assert HUB_PASSWORD.encode() not in raw
    assert oct((relay_home / "secrets.enc").stat().st_mode & 0o777) == "0o600"
    listing = json.loads(relay(relay_home, "hub", "list", "--json").stdout)
    assert listing["hubs"][0]["auth"] == "basic" and "encrypted file" in listing["secrets"]
    assert HUB_PASSWORD not in json.dumps(listing)

    store = SecretStore(relay_home, SecretSettings())
    assert store.get("hub") == HUB_PASSWORD
    wrong = EncryptedFileKeyring(relay_home / "secrets.enc", "not the passphrase")
    with pytest.raises(SecretsError, match="wrong passphrase"):
        wrong.get_password("Relay", "hub:hub")
    with pytest.raises(SecretsError, match="wrong passphrase"):
        wrong.set_password("Relay", "hub:other", "x")

    assert relay(relay_home, "hub", "remove", "hub").returncode == 0
    assert store.get("hub") is None
    assert load_settings(relay_home).hubs == []


def test_the_secrets_key_is_derived_once_per_process_and_passphrase(relay_home, monkeypatch):
    """scrypt runs once per (file salt, passphrase) in a process: the window reads a hub's
    secret on every connection, and ~70 ms each time stood before a remote study's first image.
    A wrong passphrase is still refused after the right key was derived."""
    assert add_hub(relay_home, "https://hub.example.org/dicom-web").returncode == 0
    derived: list[int] = []
    real = cryptfile.Scrypt

    class CountingScrypt:  # the real one, counted (it cannot be subclassed)
        def __init__(self, **kwargs) -> None:
            self._kdf = real(**kwargs)

        def derive(self, key_material: bytes) -> bytes:
            derived.append(1)
            return self._kdf.derive(key_material)

    monkeypatch.setattr(cryptfile, "Scrypt", CountingScrypt)
    monkeypatch.setattr(cryptfile, "_KEYS", {})
    for _ in range(3):  # a new store each time, as each connection makes
        assert SecretStore(relay_home, SecretSettings()).get("hub") == HUB_PASSWORD
    assert len(derived) == 1
    wrong = EncryptedFileKeyring(relay_home / "secrets.enc", "not the passphrase")
    for _ in range(2):
        with pytest.raises(SecretsError, match="wrong passphrase"):
            wrong.get_password("Relay", "hub:hub")
    assert len(derived) == 2
    # A file with a new salt (secrets written anew) gets its own key.
    (relay_home / "secrets.enc").unlink()
    SecretStore(relay_home, SecretSettings()).set("hub", "new secret")
    assert SecretStore(relay_home, SecretSettings()).get("hub") == "new secret"
    assert len(derived) == 3


def test_hub_add_checks_its_arguments(relay_home, tmp_path):
    proc = relay(relay_home, "hub", "add", "x", "--url", "ftp://somewhere/")
    assert proc.returncode == 2 and "not an http" in proc.stderr
    proc = relay(relay_home, "hub", "add", "x", "--url", "http://h/dicom-web", "--user", "u")
    assert proc.returncode == 2 and "--password-stdin" in proc.stderr
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate")
    proc = relay(relay_home, "hub", "add", "x", "--url", "https://h/dicom-web", "--ca-file",
                 str(bad_ca))
    assert proc.returncode == 2 and "CA file" in proc.stderr
    assert not (relay_home / "settings.json").exists()


def test_settings_roundtrip_keeps_unknown_sections(tmp_path):
    s = Settings()
    s.transfer.batch_instances = 20
    save_settings(tmp_path, s)
    raw = json.loads((tmp_path / "settings.json").read_text())
    raw["viewer"] = {"invert": True}  # written by another part of Relay
    (tmp_path / "settings.json").write_text(json.dumps(raw))
    loaded = load_settings(tmp_path)
    assert loaded.transfer.batch_instances == 20 and loaded.other == {"viewer": {"invert": True}}
    save_settings(tmp_path, loaded)
    assert json.loads((tmp_path / "settings.json").read_text())["viewer"] == {"invert": True}

    raw["transfer"]["in_flight"] = "two"
    (tmp_path / "settings.json").write_text(json.dumps(raw))
    with pytest.raises(SettingsError, match="in_flight"):
        load_settings(tmp_path)
    raw["schema_version"] = 99
    (tmp_path / "settings.json").write_text(json.dumps(raw))
    with pytest.raises(SettingsError, match="newer Relay"):
        load_settings(tmp_path)


@pytest.mark.orthanc
def test_logs_hold_no_secret_and_no_patient(hub, relay_home, ct_files):
    _, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url).returncode == 0
    proc = relay(relay_home, "-vv", "send", study, "--hub", "hub")
    assert proc.returncode == 0, proc.stderr
    for secret in (HUB_PASSWORD, "DEMO^STROKE", "RELAY-DEMO", "cmVsYXk6"):  # base64 of "relay:"
        assert secret not in proc.stderr
    assert "app.net" in proc.stderr or proc.stderr == ""


def test_missing_orthanc_names_the_packages(monkeypatch):
    monkeypatch.setattr(devhub, "ORTHANC_BINARIES", ("/nonexistent/Orthanc",))
    monkeypatch.setattr(devhub, "DICOMWEB_PLUGINS", ("/nonexistent/plugin.so",))
    monkeypatch.setattr(devhub.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="apt-get install orthanc orthanc-dicomweb"):
        devhub.find_orthanc()


@pytest.mark.orthanc
def test_dev_hub_command(relay_home, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        relay_cmd("--home", str(relay_home), "dev-hub", "--port", str(port), "--dir",
                  str(tmp_path / "devhub")),
        env=relay_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "local hub running at http://127.0.0.1:" in first, proc.stderr.read()
        url = f"http://127.0.0.1:{port}/dicom-web"
        assert relay(relay_home, "hub", "add", "local", "--url", url).returncode == 0
        test = relay(relay_home, "hub", "test", "local")
        assert test.returncode == 0 and "OK" in test.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if relay(relay_home, "hub", "test", "local").returncode == 1:
            break
        time.sleep(0.2)
    else:
        pytest.fail("Orthanc still answers after dev-hub stopped")
    assert not os.path.exists(tmp_path / "devhub" / "orthanc.pid")
