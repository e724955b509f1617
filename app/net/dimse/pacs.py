"""PACS profiles in use: from a name in the settings to an :class:`Endpoint`, Relay's calling AE
title, and ``relay pacs test`` (a C-ECHO, diagnosed in plain words)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from app.errors import DimseError, TransferError
from app.net.dimse.association import DEFAULT_AE_TITLE, DEFAULT_PORT, Endpoint, TlsOptions
from app.net.hubs import HubCheck
from app.settings import PacsProfile, Settings

if TYPE_CHECKING:
    from app.net.dimse.client import DimseClient


def profile(settings: Settings, name: str) -> PacsProfile:
    """The PACS called ``name``, or an error listing the PACS there are."""
    found = settings.pacs_profile(name)
    if found is None:
        known = (", ".join(p.name for p in settings.pacs)
                 or "none yet; add one with 'relay pacs add'")
        raise TransferError(f"no PACS called '{name}' (PACS: {known})")
    return found


def endpoint(pacs: PacsProfile) -> Endpoint:
    tls = TlsOptions(pacs.ca_file, pacs.cert_file, pacs.key_file) if pacs.tls else None
    return Endpoint(pacs.host, pacs.port, pacs.ae_title, tls)


def calling_ae(settings: Settings) -> str:
    """Relay's own AE title: the node settings' (``relay node --ae``), else ``RELAY``."""
    return str(_node_value(settings, "ae_title") or DEFAULT_AE_TITLE)


def node_port(settings: Settings) -> int:
    """Relay's own DICOM port (C-MOVE and commitment reports come there), else 11112."""
    return int(_node_value(settings, "port") or DEFAULT_PORT)


def _node_value(settings: Settings, key: str) -> Any:
    node: Any = getattr(settings, "node", None)
    value = getattr(node, key, None) if node is not None else None
    if value is None:
        raw = settings.other.get("node")
        value = raw.get(key) if isinstance(raw, dict) else None
    return value


def connect(settings: Settings, name: str) -> DimseClient:
    """A DIMSE client for the PACS called ``name``, calling as Relay's node."""
    from app.net.dimse.client import DimseClient

    return DimseClient(endpoint(profile(settings, name)), calling_ae(settings),
                       listen_port=node_port(settings))


def check_pacs(settings: Settings, name: str) -> HubCheck:
    """A C-ECHO, then a C-FIND matching nothing (many PACS, Orthanc among them, answer any
    echo but only the queries of nodes they know), with what is wrong in plain words (the
    shape of ``relay hub test``)."""
    from pydicom.dataset import Dataset

    client = connect(settings, name)
    started = time.monotonic()
    try:
        client.echo()
        probe = Dataset()
        probe.StudyInstanceUID = "1.2.3.4.5.6.7.8.9.0.1.2.3"  # matches nothing
        list(client.find("STUDY", probe))
    except DimseError as exc:
        kind, message = exc.kind, str(exc)
        if exc.kind == "aborted" and time.monotonic() - started < 60:
            kind = "calling-ae"
            message = (f"{client.peer.where} answers C-ECHO but aborted a query from "
                       f"'{client.calling_ae}': it probably does not know Relay's AE title "
                       f"(add '{client.calling_ae}' with this computer's address to the PACS's "
                       "list of DICOM nodes)")
        return HubCheck(False, kind, message, time.monotonic() - started)
    seconds = time.monotonic() - started
    return HubCheck(True, "ok", f"{client.peer.where} answers C-ECHO and queries from "
                                f"'{client.calling_ae}' ({seconds * 1000:.0f} ms)", seconds)
