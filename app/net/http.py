"""HTTP to a hub: TLS, authentication, timeouts, and faults told in plain words.

One :class:`HubSession` per hub profile: a urllib3 pool (keep-alive, no automatic retries: the
transfer queue decides about retries), TLS verified against the operating system's trust store
(``truststore``) plus the profile's CA file, and every low-level failure translated into a
:class:`~app.errors.HubError` whose ``kind`` says what is wrong. Secrets and query strings never
reach the log.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.client import BadStatusLine, IncompleteRead, RemoteDisconnected
from typing import Any
from urllib.parse import urlencode, urlsplit

import truststore
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from app import __version__
from app.errors import HubError
from app.settings import HubProfile

log = logging.getLogger(__name__)


class _QueryRedactor(logging.Filter):
    """urllib3 logs each request's URL at DEBUG; a QIDO-RS query carries the Patient ID or
    name in it. The query string is cut from those records (no patient identifier in logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.split("?", 1)[0] + "?…" if isinstance(a, str) and "?" in a
                                else a for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_QueryRedactor())

def _not_header_defects(record: logging.LogRecord) -> bool:
    """urllib3 logs a hub's malformed headers (a multipart type without a boundary) with a
    traceback, then goes on; Relay says what is wrong in its own words."""
    return not record.getMessage().startswith("Failed to parse headers")


logging.getLogger("urllib3.connection").addFilter(_not_header_defects)

USER_AGENT = f"Relay/{__version__}"
#: Told ``(accepted, reason)`` when the hub answers a request carrying credentials.
LoginListener = Callable[[bool, str], None]
#: Largest JSON answer taken, after gzip decoding (the metadata of a 10,000-instance study is
#: ~100 MB); beyond it the answer is refused, so a gzip bomb costs at most this much memory.
MAX_JSON_BYTES = 256 << 20
#: A whole answer may take this many read timeouts (a trickling server is given up).
ANSWER_DEADLINE_READS = 4


def ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """A client context verifying against the system trust store (and ``ca_file``)."""
    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise HubError("tls", f"the CA file {ca_file} cannot be used: {exc}") from exc
    return ctx


class HubSession:
    """Requests to one hub. Thread-safe (urllib3 pools are)."""

    def __init__(self, profile: HubProfile, secret: str | None = None, *, pool_size: int = 4,
                 on_login: LoginListener | None = None):
        self.profile = profile
        self.on_login = on_login if profile.auth != "none" else None
        """Told ``(accepted, reason)`` of the first answer to the credentials, and of the first
        refusal after that: the login attempts of the audit trail."""
        self._login_told: set[bool] = set()
        self._login_lock = threading.Lock()
        self.base = profile.url.rstrip("/")
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HubError("rejected", f"'{profile.url}' is not an http:// or https:// URL")
        self.where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        if parts.scheme == "http" and profile.auth != "none" and not is_loopback(parts.hostname):
            raise HubError(
                "rejected", f"'{profile.url}' is plain http:// and the hub has a "
                f"{'password' if profile.auth == 'basic' else 'token'}: it would cross the "
                "network unencrypted. Use https:// (plain http:// with credentials is only "
                "allowed to this machine, e.g. 127.0.0.1)")
        self.headers: dict[str, str] = {"User-Agent": USER_AGENT}
        if profile.auth == "basic":
            token = base64.b64encode(f"{profile.user}:{secret or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        elif profile.auth == "bearer":
            self.headers["Authorization"] = f"Bearer {secret or ''}"
        kwargs: dict[str, Any] = {}
        if parts.scheme == "https":
            kwargs["ssl_context"] = ssl_context(profile.ca_file)
        self.pool = urllib3.PoolManager(
            num_pools=2, maxsize=pool_size, block=False, retries=False,
            timeout=urllib3.Timeout(connect=profile.connect_timeout, read=profile.read_timeout),
            **kwargs,
        )

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = self.base + path
        # QIDO wildcards and lists stay as typed: Orthanc 1.10's DICOMweb plugin does not
        # decode %2A / %2C in query values ("PatientName=%2ADOE%2A" matches nothing).
        return url + ("?" + urlencode(params, safe="*,") if params else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; return the response or raise :class:`HubError`.

        With ``stream`` the body is left unread (the caller reads and releases it).
        """
        all_headers = {**self.headers, **(headers or {})}
        log.debug("%s %s", method, path.split("/")[1] if "/" in path else path)
        try:
            resp = self.pool.request(
                method, self.url(path, params), headers=all_headers, body=body,
                preload_content=not stream, redirect=False, chunked=False,
            )
        except HubError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc
        if self.on_login is not None:
            self._tell_login(resp.status)
        if resp.status not in set(ok):
            error = self.status_error(resp)
            if stream:
                resp.drain_conn()
                resp.release_conn()
            raise error
        return resp

    def _tell_login(self, status: int) -> None:
        accepted = status not in (401, 403)
        with self._login_lock:
            if accepted in self._login_told or (accepted and self._login_told):
                return
            self._login_told.add(accepted)
        assert self.on_login is not None
        try:
            self.on_login(accepted, "" if accepted else f"refused ({status})")
        except Exception:  # the audit must not break a transfer
            log.exception("recording a login attempt failed")

    def json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a DICOM JSON answer (QIDO, metadata); 204 is an empty list.

        Asks for gzip: DICOM JSON shrinks ~10× (a 400-instance series' metadata is megabytes),
        which on a WAN link is most of the time to a remote study's first image. The answer is
        capped after decoding (:data:`MAX_JSON_BYTES`: a gzip bomb stops there) and must arrive
        within :meth:`answer_deadline` (a server trickling a byte now and then is given up).
        """
        resp = self.request("GET", path, params=params,
                            headers={"Accept": "application/dicom+json",
                                     "Accept-Encoding": "gzip"}, ok=(200, 204), stream=True)
        try:
            data = self.read_capped(resp, MAX_JSON_BYTES, "answer")
        finally:
            resp.release_conn()
        if resp.status == 204 or not data:
            return []
        return self.parse_json(resp, data)

    def answer_deadline(self) -> float:
        """Seconds a whole answer may take (each read also has the profile's read timeout)."""
        return ANSWER_DEADLINE_READS * self.profile.read_timeout

    def read_capped(self, resp: urllib3.BaseHTTPResponse, cap: int, what: str) -> bytes:
        """The decoded body of ``resp``, refused past ``cap`` bytes or the answer deadline."""
        deadline = time.monotonic() + self.answer_deadline()
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := resp.read1(1 << 16):  # what has arrived: the deadline is checked
                total += len(chunk)
                if total > cap:
                    raise HubError("not-dicomweb", f"the hub at {self.where} sent an {what} "
                                                   f"larger than {cap >> 20} MB (decoded); refused")
                if time.monotonic() > deadline:
                    raise HubError("timeout", f"the hub at {self.where} took more than "
                                              f"{self.answer_deadline():.0f} s for one {what}")
                chunks.append(chunk)
        except HubError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc
        return b"".join(chunks)

    def parse_json(self, resp: urllib3.BaseHTTPResponse, data: bytes | None = None) -> Any:
        ctype = resp.headers.get("Content-Type", "")
        try:
            return json.loads(resp.data if data is None else data)
        except (ValueError, RecursionError):
            raise HubError(
                "not-dicomweb",
                f"the server at {self.where} answered, but not with DICOM JSON "
                f"({ctype or 'no content type'}): is {self.base} the DICOMweb base URL?",
            ) from None

    # -- plain words -----------------------------------------------------------------------
    def status_error(self, resp: urllib3.BaseHTTPResponse) -> HubError:
        status = resp.status
        if status == 401:
            return HubError("auth", f"the hub at {self.where} refused the credentials (401): "
                                    "check the user name and password or token", status=status)
        if status == 403:
            return HubError("auth", f"the hub at {self.where} does not allow this (403): the "
                                    "account lacks the permission", status=status)
        if status in (404, 405):
            return HubError("not-dicomweb", f"no DICOMweb service at {self.base} ({status}): "
                                            "check the base URL (often it ends in /dicom-web)",
                            status=status)
        if status >= 500:
            return HubError("server", f"the hub at {self.where} had an internal error "
                                      f"({status}); it may be overloaded or restarting",
                            status=status)
        return HubError("rejected", f"the hub at {self.where} rejected the request ({status} "
                                    f"{resp.reason or ''})".rstrip(), status=status)

    def translate(self, exc: BaseException) -> HubError:
        """A connection-level exception as a :class:`HubError`."""
        inner = _innermost(exc)
        text = str(inner)
        if isinstance(exc, SSLError) or isinstance(inner, ssl.SSLError):
            return HubError("tls", self._tls_words(text))
        if isinstance(exc, NameResolutionError) or isinstance(inner, NameResolutionError):
            return HubError("unreachable", f"the hub's host name in {self.base} is not known "
                                           "(DNS): check the URL and the network")
        if isinstance(exc, NewConnectionError):
            why = "connection refused" if "refused" in text.lower() else text.split(":")[-1].strip()
            return HubError("unreachable", f"cannot reach the hub at {self.where}: {why} "
                                           "(is it running? is the URL right?)")
        if isinstance(exc, ConnectTimeoutError):
            return HubError("unreachable", f"cannot reach the hub at {self.where}: no answer "
                                           f"within {self.profile.connect_timeout:.0f} s")
        if isinstance(inner, BadStatusLine) and not isinstance(inner, RemoteDisconnected):
            return HubError("not-dicomweb", f"the server at {self.where} does not answer in HTTP "
                                            f"({_short(text, 60)}): is the URL's port right?")
        if isinstance(exc, ReadTimeoutError | TimeoutError):
            return HubError("timeout", f"the hub at {self.where} stopped answering "
                                       f"(nothing for {self.profile.read_timeout:.0f} s)")
        if isinstance(exc, ProtocolError | ConnectionError | HTTPError | OSError | IncompleteRead):
            return HubError("unreachable", f"the connection to the hub at {self.where} was lost "
                                           f"({_short(text)})")
        return HubError("not-dicomweb", f"unexpected answer from {self.where}: {_short(text)}")

    def _tls_words(self, text: str) -> str:
        low = text.lower()
        if "certificate verify failed" in low or "not trusted" in low:
            detail = text.split("certificate verify failed:")[-1].strip(" )") or "untrusted"
            return (f"the hub's TLS certificate at {self.where} is not trusted ({_short(detail)}). "
                    "If the hub uses its own CA, add its certificate with --ca-file")
        if "wrong version number" in low or "record layer failure" in low or "packet length" in low:
            return (f"the server at {self.where} does not speak TLS on this port: "
                    "should the URL start with http:// ?")
        return f"TLS with the hub at {self.where} failed ({_short(text)})"


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine (``localhost``, 127.0.0.0/8, ``::1``)?"""
    if host.rstrip(".").lower() in ("localhost", "localhost.localdomain") or \
            host.rstrip(".").lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _innermost(exc: BaseException) -> BaseException:
    """The exception urllib3 wrapped (in ``reason`` or in ``args``), followed to the end."""
    for _ in range(5):
        nested = getattr(exc, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if nested is None:
            return exc
        exc = nested
    return exc


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
