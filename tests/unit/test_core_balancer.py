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


import random  # noqa: E402

from meshkit.core.balancer import LeastRequest, RandomPick, RingHash  # noqa: E402


class Item:
    def __init__(self, name: str, active: int = 0) -> None:
        self.name = name
        self.active = active

    def __repr__(self) -> str:
        return self.name


def test_random_pick_is_uniform_within_a_binomial_bound() -> None:
    rng = random.Random(11)
    picker = RandomPick(["a", "b", "c", "d"], rng.randrange)
    counts = Counter(picker.pick() for _ in range(8000))
    assert all(abs(n - 2000) < 5 * 39 for n in counts.values())  # sd of Binomial(8000, 1/4) is about 39


def test_least_request_prefers_the_idle_endpoint_of_the_two_it_draws() -> None:
    busy, idle = Item("busy", 5), Item("idle", 0)
    draws = iter([0, 1, 1, 0, 0, 0])
    picker = LeastRequest([busy, idle], lambda item: item.active, lambda n: next(draws))
    assert [picker.pick(), picker.pick(), picker.pick()] == [idle, idle, busy]  # busy only when drawn twice


def test_least_request_sends_most_requests_to_the_less_loaded() -> None:
    rng = random.Random(5)
    items = [Item("a", 0), Item("b", 10), Item("c", 10)]
    picker = LeastRequest(items, lambda item: item.active, rng.randrange)
    counts = Counter(picker.pick().name for _ in range(9000))  # type: ignore[union-attr]
    # "a" wins unless neither draw is "a": P = 1 - (2/3)^2 = 5/9.
    assert abs(counts["a"] - 5000) < 5 * 47


def test_ring_hash_maps_a_key_to_the_same_endpoint_every_time() -> None:
    rng = random.Random(1)
    ring = RingHash(["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], str, rng.randrange)
    again = RingHash(["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], str, rng.randrange)
    keys = [f"user-{i}".encode() for i in range(300)]
    assert [ring.pick(k) for k in keys] == [again.pick(k) for k in keys]
    spread = Counter(ring.pick(k) for k in keys)
    assert len(spread) == 3 and min(spread.values()) > 50


def test_ring_hash_moves_only_the_keys_of_a_lost_endpoint() -> None:
    rng = random.Random(1)
    full = RingHash(["a", "b", "c"], str, rng.randrange)
    fewer = RingHash(["a", "c"], str, rng.randrange)
    keys = [f"k{i}".encode() for i in range(500)]
    moved = [k for k in keys if full.pick(k) != "b" and full.pick(k) != fewer.pick(k)]
    assert moved == []


def test_ring_hash_without_a_key_picks_at_random_and_an_empty_ring_none() -> None:
    draws = iter([2, 0])
    ring = RingHash(["a", "b", "c"], str, lambda n: next(draws))
    assert [ring.pick(None), ring.pick(None)] == ["c", "a"]
    assert RingHash([], str, random.Random().randrange).pick(b"x") is None
