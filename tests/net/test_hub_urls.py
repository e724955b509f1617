"""Hub URLs that would leak credentials: plain http:// off this machine, user:password@ in URLs."""

from __future__ import annotations

import json

import pytest

from app.errors import HubError, SettingsError
from app.net.http import HubSession
from app.settings import HubProfile, load_settings
from tests.net.conftest import add_hub


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_plain_http_with_credentials_is_refused_off_this_machine(auth: str) -> None:
    profile = HubProfile(name="hub", url="http://hub.example.org/dicom-web", auth=auth, user="u")
    with pytest.raises(HubError) as caught:
        HubSession(profile, "secret")
    assert caught.value.kind == "rejected"
    assert "unencrypted" in str(caught.value) and "https://" in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8042/dicom-web", "http://localhost/dw",
                                 "http://[::1]:8042/dicom-web", "https://hub.example.org/dw"])
def test_loopback_or_https_with_credentials_is_allowed(url: str) -> None:
    HubSession(HubProfile(name="hub", url=url, auth="basic", user="u"), "secret")


def test_plain_http_without_credentials_is_allowed() -> None:
    HubSession(HubProfile(name="hub", url="http://hub.example.org/dicom-web"))


def test_hub_add_refuses_http_credentials_and_stores_nothing(relay_home) -> None:
    proc = add_hub(relay_home, "http://hub.example.org/dicom-web")
    assert proc.returncode != 0
    assert "unencrypted" in proc.stderr and "Traceback" not in proc.stderr
    assert not (relay_home / "settings.json").exists()


def test_credentials_inside_a_url_are_refused(relay_home) -> None:
    with pytest.raises(SettingsError, match="never in the URL"):
        HubProfile(name="hub", url="https://u:pw@hub.example.org/dicom-web")
    proc = add_hub(relay_home, "https://u:pw@hub.example.org/dicom-web")
    assert proc.returncode != 0 and "never in the URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_credentials_left_in_a_settings_file_are_dropped_on_load(relay_home) -> None:
    (relay_home / "settings.json").write_text(json.dumps(
        {"schema_version": 1,
         "hubs": [{"name": "old", "url": "https://u:pw@hub.example.org:8443/dicom-web"}]}))
    hub = load_settings(relay_home).hubs[0]
    assert hub.url == "https://hub.example.org:8443/dicom-web"
