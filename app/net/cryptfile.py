"""An encrypted-file keyring, for machines without a keyring service (servers, CI).

Used only when the user chose it (settings ``secrets.fallback = "encrypted-file"`` or
``RELAY_KEYRING=encrypted-file``). Each secret is sealed with AES-256-GCM under a key derived
from a passphrase with scrypt; the entry's name is the associated data, so entries cannot be
swapped. The file is JSON, written atomically with mode 0600 (an exclusively created temp
file, under a lock shared by every Relay process). A wrong passphrase is an error,
never an empty result.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from keyring.backend import KeyringBackend

from app.errors import SecretsError

FORMAT = "relay-secrets-1"
SCRYPT_N = 2**15

#: Keys derived in this process, by (salt, passphrase). scrypt is slow on purpose (~70 ms), and
#: the window reads a hub's secret on every connection (opening a study from the hub, each
#: incoming check): deriving it once per process keeps that off the time to the first image.
#: It holds nothing the process does not hold already (the passphrase).
_KEYS: dict[tuple[bytes, bytes], bytes] = {}
_KEYS_LOCK = threading.Lock()


class EncryptedFileKeyring(KeyringBackend):
    """A keyring backend keeping secrets in one encrypted file."""

    priority = 0  # never chosen by keyring on its own

    def __init__(self, path: Path, passphrase: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not passphrase:
            raise SecretsError("the passphrase for the encrypted secrets file is empty")
        self.path = Path(path)
        self._passphrase = passphrase.encode("utf-8")

    # -- file ------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"format": FORMAT, "salt": base64.b64encode(os.urandom(16)).decode(),
                    "entries": {}}
        except (OSError, ValueError) as exc:
            raise SecretsError(f"the secrets file {self.path} cannot be read: {exc}") from exc
        if data.get("format") != FORMAT:
            raise SecretsError(f"{self.path} is not a Relay secrets file")
        return data

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the file's lock for one read-modify-write (two processes never lose an entry)."""
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self, data: dict[str, Any]) -> None:
        # a fresh name, created exclusively: never a file someone placed there, never shared
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fp:
                json.dump(data, fp)
                fp.flush()
                os.fsync(fp.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _aead(self, data: dict[str, Any]) -> AESGCM:
        salt = base64.b64decode(data["salt"])
        with _KEYS_LOCK:  # one derivation at a time: two threads asking wait for the first
            key = _KEYS.get((salt, self._passphrase))
            if key is None:
                key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(self._passphrase)
                _KEYS[(salt, self._passphrase)] = key
        return AESGCM(key)

    @staticmethod
    def _name(service: str, username: str) -> str:
        return f"{service}\x00{username}"

    def _check(self, data: dict[str, Any], aead: AESGCM) -> None:
        """Refuse a passphrase that does not open the entries already in the file."""
        for name, sealed in data["entries"].items():
            self._open(aead, name, sealed)
            return

    def _open(self, aead: AESGCM, name: str, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        try:
            return aead.decrypt(raw[:12], raw[12:], name.encode()).decode("utf-8")
        except InvalidTag:
            raise SecretsError(
                f"wrong passphrase for the encrypted secrets file {self.path}"
            ) from None

    # -- keyring API -----------------------------------------------------------------------
    def get_password(self, service: str, username: str) -> str | None:
        data = self._load()
        name = self._name(service, username)
        sealed = data["entries"].get(name)
        return None if sealed is None else self._open(self._aead(data), name, sealed)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._locked():
            self._set(service, username, password)

    def _set(self, service: str, username: str, password: str) -> None:
        data = self._load()
        aead = self._aead(data)
        self._check(data, aead)
        name = self._name(service, username)
        nonce = os.urandom(12)
        sealed = nonce + aead.encrypt(nonce, password.encode("utf-8"), name.encode())
        data["entries"][name] = base64.b64encode(sealed).decode()
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        with self._locked():
            self._delete(service, username)

    def _delete(self, service: str, username: str) -> None:
        data = self._load()
        name = self._name(service, username)
        if name in data["entries"]:
            self._check(data, self._aead(data))
            del data["entries"][name]
            self._save(data)
