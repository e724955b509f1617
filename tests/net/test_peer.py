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
    assert SCHEMA_VERSION == 2
    assert settings.schema_version == 2
    assert [(h.name, h.kind, h.user) for h in settings.hubs] == [("hub", "dicomweb", "relay")]
    assert settings.transfer.batch_instances == 20
    assert settings.other == {"viewer": {"invert": True}}
    save_settings(tmp_path, settings)
    written = json.loads((tmp_path / "settings.json").read_text())
    assert written["schema_version"] == 2 and written["hubs"][0]["kind"] == "dicomweb"
    assert load_settings(tmp_path).hubs == settings.hubs


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
