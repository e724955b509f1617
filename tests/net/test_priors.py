"""Earlier studies of the patient on a real Orthanc hub, found through the Peer seam (QIDO-RS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import HubError
from app.imports.importer import import_paths
from app.net.dicomweb import DicomWebClient
from app.net.http import HubSession
from app.net.queue import TransferQueue
from app.net.send import run_send, send_job
from app.settings import HubProfile, TransferSettings
from app.store.local import Store
from app.tasks import Progress
from app.workflow.priors import find_priors
from tests.net.conftest import HUB_PASSWORD, HUB_USER
from tests.workflow.stroke_studies import stroke_study

pytestmark = pytest.mark.orthanc


def _client(url: str) -> DicomWebClient:
    return DicomWebClient(HubSession(HubProfile("h", url, "basic", HUB_USER), HUB_PASSWORD,
                                     pool_size=4))


def _send_all(hub, home: Path, files: list[Path]) -> Store:
    store = Store(home)
    report = import_paths(store, [str(p) for p in files], Progress("test"))
    queue = TransferQueue(home)
    for study in report.study_uids:
        result = run_send(store, queue, _client(hub.url), send_job(store, queue, "hub", study).id,
                          TransferSettings())
        assert result.state == "verified"
    return store


def test_the_prior_on_the_hub_is_found_for_todays_study(hub, tmp_path: Path) -> None:
    today = stroke_study(tmp_path / "today", date="20261201", seed=21)
    prior = stroke_study(tmp_path / "prior", date="20250310", seed=22, cta=False)
    other = stroke_study(tmp_path / "other", date="20240101", seed=23, cta=False,
                         patient_id="SOMEONE-ELSE")
    foreign = stroke_study(tmp_path / "foreign", date="20230101", seed=24, cta=False,
                           issuer="OTHER-HOSPITAL")
    _send_all(hub, tmp_path / "spoke", today + prior + other + foreign)
    # the reader has only today's study; the prior is on the hub
    reader = Store(tmp_path / "reader")
    import_paths(reader, [str(p) for p in today], Progress("test"))
    (study,) = reader.studies()
    assert not study.patient.issuer_of_patient_id
    found = find_priors(reader, study, {"hub": _client(hub.url)})
    assert found.problems == ()
    # the issuer-less study matches a study with an issuer (most media carry none)
    assert [p.study_date for p in found.priors] == ["20250310", "20230101"]
    best = found.most_relevant
    assert best is not None and (best.kind, best.source, best.instances) == ("hub", "hub", 40)
    assert best.modalities == ("CT",)


def test_an_unreachable_hub_is_one_problem_and_local_priors_still_come(tmp_path: Path) -> None:
    today = stroke_study(tmp_path / "today", date="20261201", seed=31, cta=False)
    prior = stroke_study(tmp_path / "prior", date="20250310", seed=32, cta=False)
    store = Store(tmp_path / "home")
    import_paths(store, [str(p) for p in today + prior], Progress("test"))
    study = max(store.studies(), key=lambda s: s.study_date)
    dead = _client("http://127.0.0.1:9/dicom-web")  # nothing listens on the discard port
    found = find_priors(store, study, {"down": dead})
    assert [(p.source, p.study_date) for p in found.priors] == [("local", "20250310")]
    assert len(found.problems) == 1 and found.problems[0].startswith("down:")
    with pytest.raises(HubError):
        list(dead.studies(PatientID="x"))


def test_the_prior_on_a_pacs_is_found_by_c_find(tmp_path: Path) -> None:
    from app.net.dimse import pacs as pacs_profiles
    from app.settings import load_settings
    from tests.net.dimse_peers import make_pacs, relay_home_for

    pacs = make_pacs(tmp_path / "pacs").start()
    try:
        today = stroke_study(tmp_path / "today", date="20261201", seed=25, cta=False)
        prior = stroke_study(tmp_path / "prior", date="20250310", seed=26, cta=False)
        _send_all(pacs.hub, tmp_path / "spoke", today + prior)  # through Orthanc's DICOMweb
        home = relay_home_for(tmp_path / "reader", pacs.relay_port, pacs_port=pacs.dicom_port)
        reader = Store(home)
        import_paths(reader, [str(p) for p in today], Progress("test"))
        (study,) = reader.studies()
        client = pacs_profiles.connect(load_settings(home), "pacs")
        found = find_priors(reader, study, pacs={"pacs": client})
    finally:
        pacs.hub.stop()
    assert found.problems == ()
    assert [(p.kind, p.source, p.study_date, p.instances) for p in found.priors] == [
        ("pacs", "pacs", "20250310", 40)]
