"""Hub passwords and tokens: in the system keyring, or an encrypted file the user chose.

The system keyring (Secret Service, KWallet, macOS Keychain, Windows Credential Locker) is used
when one is running. Where none is (a server, CI), Relay says so and stores nothing, unless the
user chose the encrypted-file fallback: settings ``secrets.fallback = "encrypted-file"`` or
``RELAY_KEYRING=encrypted-file``, with the passphrase in ``RELAY_KEYRING_PASSPHRASE`` or typed
at a prompt. A plain-text keyring (``keyrings.alt``) is never accepted. Secrets are never logged.
"""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from app.errors import SecretsError
from app.settings import SecretSettings

log = logging.getLogger(__name__)

SERVICE = "Relay"
SECRETS_FILE = "secrets.enc"
ENV_BACKEND = "RELAY_KEYRING"
ENV_PASSPHRASE = "RELAY_KEYRING_PASSPHRASE"

NO_KEYRING = (
    "no keyring service is running on this machine (Secret Service, KWallet, macOS Keychain or "
    "Windows Credential Locker), so the secret cannot be stored safely. To keep hub secrets in "
    "an encrypted file in the Relay home instead, choose it explicitly: set "
    f"{ENV_BACKEND}=encrypted-file (or secrets.fallback in settings.json) and give the "
    f"passphrase in {ENV_PASSPHRASE} or type it when asked."
)


def system_keyring() -> KeyringBackend | None:
    """The system keyring backend, or None when there is no usable (non-plain-text) one."""
    backend = keyring.get_keyring()
    names = [type(b).__module__ + "." + type(b).__name__
             for b in getattr(backend, "backends", [backend])]
    if not names or all(n.startswith("keyring.backends.fail") for n in names):
        return None
    if any("plaintext" in n.lower() or n.startswith("keyrings.alt") for n in names):
        log.warning("a plain-text keyring backend is configured; Relay does not use it")
        return None
    return backend


def _fallback_chosen(settings: SecretSettings) -> bool:
    return (os.environ.get(ENV_BACKEND, "").strip().lower() == "encrypted-file"
            or settings.fallback == "encrypted-file")


#: The passphrase typed in the window, kept in this process only (never in ``os.environ``,
#: which every child process would inherit).
_session_passphrase: str | None = None


def set_session_passphrase(passphrase: str) -> None:
    """Remember the passphrase the user typed, for this process only."""
    global _session_passphrase
    _session_passphrase = passphrase or None


def has_passphrase() -> bool:
    """Is a passphrase known (typed in this session, or in the environment)?"""
    return bool(_session_passphrase or os.environ.get(ENV_PASSPHRASE))


def _passphrase() -> str:
    value = _session_passphrase or os.environ.get(ENV_PASSPHRASE)
    if value:
        return value
    try:
        with open("/dev/tty"):  # a prompt needs a terminal; stdin may carry the secret itself
            pass
    except OSError:
        raise SecretsError(
            f"the encrypted secrets file needs a passphrase: set {ENV_PASSPHRASE}"
        ) from None
    return getpass.getpass("Passphrase for Relay's encrypted secrets file: ")


class SecretStore:
    """Get, set and delete the secret of a hub profile."""

    def __init__(self, home: Path, settings: SecretSettings) -> None:
        self.home = Path(home)
        self.settings = settings
        self._backend: KeyringBackend | None = None

    def describe(self) -> str:
        """Where secrets go, in a few words (for ``relay hub list``)."""
        system = system_keyring()
        if system is not None:
            return f"system keyring ({type(system).__name__})"
        if _fallback_chosen(self.settings):
            return f"encrypted file {self.home / SECRETS_FILE}"
        return "none (no keyring service; see 'relay hub add --help')"

    def backend(self) -> KeyringBackend:
        """The backend to use, or :class:`SecretsError` saying why there is none."""
        if self._backend is None:
            system = system_keyring()
            if system is not None:
                self._backend = system
            elif _fallback_chosen(self.settings):
                from app.net.cryptfile import EncryptedFileKeyring

                self._backend = EncryptedFileKeyring(self.home / SECRETS_FILE, _passphrase())
            else:
                raise SecretsError(NO_KEYRING)
        return self._backend

    def get(self, hub: str) -> str | None:
        try:
            return self.backend().get_password(SERVICE, _key(hub))
        except keyring.errors.KeyringError as exc:
            raise SecretsError(f"the keyring cannot be read: {exc}") from exc

    def set(self, hub: str, secret: str) -> None:
        try:
            self.backend().set_password(SERVICE, _key(hub), secret)
        except keyring.errors.KeyringError as exc:
            raise SecretsError(f"the keyring refused the secret: {exc}") from exc

    def delete(self, hub: str) -> None:
        try:
            self.backend().delete_password(SERVICE, _key(hub))
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            raise SecretsError(f"the keyring cannot delete the secret: {exc}") from exc


def _key(hub: str) -> str:
    return f"hub:{hub}"
