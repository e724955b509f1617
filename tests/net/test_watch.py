"""Which hubs the Incoming list watches, and a watch that keeps going when a hub is down."""

from __future__ import annotations

import threading

from app.net.watch import HubWatch, watched_hubs
from app.settings import HubProfile, Settings, save_settings


def test_every_hub_is_watched_unless_one_is_chosen() -> None:
    settings = Settings(hubs=[HubProfile(name="a", url="http://h/a"),
                              HubProfile(name="b", url="http://h/b")])
    assert watched_hubs(settings) == ["a", "b"]
    settings.incoming.hub = "b"
    assert watched_hubs(settings) == ["b"]
    settings.incoming.hub = "gone"
    assert watched_hubs(settings) == ["a", "b"]


def test_a_hub_that_cannot_be_asked_becomes_an_error_update(tmp_path) -> None:
    settings = Settings(hubs=[HubProfile(name="down", url="http://127.0.0.1:9/dicom-web",
                                         connect_timeout=2)])
    settings.incoming.interval_seconds = 1
    save_settings(tmp_path, settings)
    updates = []
    got = threading.Event()
    watch = HubWatch(tmp_path, lambda hub, u: (updates.append((hub, u)), got.set()))
    settings.incoming.quick_seconds = 0
    save_settings(tmp_path, settings)
    assert 4.0 < watch.poll_once() <= 5.0  # full searches never more often than every 5 s
    assert got.is_set()
    settings.incoming.quick_seconds = 4
    save_settings(tmp_path, settings)
    assert watch.poll_once() == 4.0  # the quick search of recent studies, between them
    hub, update = updates[0]
    assert hub == "down" and update.studies == [] and "cannot reach the hub" in update.error
