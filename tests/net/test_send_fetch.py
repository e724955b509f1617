"""Send and fetch against a real Orthanc, checked with Orthanc's own REST API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.store.local import Store
from tests.net.conftest import add_hub, hub_sop_uids, import_study, relay

pytestmark = pytest.mark.orthanc


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_send_then_fetch_byte_exact(hub, relay_home, tmp_path, ct_files):
    store, study = import_study(relay_home, ct_files)
    assert add_hub(relay_home, hub.url).returncode == 0

    proc = relay(relay_home, "send", study, "--hub", "hub", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"job", "state", "instances", "verified", "missing", "bytes", "seconds",
                           "message"}
    assert result["state"] == "verified"
    assert result["instances"] == result["verified"] == len(ct_files)
    assert result["missing"] == []
    assert result["bytes"] == sum(p.stat().st_size for p in ct_files)
    on_hub = hub_sop_uids(hub)
    assert len(on_hub) == len(ct_files)  # exactly once each
    local = {i.sop_instance_uid for s in store.study(study).series
             for i in store.instances(s.series_instance_uid)}
    assert set(on_hub) == local
    from app.net.queue import TransferQueue

    assert TransferQueue(relay_home).verified_on_hub("hub") == local

    # Sending again is a new job that finds everything on the hub and sends nothing.
    again = json.loads(relay(relay_home, "send", study, "--hub", "hub", "--json").stdout)
    assert again["state"] == "verified" and again["bytes"] == 0
    assert again["job"] != result["job"]
    assert len(hub_sop_uids(hub)) == len(ct_files)

    # Fetch into another home: the stored bytes arrive as they were sent.
    other = tmp_path / "other"
    other.mkdir()
    assert add_hub(other, hub.url).returncode == 0
    proc = relay(other, "fetch", study, "--hub", "hub", "--json")
    assert proc.returncode == 0, proc.stderr
    fetched = json.loads(proc.stdout)
    assert set(fetched) == set(result)
    assert fetched["state"] == "verified"
    assert fetched["instances"] == fetched["verified"] == len(ct_files)
    copy = Store(other)
    originals = {_sha(p) for p in ct_files}
    series = copy.study(study).series
    got = {i.sha256 for s in series for i in copy.instances(s.series_instance_uid)}
    assert got == originals
    for s in series:
        for inst in copy.instances(s.series_instance_uid):
            assert _sha(inst.path) == inst.sha256
    assert not list((other / "store" / "tmp").iterdir())


def test_send_some_series_only(hub, relay_home, tmp_path, ct_files):
    from app.dicom.synth import SeriesSpec, generate_series
    from app.imports.importer import import_paths

    store, study = import_study(relay_home, ct_files)
    extra = generate_series(tmp_path / "s2", SeriesSpec(
        slices=6, rows=64, columns=64, series_number=9, seed=7, study_instance_uid=study,
        series_description="second"))
    import_paths(store, [str(extra[0].parent)])
    wanted = [s for s in store.study(study).series if s.series_number == 9][0]
    assert add_hub(relay_home, hub.url).returncode == 0
    result = json.loads(relay(relay_home, "send", study, wanted.series_instance_uid,
                              "--hub", "hub", "--json").stdout)
    assert result["state"] == "verified" and result["instances"] == 6
    assert len(hub_sop_uids(hub)) == 6


def test_unknown_study_and_hub_are_clear(relay_home, hub):
    assert add_hub(relay_home, hub.url).returncode == 0
    proc = relay(relay_home, "send", "1.2.3.4", "--hub", "hub")
    assert proc.returncode == 2 and "not in the local store" in proc.stderr
    proc = relay(relay_home, "send", "1.2.3.4", "--hub", "nope")
    assert proc.returncode == 2 and "no hub called 'nope'" in proc.stderr
    proc = relay(relay_home, "fetch", "1.2.3.4", "--hub", "hub", "--json")
    assert proc.returncode == 2 and "not on hub 'hub'" in proc.stderr


def test_one_image_the_hub_cannot_take_is_named_and_the_rest_arrive(hub, relay_home, tmp_path,
                                                                    data):
    """Orthanc answers 400 to a STOW-RS request when any instance in it failed, listing the
    stored ones and the failed one with its reason: the rest of the batch is on the hub and
    the job names the one image and why, not "the hub rejected the request (400)"."""
    import pydicom

    ge = sorted((data / "ct-head" / "ge-hispeed-human-gantry-tilt").glob("*.dcm"))[:4]
    cd = tmp_path / "cd"
    cd.mkdir()
    for path in ge:
        (cd / path.name).write_bytes(path.read_bytes())
    broken = pydicom.dcmread(cd / ge[1].name)
    del broken.SeriesInstanceUID  # an outside image without one: the hub cannot file it
    broken.save_as(cd / ge[1].name)
    store, study = import_study(relay_home, sorted(cd.iterdir()))
    assert add_hub(relay_home, hub.url).returncode == 0
    proc = relay(relay_home, "send", study, "--hub", "hub", "--json")
    result = json.loads(proc.stdout)
    assert result["state"] == "failed"
    assert result["missing"] == [str(broken.SOPInstanceUID)]
    assert len(hub_sop_uids(hub)) == 3 and result["verified"] == 3
    assert "400" not in result["message"] and "cannot understand" in result["message"], result
    # which image, so the tech can find it
    assert result["message"].endswith(
        f"(image {broken.InstanceNumber} of series #{broken.SeriesNumber})"), result["message"]
