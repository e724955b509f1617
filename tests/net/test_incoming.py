"""The Incoming list lists what *arrived* on the hub, whatever the study date (issue 19)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pydicom
import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.net.incoming import IncomingPoller
from app.settings import IncomingSettings
from app.store.local import Store
from tests.net.test_download import _client, _upload

pytestmark = pytest.mark.orthanc


def _study_dated(folder: Path, study_date: str, seed: int) -> list[Path]:
    """A small generated study whose study date is ``study_date`` (an outside CD's)."""
    files = generate_series(folder, SeriesSpec(slices=4, rows=32, columns=32, seed=seed,
                                               study_instance_uid=f"1.2.826.0.1.3680043.10.{seed}",
                                               series_instance_uid=f"1.2.826.0.1.3680043.11.{seed}"))
    for path in files:
        ds = pydicom.dcmread(path)
        ds.StudyDate = study_date
        ds.save_as(path)
    return files


def test_an_old_study_sent_after_the_first_poll_is_listed_and_counted(hub, tmp_path) -> None:
    old_before = _upload(hub, tmp_path / "spoke1", _study_dated(tmp_path / "a", "20150101", 1))
    store = Store(tmp_path / "reader")
    settings = IncomingSettings(lookback_days=3)
    poller = IncomingPoller(store, _client(hub), "hub", settings)
    first = poller.poll()
    # The first poll cannot know when the old study arrived: it was there before Relay watched.
    assert first.studies == [] and first.on_hub == 1

    old_sent = _upload(hub, tmp_path / "spoke2", _study_dated(tmp_path / "b", "20120704", 2))
    second = poller.poll()
    assert [s.study_uid for s in second.studies] == [old_sent]
    assert [s.study_uid for s in second.new] == [old_sent]
    assert second.on_hub == 2
    assert second.studies[0].received >= first.checked_at

    # A restart remembers both: nothing is new, the arrived study stays listed.
    again = IncomingPoller(store, _client(hub), "hub", settings).poll()
    assert again.new == [] and [s.study_uid for s in again.studies] == [old_sent]
    assert old_before not in [s.study_uid for s in again.studies]


def test_the_first_poll_lists_studies_dated_in_the_window(hub, tmp_path) -> None:
    date = datetime.date.today().strftime("%Y%m%d")
    today = _upload(hub, tmp_path / "spoke", _study_dated(tmp_path / "c", date, 3))
    poller = IncomingPoller(Store(tmp_path / "reader"), _client(hub), "hub",
                            IncomingSettings(lookback_days=3))
    assert [s.study_uid for s in poller.poll().studies] == [today]


def test_between_full_searches_the_quick_search_lists_todays_new_study(hub, tmp_path) -> None:
    """A study acquired today is listed by the quick search (studies dated yesterday or
    today), long before the next full search; one dated years ago waits for the full one."""
    from app.workflow import audit

    store = Store(tmp_path / "reader")
    poller = IncomingPoller(store, _client(hub), "hub",
                            IncomingSettings(interval_seconds=3600, quick_seconds=4))
    assert poller.poll_due().studies == []  # the full search
    assert poller.wait_seconds() == 4.0
    date = datetime.date.today().strftime("%Y%m%d")
    old = _upload(hub, tmp_path / "s1", _study_dated(tmp_path / "o", "20120704", 5))
    today = _upload(hub, tmp_path / "s2", _study_dated(tmp_path / "t", date, 6))
    quick = poller.poll_due()
    assert [s.study_uid for s in quick.new] == [today]
    assert poller.arriving and poller.wait_seconds() == 1.0  # a study arriving: again soon
    assert [e["study_uid"] for e in audit.read(store.home) if e["event"] == "arrive"] == [today]
    steady = poller.poll_due()
    assert steady.new == [] and not poller.arriving and poller.wait_seconds() == 4.0
    assert [s.study_uid for s in steady.studies] == [today]
    poller.full_now()
    full = poller.poll_due()
    assert {s.study_uid for s in full.new} == {old}
    assert {s.study_uid for s in full.studies} == {old, today}
