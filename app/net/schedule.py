"""What a fetch asks for next: the pure scheduling of :class:`app.net.fetch.Download`.

:class:`FetchSchedule` knows, for one study, how many instances each series has on the hub,
which instances are in the local store, which are on their way, and what someone is waiting
for; it answers "what next?" in four ways, in this order of urgency:

1. urgent instances (:meth:`prioritise`: the slice in view), one request each, newest first;
2. for a series someone reads (:meth:`read_in_order`), the instance nearest the slice in view
   that is neither here nor on its way (:meth:`claim_nearest`);
3. the series order (:meth:`next_series`): series someone prioritised or reads first, then the
   hub's order;
4. series still short of what the hub lists (:meth:`short_series`).

An instance handed out by :meth:`next_urgent`, :meth:`claim` or :meth:`claim_nearest` is
*in flight* until :meth:`arrived_one` or :meth:`release`: it is never handed out twice.

No network, no threads, no clock: the download calls every method with its lock held, and the
unit tests call them directly (``tests/net/test_fetch_schedule.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class FetchSchedule:
    """The scheduling state of one study's download (not thread-safe: callers lock)."""

    def __init__(self) -> None:
        self.expected_counts: dict[str, int] = {}  # series -> instances on the hub
        self._arrived: dict[str, set[str]] = {}  # series -> SOP UIDs in the local store
        self._series_of: dict[str, str] = {}  # sop -> series, where known
        self.order: list[str] = []  # series, the next to fetch first
        self._urgent: deque[str] = deque()
        self.in_flight: set[str] = set()  # on their way one by one (never asked for twice)
        #: series someone reads -> (its SOP Instance UIDs in slice order, the slice in view)
        self._reading: dict[str, tuple[list[str], int]] = {}

    # -- what the hub and the store hold -----------------------------------------------------
    def add_series(self, series: str, expected: int, local: Iterable[str] = ()) -> None:
        """A series of the study: ``expected`` instances on the hub, ``local`` ones here."""
        self.expected_counts[series] = expected
        self._arrived.setdefault(series, set()).update(local)
        if series not in self.order:
            self.order.append(series)

    def set_listing(self, series: str, listed: Iterable[str]) -> None:
        """The hub's instance list of a series: it is authoritative over the count."""
        listed = set(listed)
        self.expected_counts[series] = len(listed)
        for sop in listed:
            self._series_of.setdefault(sop, series)

    def expected(self, series: str | None = None) -> int:
        """Instances the hub holds (in one series, or in the study)."""
        return sum(n for s, n in self.expected_counts.items() if series in (None, s))

    def arrived(self, series: str | None = None) -> set[str]:
        """SOP Instance UIDs in the local store (of one series, or all)."""
        return {u for s, uids in self._arrived.items() if series in (None, s) for u in uids}

    def is_local(self, sop: str) -> bool:
        series = self._series_of.get(sop)
        return series is not None and sop in self._arrived.get(series, ())

    def series_of(self, sop: str) -> str | None:
        return self._series_of.get(sop)

    def short_series(self) -> list[str]:
        """Series with fewer instances here than on the hub, in fetching order."""
        return [s for s in self.order
                if s in self.expected_counts
                and len(self._arrived.get(s, ())) < self.expected_counts[s]]

    def arrived_one(self, sop: str, series: str) -> bool:
        """``sop`` is in the store now; False if it was already known to be."""
        arrived = self._arrived.setdefault(series, set())
        if sop in arrived:
            return False
        arrived.add(sop)
        self.in_flight.discard(sop)
        self._series_of.setdefault(sop, series)
        return True

    # -- what someone is waiting for ---------------------------------------------------------
    def prioritise(self, series: str | None, sops: Iterable[str], *, replace: bool) -> None:
        """These instances next (the first given first), and this series before the others.
        ``replace``: forget the urgent instances asked for before and not handed out yet."""
        if replace:
            self._urgent.clear()
        for sop in reversed(list(sops)):
            if series:
                self._series_of.setdefault(sop, series)
            if not self.is_local(sop):
                self._urgent.appendleft(sop)
        if series:
            self.to_front(series)

    def urgent(self) -> list[str]:
        """The urgent instances not handed out yet, the next first."""
        return list(self._urgent)

    def read_in_order(self, series: str, sops: list[str], k: int) -> None:
        """Someone reads ``series`` (``sops`` in slice order) at slice ``k``; it goes first."""
        self._reading[series] = (list(sops), k)
        for sop in sops:
            self._series_of.setdefault(sop, series)
        self.to_front(series)

    def read_focus(self, series: str, k: int) -> None:
        """The reader of ``series`` looks at slice ``k`` now (ignored for a series not read)."""
        reading = self._reading.get(series)
        if reading is not None:
            self._reading[series] = (reading[0], k)

    def is_read(self, series: str) -> bool:
        return series in self._reading

    def to_front(self, series: str) -> None:
        """Fetch this series before the others."""
        if series in self.order:
            self.order.remove(series)
        self.order.insert(0, series)

    # -- what next -------------------------------------------------------------------------------
    def next_urgent(self) -> str | None:
        """The next urgent instance not here and not in flight, now in flight; None if none."""
        while self._urgent:
            sop = self._urgent.popleft()
            if not self.is_local(sop) and sop in self._series_of and sop not in self.in_flight:
                self.in_flight.add(sop)
                return sop
        return None

    def claim(self, sop: str, series: str) -> bool:
        """Put ``sop`` in flight; False when it is here or in flight already."""
        self._series_of.setdefault(sop, series)
        if sop in self.in_flight or self.is_local(sop):
            return False
        self.in_flight.add(sop)
        return True

    def release(self, sop: str) -> None:
        """``sop`` is no longer on its way (its request failed, or it is here)."""
        self.in_flight.discard(sop)

    def next_series(self, among: Iterable[str], done: Iterable[str] = ()) -> str | None:
        """The first series of ``among`` in fetching order that is not ``done``."""
        among, done = set(among), set(done)
        return next((s for s in self.order if s in among and s not in done), None)

    def turned_from(self, series: str) -> str | None:
        """The series someone reads now instead of ``series`` (first in the order and still
        short), or None while ``series`` is still the one to read."""
        lead = self.order[0] if self.order else series
        if lead != series and lead in self._reading and (
                len(self._arrived.get(lead, ())) < self.expected_counts.get(lead, 0)):
            return lead
        return None

    def claim_nearest(self, series: str, skip: Iterable[str] = ()) -> tuple[str, int] | None:
        """The instance of a read series nearest the slice in view that is neither here, in
        flight nor in ``skip``, now in flight, with its distance in slices; None if none."""
        sops, k = self._reading[series]
        arrived = self._arrived.get(series, set())
        skip = set(skip)
        for d in range(max(k + 1, len(sops) - k)):
            for i in (k + d, k - d) if d else (k,):
                if 0 <= i < len(sops):
                    sop = sops[i]
                    if sop not in arrived and sop not in self.in_flight and sop not in skip:
                        self.in_flight.add(sop)
                        return sop, d
        return None
