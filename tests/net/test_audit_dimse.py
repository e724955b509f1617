"""The DIMSE exchanges in the audit trail: every association Relay asks a PACS for (110114,
with its outcome), every search (110112: level and kinds of keys, never their values), and what
Relay's node answers (C-FIND), serves (C-GET, C-MOVE) and rejects. Against a real Orthanc PACS
and dcmtk's findscu, getscu, movescu and echoscu calling ``relay listen``; read back through
``relay audit --json`` with ``--verify``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from app.imports.importer import import_paths
from app.net.devhub import free_port
from app.store.local import Store
from app.workflow import audit
from tests.net import dimse_peers
from tests.net.conftest import relay
from tests.net.dimse_node import dcmtk, needs_dcmtk, start_listen, stop_listen
from tests.net.dimse_peers import Pacs, relay_home_for

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

GE = "ct-head/ge-hispeed-human-gantry-tilt"


def audit_json(home: Path) -> list[dict]:
    """``relay audit --verify --json``: the events, the chain checked sound."""
    out = relay(home, "audit", "--verify", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["verified"]["ok"], got["verified"]
    return got["events"]


def patient_of(data: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(sorted((data / GE).glob("*.dcm"))[0], stop_before_pixels=True)
    return str(ds.PatientName), str(ds.PatientID)


def no_patient_in(home: Path, data: Path) -> None:
    name, pid = patient_of(data)
    text = audit.audit_path(home).read_text(encoding="utf-8")
    for value in {name, pid, name.split("^")[0]} - {""}:
        assert value not in text, f"{value!r} is in the audit trail"


@pytest.mark.orthanc
def test_every_pacs_association_and_search_is_audited_without_patient_keys(
        tmp_path: Path, pacs: Pacs, data: Path):
    home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
    report = import_paths(Store(home), [str(data / GE)])
    study = report.study_uids[0]
    name, _ = patient_of(data)
    assert relay(home, "pacs", "test", "pacs", "--json").returncode == 0
    assert relay(home, "send", study, "--pacs", "pacs", "--json").returncode == 0
    found = relay(home, "query", "--pacs", "pacs", "--name", name[:3] + "*", "--json")
    assert found.returncode == 0, found.stderr
    assert [s["study_instance_uid"] for s in json.loads(found.stdout)["studies"]] == [study]
    series = relay(home, "query", "--pacs", "pacs", "--study", study, "--series", "--json")
    assert series.returncode == 0, series.stderr
    # into a second home (the first holds the study already): one C-GET association
    other = relay_home_for(tmp_path / "other", free_port(), pacs_port=pacs.dicom_port)
    got = relay(other, "retrieve", study, "--pacs", "pacs", "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["stored"] == 28
    fetched = [e for e in audit_json(other) if e["event"] in ("login", "retrieve")]
    assert [e["detail"].get("service") for e in fetched if e["event"] == "login"
            ].count("C-GET") == 1
    (retrieved,) = [e for e in fetched if e["event"] == "retrieve"]
    assert retrieved["study_uid"] == study and retrieved["detail"]["instances"] == 28
    no_patient_in(other, data)
    # a PACS that does not answer to that AE title, and one that is not there
    for bad, port, ae in (("wrong", pacs.dicom_port, "NOTORTHANC"), ("gone", free_port(), "X")):
        assert relay(home, "pacs", "add", bad, "--host", "127.0.0.1", "--port", str(port),
                     "--ae", ae).returncode == 0
        assert relay(home, "pacs", "test", bad, "--json").returncode == 1

    events = audit_json(home)
    logins = [e for e in events if e["event"] == "login"]
    assert all(e["event_id"]["code"] == "110114" for e in logins)
    ok = [e for e in logins if e["peer"].startswith("pacs@ORTHANC@127.0.0.1:")]
    assert all(e["outcome"] == audit.SUCCESS and e["detail"]["calling_ae"] == "RELAY"
               for e in ok)
    services = [e["detail"]["service"] for e in ok]
    # relay pacs test: the C-ECHO (the login attempt) and its probe query, each audited
    assert services[:2] == ["C-ECHO", "C-FIND"]
    # one per association, never per instance: 28 instances went over a few associations
    assert 1 <= services.count("C-STORE") <= 4, services
    (wrong,) = [e for e in logins if e["peer"].startswith("wrong@")]
    assert wrong["outcome"] == audit.SERIOUS_FAILURE  # rejected: Relay is not let in
    assert wrong["detail"]["reason"] == "called-ae"
    (gone,) = [e for e in logins if e["peer"].startswith("gone@")]
    assert gone["outcome"] == audit.MINOR_FAILURE and gone["detail"]["reason"] == "unreachable"

    queries = [e for e in events if e["event"] == "query"]
    assert [(q["detail"]["level"], q["detail"]["keys"], q["detail"]["answers"])
            for q in queries] == [("study", ["PatientName"], 1),
                                  ("series", ["StudyInstanceUID"], 1)]
    assert queries[1]["study_uid"] == study and queries[0]["study_uid"] == ""
    assert all(q["event_id"]["code"] == "110112" and q["outcome"] == 0 for q in queries)
    kinds = [e["event"] for e in events if e["study_uid"] == study]
    assert {"import", "send", "verify"} <= set(kinds)
    no_patient_in(home, data)


@needs_dcmtk
def test_the_node_audits_the_searches_retrievals_and_rejections_it_answers(
        tmp_path: Path, filled_home: Path, data: Path):
    home = filled_home
    name, _ = patient_of(data)
    ge = pydicom.dcmread(sorted((data / GE).glob("*.dcm"))[0], stop_before_pixels=True)
    viewer_port = free_port()
    moved = tmp_path / "moved"
    moved.mkdir()
    storescp = subprocess.Popen(["storescp", "-aet", "VIEWER", "-od", str(moved),
                                 str(viewer_port)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    port = free_port()
    assert relay(home, "node", "--allow", "FINDSCU", "GETSCU", "MOVESCU", "ECHOSCU",
                 "--destination", f"VIEWER=127.0.0.1:{viewer_port}").returncode == 0
    proc = start_listen(home, port)
    try:
        deadline = time.monotonic() + 20
        while dcmtk("echoscu", "-aec", "VIEWER", "127.0.0.1", str(viewer_port)).returncode:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.2)
        node = ["-aec", "RELAY", "127.0.0.1", str(port)]
        find = dcmtk("findscu", "-S", "-aet", "FINDSCU", *node, "-k", "QueryRetrieveLevel=STUDY",
                     "-k", f"PatientName={name[:3]}*", "-k", "StudyInstanceUID")
        assert find.returncode == 0, find.stderr
        out = tmp_path / "got"
        out.mkdir()
        get = dcmtk("getscu", "-S", "-aet", "GETSCU", *node, "-od", str(out),
                    "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"StudyInstanceUID={ge.StudyInstanceUID}")
        assert get.returncode == 0, get.stderr
        move = dcmtk("movescu", "-S", "-aet", "MOVESCU", *node, "-aem", "VIEWER",
                     "-k", "QueryRetrieveLevel=SERIES",
                     "-k", f"StudyInstanceUID={ge.StudyInstanceUID}",
                     "-k", f"SeriesInstanceUID={ge.SeriesInstanceUID}")
        assert move.returncode == 0, move.stderr
        nowhere = dcmtk("movescu", "-S", "-aet", "MOVESCU", *node, "-aem", "NOWHERE",
                        "-k", "QueryRetrieveLevel=STUDY",
                        "-k", f"StudyInstanceUID={ge.StudyInstanceUID}")
        assert "NOWHERE" not in {p.name for p in moved.iterdir()}, nowhere.stderr
        refused = dcmtk("echoscu", "-aet", "INTRUDER", *node)
        assert refused.returncode != 0
    finally:
        stop_listen(proc)
        storescp.terminate()
        storescp.wait(timeout=10)
    assert len(list(out.iterdir())) == 28 and len(list(moved.iterdir())) == 28

    events = audit_json(home)
    (answer,) = [e for e in events if e["event"] == "answer"]
    assert answer["event_id"]["code"] == "110112" and answer["outcome"] == audit.SUCCESS
    assert answer["peer"].startswith("FINDSCU@127.0.0.1:")
    assert answer["detail"]["level"] == "study" and answer["detail"]["answers"] == 1
    assert answer["detail"]["keys"] == ["PatientName"]  # the kind of key, not the name
    serves = [e for e in events if e["event"] == "serve"]
    (unknown,) = [e for e in serves if e["outcome"] != audit.SUCCESS]
    assert unknown["outcome"] == audit.SERIOUS_FAILURE and unknown["peer"] == "NOWHERE"
    assert unknown["detail"]["instances"] == 0 and "destination" in unknown["detail"]["reason"]
    served = {e["detail"]["operation"]: e for e in serves if e is not unknown}
    assert set(served) == {"C-GET", "C-MOVE"}  # one event each, not one per instance
    for op, e in served.items():
        assert e["event_id"]["code"] == "110104" and e["action"] == "R", op
        assert e["study_uid"] == ge.StudyInstanceUID and e["outcome"] == audit.SUCCESS, op
        assert e["detail"]["instances"] == 28 and e["detail"]["failed"] == 0, op
    assert served["C-GET"]["peer"].startswith("GETSCU@127.0.0.1:")
    assert served["C-MOVE"]["peer"] == f"VIEWER@127.0.0.1:{viewer_port}"
    assert served["C-MOVE"]["detail"]["requested_by"].startswith("MOVESCU@127.0.0.1:")
    logins = [e for e in events if e["event"] == "login"]
    accepted = sorted(e["detail"]["calling_ae"] for e in logins if e["outcome"] == audit.SUCCESS)
    assert accepted == ["FINDSCU", "GETSCU", "MOVESCU", "MOVESCU"]  # each association let in
    assert all(e["detail"]["direction"] == "incoming" and e["detail"]["called_ae"] == "RELAY"
               for e in logins)
    (rejected,) = [e for e in logins if e["outcome"] != audit.SUCCESS]
    assert rejected["outcome"] == audit.SERIOUS_FAILURE
    assert rejected["peer"].startswith("INTRUDER@127.0.0.1:")
    assert rejected["detail"]["calling_ae"] == "INTRUDER"
    assert rejected["detail"]["reason"] == "calling AE title not allowed"
    no_patient_in(home, data)
