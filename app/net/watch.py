"""Watching every configured hub for incoming studies, in one background thread, without Qt.

:class:`HubWatch` polls each hub the settings name (``incoming.hub``, or all hubs) with an
:class:`~app.net.incoming.IncomingPoller`: a full search every ``incoming.interval_seconds``
and, between them, the quick search of recent studies every ``incoming.quick_seconds`` (1 s
while a study is arriving); :meth:`check_now` searches in full at once. Settings are read again
before each round, so a hub added or an interval changed in the window applies without a
restart. With ``incoming.prefetch`` on, each new study that is not local yet is handed to
``prefetch(hub, study_uid)`` (the queue runner's ``fetch``). Each poll's outcome goes to
``on_update(hub, update)`` on the watch thread: a UI hops it to its own thread.

A PACS is not polled for new studies, but a study read from one (:meth:`HubWatch.follow`) is
asked after every ``incoming.quick_seconds`` (one STUDY-level C-FIND) while it grows or grew in
the last :data:`FOLLOW_QUICK_FOR` seconds, then only every ``incoming.interval_seconds`` (a
study that stopped growing costs the PACS one association per interval, not one every few
seconds for as long as it is open): ``on_followed(pacs, study_uid, on_pacs, local)`` says how
many images the PACS holds and how many are here, so the window can retrieve the rest, as a
hub study that grows while it is read is fetched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.errors import RelayError
from app.net import hubs
from app.net.incoming import IncomingPoller, IncomingUpdate
from app.settings import Settings, load_settings
from app.store.local import Store

log = logging.getLogger(__name__)

MIN_INTERVAL = 5.0

#: A followed PACS study is asked about every ``quick_seconds`` until it has not grown for this
#: long (seconds), then every ``interval_seconds``.
FOLLOW_QUICK_FOR = 120.0

UpdateListener = Callable[[str, IncomingUpdate], None]
Prefetch = Callable[[str, str], object]
#: (PACS, study uid, images the PACS holds, images here)
FollowListener = Callable[[str, str, int, int], None]


def watched_hubs(settings: Settings) -> list[str]:
    """Names of the hubs the Incoming list polls (DICOMweb hubs: a PACS is searched from the
    Query/Retrieve dialog, not polled)."""
    names = [h.name for h in settings.web_hubs]
    chosen = settings.incoming.hub
    return [chosen] if chosen in names else names


class HubWatch:
    """Polls the configured hubs until :meth:`stop`."""

    def __init__(self, home: Path, on_update: UpdateListener,
                 prefetch: Prefetch | None = None,
                 on_followed: FollowListener | None = None) -> None:
        self.home = Path(home)
        self.on_update = on_update
        self.prefetch = prefetch
        self.on_followed = on_followed
        #: study uid -> the PACS it is read from (a hub's studies are in its polls already)
        self._followed: dict[str, str] = {}
        #: study uid -> (images the PACS held when last asked, when that count last changed,
        #: when to ask next), for the followed PACS studies
        self._follow_state: dict[str, tuple[int | None, float, float]] = {}
        self._pollers: dict[str, tuple[object, IncomingPoller]] = {}
        self._stop = threading.Event()
        self._now = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset = False
        self._full_now = False

    def start(self) -> HubWatch:
        self._thread = threading.Thread(target=self._loop, name="incoming-watch", daemon=True)
        self._thread.start()
        return self

    def check_now(self) -> None:
        """A full search of every hub now."""
        self._full_now = True
        self._now.set()

    def reconnect(self) -> None:
        """Hub profiles or secrets changed: connect afresh and poll now."""
        self._reset = True
        self._now.set()

    def follow(self, peer: str, study_uid: str) -> None:
        """``study_uid`` is read from ``peer``: when that is a PACS, ask it how many images of
        the study it holds at each round, until :meth:`unfollow`."""
        self._followed[study_uid] = peer
        self._follow_state[study_uid] = (None, time.monotonic(), 0.0)
        self._now.set()

    def unfollow(self, study_uid: str) -> None:
        self._followed.pop(study_uid, None)
        self._follow_state.pop(study_uid, None)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._now.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def poll_once(self) -> float:
        """Poll every watched hub once; returns the interval to wait before the next round."""
        try:
            settings = load_settings(self.home)
        except RelayError as exc:
            log.warning("settings unreadable: %s", exc)
            return MIN_INTERVAL
        if self._reset:
            self._reset = False
            self._pollers.clear()
        if self._full_now:
            self._full_now = False
            for _key, cached in self._pollers.values():
                cached.full_now()
        waits = [max(MIN_INTERVAL, settings.incoming.interval_seconds)]
        for name in watched_hubs(settings):
            if self._stop.is_set():
                break
            polled = self._poll_hub(settings, name)
            if polled is not None:
                waits.append(polled.wait_seconds())
        for study_uid, name in list(self._followed.items()):
            if self._stop.is_set() or settings.pacs_profile(name) is None:
                continue
            waits.append(self._follow_pacs(settings, name, study_uid))
        return min(waits)

    def _follow_pacs(self, settings: Settings, name: str, study_uid: str) -> float:
        """Ask PACS ``name`` about a followed study when due; seconds until it is due again."""
        last, changed, due = self._follow_state.get(study_uid, (None, time.monotonic(), 0.0))
        now = time.monotonic()
        if now < due:
            return due - now
        count = self._ask_pacs(settings, name, study_uid)
        if count is not None and count != last:
            last, changed = count, now
        quick = max(1.0, settings.incoming.quick_seconds)
        wait = quick if now - changed < FOLLOW_QUICK_FOR else \
            max(quick, MIN_INTERVAL, settings.incoming.interval_seconds)
        if study_uid in self._follow_state:  # not unfollowed meanwhile
            self._follow_state[study_uid] = (last, changed, now + wait)
        return wait

    def _ask_pacs(self, settings: Settings, name: str, study_uid: str) -> int | None:
        """How many images of ``study_uid`` the PACS ``name`` holds, and how many are here,
        to ``on_followed`` (nothing when the PACS cannot be asked: the next round asks again);
        the PACS's count."""
        from app.net.dimse import pacs
        from app.net.dimse.query import find_instances, study_classes

        try:
            client = pacs.connect(settings, name)  # not audited: Relay asks, not the user
            _classes, on_pacs = study_classes(client, study_uid)
            if on_pacs is None:  # the PACS does not count: its images, one by one
                on_pacs = sum(1 for _ in find_instances(client, study_uid))
        except RelayError as exc:
            log.info("PACS '%s' could not be asked about a study being read: %s", name, exc)
            return None
        except Exception as exc:  # a poll must never end the watch
            log.warning("asking PACS '%s' about a study being read failed: %s", name,
                        type(exc).__name__, exc_info=True)
            return None
        study = Store(self.home).study(study_uid)
        if self.on_followed is not None and study_uid in self._followed:
            self.on_followed(name, study_uid, on_pacs, study.instance_count if study else 0)
        return on_pacs

    def _poll_hub(self, settings: Settings, name: str) -> IncomingPoller | None:
        """The search due for hub ``name`` (full or quick); its poller (None: none made)."""
        poller = None
        try:
            poller = self._poller(settings, name)
            update = poller.poll_due(MIN_INTERVAL)
        except RelayError as exc:
            update = IncomingUpdate(studies=[], checked_at=time.time(), error=str(exc))
        except Exception as exc:  # a poll must never end the watch
            log.exception("incoming poll failed")
            update = IncomingUpdate(studies=[], checked_at=time.time(),
                                    error=f"unexpected error: {type(exc).__name__}")
        if self.prefetch is not None and settings.incoming.prefetch:
            for study in update.new:
                if study.local != "local":
                    try:
                        self.prefetch(name, study.study_uid)
                    except RelayError as exc:
                        log.warning("prefetch not queued: %s", exc)
        self.on_update(name, update)
        return poller

    def _poller(self, settings: Settings, name: str) -> IncomingPoller:
        profile = hubs.profile(settings, name)
        key = (profile.url, profile.auth, profile.user, profile.ca_file,
               settings.incoming.lookback_days)
        cached = self._pollers.get(name)
        if cached is None or cached[0] != key:
            peer = hubs.connect(self.home, name, settings, pool_size=1)
            cached = (key, IncomingPoller(Store(self.home), peer, name, settings.incoming))
            self._pollers[name] = cached
        cached[1].settings = settings.incoming
        return cached[1]

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = self.poll_once()
            self._now.wait(interval)
            self._now.clear()
