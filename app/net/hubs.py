"""Hub profiles in use: from a name in the settings to a ready :class:`~app.net.peer.Peer`.

The protocols are data: :data:`PEER_KINDS` maps a profile's ``kind`` to the function of its
client module that makes the peer. ``relay hub test`` is :func:`check_hub`: the peer's own
cheapest round trip, with what is wrong told in plain words (unreachable, TLS, 401, not DICOMweb).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import HubError, TransferError
from app.net import dicomweb
from app.net.http import LoginListener
from app.net.peer import Peer
from app.net.secrets import SecretStore
from app.settings import PROFILE_KINDS, HubProfile, Settings, load_settings, strip_userinfo


def _dimse(profile: HubProfile, secret: str | None, *, pool_size: int = 4,
           settings: Settings | None = None, on_login: LoginListener | None = None,
           home: Path | None = None) -> Peer:
    del on_login  # DIMSE has no credentials to answer (TLS certificates are files)
    from app.net.dimse.peer import connect as dimse_connect  # pynetdicom: loaded when used

    return dimse_connect(profile, secret, pool_size=pool_size, settings=settings, home=home)


#: ``kind`` of a profile -> ``connect(profile, secret, *, pool_size, settings, on_login, home)``
#: of its client module (``settings``: Relay's own node, which a DIMSE peer calls as; ``home``:
#: where Relay's node of another process hands over what it receives for this one).
PEER_KINDS: dict[str, Callable[..., Peer]] = {"dicomweb": dicomweb.connect, "dimse": _dimse}
assert set(PEER_KINDS) == set(PROFILE_KINDS), "every profile kind needs its client module"


def profile(settings: Settings, name: str) -> HubProfile:
    """The hub called ``name``, or an error listing the hubs there are."""
    found = settings.hub(name)
    if found is None:
        known = ", ".join(h.name for h in settings.hubs) or "none yet; add one with 'relay hub add'"
        raise TransferError(f"no hub called '{name}' (hubs and PACS: {known})")
    return found


def peer_for(hub: HubProfile, secret: str | None, *, pool_size: int = 4,
             settings: Settings | None = None, on_login: LoginListener | None = None,
             home: Path | None = None) -> Peer:
    """The peer a profile describes, spoken to with its protocol (``secret``: password or
    token, if its authentication needs one; ``settings``: Relay's own node, for DIMSE;
    ``on_login``: told how the hub answered the credentials)."""
    return PEER_KINDS[hub.kind](hub, secret, pool_size=pool_size, settings=settings,
                                on_login=on_login, home=home)


def connect(home: Path, name: str, settings: Settings | None = None, *,
            pool_size: int = 4, retrieve: str = "") -> Peer:
    """The peer called ``name`` in the settings (its secret read from the keyring);
    ``retrieve``: a job's own choice of how a PACS is asked (``get``/``move``)."""
    settings = settings or load_settings(home)
    hub = profile(settings, name)
    if retrieve and hub.kind == "dimse":
        hub = replace(hub, retrieve=retrieve)
    secret = None
    if hub.auth in ("basic", "bearer"):
        secret = SecretStore(home, settings.secrets).get(hub.name)
        if secret is None:
            raise TransferError(f"the {hub.auth} secret of hub '{name}' is not in the keyring; "
                                "add the hub again with --password-stdin or --token-stdin")
    return peer_for(hub, secret, pool_size=pool_size, settings=settings,
                    on_login=login_auditor(home, hub), home=home)


def login_auditor(home: Path, hub: HubProfile) -> LoginListener:
    """What records the hub's answers to ``hub``'s credentials in the audit trail (110114)."""
    from app.workflow import audit

    def told(accepted: bool, reason: str) -> None:
        detail = {"auth": hub.auth, "account": hub.user} if hub.user else {"auth": hub.auth}
        audit.record(home, "login", outcome=audit.SUCCESS if accepted else
                     audit.SERIOUS_FAILURE, peer=f"{hub.name}@{strip_userinfo(hub.url)}",
                     detail={**detail, **({"reason": reason} if reason else {})})
    return told


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


def check_hub(peer: Peer) -> HubCheck:
    """The peer's own cheapest round trip (:meth:`Peer.check`), timed and diagnosed."""
    started = time.monotonic()
    try:
        words = peer.check()
    except HubError as exc:
        return HubCheck(False, exc.kind, str(exc), time.monotonic() - started)
    seconds = time.monotonic() - started
    return HubCheck(True, "ok", f"{words} ({seconds * 1000:.0f} ms)", seconds)
