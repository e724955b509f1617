"""Typed settings, kept in ``settings.json`` in the Relay home.

Each section is a dataclass; each field has a docstring. The file carries a schema version; a file
written by a newer Relay is refused rather than half-read, and sections this version does not know
are kept as they are when the file is written back. Secrets never go into this file: passwords and
tokens live in the keyring (:mod:`app.net.secrets`).
"""

from __future__ import annotations

import json
import logging
import os
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from app.errors import SettingsError
from app.net.dimse.node import NodeSettings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
"""3: PACS profiles are hub profiles of kind ``dimse`` (``settings.pacs`` moved into ``hubs``);
2: hub profiles say which protocol they speak (``kind``); 1: every hub was DICOMweb."""
FILE_NAME = "settings.json"

#: Protocols a hub profile may speak (each has a client module; see :mod:`app.net.hubs`).
PROFILE_KINDS = ("dicomweb", "dimse")
#: How a ``dimse`` peer is asked for studies: C-GET (on Relay's own association, through NAT
#: and firewalls) or C-MOVE (the PACS opens an association to Relay's node).
RETRIEVE_METHODS = ("get", "move")

AUTH_KINDS = ("none", "basic", "bearer")
SECRET_FALLBACKS = ("none", "encrypted-file")


@dataclass
class HubProfile:
    """One peer that studies are sent to and fetched from: a DICOMweb hub (``kind``
    ``dicomweb``: ``url``, ``auth``) or a PACS spoken to over DIMSE (``kind`` ``dimse``:
    ``host``, ``port``, ``ae_title``, ``tls``)."""

    name: str
    """Short name used on the command line (``relay send STUDY --hub NAME``)."""
    url: str = ""
    """DICOMweb base URL, e.g. ``https://hub.example.org/dicom-web`` (``/studies`` is added)."""
    auth: str = "none"
    """``none``, ``basic`` (user + password) or ``bearer`` (token); the secret is in the keyring."""
    user: str = ""
    """User name for basic authentication (not secret; the password is in the keyring)."""
    ca_file: str = ""
    """PEM file of a CA to trust in addition to the system's (a hub with its own CA). TLS is
    always verified: against the operating system's trust store, plus this file when given."""
    connect_timeout: float = 10.0
    """Seconds to wait for a connection before calling the hub unreachable."""
    read_timeout: float = 120.0
    """Seconds without a byte from the hub before a request is given up (and retried)."""
    kind: str = "dicomweb"
    """The protocol the hub speaks (one of :data:`PROFILE_KINDS`)."""
    host: str = ""
    """``dimse``: host name or address of the PACS's DICOM service."""
    port: int = 0
    """``dimse``: its DICOM port (often 104 or 11112)."""
    ae_title: str = ""
    """``dimse``: the PACS's own (called) AE title; case-sensitive, up to 16 characters."""
    tls: bool = False
    """``dimse``: DICOM over TLS; the PACS's certificate is verified (system store plus
    ``ca_file``)."""
    cert_file: str = ""
    """``dimse``: PEM certificate Relay presents, for PACS that check their clients."""
    key_file: str = ""
    """``dimse``: PEM private key of ``cert_file`` (a file readable only by this user)."""
    retrieve: str = "get"
    """``dimse``: how studies are asked for by default (one of :data:`RETRIEVE_METHODS`)."""

    def __post_init__(self) -> None:
        if self.kind not in PROFILE_KINDS:
            raise SettingsError(f"hub '{self.name}': kind must be one of "
                                f"{', '.join(PROFILE_KINDS)}, not '{self.kind}'")
        if self.auth not in AUTH_KINDS:
            raise SettingsError(f"hub '{self.name}': auth must be one of {', '.join(AUTH_KINDS)}")
        if strip_userinfo(self.url) != self.url:
            raise SettingsError(
                f"hub '{self.name}': the URL holds a user name or password; give them with "
                "--user and --password-stdin (kept in the keyring), never in the URL")
        if self.kind == "dimse":
            if not self.host or not 0 < self.port < 65536 or not self.ae_title:
                raise SettingsError(f"PACS '{self.name}': a host, a port (1-65535) and the "
                                    "PACS's AE title are needed")
            if self.retrieve not in RETRIEVE_METHODS:
                raise SettingsError(f"PACS '{self.name}': retrieve must be one of "
                                    f"{', '.join(RETRIEVE_METHODS)}")

    @property
    def is_pacs(self) -> bool:
        """A PACS spoken to over DIMSE (not a DICOMweb hub)."""
        return self.kind == "dimse"

    @property
    def address(self) -> str:
        """Where it is, for lists: the URL, or ``AE@host:port`` for a PACS."""
        return f"{self.ae_title}@{self.host}:{self.port}" if self.is_pacs else self.url


def strip_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part (settings never keep credentials)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@dataclass
class TransferSettings:
    """How studies are sent and fetched."""

    batch_instances: int = 50
    """Instances per STOW-RS request (about 50 was fastest against Orthanc)."""
    in_flight: int = 2
    """STOW-RS requests sent at the same time."""
    max_attempts: int = 3
    """Tries for an instance the hub reports as failed before it is reported as failed."""
    retry_initial_seconds: float = 1.0
    """First wait before retrying after the hub became unreachable; doubles each time."""
    retry_max_seconds: float = 60.0
    """Longest wait between retries."""
    give_up_seconds: float = 600.0
    """A command-line send or fetch stops retrying an unreachable hub after this long (the job
    stays in the queue and resumes on the next run)."""
    verify_bytes: bool = False
    """After a send, fetch every instance back from the hub and compare its length and SHA-256
    with the local file (proof that the hub kept these bytes; doubles the traffic)."""


@dataclass
class IncomingSettings:
    """The "Incoming" list: new studies on the hub."""

    hub: str = ""
    """Hub to watch (a profile name); empty: every configured hub."""
    interval_seconds: float = 30.0
    """How often the hub is asked for new studies (seconds; at least 5 in the window)."""
    lookback_days: int = 3
    """Only studies that arrived on the hub in the last N days are listed, whatever their study
    date (0: every study). DICOMweb does not say when a study arrived: it is when Relay first
    saw it on the hub (see :mod:`app.net.incoming`)."""
    prefetch: bool = False
    """Download new studies in the background so they are local before anyone opens them."""
    open_stroke: bool = False
    """A new study on the hub that matches a stroke rule (the stroke-priority forwarding rules,
    else the shipped example: CT described STROKE, CODE or CTA) opens itself for reading; every
    such study is announced with a sound and a tray message."""
    quick_seconds: float = 4.0
    """Between the full searches, a quick search of the studies dated today and yesterday
    (one small QIDO-RS request) this often, so a new study is listed within seconds; 1 s while
    a study is still arriving. 0: full searches only."""


@dataclass
class SecretSettings:
    """Where secrets go when the system has no keyring service."""

    fallback: str = "none"
    """``none``: refuse to store a secret without a keyring service. ``encrypted-file``: keep
    secrets in ``secrets.enc`` in the home, encrypted with a passphrase from
    ``RELAY_KEYRING_PASSPHRASE`` or typed at a prompt. Never a plain-text file."""

    def __post_init__(self) -> None:
        if self.fallback not in SECRET_FALLBACKS:
            raise SettingsError(f"secrets.fallback must be one of {', '.join(SECRET_FALLBACKS)}")


@dataclass
class UserWindowPreset:
    """A window preset the user saved (shown after the built-in ones in the presets menus)."""

    name: str = ""
    """What the menus call it."""
    center: float = 40.0
    """Window centre (level), in modality units (HU for CT)."""
    width: float = 80.0
    """Window width, in modality units."""
    modality: str = ""
    """Offered for this modality only ("CT", "MR"...); empty: for every modality."""


@dataclass
class ReadingSettings:
    """The reading window."""

    window_presets: list[UserWindowPreset] = field(default_factory=list)
    """The user's own window presets, in the order they were saved."""
    left_drag: str = "tool"
    """What a plain left drag does in 2D and MPR: "tool" (Shift: window/level) or "window"
    (Ctrl: the tool). See :mod:`app.ui.mouse_model`."""
    dark_chrome: bool = False
    """Dark menus, browser and dialogs around the (always dark) reading area; False: the
    platform's light look. See :mod:`app.ui.theme`."""

    hanging: dict[str, str] = field(default_factory=dict)
    """The hanging protocol the user chose per kind of study ("CT/HEAD" -> "stroke-code"; see
    :mod:`app.workflow.hanging`)."""


@dataclass
class WorklistSettings:
    """The Modality Worklist SCP (and PACS) asked to find the local patient when reconciling."""

    host: str = ""
    """Host of the worklist SCP; empty: no worklist configured."""
    port: int = 104
    """Its DICOM port."""
    called_ae: str = ""
    """Its AE title."""
    calling_ae: str = "RELAY"
    """Relay's AE title on these associations."""
    timeout_seconds: float = 30.0
    """How long to wait for the association and for each answer."""
    pacs: str = ""
    """A PACS profile (``relay pacs add``) to ask instead of ``host``/``port``/``called_ae``:
    its address, AE title and TLS settings are used."""


@dataclass
class StorageSettings:
    """The practice's storage rules (``relay retention``, Settings -> Storage)."""

    keep_days: int = 0
    """Purge local studies received more than this many days ago; 0: no age limit."""
    keep_gb: float = 0.0
    """Purge the oldest local studies while the store holds more than this many GB; 0: no
    size limit."""
    only_verified: bool = True
    """Purge only studies every instance of which a hub or PACS confirmed holding (a verified
    send, or the study came from there). Off: unverified studies may go too."""
    low_disk_gb: float = 2.0
    """Warn before an import, fetch or retrieve when less than this many GB are free."""


AUDIT_TRANSPORTS = ("tls", "udp")
RULE_SOURCES = ("import", "listener", "hub")
RULE_PRIORITIES = ("stroke", "normal")


@dataclass
class ForwardingRule:
    """Instances that match go on to the targets as they arrive (see :mod:`app.net.forward`).
    Every condition given must hold; an empty one matches anything."""

    name: str
    """Short name (``relay rules remove NAME``)."""
    targets: list[str] = field(default_factory=list)
    """Where matching instances go: ``hub:NAME`` (a hub profile) or ``pacs:NAME``."""
    sources: list[str] = field(default_factory=list)
    """Where the instance came from: ``import``, ``listener``, ``hub``; empty: any."""
    calling_ae: str = ""
    """For the listener: a regular expression the sender's calling AE title must match."""
    modalities: list[str] = field(default_factory=list)
    """Modality of the series (``CT``, ``MR``...); empty: any."""
    body_part: str = ""
    """Regular expression for Body Part Examined (case-insensitive), e.g. ``HEAD|BRAIN``."""
    description: str = ""
    """Regular expression for the study or the series description (case-insensitive)."""
    priority: str = "normal"
    """``stroke``: these transfers go before any other; ``normal``."""
    enabled: bool = True
    """A rule kept but not applied."""

    def __post_init__(self) -> None:
        import re

        if not self.name.strip():
            raise SettingsError("a forwarding rule needs a name")
        if self.priority not in RULE_PRIORITIES:
            raise SettingsError(f"rule '{self.name}': priority must be one of "
                                f"{', '.join(RULE_PRIORITIES)}")
        for source in self.sources:
            if source not in RULE_SOURCES:
                raise SettingsError(f"rule '{self.name}': source '{source}' is not one of "
                                    f"{', '.join(RULE_SOURCES)}")
        for target in self.targets:
            kind, _, name = target.partition(":")
            if kind not in ("hub", "pacs") or not name:
                raise SettingsError(f"rule '{self.name}': target '{target}' is not hub:NAME "
                                    "or pacs:NAME")
        for what, pattern in (("calling_ae", self.calling_ae), ("body_part", self.body_part),
                              ("description", self.description)):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SettingsError(f"rule '{self.name}': {what} '{pattern}' is not a regular "
                                    f"expression: {exc}") from exc


@dataclass
class ForwardingSettings:
    """Forwarding rules and how forwarded instances are batched."""

    rules: list[ForwardingRule] = field(default_factory=list)
    """The rules, applied in order (an instance goes to the targets of every rule it
    matches, once per target)."""
    imports: bool = False
    """Apply the rules to imports too (the listener always applies them)."""
    # 16 / 250 ms measured best of 1:0, 4:100, 16:250, 50:1000 (300 slices at 20/s over
    # 25 MB/s with 40 ms round trips: verified 1.2 s after the last slice against 12.3, 1.8 and
    # 5.3 s; bench/bench_door_to_image.py)
    batch_instances: int = 16
    """A STOW-RS batch is sent once it holds this many instances (N)..."""
    batch_ms: int = 250
    """... or once its first instance has waited this long (T, milliseconds)."""
    quiet_seconds: float = 3.0
    """A study from which nothing has come for this long (or whose association ended) is
    verified on the target and its job finished."""


@dataclass
class AuditSettings:
    """The audit repository the audit record is sent on to (DICOM audit messages, PS3.15 A.5,
    over syslog; see :mod:`app.workflow.audit_syslog`). The record in the home is kept anyway."""

    syslog_host: str = ""
    """Host of the audit repository (syslog receiver); empty: none."""
    syslog_port: int = 6514
    """Its port (6514: syslog over TLS, RFC 5425; 514: UDP, RFC 5426)."""
    syslog_transport: str = "tls"
    """``tls`` (the repository's certificate verified) or ``udp`` (unencrypted, unconfirmed:
    only on a trusted network)."""
    ca_file: str = ""
    """PEM file of a CA to trust for the repository, besides the system's."""
    cert_file: str = ""
    """PEM certificate Relay shows the repository (mutual TLS, as IHE ATNA asks); optional."""
    key_file: str = ""
    """The private key of ``cert_file`` (a file readable by this user only)."""

    def __post_init__(self) -> None:
        if self.syslog_transport not in AUDIT_TRANSPORTS:
            raise SettingsError("audit.syslog_transport must be one of "
                                f"{', '.join(AUDIT_TRANSPORTS)}")


@dataclass
class Settings:
    """Everything Relay remembers between runs, except the store, queue and secrets."""

    schema_version: int = SCHEMA_VERSION
    """Version of this file's layout."""
    hubs: list[HubProfile] = field(default_factory=list)
    """Peer profiles (DICOMweb hubs and DIMSE PACS), in the order they were added."""
    transfer: TransferSettings = field(default_factory=TransferSettings)
    """Sending and fetching."""
    incoming: IncomingSettings = field(default_factory=IncomingSettings)
    """The incoming-studies list."""
    secrets: SecretSettings = field(default_factory=SecretSettings)
    """Secret storage without a keyring service."""
    node: NodeSettings = field(default_factory=NodeSettings)
    """Relay's own DICOM node (``relay node``, ``relay listen``)."""
    reading: ReadingSettings = field(default_factory=ReadingSettings)
    """The reading window (the user's window presets)."""
    worklist: WorklistSettings = field(default_factory=WorklistSettings)
    """The worklist SCP used by reconciliation."""
    storage: StorageSettings = field(default_factory=StorageSettings)
    """Storage rules: retention and the low-disk warning."""

    audit: AuditSettings = field(default_factory=AuditSettings)
    """Where the audit record is sent on to (an audit repository)."""
    forwarding: ForwardingSettings = field(default_factory=ForwardingSettings)
    """Forwarding rules: instances sent on to hubs and PACS as they arrive."""
    other: dict[str, Any] = field(default_factory=dict)
    """Sections this version does not know (written by another part or version): kept as is."""

    def hub(self, name: str) -> HubProfile | None:
        """The profile called ``name``, or None."""
        return next((h for h in self.hubs if h.name == name), None)

    @property
    def web_hubs(self) -> list[HubProfile]:
        """The DICOMweb hubs (kind ``dicomweb``), in order."""
        return [h for h in self.hubs if h.kind == "dicomweb"]

    @property
    def pacs(self) -> list[HubProfile]:
        """The PACS (kind ``dimse``), in order."""
        return [h for h in self.hubs if h.kind == "dimse"]

    def pacs_profile(self, name: str) -> HubProfile | None:
        """The PACS profile called ``name``, or None."""
        return next((p for p in self.pacs if p.name == name), None)


T = TypeVar("T")


def load_settings(home: Path) -> Settings:
    """Read ``home/settings.json``; defaults when it does not exist."""
    path = Path(home) / FILE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as exc:
        raise SettingsError(f"the settings file {path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"the settings file {path} does not hold an object")
    version = raw.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SettingsError(
            f"the settings file {path} was written by a newer Relay (schema {version})"
        )
    _strip_hub_credentials(raw, path)
    raw = _migrate(raw, version)
    known = {f.name for f in fields(Settings)}
    other = {k: v for k, v in raw.items() if k not in known}
    settings = _build(Settings, {k: v for k, v in raw.items() if k in known}, str(path))
    settings.other.update(other)
    settings.schema_version = SCHEMA_VERSION
    return settings


def _strip_hub_credentials(raw: dict[str, Any], path: Path) -> None:
    """Drop credentials that an older Relay or a hand edit left inside hub URLs."""
    for hub in raw.get("hubs") or []:
        if isinstance(hub, dict) and isinstance(hub.get("url"), str):
            clean = strip_userinfo(hub["url"])
            if clean != hub["url"]:
                log.warning("%s: credentials inside the URL of hub '%s' were dropped; add them "
                            "again with --user/--password-stdin", path, hub.get("name", "?"))
                hub["url"] = clean


def _migrate(raw: dict[str, Any], version: int) -> dict[str, Any]:
    """The layout of an older file brought to :data:`SCHEMA_VERSION` (the file itself is
    rewritten in the new layout the next time settings are saved)."""
    if version < 2:  # every hub was DICOMweb
        hubs = raw.get("hubs")
        if isinstance(hubs, list):
            raw = {**raw, "hubs": [{**h, "kind": h.get("kind", "dicomweb")}
                                   if isinstance(h, dict) else h for h in hubs]}
    if version < 3:  # PACS profiles had their own list
        raw = _pacs_into_hubs(raw)
    return raw


def _pacs_into_hubs(raw: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 -> 3: each ``pacs`` entry becomes a ``hubs`` entry of kind ``dimse``. A PACS
    whose name a hub already has is renamed ``NAME-pacs`` (names are unique now), said once."""
    pacs = raw.get("pacs")
    raw = {k: v for k, v in raw.items() if k != "pacs"}
    if not isinstance(pacs, list) or not pacs:
        return raw
    hubs = list(raw.get("hubs") or [])
    taken = {h.get("name") for h in hubs if isinstance(h, dict)}
    for entry in pacs:
        if not isinstance(entry, dict):
            raise SettingsError("settings: pacs: expected a list of objects")
        moved = {**entry, "kind": "dimse"}
        name = str(moved.get("name", ""))
        while name in taken:
            log.warning("the PACS '%s' is now called '%s-pacs': a hub has its name", name, name)
            name = f"{name}-pacs"
        moved["name"] = name
        taken.add(name)
        hubs.append(moved)
    return {**raw, "hubs": hubs}


def save_settings(home: Path, settings: Settings) -> None:
    """Write ``home/settings.json`` atomically (a crash leaves the old or the new file)."""
    path = Path(home) / FILE_NAME
    data = asdict(settings)
    other = data.pop("other")
    data.update({k: v for k, v in other.items() if k not in data})
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fp:
            json.dump(data, fp, indent=2)
            fp.write("\n")
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SettingsError(f"cannot write the settings file {path}: {exc}") from exc


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved types of a settings dataclass's fields, worked out once: resolving them
    each time made a :func:`load_settings` take 10 ms instead of 2 (the queue runner loads
    the settings for each job, the window on each refresh)."""
    hints = _FIELD_TYPES.get(cls)
    if hints is None:
        hints = _FIELD_TYPES[cls] = typing.get_type_hints(cls)
    return hints


def _build(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: expected an object")
    hints = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise SettingsError(f"{where}: '{f.name}' is missing")
            continue
        kwargs[f.name] = _convert(hints[f.name], raw[f.name], f"{where}: {f.name}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise SettingsError(f"{where}: expected a list")
        (item,) = typing.get_args(hint)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"{where}: expected an object")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise SettingsError(f"{where}: expected {hint.__name__}, found {value!r}")
    return value
