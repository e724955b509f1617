"""Hub profiles in use: from a name in the settings to a ready DICOMweb client, and the check.

``relay hub test`` is :func:`check_hub`: one QIDO round trip, with what is wrong told in plain
words (unreachable, TLS, 401, not DICOMweb).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from app.errors import HubError, TransferError
from app.net.dicomweb import DicomWebClient
from app.net.http import HubSession
from app.net.secrets import SecretStore
from app.settings import HubProfile, Settings, load_settings


def profile(settings: Settings, name: str) -> HubProfile:
    """The hub called ``name``, or an error listing the hubs there are."""
    found = settings.hub(name)
    if found is None:
        known = ", ".join(h.name for h in settings.hubs) or "none yet; add one with 'relay hub add'"
        raise TransferError(f"no hub called '{name}' (hubs: {known})")
    return found


def connect(home: Path, name: str, settings: Settings | None = None, *,
            pool_size: int = 4) -> DicomWebClient:
    """A DICOMweb client for the hub called ``name`` (its secret read from the keyring)."""
    settings = settings or load_settings(home)
    hub = profile(settings, name)
    secret = None
    if hub.auth in ("basic", "bearer"):
        secret = SecretStore(home, settings.secrets).get(hub.name)
        if secret is None:
            raise TransferError(f"the {hub.auth} secret of hub '{name}' is not in the keyring; "
                                "add the hub again with --password-stdin or --token-stdin")
    return DicomWebClient(HubSession(hub, secret, pool_size=pool_size))


@dataclass(frozen=True)
class HubCheck:
    """The outcome of ``relay hub test``."""

    ok: bool
    kind: str
    """``ok`` or the :class:`HubError` kind."""
    message: str
    seconds: float

    @property
    def headline(self) -> str:
        """``OK`` or the problem in one or two words (``NOT AUTHORISED``)."""
        return "OK" if self.ok else PROBLEM_WORDS.get(self.kind, self.kind.upper())


PROBLEM_WORDS = {"unreachable": "UNREACHABLE", "timeout": "NO ANSWER", "tls": "TLS PROBLEM",
                 "auth": "NOT AUTHORISED", "not-dicomweb": "NOT DICOMWEB", "server": "HUB ERROR",
                 "rejected": "REFUSED", "calling-ae": "RELAY'S AE TITLE NOT KNOWN",
                 "called-ae": "WRONG AE TITLE", "busy": "BUSY", "refused": "REFUSED",
                 "aborted": "CONNECTION LOST", "failed": "FAILED"}


def check_hub(client: DicomWebClient) -> HubCheck:
    """One QIDO-RS round trip (``/studies?limit=1``), diagnosed."""
    started = time.monotonic()
    try:
        answer = client.session.json("/studies", {"limit": 1})
        if not isinstance(answer, list):
            raise HubError("not-dicomweb", f"the server at {client.session.where} answers, but "
                                           "its study search is not DICOM JSON")
    except HubError as exc:
        return HubCheck(False, exc.kind, str(exc), time.monotonic() - started)
    seconds = time.monotonic() - started
    return HubCheck(True, "ok", f"the hub answers DICOMweb searches ({seconds * 1000:.0f} ms)",
                    seconds)
