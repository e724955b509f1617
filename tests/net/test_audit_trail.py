"""Every exchange leaves its audit event (PS3.15 A.5 code, outcome, peer, study, counts):
against a real Orthanc hub and dcmtk's storescu sending to Relay's node."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.workflow import audit
from tests.net.conftest import HUB_PASSWORD, add_hub, import_study, relay
from tests.net.dimse_node import dcmtk, needs_dcmtk, peer, running_node

GE = "ct-head/ge-hispeed-human-gantry-tilt"


def events(home: Path, study_uid: str = "") -> list[dict]:
    assert audit.verify(home).ok
    return list(audit.select(home, study_uid=study_uid))


def by_event(entries: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in entries:
        out.setdefault(e["event"], []).append(e)
    return out


@pytest.mark.orthanc
def test_import_send_verify_login_and_fetch_are_audited(tmp_path, hub, relay_home, ct_files):
    store, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url).returncode == 0
    assert relay(relay_home, "send", study, "--hub", "hub", "--json").returncode == 0
    got = by_event(events(relay_home, study))
    (imp,) = got["import"]
    assert imp["event_id"]["code"] == "110107" and imp["action"] == "C"
    assert imp["detail"]["instances"] == len(ct_files)
    assert imp["detail"]["first"] <= imp["detail"]["last"]
    (send,) = got["send"]
    assert send["event_id"]["code"] == "110104" and send["action"] == "R"
    assert send["outcome"] == audit.SUCCESS and send["detail"]["instances"] == len(ct_files)
    assert send["peer"].startswith("hub@127.0.0.1:") and send["detail"]["bytes"] > 0
    (verify,) = got["verify"]
    assert verify["event_id"]["code"] == "110112"
    assert verify["detail"] == {"instances": len(ct_files), "missing": 0,
                                "job": send["detail"]["job"]}
    assert imp["time"] <= send["detail"]["first"] <= send["detail"]["last"] <= verify["time"]
    logins = [e for e in events(relay_home) if e["event"] == "login"]
    assert logins and all(e["outcome"] == audit.SUCCESS for e in logins)
    assert logins[0]["event_id"]["code"] == "110114" and logins[0]["detail"]["auth"] == "basic"

    other = tmp_path / "other"
    other.mkdir()
    assert add_hub(other, hub.url).returncode == 0
    assert relay(other, "fetch", study, "--hub", "hub", "--json").returncode == 0
    (fetched,) = by_event(events(other, study))["retrieve"]
    assert fetched["event_id"]["code"] == "110104" and fetched["action"] == "C"
    assert fetched["outcome"] == audit.SUCCESS
    assert fetched["detail"]["instances"] == len(ct_files)


@pytest.mark.orthanc
def test_a_refused_password_is_a_failed_login(hub, relay_home):
    assert add_hub(relay_home, hub.url, password="wrong" + HUB_PASSWORD
                   ).returncode == 0
    assert relay(relay_home, "hub", "test", "hub").returncode != 0
    logins = [e for e in events(relay_home) if e["event"] == "login"]
    assert len(logins) == 1
    assert logins[0]["outcome"] == audit.SERIOUS_FAILURE
    assert logins[0]["detail"]["reason"] == "refused (401)"
    assert HUB_PASSWORD not in audit.audit_path(relay_home).read_text()


@needs_dcmtk
def test_a_study_received_by_the_node_is_audited_with_its_caller(home, data, caplog):
    files = sorted((data / GE).glob("*.dcm"))[:6]
    caplog.set_level(logging.INFO)
    with running_node(home) as listener:
        assert dcmtk("storescu", "-aet", "CT_SCANNER", *peer(listener),
                     *map(str, files)).returncode == 0
        listener.stop(grace=5.0)
    (received,) = [e for e in events(home) if e["event"] == "receive"]
    assert received["event_id"]["code"] == "110104" and received["action"] == "C"
    assert received["peer"].startswith("CT_SCANNER@127.0.0.1:")
    assert received["detail"]["instances"] == len(files)
    assert received["detail"]["first"] <= received["detail"]["last"] <= received["time"]
    import pydicom

    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert received["study_uid"] == ds.StudyInstanceUID
    # the audit's log lines name the study by UID, never the patient
    text = caplog.text
    for value in (str(ds.PatientName), str(ds.PatientID)):
        if value.strip():
            assert value not in text


@needs_dcmtk
def test_a_caller_not_allowed_is_a_failed_login(home, data):
    files = sorted((data / GE).glob("*.dcm"))[:1]
    with running_node(home, allowed_callers=["CT1"]) as listener:
        assert dcmtk("storescu", "-aet", "INTRUDER", *peer(listener),
                     *map(str, files)).returncode != 0
    (login,) = [e for e in events(home) if e["event"] == "login"]  # the only one: refused
    assert login["outcome"] == audit.SERIOUS_FAILURE and login["peer"].startswith("INTRUDER@")
