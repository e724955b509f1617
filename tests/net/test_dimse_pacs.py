"""Relay as a DIMSE client of a PACS: profiles and the echo test, query, send (verified by
storage commitment or C-FIND, or said to be unverified), retrieve by C-GET and C-MOVE. The PACS
is a real Orthanc with its DICOM port on; what it holds is checked through its REST API."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.net.devhub import free_port
from app.net.sent import send_history
from app.settings import load_settings, save_settings
from app.store.local import Store
from tests.net import dimse_peers
from tests.net.conftest import hub_sop_uids, import_study, relay
from tests.net.dimse_peers import PACS_AE, Pacs, RecordingPacs, make_pacs, relay_home_for

pacs = dimse_peers.pacs  # the Orthanc PACS fixture

pytestmark = pytest.mark.orthanc


@pytest.fixture
def home(tmp_path: Path, pacs: Pacs) -> Path:
    return relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)


def _uids(files: list[Path]) -> list[str]:
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]


def _json(proc) -> dict:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_pacs_profiles_add_list_test_remove(home: Path, pacs: Pacs):
    listed = _json(relay(home, "pacs", "list", "--json"))
    assert listed["calling_ae"] == "RELAY"
    assert listed["pacs"] == [{"name": "pacs", "host": "127.0.0.1", "port": pacs.dicom_port,
                               "ae_title": PACS_AE, "tls": False, "ca_file": "",
                               "cert_file": "", "retrieve": "get"}]
    test = _json(relay(home, "pacs", "test", "pacs", "--json"))
    assert test["ok"] is True and test["problem"] is None
    hub_test = _json(relay(home, "hub", "test", "pacs", "--json"))  # one peer, one test
    assert hub_test["ok"] is True and "answers C-ECHO" in hub_test["message"]
    # one list of names: a hub cannot take a PACS's name, and hub list shows hubs only
    taken = relay(home, "hub", "add", "pacs", "--url", "http://127.0.0.1:9/dicom-web")
    assert taken.returncode != 0 and "a PACS is called 'pacs'" in taken.stderr
    assert _json(relay(home, "hub", "list", "--json"))["hubs"] == []
    out = relay(home, "pacs", "remove", "pacs")
    assert out.returncode == 0
    assert _json(relay(home, "pacs", "list", "--json"))["pacs"] == []
    gone = relay(home, "pacs", "test", "pacs", "--json")
    assert gone.returncode != 0 and "no PACS called 'pacs'" in gone.stderr


def test_pacs_test_says_what_is_wrong_in_plain_words(tmp_path: Path, pacs: Pacs):
    wrong_called = relay_home_for(tmp_path / "a", pacs.relay_port, pacs_port=pacs.dicom_port,
                                  ae="NOTORTHANC")
    out = relay(wrong_called, "pacs", "test", "pacs", "--json")
    assert out.returncode == 1
    assert _json(out)["problem"] == "called-ae"
    assert "its AE title is not 'NOTORTHANC'" in _json(out)["message"]

    stranger = relay_home_for(tmp_path / "b", pacs.relay_port, pacs_port=pacs.dicom_port,
                              node_ae="STRANGER")
    out = relay(stranger, "pacs", "test", "pacs")
    assert out.returncode == 1
    assert "RELAY'S AE TITLE NOT KNOWN" in out.stdout
    assert "does not know Relay's AE title" in out.stdout and "'STRANGER'" in out.stdout

    nobody = relay_home_for(tmp_path / "c", pacs.relay_port, pacs_port=free_port())
    out = relay(nobody, "pacs", "test", "pacs", "--json")
    assert _json(out)["problem"] == "unreachable"
    assert "cannot connect" in _json(out)["message"]


def test_send_is_verified_by_storage_commitment(home: Path, pacs: Pacs, ct_files):
    _, study = import_study(home, ct_files)
    out = relay(home, "send", study, "--pacs", "pacs", "--json")
    result = _json(out)
    assert out.returncode == 0, out.stderr
    assert {k: result[k] for k in ("state", "instances", "verified", "missing")} == {
        "state": "verified", "instances": 120, "verified": 120, "missing": []}
    assert "verified by storage commitment" in result["message"]
    assert sorted(hub_sop_uids(pacs.hub)) == sorted(_uids(ct_files))
    again = _json(relay(home, "send", study, "--pacs", "pacs", "--json"))
    assert again["state"] == "verified" and again["bytes"] == 0  # nothing sent twice


def test_send_without_commitment_is_verified_by_a_query(tmp_path: Path, ct_files):
    pacs = make_pacs(tmp_path / "pacs", AllowStorageCommitment=False).start()
    try:
        home = relay_home_for(tmp_path / "relay", pacs.relay_port, pacs_port=pacs.dicom_port)
        _, study = import_study(home, ct_files)
        result = _json(relay(home, "send", study, "--pacs", "pacs", "--json"))
        assert result["state"] == "verified" and result["verified"] == 120
        assert "verified by C-FIND" in result["message"]
        assert len(hub_sop_uids(pacs.hub)) == 120
    finally:
        pacs.hub.stop()


def test_send_to_a_store_only_peer_says_sent_not_verified(tmp_path: Path, ct_files):
    peer = RecordingPacs(find=False)
    try:
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, ct_files[:10])
        out = relay(home, "send", study, "--pacs", "pacs", "--json")
        result = _json(out)
        assert out.returncode == 0
        assert result["state"] == "sent" and result["verified"] == 0
        assert result["message"].startswith("sent, not verified")
        assert peer.received == {uid: 1 for uid in peer.received} and len(peer.received) == 10
    finally:
        peer.stop()


def test_peer_taking_only_uncompressed_gets_lossless_decoded_pixels(tmp_path: Path):
    files = generate_series(tmp_path / "ls", SeriesSpec(slices=6, rows=64, columns=64,
                                                        slice_step=1.0, seed=3,
                                                        transfer_syntax="jpegls"))
    peer = RecordingPacs(uncompressed_only=True)
    try:
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, files)
        result = _json(relay(home, "send", study, "--pacs", "pacs", "--json"))
        assert result["state"] == "verified", result
        assert "6 instance(s) decoded to uncompressed (lossless)" in result["message"]
        for path in files:
            ds = pydicom.dcmread(path)
            got = peer.datasets[str(ds.SOPInstanceUID)]
            assert peer.syntaxes[str(ds.SOPInstanceUID)] in ("1.2.840.10008.1.2.1",
                                                             "1.2.840.10008.1.2")
            assert (got.pixel_array == ds.pixel_array).all()
    finally:
        peer.stop()


def test_send_keeps_the_stored_syntax_when_the_peer_accepts_it(tmp_path: Path):
    files = generate_series(tmp_path / "ls", SeriesSpec(slices=3, rows=64, columns=64,
                                                        slice_step=1.0, seed=4,
                                                        transfer_syntax="jpegls"))
    peer = RecordingPacs()
    try:
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, files)
        result = _json(relay(home, "send", study, "--pacs", "pacs", "--json"))
        assert result["state"] == "verified"
        assert "decoded" not in result["message"]
        assert set(peer.syntaxes.values()) == {"1.2.840.10008.1.2.4.80"}
    finally:
        peer.stop()


def test_query_lists_studies_and_series(home: Path, pacs: Pacs, ct_files):
    _, study = import_study(home, ct_files)
    relay(home, "send", study, "--pacs", "pacs", "--json")
    found = _json(relay(home, "query", "--pacs", "pacs", "--name", "DEMO*", "--modality", "CT",
                        "--json"))
    assert len(found["studies"]) == 1
    row = found["studies"][0]
    assert row["study_instance_uid"] == study
    assert row["modalities"] == ["CT"] and row["instances"] == 120
    assert set(row) == {"study_instance_uid", "patient_id", "patient_name", "study_date",
                        "study_description", "modalities", "accession_number", "series_count",
                        "instances"}
    none = _json(relay(home, "query", "--pacs", "pacs", "--patient-id", "NOBODY", "--json"))
    assert none == {"studies": []}
    series = _json(relay(home, "query", "--pacs", "pacs", "--study", study, "--series",
                         "--json"))["series"]
    assert len(series) == 1 and series[0]["instances"] == 120


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_brings_the_study_into_the_store(tmp_path: Path, home: Path, pacs: Pacs,
                                                  ct_files, method: str):
    _, study = import_study(home, ct_files)
    relay(home, "send", study, "--pacs", "pacs", "--json")
    other = relay_home_for(tmp_path / "other", pacs.relay_port, pacs_port=pacs.dicom_port)
    out = relay(other, "retrieve", study, "--pacs", "pacs", "--method", method, "--json")
    result = _json(out)
    assert out.returncode == 0, out.stderr
    assert set(result) == {"job", "state", "instances", "stored", "failed", "bytes", "seconds"}
    assert (result["state"], result["instances"], result["stored"], result["failed"]) == (
        "verified", 120, 120, 0)
    store = Store(other)
    assert store.counts()["instances"] == 120
    assert not store.conflicts()
    assert len(list((other / "store" / "objects").rglob("*.dcm"))) == 120
    sent = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p).PixelData
            for p in ct_files[:5]}
    for uid, pixels in sent.items():
        got = store.instance(uid)
        assert got is not None and got.path is not None
        assert pydicom.dcmread(got.path).PixelData == pixels
    again = _json(relay(other, "retrieve", study, "--pacs", "pacs", "--json"))
    assert again["state"] == "verified" and again["bytes"] == 0


def test_retrieve_some_series_only(tmp_path: Path, home: Path, pacs: Pacs, ct_files):
    _, study = import_study(home, ct_files)
    relay(home, "send", study, "--pacs", "pacs", "--json")
    series = _json(relay(home, "query", "--pacs", "pacs", "--study", study, "--series",
                         "--json"))["series"][0]["series_instance_uid"]
    other = relay_home_for(tmp_path / "other", pacs.relay_port, pacs_port=pacs.dicom_port)
    result = _json(relay(other, "retrieve", study, "--pacs", "pacs", "--series", series,
                         "--json"))
    assert result["stored"] == 120
    missing = _json(relay(other, "retrieve", study, "--pacs", "pacs", "--series", "1.2.3.4",
                          "--json"))
    assert missing["state"] == "failed"
    assert missing["instances"] == 0


def test_dcmtk_storescp_as_the_target_of_relay_send(tmp_path: Path, ct_files):
    """dcmtk's storescp (storage only: no commitment, no query) receives every instance once,
    each file's data set equal to what is stored; the job says "sent, not verified"."""
    import subprocess
    import time

    out = tmp_path / "storescp"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "+xa", "-aet", "STORESCP", "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["echoscu", "-aec", "STORESCP", "127.0.0.1", str(port)],
                             capture_output=True, timeout=30).returncode != 0:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.2)
        home = relay_home_for(tmp_path / "relay", free_port(), pacs_port=port, ae="STORESCP",
                              name="scp")
        settings = load_settings(home)
        settings.transfer.batch_instances = 4  # 3 batches, 2 at a time: storescp serves one
        save_settings(home, settings)
        store, study = import_study(home, ct_files[:10])
        sent = relay(home, "send", study, "--pacs", "scp", "--json", "-v")
        result = _json(sent)
        assert (result["state"], result["instances"], result["verified"]) == ("sent", 10, 0)
        assert result["missing"] == [] and "sent, not verified" in result["message"]
        # no association waited for storescp (one at a time) while Relay kept another open
        assert "did not answer the association request" not in sent.stderr, sent.stderr
        [record] = send_history(home)  # a PACS send is in the history the dialogs read
        assert (record.hub, record.state, record.peer_word) == ("scp", "sent", "PACS")
        assert record.describe().endswith("sent, not verified (0 of 10 images on the PACS)")
        received = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in out.iterdir()}
        assert len(list(out.iterdir())) == len(received) == 10
        for inst in store.instances(store.study(study).series[0].series_instance_uid):
            ours, theirs = pydicom.dcmread(inst.path), pydicom.dcmread(
                received[inst.sop_instance_uid])
            assert theirs.PixelData == ours.PixelData
            assert theirs.file_meta.TransferSyntaxUID == ours.file_meta.TransferSyntaxUID
    finally:
        proc.terminate()
        proc.wait(timeout=10)

def test_commitment_is_asked_while_the_send_still_runs(tmp_path: Path, ct_files):
    """The first batch's N-ACTION goes out while the rest is still being sent (the peer holds
    its C-STOREs after the first batch until it is asked: without the overlap the send would
    wait 30 s and the request would come after every instance)."""
    from app.net.dimse.commit import COMMIT_EVERY

    relay_port = free_port()
    peer = RecordingPacs(commit_to=relay_port, hold_after=COMMIT_EVERY + 2)
    try:
        home = relay_home_for(tmp_path / "relay", relay_port, pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, ct_files)
        result = _json(relay(home, "send", study, "--pacs", "pacs", "--json"))
        assert result["state"] == "verified" and result["verified"] == 120, result
        assert "verified by storage commitment" in result["message"]
        first_asked, stores_before = peer.commit_requests[0]
        assert len(first_asked) == COMMIT_EVERY and stores_before < 120
        asked = [u for batch, _ in peer.commit_requests for u in batch]
        assert sorted(asked) == sorted(peer.received) and len(asked) == 120  # each asked once
        assert set(peer.received.values()) == {1}
    finally:
        peer.stop()


def test_an_instance_the_pacs_does_not_commit_is_sent_again_and_committed(tmp_path: Path,
                                                                           ct_files):
    uids = _uids(ct_files[:10])
    relay_port = free_port()
    # no C-FIND: what the PACS did not commit cannot be found there, so it is sent again
    peer = RecordingPacs(commit_to=relay_port, fail_commit_once=frozenset(uids[3:4]),
                         find=False)
    try:
        home = relay_home_for(tmp_path / "relay", relay_port, pacs_port=peer.port, ae="PACS")
        _, study = import_study(home, ct_files[:10])
        result = _json(relay(home, "send", study, "--pacs", "pacs", "--json"))
        assert result["state"] == "verified" and result["verified"] == 10, result["message"]
        assert peer.received[uids[3]] == 2
        assert all(peer.received[u] == 1 for u in uids if u != uids[3])
        assert [len(batch) for batch, _ in peer.commit_requests] == [10, 1]
    finally:
        peer.stop()
