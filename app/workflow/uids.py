"""UID replacement that is consistent and not guessable.

:class:`KeyedUids` maps a UID to ``2.25.<decimal>`` through an HMAC keyed by a secret kept in the
Relay home (one per store): the same UID in the same batch always gets the same new UID, and
nobody without the key can tell which original a new UID stands for (a bare hash could be
recomputed from a guessed UID).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "workflow/uid-key"


def store_key(home: Path) -> bytes:
    """The home's secret for UID mapping, made on first use (readable by the owner only)."""
    path = Path(home) / KEY_FILE
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(key)
        fp.flush()
        os.fsync(fp.fileno())
    try:
        os.link(tmp, path)  # the first writer wins; a racing one reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


class KeyedUids:
    """``new(uid)``: the UID's replacement under ``key`` and ``context`` (e.g. the options)."""

    def __init__(self, key: bytes, context: str = "") -> None:
        self._key = hmac.new(key, context.encode(), hashlib.sha256).digest()
        self.mapping: dict[str, str] = {}

    def new(self, uid: str) -> str:
        uid = uid.strip("\0 ")
        if not uid:
            return uid
        found = self.mapping.get(uid)
        if found is None:
            digest = hmac.new(self._key, uid.encode(), hashlib.sha256).digest()
            found = "2.25." + str(int.from_bytes(digest[:16], "big"))
            self.mapping[uid] = found
        return found

    def token(self, text: str, length: int = 10) -> str:
        """A short keyed token for ``text`` (pseudonymous IDs)."""
        return hmac.new(self._key, b"token:" + text.encode(), hashlib.sha256).hexdigest()[
            :length].upper()
