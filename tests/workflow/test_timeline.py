"""A study's timeline from its images and the audit trail (``relay timeline``)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pydicom
import pytest

from app.workflow import audit
from app.workflow.timeline import STAGES, parse_dt, study_timeline
from tests.workflow.conftest import import_into

GE = "ct-head/ge-hispeed-human-gantry-tilt"


@pytest.mark.parametrize(("text", "zone", "expected"), [
    ("20261203143005.25", timezone(timedelta(hours=1)),
     datetime(2026, 12, 3, 14, 30, 5, 250000, timezone(timedelta(hours=1)))),
    ("20261203143005-0500", UTC,
     datetime(2026, 12, 3, 14, 30, 5, tzinfo=timezone(timedelta(hours=-5)))),
    ("202612031430", UTC, datetime(2026, 12, 3, 14, 30, tzinfo=UTC)),
    ("2026", None, None),
    ("garbage-garbage", None, None),
])
def test_dicom_date_times_with_and_without_their_offset(text, zone, expected):
    assert parse_dt(text, zone) == expected


def scanned(tmp_path, data, n=4, start="20261203101500", offset="+0100"):
    """Copies of real CT slices acquired a second apart from ``start``, in time zone
    ``offset`` (written in Timezone Offset From UTC)."""
    out = tmp_path / "scan"
    out.mkdir()
    t0 = datetime.strptime(start, "%Y%m%d%H%M%S")
    for k, src in enumerate(sorted((data / GE).glob("*.dcm"))[:n]):
        ds = pydicom.dcmread(src)
        when = t0 + timedelta(seconds=k)
        ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S") + ".500000"
        ds.TimezoneOffsetFromUTC = offset
        ds.StationName = "CT_ED_1"
        ds.save_as(out / src.name)
    return out


def test_the_stages_come_from_the_images_and_the_audit_in_time_order(tmp_path, home, data):
    store = import_into(home, scanned(tmp_path, data))
    (study,) = [s.study_instance_uid for s in store.studies()]
    audit.record(home, "send", study_uid=study, peer="hub@10.1.1.1:443",
                 detail={"instances": 4, "first": audit.now(), "last": audit.now()})
    audit.record(home, "send", study_uid=study, peer="hub@10.1.1.1:443",
                 outcome=audit.SERIOUS_FAILURE, detail={"instances": 0})
    audit.record(home, "verify", study_uid=study, peer="hub@10.1.1.1:443",
                 detail={"instances": 4, "missing": 0})
    hub_side = tmp_path / "hubws"
    hub_side.mkdir()
    audit.record(hub_side, "arrive", study_uid=study, peer="hub@10.1.1.1:443",
                 detail={"instances": 4})
    audit.record(hub_side, "view", study_uid=study,
                 detail={"series": "1.2", "opened": audit.now(), "first_image": audit.now()})
    audit.record(hub_side, "view", study_uid="1.2.3.other", detail={"first_image": audit.now()})

    run = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "timeline", study,
                          "--with", str(hub_side), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout)
    assert line["study_instance_uid"] == study
    names = [s["stage"] for s in line["stages"]]
    assert names == ["acquired", "imported", "sent", "verified", "arrived", "first_image"]
    times = [datetime.fromisoformat(s["time"]) for s in line["stages"]]
    assert times == sorted(times) and all(t.utcoffset() is not None for t in times)
    acquired = line["stages"][0]
    assert datetime.fromisoformat(acquired["time"]) == datetime(
        2026, 12, 3, 10, 15, 0, 500000, timezone(timedelta(hours=1)))
    assert acquired["where"] == "CT_ED_1" and acquired["instances"] == 4
    imported = line["stages"][1]
    assert imported["instances"] == 4
    assert imported.get("until", imported["time"]) >= imported["time"]
    assert line["stages"][2]["where"] == "hub@10.1.1.1:443"
    assert line["stages"][2]["instances"] == 4  # the failed send does not count
    door = line["door_to_image_seconds"]
    assert door == pytest.approx((times[-1] - times[0]).total_seconds(), abs=0.002)

    # without the hub workstation's record: no arrival, no first image
    alone = study_timeline([home], study)
    assert [s.stage for s in alone.stages] == ["imported", "sent", "verified"]
    assert alone.door_to_image_seconds is None


def test_a_study_nobody_knows_is_exit_1(home):
    run = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "timeline", "1.2.3",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and json.loads(run.stdout)["stages"] == []
    assert "nothing is known" in run.stderr


def test_every_stage_name_is_the_issues():
    assert STAGES == ("acquired", "imported", "received", "sent", "verified", "arrived",
                      "first_image")
