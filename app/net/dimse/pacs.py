"""PACS profiles in use: from a name in the settings to the profile (a hub profile of kind
``dimse``), its :class:`Endpoint`, Relay's calling AE title, and ``relay pacs test`` (the
peer's own check, :meth:`app.net.dimse.peer.DimsePeer.check`, diagnosed in plain words)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import TransferError
from app.net.dimse.association import DEFAULT_AE_TITLE, Endpoint, TlsOptions
from app.net.hubs import HubCheck, check_hub, peer_for
from app.settings import HubProfile, Settings

if TYPE_CHECKING:
    from app.net.dimse.client import DimseClient
    from app.net.dimse.peer import DimsePeer


def profile(settings: Settings, name: str) -> HubProfile:
    """The PACS called ``name``, or an error listing the PACS there are."""
    found = settings.pacs_profile(name)
    if found is None:
        known = (", ".join(p.name for p in settings.pacs)
                 or "none yet; add one with 'relay pacs add'")
        raise TransferError(f"no PACS called '{name}' (PACS: {known})")
    return found


def endpoint(pacs: HubProfile) -> Endpoint:
    tls = TlsOptions(pacs.ca_file, pacs.cert_file, pacs.key_file) if pacs.tls else None
    return Endpoint(pacs.host, pacs.port, pacs.ae_title, tls)


def calling_ae(settings: Settings) -> str:
    """Relay's own AE title: the node settings' (``relay node --ae``), else ``RELAY``."""
    return settings.node.ae_title or DEFAULT_AE_TITLE


def peer(settings: Settings, name: str, *, method: str = "",
         home: Path | None = None) -> DimsePeer:
    """The PACS called ``name`` as a peer, calling as Relay's node (``method``: ``get`` or
    ``move`` instead of the profile's; ``home``: where Relay's node running in another process
    hands over what it receives for this one)."""
    from app.net.dimse.peer import DimsePeer

    found = profile(settings, name)
    made = peer_for(found, None, settings=settings, home=home)
    assert isinstance(made, DimsePeer)
    if method:
        made.method = method
    return made


def connect(settings: Settings, name: str, home: Path | None = None) -> DimseClient:
    """A DIMSE client for the PACS called ``name``, calling as Relay's node."""
    return peer(settings, name, home=home).client


def check_pacs(settings: Settings, name: str, home: Path | None = None) -> HubCheck:
    """``relay pacs test``: a C-ECHO, then a C-FIND matching nothing, timed and diagnosed
    (``home``: whose audit trail records each association asked for, with its outcome)."""
    return check_hub(peer(settings, name, home=home))
