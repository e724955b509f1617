"""A stroke code across the hub (real Orthanc): the reader opens today's study from the hub and
gets the stroke layout with the prior fetched beside it; the findings go back to the hub and
the spoke's Incoming tab says they arrived; opening the study there shows them."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from app.imports.importer import import_paths
from app.net.dicomweb import DicomWebClient
from app.net.http import HubSession
from app.net.queue import TransferQueue
from app.net.send import run_send, send_job
from app.settings import HubProfile, TransferSettings, load_settings, save_settings
from app.store.local import Store
from app.tasks import Progress
from tests.net.conftest import (  # noqa: F401
    HUB_PASSWORD,
    HUB_USER,
    add_hub,
    hub,
    no_system_keyring,
)
from tests.ui.conftest import shown_window
from tests.workflow.stroke_studies import stroke_study

pytestmark = pytest.mark.orthanc


def _client(url: str) -> DicomWebClient:
    return DicomWebClient(HubSession(HubProfile("h", url, "basic", HUB_USER), HUB_PASSWORD))


def _spoke(tmp_path: Path, hub_url: str) -> tuple[Path, str]:  # noqa: F811
    """The spoke's home: both studies imported and sent; today's study UID."""
    today = stroke_study(tmp_path / "today", date="20261201", seed=71, size=128)
    prior = stroke_study(tmp_path / "prior", date="20250310", seed=72, cta=False, size=128)
    home = tmp_path / "spoke"
    home.mkdir()
    assert add_hub(home, hub_url).returncode == 0
    settings = load_settings(home)
    settings.incoming.interval_seconds = 1.0
    settings.incoming.lookback_days = 0
    save_settings(home, settings)
    store = Store(home)
    report = import_paths(store, [str(p) for p in today + prior], Progress("test"))
    queue = TransferQueue(home)
    for study in report.study_uids:
        assert run_send(store, queue, _client(hub_url), send_job(store, queue, "hub", study).id,
                        TransferSettings()).state == "verified"
    return home, str(pydicom.dcmread(today[0], stop_before_pixels=True).StudyInstanceUID)


def test_stroke_code_across_the_hub_prior_and_findings_both_ways(qtbot, hub,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    spoke_home, study_uid = _spoke(tmp_path, hub.url)
    spoke = shown_window(qtbot, spoke_home, 1300, 800)
    incoming = spoke.incoming
    qtbot.waitUntil(lambda: incoming.status_of(study_uid) == "Local", timeout=30_000)

    # the hub's reader opens today's study from the hub
    reader_home = tmp_path / "reader"
    reader_home.mkdir()
    assert add_hub(reader_home, hub.url, name="Stroke hub").returncode == 0
    reader = shown_window(qtbot, reader_home, 1500, 800)
    viewer = reader.open_remote_study("Stroke hub", study_uid)

    def prior_beside() -> bool:
        shown = viewer.visible_viewports()
        return (len(shown) == 3 and shown[2].session is not None
                and shown[2].session.study.study_date == "20250310"
                and all(v.image.image is not None for v in shown))

    qtbot.waitUntil(prior_beside, timeout=120_000)  # timed in bench/bench_stroke.py
    assert viewer.protocol is not None and viewer.protocol.name == "stroke-code"
    today_vp, stroke_vp, prior_vp = viewer.visible_viewports()
    assert (stroke_vp.state.center, stroke_vp.state.width) == (40, 40)
    assert viewer.prior_search is not None
    assert [p.source for p in viewer.prior_search.priors] == ["Stroke hub"]

    # the reader scores, marks a key image, saves and sends the findings back
    qtbot.waitUntil(lambda: viewer.remote is not None and viewer.remote.finished, timeout=120_000)
    today_vp.show_slice(24)
    sop = today_vp.volume.slices[24].sop_instance_uid
    viewer.aspects_tool.toggle("left", "M2", sop)
    viewer.aspects_tool.toggle("left", "M5", sop)
    viewer.key_images = [sop]
    viewer.key_text = "Left MCA: early ischaemic change"
    stored = viewer.save_findings()
    # the report, the key images, and the presentation state of how they were read (window,
    # area in view; no drawing)
    assert sorted(s.header.series.modality for s in stored) == ["KO", "PR", "SR"]
    job = reader.send_findings(viewer, study_uid,
                               [s.header.series.series_instance_uid for s in stored])
    assert job is not None
    wanted = {s.header.instance.sop_instance_uid for s in stored}
    client = _client(hub.url)
    qtbot.waitUntil(lambda: wanted <= client.instance_uids(study_uid), timeout=60_000)

    # the spoke hears of them and opening the study there shows them
    qtbot.waitUntil(lambda: "findings SR/KO/PR" in incoming.status_of(study_uid),
                    timeout=30_000)
    assert any(n.startswith("Findings arrived on hub 'hub'") for n in incoming.notices)
    incoming.select("hub", study_uid)
    incoming.open_selected()
    spoke_viewer = spoke.viewers[study_uid]
    # the score, the key image: all of it, also when the study opened before the last of the
    # findings objects had arrived (seen under load: the report without the key-image note)
    qtbot.waitUntil(lambda: spoke_viewer.aspects_tool.aspects.score("left") == 8
                    and spoke_viewer.key_images == [sop], timeout=120_000)
    assert spoke_viewer.key_text == "Left MCA: early ischaemic change"
    for window in (spoke, reader):
        for v in window.viewers.values():
            v.close_all()
