"""The DICOMweb peer: QIDO-RS (paged), STOW-RS (streamed), WADO-RS (multipart, streamed).

:class:`DicomWebClient` is the :class:`~app.net.peer.Peer` of a profile of kind ``dicomweb``
(:func:`connect`).

Named after the services of DICOM PS3.18. Every answer is read fully: a STOW-RS answer lists
stored instances in ReferencedSOPSequence and refused ones in FailedSOPSequence, and Orthanc
answers 200 even when some failed, so both are always read, and an instance named in neither is
treated as not stored.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from app.errors import HubError, RelayError
from app.net.http import HubSession, LoginListener
from app.net.multipart import MultipartBody, PartSink, boundary_of, read_parts
from app.net.peer import (
    SOP_UID,
    STUDY_INSTANCES,
    STUDY_UID,
    Confirmation,
    DicomJson,
    StoreResult,
    value,
)
from app.settings import HubProfile, Settings

S = TypeVar("S", bound=PartSink)

log = logging.getLogger(__name__)

# Tags (DICOM JSON keys) of STOW-RS answers
REFERENCED_SOP_SEQ = "00081199"
FAILED_SOP_SEQ = "00081198"
REFERENCED_SOP_UID = "00081155"
FAILURE_REASON = "00081197"

#: Ask for the stored bytes as they are (no transcoding on the hub).
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
QIDO_PAGE = 500
R = TypeVar("R")


def connect(profile: HubProfile, secret: str | None, *, pool_size: int = 4,
            settings: Settings | None = None, on_login: LoginListener | None = None,
            home: Path | None = None) -> DicomWebClient:
    """The peer of a ``dicomweb`` profile (``secret``: its password or token, if any;
    ``settings`` are not needed; ``on_login``: told how the hub answered the credentials)."""
    del settings, home
    return DicomWebClient(HubSession(profile, secret, pool_size=pool_size, on_login=on_login))


class DicomWebClient:
    """QIDO, STOW and WADO against one hub: a :class:`~app.net.peer.Peer`."""

    def __init__(self, session: HubSession) -> None:
        self.session = session

    @property
    def where(self) -> str:
        return self.session.where

    def check(self) -> str:
        """One QIDO-RS round trip (``/studies?limit=1``)."""
        answer = self.session.json("/studies", {"limit": 1})
        if not isinstance(answer, list):
            raise HubError("not-dicomweb", f"the server at {self.where} answers, but its "
                                           "study search is not DICOM JSON")
        return "the hub answers DICOMweb searches"

    # -- QIDO-RS -------------------------------------------------------------------------
    def search(self, path: str, params: Mapping[str, Any] | None = None, *,
               page: int = QIDO_PAGE, limit: int | None = None,
               offset: int = 0) -> Iterator[DicomJson]:
        """Yield the datasets of a QIDO-RS search, page by page (limit/offset): at most
        ``limit`` of them (None: all), from ``offset``.

        Stops at a short page, or when a page brings nothing new (a server ignoring offset).
        """
        seen: set[str] = set()
        given = 0
        if limit is not None:
            page = max(1, min(page, limit))
        while True:
            answer = self.session.json(path, {**(params or {}), "limit": page, "offset": offset})
            if not isinstance(answer, list) or not all(isinstance(d, dict) for d in answer):
                raise HubError("not-dicomweb", f"the hub at {self.session.where} answered a "
                                               "search with something that is not DICOM JSON")
            fresh = 0
            for dataset in answer:
                key = repr(sorted((k, repr(v)) for k, v in dataset.items()))
                if key not in seen:
                    seen.add(key)
                    fresh += 1
                    given += 1
                    yield dataset
                    if limit is not None and given >= limit:
                        return
            if len(answer) < page or fresh == 0:
                return
            offset += len(answer)

    def studies(self, **match: Any) -> Iterator[DicomJson]:
        # the standard's default study attributes, plus the description and the birth date
        # (the technologist checks it); Orthanc 1.10 leaves them out of "all" and wants the
        # keyword, not the tag
        return self.search("/studies", {"includefield": "StudyDescription,PatientBirthDate",
                                        **match})

    def series(self, study_uid: str) -> Iterator[DicomJson]:
        return self.search(f"/studies/{study_uid}/series")

    def instances(self, study_uid: str, series_uid: str | None = None, *,
                  fields: Sequence[str] = (), match: Mapping[str, Any] | None = None,
                  limit: int | None = None, offset: int = 0) -> Iterator[DicomJson]:
        path = f"/studies/{study_uid}" + (f"/series/{series_uid}" if series_uid else "")
        params = dict(match or {})
        if fields:
            params["includefield"] = ",".join(fields)
        return self.search(path + "/instances", params, limit=limit, offset=offset)

    def metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """WADO-RS metadata of a series (one request)."""
        answer = self.session.json(f"/studies/{study_uid}/series/{series_uid}/metadata")
        if not isinstance(answer, list) or not all(isinstance(d, dict) for d in answer):
            raise HubError("not-dicomweb", f"the hub at {self.where} answered a metadata "
                                           "request with something that is not DICOM JSON")
        return answer

    def instance_uids(self, study_uid: str, series_uid: str | None = None) -> set[str]:
        """SOP Instance UIDs the hub holds for a study (or one of its series)."""
        return {u for d in self.instances(study_uid, series_uid) if (u := value(d, SOP_UID))}

    def study_instance_count(self, study_uid: str) -> int | None:
        """Instances of a study on the hub (NumberOfStudyRelatedInstances); None if absent."""
        answer = self.session.json("/studies", {"StudyInstanceUID": study_uid,
                                                "includefield": STUDY_INSTANCES})
        if not isinstance(answer, list):
            raise HubError("not-dicomweb", f"the hub at {self.session.where} answered a "
                                           "search with something that is not DICOM JSON")
        for dataset in answer:
            if isinstance(dataset, dict) and value(dataset, STUDY_UID) == study_uid:
                count = value(dataset, STUDY_INSTANCES, 0) or 0
                try:
                    return int(count)
                except (TypeError, ValueError):
                    raise HubError("not-dicomweb", f"the hub at {self.session.where} gave "
                                                   "a study's instance count that is not a "
                                                   "number") from None
        return None

    def present(self, study_uid: str, sop_uids: Sequence[str], *, chunk: int = 50) -> set[str]:
        """Which of ``sop_uids`` the hub holds: QIDO with UID list matching, ``chunk`` at a time.

        A server that ignores the filter and lists more is fine (the answer is intersected);
        callers confirm an absence with :meth:`instance_uids` before acting on it.
        """
        found: set[str] = set()
        for i in range(0, len(sop_uids), chunk):
            asked = set(sop_uids[i : i + chunk])
            params = {"SOPInstanceUID": ",".join(sop_uids[i : i + chunk])}
            for dataset in self.search(f"/studies/{study_uid}/instances", params):
                uid = value(dataset, SOP_UID)
                if uid in asked:
                    found.add(uid)
        return found

    def confirm(self, study_uid: str, sop_uids: Sequence[str]) -> Confirmation:
        """A QIDO-RS search for what STOW-RS confirmed (DICOMweb has no commitment)."""
        return Confirmation(frozenset(self.present(study_uid, sop_uids)), "search")

    def close(self) -> None:
        """Idle connections are kept by urllib3's pool and dropped with it: nothing to do."""

    # -- STOW-RS -------------------------------------------------------------------------
    def store(self, files: Sequence[tuple[Path, int]], study_uid: str | None = None
              ) -> StoreResult:
        """Send ``(path, size)`` files as one streamed STOW-RS request; return the hub's answer."""
        body = MultipartBody(files)
        path = f"/studies/{study_uid}" if study_uid else "/studies"
        resp = self.session.request(
            "POST", path, body=iter(body), ok=(200, 202, 400, 409),
            headers={"Content-Type": body.content_type, "Content-Length": str(len(body)),
                     "Accept": "application/dicom+json"},
        )
        answer = _stow_answer(self.session, resp)
        if not isinstance(answer, dict):
            raise HubError("not-dicomweb", f"the hub at {self.session.where} answered a STOW-RS "
                                           "request without a DICOM JSON result")
        stored = {u for item in _items(answer, REFERENCED_SOP_SEQ)
                  if (u := value(item, REFERENCED_SOP_UID))}
        failed: dict[str, str] = {}
        for item in _items(answer, FAILED_SOP_SEQ):
            uid = value(item, REFERENCED_SOP_UID)
            if uid:
                code = value(item, FAILURE_REASON)
                failed[uid] = _failure_words(code)
        return StoreResult(stored=frozenset(stored - set(failed)), failed=failed)

    # -- WADO-RS -------------------------------------------------------------------------
    def retrieve(self, study_uid: str, series_uid: str | None = None,
                 sop_uid: str | None = None, *, open_part: Callable[[dict[str, str]], S],
                 close_part: Callable[[S], R]) -> Iterator[R]:
        """Stream the instances of a WADO-RS resource (study, series or instance) part by part."""
        path = f"/studies/{study_uid}"
        if series_uid:
            path += f"/series/{series_uid}"
            if sop_uid:
                path += f"/instances/{sop_uid}"
        resp = self.session.request("GET", path, headers={"Accept": WADO_ACCEPT}, stream=True)
        complete = False
        try:
            boundary = boundary_of(resp.headers.get("Content-Type", ""))
            length = resp.headers.get("Content-Length", "")
            yield from read_parts(_direct(resp), boundary, open_part, close_part,
                                  body_length=int(length) if length.isascii() and
                                  length.isdigit() else None)
            complete = True
        except RelayError:  # the hub's fault, or the store's (a full disk)
            raise
        except Exception as exc:
            if isinstance(exc, OSError) and not _is_network(exc):
                raise
            raise self.session.translate(exc) from exc
        finally:
            if complete:
                resp.drain_conn()
                resp.release_conn()
            else:  # never hand a half-read connection back to the pool
                resp.close()


class _Direct:
    """The body of a response read without urllib3's layer: ``readinto`` straight from the
    connection (http.client still handles Content-Length and chunked framing)."""

    direct = True

    def __init__(self, fp: Any) -> None:
        self.fp = fp

    def read(self, amt: int) -> bytes:
        return bytes(self.fp.read(amt))

    def readinto(self, buf: memoryview) -> int:
        return int(self.fp.readinto(buf))


def _direct(resp: Any) -> Any:
    """``resp`` itself, or its raw body stream when nothing needs decoding."""
    fp = getattr(resp, "_fp", None)
    coding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if coding in ("", "identity") and isinstance(fp, http.client.HTTPResponse):
        return _Direct(fp)
    return resp


def _is_network(exc: BaseException) -> bool:
    return exc.__class__.__module__.startswith(("urllib3", "http", "socket", "ssl")) or isinstance(
        exc, ConnectionError | TimeoutError)


def _items(answer: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    element = answer.get(tag)
    if not isinstance(element, dict):
        return []
    values = element.get("Value")
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _stow_answer(session: HubSession, resp: Any) -> Any:
    """The DICOM JSON of a STOW-RS answer. A 400 that names what was stored and what failed
    (Orthanc answers so when any instance of the request failed, the others being stored) is
    an answer like 409's; a 400 without one is the request's own rejection."""
    if resp.status != 400:
        return session.parse_json(resp) if resp.data else None
    try:
        answer = session.parse_json(resp) if resp.data else None
    except HubError:
        answer = None
    if not isinstance(answer, dict) or not _items(answer, FAILED_SOP_SEQ):
        raise session.status_error(resp)
    return answer


_FAILURES = {
    0x0110: "processing failure",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "referenced transfer syntax not supported",
}


def _failure_words(code: Any) -> str:
    if isinstance(code, int):
        return f"{_FAILURES.get(code, 'refused')} (0x{code:04X})"
    return "refused (no reason given)"
