"""Hub answers built to hurt: gzip bombs, endless nesting, a trickle, values of the wrong type.

Each comes from a real loopback server and ends in a plain :class:`HubError`, with bounded
memory and time; nothing else escapes.
"""

from __future__ import annotations

import gzip
import time

import pytest

from app.errors import HubError
from app.net import http
from app.net.dicomweb import DicomWebClient
from app.net.http import HubSession
from app.net.metadata import headers_of
from app.settings import HubProfile
from tests.proxies import CannedServer


def _head(length: int, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/dicom+json",
             f"Content-Length: {length}", "Connection: close", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _session(server: CannedServer, read_timeout: float = 5.0) -> HubSession:
    return HubSession(HubProfile(name="hostile", url=server.url, read_timeout=read_timeout))


@pytest.fixture
def serve():
    servers: list[CannedServer] = []

    def start(head: bytes, body: bytes, **kw) -> CannedServer:
        servers.append(CannedServer(head, body, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_gzip_bombed_json_is_capped_after_decoding(serve, monkeypatch) -> None:
    monkeypatch.setattr(http, "MAX_JSON_BYTES", 8 << 20)
    body = gzip.compress(b"[" + b" " * (64 << 20) + b"]", 9)  # 64 MB from ~64 kB
    server = serve(_head(len(body), "Content-Encoding: gzip"), body)
    with pytest.raises(HubError, match="larger than 8 MB") as caught:
        _session(server).json("/studies")
    assert caught.value.kind == "not-dicomweb"


def test_deeply_nested_json_is_a_plain_error(serve) -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    server = serve(_head(len(body)), body)
    with pytest.raises(HubError, match="not with DICOM JSON"):
        _session(server).json("/studies")


def test_a_trickling_hub_is_given_up_at_the_answer_deadline(serve) -> None:
    body = b"[" + b" " * 98 + b"]"
    server = serve(_head(len(body)), body, chunk=1, pause=0.1)  # 10 s for 100 bytes
    started = time.monotonic()
    with pytest.raises(HubError, match="took more than") as caught:
        _session(server, read_timeout=0.5).json("/studies")  # each byte within the timeout
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 6


def test_values_of_the_wrong_type_are_plain_errors(serve) -> None:
    study = {"0020000D": {"vr": "UI", "Value": ["1.2.3"]},
             "00201208": {"vr": "IS", "Value": ["abc"]}}
    import json

    body = json.dumps([study]).encode()
    server = serve(_head(len(body)), body)
    client = DicomWebClient(_session(server))
    with pytest.raises(HubError, match="not a number"):
        client.study_instance_count("1.2.3")


def test_metadata_of_the_wrong_type_skips_the_instance() -> None:
    good = {"00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
            "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "0020000E": {"vr": "UI", "Value": ["1.2.3.1"]}}
    bad = {**good, "00080018": {"vr": "UI", "Value": ["1.2.3.5"]},
           "00280010": {"vr": "US", "Value": ["abc"]}, "00280011": {"vr": "US", "Value": [[[]]]},
           "00280100": {"vr": "US", "Value": [16]}, "7FE00010": {"vr": "OW"}}
    headers = headers_of([good, bad])
    assert [h.instance.sop_instance_uid for h in headers] == ["1.2.3.4"]
