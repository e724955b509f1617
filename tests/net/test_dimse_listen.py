"""``relay node`` and ``relay listen``: Relay's C-ECHO / C-STORE SCP against dcmtk's storescu,
echoscu and a pynetdicom peer sending garbage; what is stored is checked byte for byte."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import build_context

from app.dicom.synth import SeriesSpec, generate_series
from app.net.devhub import free_port
from app.net.dimse.association import Endpoint, associate, make_ae
from app.net.dimse.receive import PROGRESS_SECONDS
from app.store.local import Store
from tests.conftest import relay_json, run_relay
from tests.net.dimse_node import (
    dataset_bytes,
    dcmtk,
    needs_dcmtk,
    peer,
    read_until,
    running_node,
    sha256,
    start_listen,
    stop_listen,
    stored_hashes,
)

GE = "ct-head/ge-hispeed-human-gantry-tilt"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


# -- relay node ------------------------------------------------------------------------------
def test_node_defaults_are_relay_on_11112_open_to_any_caller(home):
    node = relay_json("--home", str(home), "node")
    assert node["ae_title"] == "RELAY" and node["port"] == 11112
    assert node["allowed_callers"] == [] and node["move_destinations"] == []
    assert node["changed"] is False


def test_node_settings_are_kept_and_checked(home):
    h = ("--home", str(home))
    relay_json(*h, "node", "--ae", "STROKE1", "--port", "4006", "--allow", "CT1", "MR1",
               "--destination", "PACS=10.1.2.3:104")
    node = relay_json(*h, "node")
    assert (node["ae_title"], node["port"]) == ("STROKE1", 4006)
    assert node["allowed_callers"] == ["CT1", "MR1"]
    assert node["move_destinations"] == [{"ae_title": "PACS", "host": "10.1.2.3", "port": 104}]
    node = relay_json(*h, "node", "--allow-any", "--remove-destination", "PACS")
    assert node["allowed_callers"] == [] and node["move_destinations"] == []
    bad = run_relay(*h, "node", "--ae", "A" * 17, check=False)
    assert bad.returncode == 2 and "longer than 16 characters" in bad.stderr
    bad = run_relay(*h, "node", "--port", "70000", check=False)
    assert bad.returncode == 2 and "port must be" in bad.stderr
    assert relay_json(*h, "node")["ae_title"] == "STROKE1"  # a refused change changes nothing


# -- relay listen (the command, in a subprocess) ----------------------------------------------
@needs_dcmtk
def test_listen_stores_what_storescu_sends_byte_exact_and_stops_on_ctrl_c(home, data):
    files = sorted((data / GE).glob("*.dcm"))
    port = free_port()
    proc = start_listen(home, port, "--ae", "STROKE", "-vv")  # the most talkative log
    try:
        assert dcmtk("echoscu", "-aec", "STROKE", "127.0.0.1", str(port)).returncode == 0
        sent = dcmtk("storescu", "-aec", "STROKE", "127.0.0.1", str(port), *map(str, files))
        assert sent.returncode == 0, sent.stderr
    finally:
        counts, err = stop_listen(proc)
    assert counts["received"] == counts["stored"] == len(files), counts
    assert counts["failed"] == 0
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert "received 28 instance(s)" in err  # the log says what happened...
    assert first.PatientID not in err and first.StudyInstanceUID not in err  # ...not to whom
    store = Store(home)
    by_sop = {i.sop_instance_uid: i for s in store.studies() for se in s.series
              for i in store.instances(se.series_instance_uid)}
    assert len(by_sop) == len(files)
    for f in files:
        original = pydicom.dcmread(f, stop_before_pixels=True)
        inst = by_sop[original.SOPInstanceUID]
        assert inst.transfer_syntax_uid == original.file_meta.TransferSyntaxUID
        assert dataset_bytes(inst.path) == dataset_bytes(f)  # as received, not re-encoded
        assert sha256(inst.path) == inst.sha256


def test_listen_prints_a_study_from_its_first_instance_while_it_arrives(home, data):
    """A tech watching ``relay listen`` sees the study start arriving and its count while the
    scanner still sends, not only when the association ends; the lines name the study by its
    UID and the caller by its AE title, nothing about the patient."""
    datasets = [pydicom.dcmread(p) for p in sorted((data / GE).glob("*.dcm"))[:6]]
    study_uid = datasets[0].StudyInstanceUID
    port = free_port()
    proc = start_listen(home, port, json_out=False)
    try:
        contexts = {(d.SOPClassUID, d.file_meta.TransferSyntaxUID) for d in datasets}
        ae = make_ae("CT_SCANNER", requested=[build_context(c, t) for c, t in contexts])
        assoc = associate(ae, Endpoint("127.0.0.1", port, "RELAY"))
        try:
            assert assoc.send_c_store(datasets[0]).Status == 0
            started = read_until(proc, "CT_SCANNER")  # the association is still open
            assert f"arriving: study {study_uid} from CT_SCANNER" in started
            time.sleep(PROGRESS_SECONDS + 0.2)  # the next instance is due for a count
            assert [assoc.send_c_store(d).Status for d in datasets[1:3]] == [0, 0]
            counted = read_until(proc, "so far")
            assert f"receiving: 2 instance(s) of study {study_uid} from CT_SCANNER so far" \
                in counted
            assert [assoc.send_c_store(d).Status for d in datasets[3:]] == [0] * 3
        finally:
            assoc.release()
        ended = read_until(proc, "failed)")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
    assert f"received 6 instance(s) of study {study_uid} from CT_SCANNER (0 duplicate, " \
           "0 failed)" in ended
    printed = started + counted + ended + out.decode()
    assert "node stopped: 6 received, 6 stored" in printed
    first = datasets[0]
    for identifier in (str(first.PatientName), first.PatientID):
        assert identifier not in printed


@needs_dcmtk
def test_listen_rejects_callers_outside_the_allow_list_and_says_why(home):
    relay_json("--home", str(home), "node", "--allow", "CT_SCANNER")
    port = free_port()
    proc = start_listen(home, port)
    try:
        refused = dcmtk("echoscu", "-aet", "INTRUDER", "-aec", "RELAY", "127.0.0.1", str(port))
        assert refused.returncode != 0
        assert "Rejected" in refused.stderr + refused.stdout or refused.returncode != 0
        allowed = dcmtk("echoscu", "-aet", "CT_SCANNER", "-aec", "RELAY", "127.0.0.1", str(port))
        assert allowed.returncode == 0, allowed.stderr
    finally:
        counts, err = stop_listen(proc)
    assert "calling AE title 'INTRUDER' is not in the node's allowed callers" in err
    assert counts["rejected"] == 1


@needs_dcmtk
def test_listen_on_a_taken_port_says_so(home):
    port = free_port()
    proc = start_listen(home, port)
    try:
        second = run_relay("--home", str(home), "listen", "--bind", "127.0.0.1", "--port",
                           str(port), check=False, timeout=60)
        assert second.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in second.stderr
    finally:
        stop_listen(proc)


# -- bad data sets: a failure status for that instance, the node stays up ---------------------
def _garbage_files(tmp: Path, data: Path) -> dict[str, Path]:
    """Part-10 files whose file meta is sound and whose data set is not: what a broken
    modality could send. Keyed by SOP Instance UID (the one in the request)."""
    out = {}

    def write(body: bytes, name: str, sop_uid: str) -> None:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_file_meta_info

        buf = DicomBytesIO()
        write_file_meta_info(buf, meta)
        path = tmp / name
        path.write_bytes(b"\0" * 128 + b"DICM" + buf.getvalue() + body)
        out[sop_uid] = path

    real = sorted((data / GE).glob("*.dcm"))[0]
    body = dataset_bytes(real)
    import pydicom

    real_uid = pydicom.dcmread(real, stop_before_pixels=True).SOPInstanceUID
    write(b"\x08\x00\x16\x00UI\xff\xffnot a dicom data set" * 50, "garbage.dcm", generate_uid())
    write(body[: len(body) // 2], "truncated.dcm", real_uid)  # pixel data cut in half
    write(body, "wrong-uid.dcm", generate_uid())  # the request says another instance
    return out


def test_garbage_truncated_and_mislabelled_data_sets_get_failure_statuses(
        home, tmp_path, data, monkeypatch):
    from pynetdicom import _config

    # The peer sends each file's bytes as they are, without reading them (a broken modality).
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    good = sorted((data / GE).glob("*.dcm"))[1:4]
    bad = _garbage_files(tmp_path, data)
    with running_node(home) as listener:
        host, port = listener.address
        ae = make_ae("MODALITY", requested=[build_context(CT_IMAGE, ExplicitVRLittleEndian)])
        assoc = associate(ae, Endpoint(host, port, "RELAY"))
        try:
            statuses = [assoc.send_c_store(p).Status for p in good[:2]]
            before = stored_hashes(listener.store)
            bad_statuses = {p.name: assoc.send_c_store(p).Status for p in bad.values()}
            statuses.append(assoc.send_c_store(good[2]).Status)  # same association goes on
        finally:
            assoc.release()
        after = stored_hashes(listener.store)
    assert statuses == [0, 0, 0]
    assert bad_statuses["garbage.dcm"] == 0xC000
    assert bad_statuses["truncated.dcm"] == 0xC000
    assert bad_statuses["wrong-uid.dcm"] == 0xA900
    assert len(after) == 3 and before.items() <= after.items()  # nothing stored was touched
    assert listener.tally.snapshot()["failed"] == 3


@needs_dcmtk
def test_storescu_sending_malformed_files_leaves_the_node_up_and_the_store_whole(home, data):
    malformed = sorted((data / "malformed").glob("*.dcm"))
    good = sorted((data / GE).glob("*.dcm"))[:5]
    with running_node(home) as listener:
        assert dcmtk("storescu", *peer(listener), *map(str, good)).returncode == 0
        before = stored_hashes(listener.store)
        results = {}
        for f in malformed:  # one association each: storescu stops at a file it cannot read
            results[f.name] = dcmtk("storescu", "-R", "-nh", "-v", *peer(listener), str(f))
        assert dcmtk("echoscu", *peer(listener)).returncode == 0  # still up
        more = sorted((data / GE).glob("*.dcm"))[5:8]
        assert dcmtk("storescu", *peer(listener), *map(str, more)).returncode == 0
        after = stored_hashes(listener.store)
    assert before.items() <= after.items()
    assert len(after) >= len(good) + len(more)
    refused = [n for n, r in results.items() if "Error: CannotUnderstand" in r.stdout + r.stderr]
    # badVR.dcm (Number of Frames '1A') is the one dcmtk reads and sends but Relay's ingest
    # refuses; the others dcmtk itself cannot read or cannot convert to what it proposed.
    assert refused == ["badVR.dcm"], {n: r.stderr[-300:] for n, r in results.items()}


def test_the_same_instance_twice_is_a_duplicate_and_different_bytes_a_conflict(home, data):
    f = sorted((data / GE).glob("*.dcm"))[0]
    with running_node(home) as listener:
        host, port = listener.address
        ae = make_ae("MODALITY", requested=[build_context(CT_IMAGE, ExplicitVRLittleEndian)])
        assoc = associate(ae, Endpoint(host, port, "RELAY"))
        try:
            import pydicom

            ds = pydicom.dcmread(f)
            first = assoc.send_c_store(ds).Status
            again = assoc.send_c_store(ds).Status
            ds.StudyDescription = "CHANGED"
            changed = assoc.send_c_store(ds).Status
        finally:
            assoc.release()
        tally = listener.tally.snapshot()
        conflicts = listener.store.conflicts()
    assert (first, again, changed) == (0, 0, 0)
    assert tally["stored"] == 1 and tally["duplicate"] == 1 and tally["conflict"] == 1
    assert len(conflicts) == 1


def test_each_association_reports_one_notice_per_study(home, data):
    ge = sorted((data / GE).glob("*.dcm"))[:4]
    other = sorted((data / "compressed" / "same-image-9-syntaxes").glob("*.dcm"))[:2]
    seen = []
    with running_node(home) as listener:
        listener.subscribe(seen.append)
        host, port = listener.address
        import pydicom

        datasets = [pydicom.dcmread(p) for p in ge + other]
        contexts = {(d.SOPClassUID, d.file_meta.TransferSyntaxUID) for d in datasets}
        ae = make_ae("SCANNER", requested=[build_context(c, t) for c, t in contexts])
        assoc = associate(ae, Endpoint(host, port, "RELAY"))
        try:
            assert [assoc.send_c_store(d).Status for d in datasets] == [0] * len(datasets)
        finally:
            assoc.release()
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    studies = {s.study_uid: s for s in seen}
    assert len(seen) == len(studies) == len({d.StudyInstanceUID for d in datasets})
    assert studies[datasets[0].StudyInstanceUID].instances == 4
    assert all(s.calling_ae == "SCANNER" for s in seen)


def test_a_study_is_reported_arriving_from_its_first_instance_while_the_association_is_open(
        home, data):
    """A scanner may send a whole exam in one association lasting minutes: the study is
    reported from its first instance on, not only when the association ends."""
    import pydicom

    datasets = [pydicom.dcmread(p) for p in sorted((data / GE).glob("*.dcm"))[:5]]
    arriving, ended = [], []
    with running_node(home) as listener:
        listener.subscribe_arriving(arriving.append)
        listener.subscribe(ended.append)
        host, port = listener.address
        ae = make_ae("SCANNER", requested=[build_context(CT_IMAGE, ExplicitVRLittleEndian)])
        assoc = associate(ae, Endpoint(host, port, "RELAY"))
        try:
            assert assoc.send_c_store(datasets[0]).Status == 0
            assert assoc.send_c_store(datasets[0]).Status == 0  # a duplicate tells nothing
            (first,) = arriving  # told before the status went back
            assert (first.study_uid, first.calling_ae) == (datasets[0].StudyInstanceUID,
                                                           "SCANNER")
            assert first.instances == 1 and first.arriving and first.first
            assert listener.store.study(first.study_uid).instance_count == 1  # indexed
            assert not ended
            assert [assoc.send_c_store(d).Status for d in datasets[1:]] == [0] * 4
        finally:
            assoc.release()
        deadline = time.monotonic() + 10
        while not ended and time.monotonic() < deadline:
            time.sleep(0.05)
    (last,) = ended
    assert last.instances == 5 and last.duplicates == 1 and not last.arriving
    assert all(a.arriving for a in arriving)
    assert [a.instances for a in arriving] == sorted(a.instances for a in arriving)


def test_progress_reports_are_spaced_per_study_and_start_again_with_each_association(
        monkeypatch):
    from app.net.dimse import receive as rx

    tally = rx.Tally()
    stored = [rx.Outcome(0, "imported", "1.2.3"), rx.Outcome(0, "imported", "1.2.3"),
              rx.Outcome(0, "imported", "4.5.6"), rx.Outcome(0, "duplicate", "7.8.9"),
              rx.Outcome(0xC000, "failed", reason="garbage")]
    reports = [tally.add(1, o, "CT1") for o in stored]
    assert [r.study_uid if r else None for r in reports] == ["1.2.3", None, "4.5.6", None, None]
    monkeypatch.setattr(rx, "PROGRESS_SECONDS", 0.0)
    tally.close(1, "CT1")
    again = tally.add(2, rx.Outcome(0, "imported", "1.2.3"), "CT1")
    assert again is not None and again.instances == 1  # a new association: told at once
    later = tally.add(2, rx.Outcome(0, "conflict", "1.2.3"), "CT1")
    assert later is not None and later.instances == 2  # due (no spacing here)




@needs_dcmtk
def test_listen_killed_mid_receive_leaves_every_stored_file_indexed(home, tmp_path):
    """``relay listen`` killed (SIGKILL) while storescu sends: the index rows that waited for
    their batch's sync are there or are made from the files when the store next opens; no file
    is left without its row, no marker of the dead node stays, and ``relay check`` is clean."""
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=150, rows=128, columns=128,
                                                        seed=4))
    port = free_port()
    proc = start_listen(home, port)
    sender = subprocess.Popen(["storescu", "-aec", "RELAY", "127.0.0.1", str(port),
                               *map(str, files)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    objects = home / "store" / "objects"
    try:
        deadline = time.monotonic() + 120
        while sum(1 for _ in objects.rglob("*.dcm")) < 30:
            assert time.monotonic() < deadline and sender.poll() is None, "too fast to kill"
            time.sleep(0.01)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if sender.poll() is None:
            sender.kill()
        sender.wait(timeout=30)
    on_disk = sum(1 for _ in objects.rglob("*.dcm"))
    assert 30 <= on_disk < len(files)
    store = Store(home)  # a dead node's marker: its files are indexed now
    indexed = [i for s in store.studies() for se in s.series
               for i in store.instances(se.series_instance_uid)]
    assert len(indexed) == on_disk
    assert not list((home / "store").glob("unindexed-*"))
    check = run_relay("--home", str(home), "check", "--json", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
