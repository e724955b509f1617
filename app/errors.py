"""Typed errors, in one place.

Errors carry a plain-words ``reason`` meant for the person at the workstation; the path (or other
subject) is kept separately so reports can list "path: reason" lines.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error Relay raises on purpose."""


class NotDicomError(RelayError):
    """The file is not DICOM at all (a README, an autorun.inf, a viewer's .exe)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DicomReadError(RelayError):
    """The file is DICOM (or claims to be) but cannot be taken: the reason says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreError(RelayError):
    """The local store cannot do what was asked (disk full, unreadable index, ...)."""


class StoreFull(StoreError):
    """The disk holding the store is full (or the user's quota is used up): what was written
    before is kept and indexed, and the same import or fetch completes once space is freed."""


class DecodeError(RelayError):
    """Pixel data cannot be decoded; the message names file, transfer syntax and cause."""


class GeometryError(RelayError):
    """A volume cannot be built from these slices; the message says why."""


class TransferError(RelayError):
    """Sending to or fetching from a hub or PACS failed."""


class ToolMissingError(RelayError):
    """A program Relay needs here is not installed; the message names the package to install."""


class Cancelled(RelayError):
    """The user cancelled the task."""


class HubError(TransferError):
    """A hub could not be used. ``kind`` names the fault in one word, the message in plain words.

    Kinds: ``unreachable`` (no connection, connection lost), ``timeout``, ``tls`` (certificate not
    trusted, TLS spoken to a plain port, ...), ``auth`` (401/403), ``not-dicomweb`` (the server
    answers, but not as a DICOMweb service: wrong URL, garbage), ``server`` (5xx), ``rejected``
    (the hub refused the request itself, 4xx). ``retryable`` says whether trying again later
    can help without the user changing anything.
    """

    RETRYABLE = frozenset({"unreachable", "timeout", "server"})

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE


class DimseError(HubError):
    """A DICOM peer (PACS, modality) could not be used over DIMSE; ``kind`` names the fault.

    Kinds: ``unreachable``, ``timeout`` (no answer in time), ``tls``, ``calling-ae`` (the peer
    does not know Relay's AE title), ``called-ae`` (the peer's AE title is wrong), ``busy``
    (transient rejection), ``rejected`` (other rejection), ``refused`` (every SOP class or
    transfer syntax refused), ``aborted`` (association aborted or connection lost), ``failed``
    (the peer answered a request with a failure status).
    """

    RETRYABLE = frozenset({"unreachable", "timeout", "busy", "aborted"})


class NotSupportedByPeer(TransferError):
    """A peer was asked for an operation its protocol cannot do (say, WADO-RS metadata of a
    DIMSE peer); the message names the peer and the operation. Never a silent no-op."""


class SecretsError(RelayError):
    """A secret cannot be stored or read (no keyring service, wrong passphrase, ...)."""


class SettingsError(RelayError):
    """The settings file cannot be read or holds a value of the wrong kind."""
