"""The audit record sent on to an audit repository as DICOM audit messages over syslog,
received by a loopback receiver the test starts (UDP and TLS)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.settings import AuditSettings, load_settings, save_settings
from app.workflow import audit, audit_syslog
from tests.proxies import self_signed
from tests.workflow.syslog_receiver import SyslogReceiver

#: RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
HEADER = re.compile(rb"^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) - \xef\xbb\xbf")


def configure(home: Path, receiver: SyslogReceiver, **extra: str) -> None:
    settings = load_settings(home)
    settings.audit = AuditSettings(syslog_host="127.0.0.1", syslog_port=receiver.port,
                                   syslog_transport=receiver.transport, **extra)
    save_settings(home, settings)


def parse(message: bytes) -> tuple[re.Match[bytes], ET.Element]:
    head = HEADER.match(message)
    assert head, message[:120]
    return head, ET.fromstring(message[head.end():].decode())


def _until_sent(home: Path, timeout: float = 10.0) -> None:
    """Wait until the background sender counts every event sent. It does so once the
    repository has answered its TLS close, so a test keeps the repository up until then: closed
    at once, the close is reset and the events are rightly kept to be sent again."""
    deadline = time.monotonic() + timeout
    while audit_syslog.pending(home) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_events_reach_a_udp_receiver_as_dicom_audit_messages(home):
    receiver = SyslogReceiver("udp")
    try:
        configure(home, receiver)
        audit.record(home, "send", study_uid="1.2.3.4", peer="hub@10.0.0.7:8042",
                     detail={"instances": 12})
        audit.record(home, "login", outcome=audit.SERIOUS_FAILURE, peer="hub@10.0.0.7:8042")
        messages = receiver.wait_for(2)
    finally:
        receiver.close()
    assert len(messages) == 2
    head, msg = parse(messages[0])
    assert int(head[1]) == 10 * 8 + 5 and head[4] == b"Relay" and head[6] == b"DICOM+RFC3881"
    ident = msg.find("EventIdentification")
    assert ident is not None and ident.get("EventActionCode") == "R"
    assert ident.get("EventOutcomeIndicator") == "0"
    event_id = ident.find("EventID")
    assert event_id is not None and event_id.get("csd-code") == "110104"
    assert event_id.get("codeSystemName") == "DCM"
    roles = [p.find("RoleIDCode").get("csd-code")  # type: ignore[union-attr]
             for p in msg.findall("ActiveParticipant")]
    assert roles == ["110153", "110152"]  # Relay the source, the hub the destination
    study = msg.find("ParticipantObjectIdentification")
    assert study is not None and study.get("ParticipantObjectID") == "1.2.3.4"
    assert study.find("ParticipantObjectIDTypeCode").get("csd-code") == "110180"  # type: ignore[union-attr]
    assert msg.find("AuditSourceIdentification") is not None
    _, login = parse(messages[1])
    ident = login.find("EventIdentification")
    assert ident is not None and ident.get("EventOutcomeIndicator") == "8"
    assert ident.find("EventID").get("csd-code") == "110114"  # type: ignore[union-attr]
    assert ident.find("EventTypeCode").get("csd-code") == "110122"  # type: ignore[union-attr]
    # the sender saves its offset after each datagram leaves, so the receiver can hold both
    # before the second is marked sent: wait for the sender, then nothing is pending
    audit_syslog.flush()
    assert audit_syslog.pending(home) == 0


def test_tls_receiver_gets_every_event_once_and_the_missed_ones_when_it_is_back(tmp_path, home):
    ca, both = self_signed(tmp_path)
    receiver = SyslogReceiver("tls", both)
    port = receiver.port
    try:
        configure(home, receiver, ca_file=str(ca))
        for n in range(3):
            audit.record(home, "import", study_uid=f"1.2.3.{n}", detail={"instances": n})
        got = receiver.wait_for(3)
        _until_sent(home)
    finally:
        receiver.close()
    assert [parse(m)[1].find("ParticipantObjectIdentification").get(  # type: ignore[union-attr]
        "ParticipantObjectID") for m in got] == ["1.2.3.0", "1.2.3.1", "1.2.3.2"]
    # the repository is down: the event stays pending, the record is written all the same
    audit.record(home, "export", study_uid="1.2.3.9")
    audit_syslog.flush()
    with pytest.raises(audit_syslog.SyslogError, match="unreachable"):
        audit_syslog.ship(home)
    assert audit_syslog.pending(home) == 1 and audit.verify(home).lines == 4
    back = SyslogReceiver("tls", both)
    try:
        configure(home, back, ca_file=str(ca))
        assert back.port != port
        run = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "audit", "--send",
                              "--json"], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["sent"] == 1
        late = back.wait_for(1)
    finally:
        back.close()
    assert len(late) == 1 and b"1.2.3.9" in late[0]
    assert audit_syslog.pending(home) == 0


def test_a_busy_repository_still_gets_the_last_events_sent_before_the_close(tmp_path, home):
    # a repository that reads late through a small window: the last frames are still in
    # Relay's own kernel when it is done sending. A plain close there (the server's session
    # tickets unread) resets the connection and drops them, yet they count as sent: before
    # the graceful close this got 8 of 40 (and, by chance on a busy machine, 2 of 3)
    ca, both = self_signed(tmp_path)
    receiver = SyslogReceiver("tls", both, read_delay=0.5, receive_buffer=4096)
    try:
        configure(home, receiver, ca_file=str(ca))
        for n in range(40):
            audit.record(home, "import", study_uid=f"1.2.3.{n}", detail={"instances": n})
        audit_syslog.flush()
        got = receiver.wait_for(40, timeout=10)
    finally:
        receiver.close()
    assert [parse(m)[1].find("ParticipantObjectIdentification").get(  # type: ignore[union-attr]
        "ParticipantObjectID") for m in got] == [f"1.2.3.{n}" for n in range(40)]
    assert audit_syslog.pending(home) == 0


def test_a_retry_goes_where_the_settings_say_now_and_ends_when_they_name_none(
        tmp_path, home, monkeypatch):
    # the repository is down; IT gives its new address: the retry takes the missed event there
    # (it used to retry the old address for as long as the program ran, and a repository
    # removed from the settings was retried all the same)
    monkeypatch.setattr(audit_syslog._Forwarder, "RETRY_SECONDS", (0.3,))
    ca, both = self_signed(tmp_path)
    gone = SyslogReceiver("tls", both)
    gone.close()
    configure(home, gone, ca_file=str(ca))
    audit.record(home, "import", study_uid="1.2.3.7")
    audit_syslog.flush()
    assert audit_syslog.pending(home) == 1
    moved = SyslogReceiver("tls", both)
    try:
        configure(home, moved, ca_file=str(ca))  # no new event: only the retry
        got = moved.wait_for(1, timeout=10)
        _until_sent(home)
    finally:
        moved.close()
    assert len(got) == 1 and b"1.2.3.7" in got[0]
    assert audit_syslog.pending(home) == 0
    # the repository is then down again, and removed from the settings: the sender ends
    audit.record(home, "import", study_uid="1.2.3.8")
    audit_syslog.flush()
    settings = load_settings(home)
    settings.audit = AuditSettings()
    save_settings(home, settings)
    deadline = time.monotonic() + 10
    while Path(home).resolve() in audit_syslog._FORWARDERS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(home).resolve() not in audit_syslog._FORWARDERS
    assert audit_syslog.pending(home) == 1  # kept for a repository named later


def test_an_untrusted_repository_certificate_is_refused(tmp_path, home):
    _, both = self_signed(tmp_path)
    receiver = SyslogReceiver("tls", both)
    try:
        configure(home, receiver)  # no ca_file: the self-signed certificate is not trusted
        audit.record(home, "import", study_uid="1.2.3")
        audit_syslog.flush()
        with pytest.raises(audit_syslog.SyslogError, match="TLS"):
            audit_syslog.ship(home, audit_syslog.target_of(home))
    finally:
        receiver.close()
    assert receiver.messages == [] and audit_syslog.pending(home) == 1


def test_relay_audit_filters_by_study_and_time(home):
    audit.record(home, "import", study_uid="1.2.3")
    audit.record(home, "send", study_uid="1.2.4")
    path = audit.audit_path(home)
    first = json.loads(path.read_text().splitlines()[0])
    cut = first["time"]
    audit.record(home, "view", study_uid="1.2.3")

    def events(*args: str) -> list[dict]:
        run = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "audit",
                              *args, "--json"], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["events"]

    assert [e["event"] for e in events("--study", "1.2.3")] == ["import", "view"]
    later = [e for e in events("--since", cut) if e["time"] > cut]
    assert [e["event"] for e in later] == [e["event"] for e in events()
                                           if e["time"] > cut]
    assert events("--since", "2999-01-01") == []
    bad = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "audit", "--since",
                          "yesterday"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--since" in bad.stderr


def _participants(entry: dict) -> list[tuple[str, str, str, str]]:
    msg = ET.fromstring(audit_syslog.audit_message(entry))
    out = []
    for p in msg.findall("ActiveParticipant"):
        role = p.find("RoleIDCode")
        out.append((p.get("UserID", ""), p.get("UserIsRequestor", ""),
                    role.get("csd-code", "") if role is not None else "",
                    p.get("NetworkAccessPointID", "")))
    return out


def test_the_node_s_events_name_the_peer_as_the_requestor(home):
    """What Relay's node answers (a C-FIND, a C-GET, a C-MOVE to a third node, a rejected
    association) carries the peer as the requestor and the roles of PS3.15 A.5.3."""
    answer = audit.record(home, "answer", peer="MODALITY@10.0.0.9:4006",
                          detail={"level": "study", "keys": ["PatientName"], "answers": 2})
    assert _participants(answer)[1:] == [("MODALITY@10.0.0.9:4006", "true", "110153",
                                          "10.0.0.9")]
    assert _participants(answer)[0][1:3] == ("false", "110152")
    served = audit.record(home, "serve", study_uid="1.2.3", peer="VIEWER@10.0.0.8:104",
                          detail={"operation": "C-MOVE", "instances": 3, "failed": 0,
                                  "requested_by": "PACS@10.0.0.2:4242"})
    assert _participants(served) == [
        (served["user"] or "relay", "false", "110153", served["host"]),
        ("VIEWER@10.0.0.8:104", "false", "110152", "10.0.0.8"),
        ("PACS@10.0.0.2:4242", "true", "", "10.0.0.2")]
    msg = ET.fromstring(audit_syslog.audit_message(served))
    assert msg.find("EventIdentification/EventID").get("csd-code") == "110104"  # type: ignore[union-attr]
    rejected = audit.record(home, "login", outcome=audit.SERIOUS_FAILURE,
                            peer="INTRUDER@10.0.0.66:5000",
                            detail={"direction": "incoming", "calling_ae": "INTRUDER"})
    assert [(p[1], p[2]) for p in _participants(rejected)] == [("false", "110152"),
                                                               ("true", "110153")]
    mine = audit.record(home, "login", peer="pacs@ORTHANC@127.0.0.1:4242",
                        detail={"protocol": "DIMSE", "service": "C-FIND"})
    assert [(p[1], p[2], p[3]) for p in _participants(mine)][1] == ("false", "110152",
                                                                    "127.0.0.1")
    assert audit.verify(home).ok
