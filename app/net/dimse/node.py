"""Relay's own DICOM node: its AE title, port, who may call it and where C-MOVE may send.

The settings section ``node`` in ``settings.json`` (see :mod:`app.settings`). Defaults are those
of most workstations (Horos, OsiriX, Weasis): AE title ``RELAY``, port 11112 (the registered
DICOM port for non-privileged use), every interface, any calling AE title accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import SettingsError

DEFAULT_AE = "RELAY"
DEFAULT_PORT = 11112


@dataclass
class MoveDestination:
    """A peer Relay's node may send to when asked by C-MOVE (PS3.4 C.4.2: known by AE title)."""

    ae_title: str
    """The destination's AE title, as named in the C-MOVE request."""
    host: str
    """Host name or address of the destination's storage SCP."""
    port: int
    """Its port."""

    def __post_init__(self) -> None:
        self.ae_title = check_ae_title(self.ae_title)
        self.port = check_port(self.port, f"destination {self.ae_title}")
        if not self.host.strip():
            raise SettingsError(f"destination {self.ae_title}: the host is empty")


@dataclass
class NodeSettings:
    """Relay's own DICOM node (storage, query and retrieve SCP)."""

    ae_title: str = DEFAULT_AE
    """Relay's AE title: what modalities and PACS put as the *called* AE title."""
    port: int = DEFAULT_PORT
    """TCP port the node listens on."""
    bind: str = "0.0.0.0"
    """Address to listen on: ``0.0.0.0`` (every interface, so scanners can reach it) or e.g.
    ``127.0.0.1`` (this machine only)."""
    allowed_callers: list[str] = field(default_factory=list)
    """Calling AE titles that may associate; empty: any. Others are rejected (and logged)."""
    move_destinations: list[MoveDestination] = field(default_factory=list)
    """Peers a C-MOVE may send to; a C-MOVE naming another AE title is refused."""
    listen: bool = False
    """The window runs the node in the background while it is open."""
    max_associations: int = 10
    """Associations served at the same time; more are rejected (busy) until one ends."""
    acse_timeout: float = 30.0
    """Seconds to wait for association messages (a peer that connects and says nothing)."""
    dimse_timeout: float = 60.0
    """Seconds to wait for a DIMSE message inside an association."""
    network_timeout: float = 60.0
    """Seconds an association may stay silent before it is closed."""
    tls_cert_file: str = ""
    """PEM certificate the node presents; set (with ``tls_key_file``), the node speaks DICOM
    TLS only (PS3.15 B.1) and every caller must present a certificate it trusts."""
    tls_key_file: str = ""
    """PEM private key of ``tls_cert_file``."""
    tls_ca_file: str = ""
    """PEM CA that signs the callers' certificates (besides the system's trust store)."""

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)

    def __post_init__(self) -> None:
        self.ae_title = check_ae_title(self.ae_title)
        self.port = check_port(self.port, "node")
        self.allowed_callers = [check_ae_title(a) for a in self.allowed_callers]
        if self.max_associations < 1:
            raise SettingsError("node: max_associations must be at least 1")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("node: DICOM TLS needs both a certificate and its private key")

    def destination(self, ae_title: str) -> MoveDestination | None:
        """The configured C-MOVE destination called ``ae_title`` (exact match), or None."""
        return next((d for d in self.move_destinations if d.ae_title == ae_title.strip()), None)

    def caller_allowed(self, ae_title: str) -> bool:
        return not self.allowed_callers or ae_title.strip() in self.allowed_callers

    def to_json(self) -> dict[str, object]:
        return {
            "ae_title": self.ae_title, "port": self.port, "bind": self.bind,
            "allowed_callers": list(self.allowed_callers),
            "move_destinations": [{"ae_title": d.ae_title, "host": d.host, "port": d.port}
                                  for d in self.move_destinations],
            "listen": self.listen, "max_associations": self.max_associations,
            "tls": self.tls, "tls_cert_file": self.tls_cert_file,
            "tls_key_file": self.tls_key_file, "tls_ca_file": self.tls_ca_file,
        }


def check_ae_title(value: str) -> str:
    """An AE title as PS3.5 allows it (1-16 characters, no backslash or control characters);
    leading and trailing spaces are not significant and are dropped."""
    ae = value.strip()
    if not ae:
        raise SettingsError("an AE title cannot be empty")
    if len(ae) > 16:
        raise SettingsError(f"AE title '{ae}' is longer than 16 characters")
    if "\\" in ae or any(ord(c) < 32 or ord(c) > 126 for c in ae):
        raise SettingsError(f"AE title '{ae}' may only hold printable ASCII, without '\\'")
    return ae


def check_port(value: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SettingsError(f"{where}: port must be a number from 1 to 65535, not {value!r}")
    return value


def parse_destination(text: str) -> MoveDestination:
    """``AE=HOST:PORT`` (the command line's form) into a destination."""
    ae, sep, where = text.partition("=")
    host, sep2, port = where.rpartition(":")
    if not sep or not sep2 or not port.isdigit():
        raise SettingsError(f"destination '{text}': expected AE=HOST:PORT, e.g. PACS=10.0.0.5:104")
    return MoveDestination(ae_title=ae, host=host, port=int(port))
