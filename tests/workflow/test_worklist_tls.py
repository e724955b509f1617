"""Worklist and patient queries over DICOM TLS, through a PACS profile's TLS settings: dcmtk's
wlmscpfs and Orthanc's DICOM port (neither speaks TLS as packaged here) behind a real TLS front
(tests.proxies.TlsProxy, Python's ssl), the certificate verified against the profile's CA."""

from __future__ import annotations

import json
import shutil

import pytest

from app.settings import load_settings, save_settings
from tests.conftest import run_relay
from tests.proxies import TlsProxy, self_signed
from tests.workflow.conftest import OUTSIDE, outside_cd
from tests.workflow.peers import (
    Order,
    orthanc_upload,
    orthanc_worklist,
    wlmscpfs,
    worklist_plugin_available,
)

ORDERS = [Order("MULLER^ANNA^M", "MRN0042", "LOCAL", "19480313", "F", "ACC1001"),
          Order("DOE^JOHN", "MRN0043", "LOCAL", "19700101", "M", "ACC1002")]


def _pacs_add(home, name, port, ae, *extra):
    return run_relay("--home", str(home), "pacs", "add", name, "--host", "127.0.0.1",
                     "--port", str(port), "--ae", ae, *extra, check=False, timeout=60)


def _worklist(home, *args):
    return run_relay("--home", str(home), "worklist", *args, check=False, timeout=120)


@pytest.mark.dcmtk
@pytest.mark.skipif(shutil.which("wlmscpfs") is None, reason="needs dcmtk")
def test_a_worklist_query_uses_the_pacs_profiles_tls(tmp_path, home):
    ca, cert_and_key = self_signed(tmp_path)
    with wlmscpfs(tmp_path, ORDERS) as (port, ae):
        proxy = TlsProxy(cert_and_key, port)
        try:
            assert _pacs_add(home, "ris", proxy.port, ae, "--tls", "--ca-file",
                             str(ca)).returncode == 0
            run = _worklist(home, "--pacs", "ris", "--name", "MULLER*", "--json")
            assert run.returncode == 0, run.stderr
            out = json.loads(run.stdout)
            assert out["peer"].endswith("(TLS)")
            assert [e["patient_id"] for e in out["entries"]] == ["MRN0042"]
            # the worklist settings may name the profile: no --pacs needed
            settings = load_settings(home)
            settings.worklist.pacs = "ris"
            save_settings(home, settings)
            run = _worklist(home, "--accession", "ACC1002", "--json")
            assert run.returncode == 0, run.stderr
            assert [e["patient_id"] for e in json.loads(run.stdout)["entries"]] == ["MRN0043"]
            # the certificate is verified: without the CA it is refused, and plain DICOM
            # to the TLS port gets nothing
            assert _pacs_add(home, "ris", proxy.port, ae, "--tls").returncode == 0
            refused = _worklist(home, "--name", "MULLER*", "--json")
            assert refused.returncode != 0 and "certificate" in refused.stderr.lower()
            assert _pacs_add(home, "ris", proxy.port, ae).returncode == 0
            assert _worklist(home, "--name", "MULLER*", "--json").returncode != 0
        finally:
            proxy.close()


@pytest.mark.orthanc
@pytest.mark.skipif(not worklist_plugin_available(), reason="needs the ModalityWorklists plugin")
def test_a_patient_level_query_uses_the_pacs_profiles_tls(tmp_path, home, ge_files):
    ca, cert_and_key = self_signed(tmp_path)
    with orthanc_worklist(tmp_path, []) as (hub, port):
        orthanc_upload(hub, outside_cd(tmp_path / "pacs", ge_files, 2))
        proxy = TlsProxy(cert_and_key, port)
        try:
            assert _pacs_add(home, "pacs", proxy.port, "ORTHANC", "--tls", "--ca-file",
                             str(ca)).returncode == 0
            run = _worklist(home, "--level", "patient", "--pacs", "pacs", "--name", "MUELLER*",
                            "--json")
        finally:
            proxy.close()
    assert run.returncode == 0, run.stderr
    entries = json.loads(run.stdout)["entries"]
    assert [e["patient_id"] for e in entries] == [OUTSIDE["PatientID"]]
