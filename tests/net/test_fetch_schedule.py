"""The scheduling of a fetch (:class:`app.net.schedule.FetchSchedule`) on its own: no hub."""

from __future__ import annotations

from app.net.schedule import FetchSchedule


def _study() -> FetchSchedule:
    """Series A (10 instances, a0..a9, 2 already here) and B (3, none here), hub order A, B."""
    schedule = FetchSchedule()
    schedule.add_series("A", 10, {"a0", "a1"})
    schedule.add_series("B", 3)
    schedule.set_listing("A", [f"a{i}" for i in range(10)])
    return schedule


def test_counts_and_short_series_follow_arrivals():
    schedule = _study()
    assert schedule.expected() == 13 and schedule.expected("B") == 3
    assert schedule.arrived("A") == {"a0", "a1"} and schedule.short_series() == ["A", "B"]
    for sop in ("b0", "b1", "b2"):
        assert schedule.arrived_one(sop, "B")
    assert not schedule.arrived_one("b2", "B")  # told twice: counted once
    assert schedule.short_series() == ["A"] and schedule.is_local("b1")


def test_the_hub_listing_is_authoritative_over_its_count():
    schedule = FetchSchedule()
    schedule.add_series("A", 5)
    schedule.set_listing("A", ["x", "y", "z"])
    assert schedule.expected("A") == 3 and schedule.series_of("y") == "A"


def test_urgent_instances_come_first_given_first_and_never_twice():
    schedule = _study()
    schedule.prioritise("B", ["b1", "b0"], replace=False)
    assert schedule.order == ["B", "A"]  # the series in view goes first
    assert schedule.next_urgent() == "b1"
    assert not schedule.claim("b1", "B")  # in flight: nobody asks for it again
    assert schedule.next_urgent() == "b0"
    assert schedule.next_urgent() is None


def test_a_new_scroll_replaces_what_was_not_handed_out_yet():
    schedule = _study()
    schedule.prioritise("A", ["a5", "a6"], replace=False)
    assert schedule.next_urgent() == "a5"
    schedule.prioritise("A", ["a9"], replace=True)
    assert schedule.urgent() == ["a9"]
    assert schedule.in_flight == {"a5"}  # already on its way: still arrives


def test_instances_here_are_not_asked_for():
    schedule = _study()
    schedule.prioritise("A", ["a0", "a2"], replace=False)
    assert schedule.urgent() == ["a2"]
    assert not schedule.claim("a1", "A")
    assert schedule.claim("a3", "A") and not schedule.claim("a3", "A")
    schedule.release("a3")  # its request failed: it may be asked for again
    assert schedule.claim("a3", "A")


def test_an_urgent_instance_of_an_unknown_series_waits():
    schedule = FetchSchedule()
    schedule.prioritise(None, ["x"], replace=False)
    assert schedule.next_urgent() is None  # no series: no URL to ask for it


def test_a_read_series_comes_nearest_the_slice_in_view_first():
    schedule = _study()
    sops = [f"a{i}" for i in range(10)]
    schedule.read_in_order("A", sops, 5)
    claimed = []
    while (got := schedule.claim_nearest("A")) is not None:
        claimed.append(got)
    # a0 and a1 are here; from slice 5 outwards, the later slice first at each distance
    assert claimed == [("a5", 0), ("a6", 1), ("a4", 1), ("a7", 2), ("a3", 2), ("a8", 3),
                       ("a2", 3), ("a9", 4)]


def test_the_reader_moves_and_skipped_instances_stay_skipped():
    schedule = _study()
    schedule.read_in_order("A", [f"a{i}" for i in range(10)], 2)
    assert schedule.claim_nearest("A") == ("a2", 0)
    schedule.read_focus("A", 9)
    assert schedule.claim_nearest("A", skip={"a9"}) == ("a8", 1)
    schedule.read_focus("B", 1)  # not read: ignored
    assert not schedule.is_read("B")


def test_turning_to_another_read_series_hands_it_the_lead():
    schedule = _study()
    schedule.read_in_order("A", [f"a{i}" for i in range(10)], 0)
    assert schedule.turned_from("A") is None
    schedule.read_in_order("B", ["b0", "b1", "b2"], 1)
    assert schedule.order[0] == "B" and schedule.turned_from("A") == "B"
    for sop in ("b0", "b1", "b2"):
        schedule.arrived_one(sop, "B")
    assert schedule.turned_from("A") is None  # B is complete: back to A


def test_series_order_picks_the_first_not_done():
    schedule = _study()
    schedule.add_series("C", 1)
    schedule.to_front("C")
    assert schedule.order == ["C", "A", "B"]
    assert schedule.next_series(["A", "B", "C"], done={"C"}) == "A"
    assert schedule.next_series(["B"]) == "B" and schedule.next_series([], ()) is None
