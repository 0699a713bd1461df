"""Round robin hands endpoints out in turn (meshkit.core.balancer)."""

from __future__ import annotations

from collections import Counter

from meshkit.core.balancer import RoundRobin


def test_items_come_in_turn_and_wrap() -> None:
    rr = RoundRobin(["a", "b", "c"])
    assert [rr.pick() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_start_offsets_the_rotation() -> None:
    rr = RoundRobin(["a", "b", "c"], start=5)
    assert [rr.pick() for _ in range(3)] == ["c", "a", "b"]


def test_load_is_even_over_whole_rounds() -> None:
    rr = RoundRobin(range(4), start=3)
    assert Counter(rr.pick() for _ in range(400)) == {0: 100, 1: 100, 2: 100, 3: 100}


def test_no_items_means_none() -> None:
    rr: RoundRobin[str] = RoundRobin([])
    assert rr.pick() is None and len(rr) == 0
