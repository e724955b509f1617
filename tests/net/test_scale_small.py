"""Scale, small enough for CI: many instances and a multi-frame object larger than a part buffer.

The shape of ``bench/bench_scale.py`` (10,000 instances, a 2 GB multi-frame) at a size a test
can afford: 3 series x 60 slices and an 8 MB enhanced multi-frame CT from the project's
generators; imported, listed, planned as a volume (the multi-frame's frames are its slices),
first image rendered, sent to a real Orthanc and fetched into a second home, byte-identical,
with the store sound at every end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.dicom.synth_multiframe import generate_multiframe
from app.store.local import Store
from app.store.part_ingest import PART_BUFFER
from app.volume.plans import series_plan
from tests.net.conftest import add_hub, make_hub, relay

pytestmark = pytest.mark.orthanc

STUDY = "2.25.424242"


def _hashes(home: Path) -> dict[str, str]:
    store = Store(home)
    try:
        found = store.study(STUDY)
        assert found is not None
        return {i.sop_instance_uid: i.sha256 for s in found.series
                for i in store.instances(s.series_instance_uid)}
    finally:
        store.close()


def test_many_instances_and_a_large_multiframe_round_trip(relay_home, tmp_path) -> None:
    src = tmp_path / "src"
    for i in range(3):
        generate_series(src / f"s{i}", SeriesSpec(slices=60, rows=32, columns=32, noise_hu=0,
                                                  series_number=i + 1, study_instance_uid=STUDY,
                                                  series_instance_uid=f"2.25.4242{i}"))
    mf = generate_multiframe(src / "mf" / "enhanced.dcm", SeriesSpec(
        slices=64, rows=256, columns=256, series_number=9, study_instance_uid=STUDY,
        series_instance_uid="2.25.42429"), distinct=8)
    assert mf.stat().st_size > 8 * PART_BUFFER  # goes through the part file path, not memory

    imported = json.loads(relay(relay_home, "import", str(src), "--json").stdout)
    assert imported["imported"] == 181 and imported["failed"] == []
    listed = json.loads(relay(relay_home, "ls", "--json").stdout)["studies"]
    counts = {s["series_instance_uid"]: s["instances"] for s in listed[0]["series"]}
    assert counts == {"2.25.42420": 60, "2.25.42421": 60, "2.25.42422": 60, "2.25.42429": 1}
    store = Store(relay_home)
    plan = series_plan(store, "2.25.42429")
    assert plan.stacks[0].shape[0] == 64  # the frames are the slices of one volume
    store.close()
    first = relay(relay_home, "render", "2.25.42429", "--slice", "0", "--out",
                  str(tmp_path / "first.png"), "--json")
    assert first.returncode == 0 and json.loads(first.stdout)["shape"] == [256, 256]

    hub = make_hub(tmp_path).start(timeout=60)
    try:
        reader = tmp_path / "reader"
        reader.mkdir(mode=0o700)
        for home in (relay_home, reader):
            assert add_hub(home, hub.url).returncode == 0
        sent = relay(relay_home, "send", STUDY, "--hub", "hub", "--json", "--verify-bytes")
        assert sent.returncode == 0 and json.loads(sent.stdout)["verified"] == 181
        fetched = relay(reader, "fetch", "--hub", "hub", STUDY, "--json")
        assert fetched.returncode == 0 and json.loads(fetched.stdout)["verified"] == 181
    finally:
        hub.stop()
    assert _hashes(reader) == _hashes(relay_home)  # every instance, byte-identical
    for home in (relay_home, reader):
        assert relay(home, "check").returncode == 0
