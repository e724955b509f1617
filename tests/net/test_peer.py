"""The seam: every remote is a Peer, made from its profile's kind; settings files migrate."""

from __future__ import annotations

import io
import json

import pydicom
import pytest

from app.errors import SettingsError
from app.net import hubs
from app.net.fetch import Download
from app.net.peer import SERIES_UID, SOP_UID, Mover, Peer, value
from app.net.queue import TransferQueue
from app.net.send import Sender
from app.settings import (
    PROFILE_KINDS,
    SCHEMA_VERSION,
    TransferSettings,
    load_settings,
    save_settings,
)
from app.store.local import Store
from tests.net.conftest import add_hub, hub_sop_uids, import_study

#: A settings file as Relay wrote it before hub profiles had a kind (schema 1).
SCHEMA_1 = {
    "schema_version": 1,
    "hubs": [{"name": "hub", "url": "https://hub.example.org/dicom-web", "auth": "basic",
              "user": "relay", "ca_file": "", "connect_timeout": 10.0, "read_timeout": 120.0}],
    "transfer": {"batch_instances": 20},
    "viewer": {"invert": True},
}


def test_settings_of_schema_1_become_dicomweb_profiles(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps(SCHEMA_1))
    settings = load_settings(tmp_path)
    assert SCHEMA_VERSION == 3
    assert settings.schema_version == 3
    assert [(h.name, h.kind, h.user) for h in settings.hubs] == [("hub", "dicomweb", "relay")]
    assert settings.transfer.batch_instances == 20
    assert settings.other == {"viewer": {"invert": True}}
    save_settings(tmp_path, settings)
    written = json.loads((tmp_path / "settings.json").read_text())
    assert written["schema_version"] == 3 and written["hubs"][0]["kind"] == "dicomweb"
    assert load_settings(tmp_path).hubs == settings.hubs


#: A settings file of schema 2: PACS profiles in their own list (one named like a hub).
SCHEMA_2 = {
    "schema_version": 2,
    "hubs": [{**SCHEMA_1["hubs"][0], "kind": "dicomweb"}],
    "pacs": [{"name": "radiology", "host": "pacs.local", "port": 104, "ae_title": "RADPACS",
              "tls": False, "ca_file": "", "cert_file": "", "key_file": ""},
             {"name": "hub", "host": "10.0.0.2", "port": 11112, "ae_title": "OTHER"}],
    "node": {"ae_title": "SPOKE1", "port": 11113},
}


def test_settings_of_schema_2_move_the_pacs_into_dimse_profiles(tmp_path, caplog):
    (tmp_path / "settings.json").write_text(json.dumps(SCHEMA_2))
    settings = load_settings(tmp_path)
    assert settings.schema_version == 3 and "pacs" not in settings.other
    assert [(h.name, h.kind) for h in settings.hubs] == [
        ("hub", "dicomweb"), ("radiology", "dimse"), ("hub-pacs", "dimse")]
    assert "the PACS 'hub' is now called 'hub-pacs'" in caplog.text
    radiology = settings.pacs_profile("radiology")
    assert radiology is not None and radiology.address == "RADPACS@pacs.local:104"
    assert radiology.retrieve == "get" and radiology.is_pacs
    assert [h.name for h in settings.web_hubs] == ["hub"]
    save_settings(tmp_path, settings)
    written = json.loads((tmp_path / "settings.json").read_text())
    assert written["schema_version"] == 3 and "pacs" not in written
    again = load_settings(tmp_path)
    assert again.hubs == settings.hubs
    peer = hubs.connect(tmp_path, "radiology", again)
    assert isinstance(peer, Peer) and peer.where == "RADPACS@pacs.local:104"
    assert peer.client.calling_ae == "SPOKE1" and peer.client.listen_port == 11113  # type: ignore[attr-defined]


def test_a_pacs_profile_without_host_port_or_ae_title_is_refused(tmp_path):
    raw = {**SCHEMA_2, "pacs": [{"name": "bad", "host": "", "port": 104, "ae_title": "X"}]}
    (tmp_path / "settings.json").write_text(json.dumps(raw))
    with pytest.raises(SettingsError, match="PACS 'bad': a host, a port"):
        load_settings(tmp_path)


def test_a_queue_of_schema_1_keeps_its_pacs_jobs_as_send_and_fetch_jobs(tmp_path):
    """Jobs queued by a Relay whose PACS jobs had their own kinds resume as send/fetch."""
    import sqlite3

    queue = TransferQueue(tmp_path)
    send = queue.create("send", "pacs", "1.2.3", [], [("1.2.3.1", "1.2.3.9", "a.dcm", 10)])
    fetch = queue.create("fetch", "pacs", "1.2.3", ["1.2.3.9"], [], method="move")
    queue.close()
    with sqlite3.connect(tmp_path / "transfers.sqlite") as db:  # as schema 1 wrote it
        db.execute("UPDATE jobs SET kind='pacs-send' WHERE id=?", (send.id,))
        db.execute("UPDATE jobs SET kind='pacs-retrieve' WHERE id=?", (fetch.id,))
        db.execute("ALTER TABLE jobs DROP COLUMN method")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    queue = TransferQueue(tmp_path)
    assert queue.job(send.id).kind == "send" and queue.job(send.id).total == 1
    assert (queue.job(fetch.id).kind, queue.job(fetch.id).method) == ("fetch", "")
    assert queue.find_open("fetch", "pacs", "1.2.3", ["1.2.3.9"]) is not None
    queue.set_method(fetch.id, "move")
    assert TransferQueue(tmp_path).job(fetch.id).method == "move"


def test_a_profile_of_an_unknown_kind_is_refused_with_its_name(tmp_path):
    raw = {**SCHEMA_1, "schema_version": 2}
    raw["hubs"] = [{**SCHEMA_1["hubs"][0], "kind": "carrier-pigeon"}]
    (tmp_path / "settings.json").write_text(json.dumps(raw))
    with pytest.raises(SettingsError, match="hub 'hub': kind must be one of dicomweb"):
        load_settings(tmp_path)


def test_every_profile_kind_has_its_client_module():
    assert set(hubs.PEER_KINDS) == set(PROFILE_KINDS)


def test_send_and_fetch_are_movers_the_runner_drives_alike(tmp_path):
    store, queue = Store(tmp_path), TransferQueue(tmp_path)
    peer = hubs.peer_for(hubs.HubProfile("h", "http://127.0.0.1:9/dicom-web"), None)
    assert isinstance(peer, Peer)
    assert isinstance(Sender(store, queue, peer, TransferSettings()), Mover)
    assert isinstance(Download(store, queue, peer, "h", "1.2.3", TransferSettings()), Mover)


@pytest.mark.orthanc
def test_a_dicomweb_hub_answers_every_peer_operation(hub, relay_home, ct_files):
    """Through ``hubs.connect`` (profile, keyring, registry) against a real Orthanc."""
    store, study = import_study(relay_home, ct_files[:6])
    assert add_hub(relay_home, hub.url).returncode == 0
    peer = hubs.connect(relay_home, "hub")
    assert isinstance(peer, Peer)
    assert "DICOMweb" in peer.check() and peer.where.startswith("127.0.0.1:")
    files = [(inst.path, inst.size) for inst in store.instances(
        store.study(study).series[0].series_instance_uid)]
    result = peer.store(files, study)
    assert len(result.stored) == 6 and not result.failed
    assert [value(d, "0020000D") for d in peer.studies()] == [study]
    (series_row,) = list(peer.series(study))
    series = value(series_row, SERIES_UID)
    listing = [value(d, SOP_UID) for d in peer.instances(study, series)]
    assert sorted(listing) == sorted(hub_sop_uids(hub))
    # searches stream: a limit asks for no more than it needs; an offset skips
    assert len(list(peer.instances(study, series, limit=2))) == 2
    assert len(list(peer.instances(study, series, limit=10, offset=4))) == 2
    assert peer.present(study, [listing[0], "1.2.3.4"]) == {listing[0]}
    assert peer.instance_uids(study) == set(listing) and peer.study_instance_count(study) == 6
    assert {value(d, SOP_UID) for d in peer.metadata(study, series)} == set(listing)
    assert peer.study_instance_count("1.2.3.4") is None
    # retrieve: one instance, then the series, each part through the caller's sinks
    (one,) = peer.retrieve(study, series, listing[0], open_part=lambda headers: io.BytesIO(),
                           close_part=lambda sink: sink.getvalue())
    assert pydicom.dcmread(io.BytesIO(one)).SOPInstanceUID == listing[0]
    whole = list(peer.retrieve(study, series, open_part=lambda headers: io.BytesIO(),
                               close_part=lambda sink: len(sink.getvalue())))
    assert len(whole) == 6
