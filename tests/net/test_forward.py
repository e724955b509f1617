"""Forwarding rules: what a scanner sends to Relay's node goes on to a real Orthanc hub as it
arrives, in STOW-RS batches, each instance once, verified, and survives a hub outage."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pynetdicom import build_context

from app.net.devhub import free_port
from app.net.dimse.association import Endpoint, associate, make_ae
from app.net.dimse.listener import Listener
from app.net.dimse.node import NodeSettings
from app.net.forward import STREAMING, Forwarder
from app.net.queue import STROKE_PRIORITY, TransferQueue
from app.settings import ForwardingRule, load_settings, save_settings
from app.store.local import Store
from app.workflow import audit
from app.workflow.rules import Arrival, matches, targets
from app.workflow.timeline import study_timeline
from tests.conftest import relay_json, run_relay
from tests.net import dimse_peers
from tests.net.conftest import add_hub, hub_sop_uids, make_hub
from tests.net.dimse_node import dcmtk, needs_dcmtk
from tests.net.dimse_peers import relay_home_for

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

GE = "ct-head/ge-hispeed-human-gantry-tilt"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


# -- the rules ---------------------------------------------------------------------------------
def arrival(**kw: str) -> Arrival:
    base = {"source": "listener", "study_uid": "1.2", "series_uid": "1.2.3", "sop_uid": "1.2.3.4",
            "relpath": "x", "size": 1, "modality": "CT", "body_part": "HEAD",
            "study_description": "CODE STROKE", "series_description": "Axial 5mm",
            "calling_ae": "CT_ED_1"}
    return Arrival(**(base | kw))  # type: ignore[arg-type]


def stroke_rule(**kw) -> ForwardingRule:
    return ForwardingRule(**({"name": "stroke", "targets": ["hub:hub"], "modalities": ["CT"],
                              "body_part": "HEAD|BRAIN", "description": "STROKE|CODE|CTA",
                              "priority": "stroke"} | kw))


@pytest.mark.parametrize(("change", "expected"), [
    ({}, True),
    ({"modality": "MR"}, False),
    ({"body_part": "CHEST"}, False),
    ({"body_part": ""}, True),  # scanners often leave it empty: the description decides
    ({"study_description": "ROUTINE", "series_description": "CTA head neck"}, True),
    ({"study_description": "ROUTINE HEAD"}, False),
    ({"study_description": "code stroke"}, True),  # case-insensitive
])
def test_the_stroke_rule_matches_ct_of_the_head_described_stroke(change, expected):
    assert matches(stroke_rule(), arrival(**change)) is expected


def test_sources_callers_and_disabled_rules():
    assert not matches(stroke_rule(sources=["import"]), arrival())
    assert matches(stroke_rule(calling_ae="^CT_"), arrival())
    assert not matches(stroke_rule(calling_ae="^MR_"), arrival())
    assert not matches(stroke_rule(enabled=False), arrival())
    both = [ForwardingRule(name="all", targets=["hub:hub", "pacs:p"]), stroke_rule()]
    found = targets(both, arrival())
    assert [(t.kind, t.name, t.priority) for t in found] == [("hub", "hub", "stroke"),
                                                            ("pacs", "p", "normal")]


def test_relay_rules_add_list_remove(home):
    h = ("--home", str(home))
    bad = run_relay(*h, "rules", "add", "s", "--example", "stroke", "--to", "hub:nowhere",
                    check=False)
    assert bad.returncode == 2 and "no hub called 'nowhere'" in bad.stderr
    bad = run_relay(*h, "rules", "add", "s", "--description", "([", check=False)
    assert bad.returncode == 2 and "not a regular expression" in bad.stderr
    listing = relay_json(*h, "rules", "add", "s", "--example", "stroke", "--imports", "on")
    (rule,) = listing["rules"]
    assert rule["description"] == "STROKE|CODE|CTA" and rule["priority"] == "stroke"
    assert rule["modalities"] == ["CT"] and listing["imports"] is True
    listing = relay_json(*h, "rules", "add", "s", "--modality", "MR")  # keeps the rest
    assert listing["rules"][0]["modalities"] == ["MR"]
    assert listing["rules"][0]["description"] == "STROKE|CODE|CTA"
    assert relay_json(*h, "rules", "list")["rules"][0]["name"] == "s"
    assert relay_json(*h, "rules", "remove", "s")["rules"] == []
    assert run_relay(*h, "rules", "remove", "s", check=False).returncode == 1


# -- against a hub -------------------------------------------------------------------------------
def scanner_files(tmp_path: Path, data: Path, n: int) -> list[Path]:
    """``n`` real CT slices of one study, described as a code stroke."""
    out = tmp_path / "scanner"
    out.mkdir()
    files = []
    for src in sorted((data / GE).glob("*.dcm"))[:n]:
        ds = pydicom.dcmread(src)
        ds.StudyDescription = "CODE STROKE HEAD"
        ds.save_as(out / src.name)
        files.append(out / src.name)
    return files


def spoke(home: Path, hub_url: str, **forwarding) -> None:
    assert add_hub(home, hub_url).returncode == 0
    settings = load_settings(home)
    settings.forwarding.rules = [stroke_rule()]
    for key, value in forwarding.items():
        setattr(settings.forwarding, key, value)
    save_settings(home, settings)


def wait_for(cond, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def scan_while_forwarding(home: Path, port: int, files: list[Path],
                          arrived: Callable[[], int]) -> tuple[list[int], Forwarder, str]:
    """A scanner (one association) sends ``files`` to Relay's node on ``port`` while the
    forwarding rules run; before its last four instances, the first batches must already be
    at the target (``arrived`` counts them there): forwarded as they come, not when the study
    is "complete". (C-STORE statuses, the forwarder after it went idle, the study UID.)"""
    listener = Listener(Store(home), NodeSettings(bind="127.0.0.1", port=port))
    forwarder = Forwarder(Store(home))
    forwarder.attach(listener)
    host, port = listener.start()
    datasets = [pydicom.dcmread(f) for f in files]
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets})
    ae = make_ae("CT_ED_1", requested=[build_context(CT_IMAGE, syntaxes)])
    assoc = associate(ae, Endpoint(host, port, "RELAY"))
    try:
        statuses = [assoc.send_c_store(ds).Status for ds in datasets[:-4]]
        wait_for(lambda: arrived() >= 5)  # the scanner's association is still open
        statuses += [assoc.send_c_store(ds).Status for ds in datasets[-4:]]
        assoc.release()
        assert forwarder.wait_idle(120)
    finally:
        if assoc.is_established:
            assoc.abort()
        listener.stop(grace=5.0)
        forwarder.close()
    return statuses, forwarder, str(datasets[0].StudyInstanceUID)


@pytest.mark.orthanc
def test_received_instances_reach_the_hub_while_the_scanner_sends_once_and_verified(
        tmp_path, hub, relay_home, data):
    files = scanner_files(tmp_path, data, 24)
    spoke(relay_home, hub.url, batch_instances=5, batch_ms=150, quiet_seconds=2.0)
    statuses, forwarder, study = scan_while_forwarding(
        relay_home, free_port(), files, lambda: len(hub_sop_uids(hub)))
    assert statuses == [0] * len(files)
    uids = hub_sop_uids(hub)
    assert len(uids) == len(files) == len(set(uids))  # every instance, once
    assert forwarder.stats["batches"] >= 2 and forwarder.stats["sent"] == len(files)
    (job,) = TransferQueue(relay_home).jobs()
    assert job.state == "verified" and job.count("verified") == len(files)
    assert job.priority == STROKE_PRIORITY and not STREAMING
    events = {e["event"]: e for e in audit.select(relay_home, study_uid=study)}
    assert events["send"]["detail"]["instances"] == len(files)
    assert events["verify"]["detail"]["missing"] == 0
    assert events["receive"]["peer"].startswith("CT_ED_1@")
    line = study_timeline([relay_home], study)
    assert [s.stage for s in line.stages] == ["received", "sent", "verified"]
    received, sent_stage = line.stages[0], line.stages[1]
    assert received.until is not None and sent_stage.time < received.until


@needs_dcmtk
@pytest.mark.orthanc
def test_a_hub_outage_leaves_the_study_queued_and_the_next_start_finishes_it(
        tmp_path, relay_home, data):
    files = scanner_files(tmp_path, data, 12)
    port = free_port()
    hub = make_hub(tmp_path, "outage", port=port)
    spoke(relay_home, hub.url, batch_instances=4, batch_ms=100, quiet_seconds=1.0)
    store = Store(relay_home)
    listener = Listener(store, NodeSettings(bind="127.0.0.1", port=free_port()))
    forwarder = Forwarder(store)
    forwarder.attach(listener)
    host, lport = listener.start()
    try:  # the hub is not running: everything stays pending in the queue
        assert dcmtk("storescu", "-aec", "RELAY", host, str(lport),
                     *map(str, files)).returncode == 0
        wait_for(lambda: TransferQueue(relay_home).jobs()
                 and TransferQueue(relay_home).jobs()[0].state == "waiting")
    finally:
        listener.stop(grace=5.0)
        forwarder.close(timeout=2.0)
    (job,) = TransferQueue(relay_home).jobs()
    assert job.state == "queued" and job.count("pending") == len(files) and not STREAMING
    hub.start(timeout=60)
    try:
        again = Forwarder(Store(relay_home))
        assert again.resume() == 1
        assert again.wait_idle(120)
        again.close()
        uids = hub_sop_uids(hub)
    finally:
        hub.stop()
    assert sorted(uids) == sorted(set(uids)) and len(uids) == len(files)
    assert TransferQueue(relay_home).job(job.id).state == "verified"


@needs_dcmtk
@pytest.mark.orthanc
def test_relay_listen_applies_the_rules(tmp_path, hub, relay_home, data):
    import subprocess

    from tests.net.dimse_node import start_listen

    files = scanner_files(tmp_path, data, 6)
    spoke(relay_home, hub.url, quiet_seconds=1.0)
    port = free_port()
    proc = start_listen(relay_home, port)
    try:
        assert dcmtk("storescu", "-aec", "RELAY", "127.0.0.1", str(port),
                     *map(str, files)).returncode == 0
        wait_for(lambda: len(hub_sop_uids(hub)) == len(files))
        wait_for(lambda: TransferQueue(relay_home).jobs()[0].state == "verified")
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    summary = json.loads(out)
    assert summary["stored"] == len(files) and summary["forwarded"]["sent"] == len(files)
    assert isinstance(proc, subprocess.Popen)


@pytest.mark.orthanc
def test_imports_are_forwarded_only_when_the_user_said_so(tmp_path, hub, relay_home, data):
    files = scanner_files(tmp_path, data, 8)
    spoke(relay_home, hub.url, quiet_seconds=1.0)
    out = relay_json("--home", str(relay_home), "import", str(tmp_path / "scanner"))
    assert out["imported"] == len(files) and "forwarded" not in out
    assert hub_sop_uids(hub) == []
    other = tmp_path / "other"
    other.mkdir()
    spoke(other, hub.url, quiet_seconds=1.0, imports=True)
    out = relay_json("--home", str(other), "import", str(tmp_path / "scanner"))
    assert out["forwarded"]["sent"] == len(files)
    uids = hub_sop_uids(hub)
    assert len(uids) == len(set(uids)) == len(files)
    (job,) = TransferQueue(other).jobs()
    assert job.state == "verified"


def test_a_study_on_the_hub_is_a_stroke_study_by_the_stroke_rules():
    from app.workflow.rules import is_stroke_study

    assert is_stroke_study([], ("CT",), "CT HEAD CODE STROKE")  # the shipped example
    assert not is_stroke_study([], ("MR",), "CODE STROKE")
    assert not is_stroke_study([], ("CT",), "CT ABDOMEN")
    mine = [stroke_rule(description="LVO", calling_ae="^CT_")]
    assert is_stroke_study(mine, ("CT", "SR"), "lvo protocol")  # caller unknown at the hub
    assert not is_stroke_study(mine, ("CT",), "CODE STROKE")


# -- against a PACS ------------------------------------------------------------------------------
def pacs_spoke(home: Path, pacs: dimse_peers.Pacs, **forwarding) -> None:
    relay_home_for(home, pacs.relay_port, pacs_port=pacs.dicom_port)
    settings = load_settings(home)
    settings.forwarding.rules = [stroke_rule(targets=["pacs:pacs"])]
    for key, value in forwarding.items():
        setattr(settings.forwarding, key, value)
    save_settings(home, settings)


@pytest.mark.orthanc
def test_received_instances_reach_a_pacs_while_the_scanner_sends_once_and_verified(
        tmp_path, pacs, data):
    home = tmp_path / "spoke"
    files = scanner_files(tmp_path, data, 24)
    pacs_spoke(home, pacs, batch_instances=5, batch_ms=150, quiet_seconds=2.0)
    # Relay's node on its own port: the PACS's commitment reports come back there
    statuses, forwarder, study = scan_while_forwarding(
        home, pacs.relay_port, files, lambda: len(hub_sop_uids(pacs.hub)))
    assert statuses == [0] * len(files)
    uids = hub_sop_uids(pacs.hub)
    assert len(uids) == len(files) == len(set(uids))  # every instance, once
    assert forwarder.stats["batches"] >= 2 and forwarder.stats["sent"] == len(files)
    (job,) = TransferQueue(home).jobs()
    assert (job.kind, job.hub, job.state) == ("send", "pacs", "verified")
    assert job.count("verified") == len(files) and job.priority == STROKE_PRIORITY
    assert not STREAMING
    events = [e for e in audit.select(home, study_uid=study)]
    sends = [e for e in events if e["event"] == "send"]
    assert len(sends) == 1 and sends[0]["detail"]["instances"] == len(files)
    assert sends[0]["peer"].startswith("pacs@")
    # the batches went over few associations (kept open between batches), each one audited once
    logins = [e for e in audit.read(home) if e["event"] == "login"
              and e["detail"].get("service") == "C-STORE"]
    assert 1 <= len(logins) < forwarder.stats["batches"] + 1
    assert all(e["outcome"] == audit.SUCCESS for e in logins)
    assert audit.verify(home).ok


@pytest.mark.orthanc
def test_a_pacs_outage_leaves_the_study_queued_and_the_next_start_finishes_it(
        tmp_path, data):
    home = tmp_path / "spoke"
    files = scanner_files(tmp_path, data, 12)
    pacs = dimse_peers.make_pacs(tmp_path / "pacs")  # not started yet
    pacs_spoke(home, pacs, batch_instances=4, batch_ms=100, quiet_seconds=1.0)
    store = Store(home)
    listener = Listener(store, NodeSettings(bind="127.0.0.1", port=free_port()))
    forwarder = Forwarder(store)
    forwarder.attach(listener)
    host, lport = listener.start()
    datasets = [pydicom.dcmread(f) for f in files]
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets})
    assoc = associate(make_ae("CT_ED_1", requested=[build_context(CT_IMAGE, syntaxes)]),
                      Endpoint(host, lport, "RELAY"))
    try:  # the PACS is down: everything stays pending in the queue
        assert [assoc.send_c_store(ds).Status for ds in datasets] == [0] * len(files)
        assoc.release()
        wait_for(lambda: TransferQueue(home).jobs()
                 and TransferQueue(home).jobs()[0].state == "waiting")
    finally:
        if assoc.is_established:
            assoc.abort()
        listener.stop(grace=5.0)
        forwarder.close(timeout=2.0)
    (job,) = TransferQueue(home).jobs()
    assert job.state == "queued" and job.count("pending") == len(files) and not STREAMING
    failed = [e for e in audit.read(home) if e["event"] == "login"
              and e["detail"].get("direction") != "incoming"]  # Relay's own, to the PACS
    assert failed and all(e["outcome"] != audit.SUCCESS for e in failed)
    (scanner,) = [e for e in audit.read(home) if e["event"] == "login"
                  and e["detail"].get("direction") == "incoming"]
    assert scanner["outcome"] == audit.SUCCESS and scanner["peer"].startswith("CT_ED_1@")
    pacs.start()
    try:
        again = Forwarder(Store(home))
        assert again.resume() == 1
        assert again.wait_idle(120)
        again.close()
        uids = hub_sop_uids(pacs.hub)
    finally:
        pacs.hub.stop()
    assert sorted(uids) == sorted(set(uids)) and len(uids) == len(files)
    assert TransferQueue(home).job(job.id).state == "verified"
    assert audit.verify(home).ok


@needs_dcmtk
def test_forwarding_to_a_pacs_survives_a_kill_and_sends_nothing_twice(tmp_path, data):
    """``relay listen`` killed (SIGKILL) while it forwards to a PACS: the next start finishes
    the job from the durable queue; the PACS (which records every C-STORE) got each instance
    once, the one in flight at the kill included (found by search before it would go again)."""
    from tests.net.dimse_node import start_listen, stop_listen
    from tests.net.dimse_peers import RecordingPacs

    files = scanner_files(tmp_path, data, 20)
    relay_port = free_port()
    recorder = RecordingPacs(delay=0.25, commit_to=relay_port)
    home = tmp_path / "spoke"
    try:
        relay_home_for(home, relay_port, pacs_port=recorder.port, ae=recorder.ae_title)
        settings = load_settings(home)
        settings.forwarding.rules = [stroke_rule(targets=["pacs:pacs"])]
        settings.forwarding.batch_instances, settings.forwarding.batch_ms = 4, 100
        settings.forwarding.quiet_seconds = 1.0
        save_settings(home, settings)
        proc = start_listen(home, relay_port)
        try:
            assert dcmtk("storescu", "-aec", "RELAY", "127.0.0.1", str(relay_port),
                         *map(str, files)).returncode == 0
            wait_for(lambda: recorder.total >= 4, timeout=60)
        finally:
            proc.kill()  # no goodbye: what is in flight stays in flight
            proc.wait(timeout=30)
            proc.communicate(timeout=30)
        sent_before = recorder.total
        (job,) = TransferQueue(home).jobs()
        assert job.state != "verified" and sent_before < len(files)
        again = start_listen(home, relay_port)
        try:
            wait_for(lambda: TransferQueue(home).job(job.id).state == "verified", timeout=120)
        finally:
            summary, err = stop_listen(again)
        assert "1 unfinished forward(s) resumed" in err
    finally:
        recorder.stop()
    assert len(recorder.received) == len(files)
    assert set(recorder.received.values()) == {1}, "an instance went twice"
    events = list(audit.read(home))
    assert audit.verify(home).ok
    assert [e["outcome"] for e in events if e["event"] == "verify"] == [audit.SUCCESS]
    assert summary["stored"] == 0  # the second run received nothing: it only finished the job
