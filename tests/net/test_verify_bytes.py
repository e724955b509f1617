"""``relay send --verify-bytes``: the hub's copy compared byte for byte, not only counted.

Orthanc (``OverwriteInstances`` off) already holds another object under one of the study's SOP
Instance UIDs, put there through its own REST API. A plain send ends "verified" (the search lists
every UID); with ``--verify-bytes`` the send fetches every instance back and fails that one,
saying why.
"""

from __future__ import annotations

import base64
import io
import json

import pydicom
import pytest
import urllib3

from app.dicom.synth import SeriesSpec, generate_series
from tests.net.conftest import HUB_PASSWORD, HUB_USER, add_hub, make_hub, relay

pytestmark = pytest.mark.orthanc


def _post_to_orthanc(hub, data: bytes) -> None:
    token = base64.b64encode(f"{HUB_USER}:{HUB_PASSWORD}".encode()).decode()
    resp = urllib3.request("POST", f"{hub.config.rest_url}/instances", body=data, timeout=30,
                           retries=False, headers={"Authorization": f"Basic {token}"})
    assert resp.status == 200, resp.data


def test_verify_bytes_finds_a_hub_copy_that_differs(relay_home, tmp_path) -> None:
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=3, rows=32, columns=32, seed=3))
    other = pydicom.dcmread(files[1])
    pixels = bytearray(other.PixelData)
    pixels[0] ^= 0xFF  # same UID, same length, other bytes
    other.PixelData = bytes(pixels)
    out = io.BytesIO()
    other.save_as(out)
    hub = make_hub(tmp_path).start(timeout=60)
    try:
        _post_to_orthanc(hub, out.getvalue())
        assert add_hub(relay_home, hub.url).returncode == 0
        imported = json.loads(relay(relay_home, "import", *map(str, files), "--json").stdout)
        study = imported["studies"][0]["study_instance_uid"]

        counted = relay(relay_home, "send", study, "--hub", "hub", "--json")
        assert json.loads(counted.stdout)["state"] == "verified"  # the count cannot tell

        checked = relay(relay_home, "send", study, "--hub", "hub", "--json", "--verify-bytes")
        assert checked.returncode == 1 and "Traceback" not in checked.stderr
        answer = json.loads(checked.stdout)
        assert answer["state"] == "failed"
        assert answer["missing"] == [str(other.SOPInstanceUID)]
        assert "the hub's copy has other bytes" in answer["message"]
    finally:
        hub.stop()


def test_verify_bytes_passes_when_the_hub_kept_every_byte(relay_home, tmp_path) -> None:
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=4, rows=32, columns=32, seed=4))
    hub = make_hub(tmp_path).start(timeout=60)
    try:
        assert add_hub(relay_home, hub.url).returncode == 0
        imported = json.loads(relay(relay_home, "import", *map(str, files), "--json").stdout)
        study = imported["studies"][0]["study_instance_uid"]
        sent = relay(relay_home, "send", study, "--hub", "hub", "--json", "--verify-bytes")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["verified"] == 4
    finally:
        hub.stop()
