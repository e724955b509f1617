"""The dev hub with bearer-token authentication: Relay's bearer path against a real server.

``relay dev-hub --token-stdin`` runs Orthanc whose every request must carry the token (a Lua
filter: Orthanc has no bearer tokens of its own); a profile with the token sends and fetches, a
wrong or missing token is refused in plain words. The hub's config and filter, which hold the
secrets, are private from their first byte.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess

import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.net.devhub import free_port
from tests.conftest import relay_cmd, relay_env
from tests.net.conftest import relay

pytestmark = pytest.mark.orthanc

TOKEN = "dev-token-7f3a\"]] ..\\ end"  # quotes and brackets: the Lua filter must hold them


def _add(home, name: str, url: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(relay_cmd("--home", str(home), "hub", "add", name, "--url", url,
                                    "--token-stdin"),
                          input=token + "\n", capture_output=True, text=True, timeout=60,
                          env=relay_env())


def test_dev_hub_with_a_bearer_token(relay_home, tmp_path) -> None:
    port = free_port()
    storage = tmp_path / "devhub"
    proc = subprocess.Popen(
        relay_cmd("--home", str(relay_home), "dev-hub", "--port", str(port), "--dir",
                  str(storage), "--token-stdin"),
        env=relay_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(TOKEN + "\n")
        proc.stdin.close()
        first = proc.stdout.readline()
        assert "local hub running at" in first, proc.stderr.read() if proc.stderr else ""
        assert "--token-stdin" in proc.stdout.readline()
        for secret_file in ("orthanc.json", "bearer.lua"):
            assert stat.S_IMODE((storage / secret_file).stat().st_mode) == 0o600
        url = f"http://127.0.0.1:{port}/dicom-web"
        assert _add(relay_home, "local", url, TOKEN).returncode == 0
        assert _add(relay_home, "wrong", url, TOKEN + "x").returncode == 0
        assert relay(relay_home, "hub", "add", "none", "--url", url).returncode == 0

        test = relay(relay_home, "hub", "test", "local")
        assert test.returncode == 0 and "OK" in test.stdout, test.stdout + test.stderr
        for name in ("wrong", "none"):
            refused = relay(relay_home, "hub", "test", name)
            assert refused.returncode == 1
            assert "does not allow this (403)" in refused.stdout + refused.stderr

        files = generate_series(tmp_path / "ct", SeriesSpec(slices=6, rows=32, columns=32))
        imported = relay(relay_home, "import", *map(str, files), "--json")
        assert imported.returncode == 0, imported.stderr
        study = json.loads(imported.stdout)["studies"][0]["study_instance_uid"]
        sent = relay(relay_home, "send", study, "--hub", "local", "--json")
        assert sent.returncode == 0 and json.loads(sent.stdout)["verified"] == 6, sent.stderr
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        assert _add(other, "local", url, TOKEN).returncode == 0
        fetched = relay(other, "fetch", "--hub", "local", study, "--json")
        assert fetched.returncode == 0 and json.loads(fetched.stdout)["verified"] == 6
        assert _add(other, "wrong", url, "nope").returncode == 0
        refused = relay(other, "fetch", "--hub", "wrong", study, "--json")
        assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
