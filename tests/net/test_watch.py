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


def test_a_pacs_study_being_read_is_asked_about_quickly_only_while_it_may_still_grow(
        tmp_path, monkeypatch) -> None:
    """A study read from a PACS is followed with one C-FIND every ``quick_seconds``; once its
    count has not changed for FOLLOW_QUICK_FOR it is asked about only every
    ``interval_seconds``, not every few seconds for as long as the tab stays open."""
    import time

    from app.net import watch as watch_module
    from app.net.devhub import free_port
    from app.settings import load_settings
    from tests.net.dimse_peers import make_pacs, relay_home_for

    pacs = make_pacs(tmp_path / "pacs").start()
    try:
        home = relay_home_for(tmp_path / "home", free_port(), pacs_port=pacs.dicom_port)
        settings = load_settings(home)
        settings.incoming.quick_seconds, settings.incoming.interval_seconds = 1, 30
        save_settings(home, settings)
        asked: list[tuple] = []
        watch = HubWatch(home, lambda hub, u: None, on_followed=lambda *a: asked.append(a))
        watch.follow("pacs", "1.2.826.0.1.3680043.8.498.1")
        assert watch.poll_once() == 1.0 and len(asked) == 1  # asked at once, then quickly
        assert 0 < watch.poll_once() <= 1.0 and len(asked) == 1  # not due: nothing asked
        monkeypatch.setattr(watch_module, "FOLLOW_QUICK_FOR", 0.5)
        time.sleep(1.05)
        assert watch.poll_once() == 30.0 and len(asked) == 2  # the same count: slow now
        assert watch.poll_once() > 29 and len(asked) == 2
        watch.unfollow("1.2.826.0.1.3680043.8.498.1")
        assert watch.poll_once() == 30.0 and len(asked) == 2
    finally:
        pacs.hub.stop()
