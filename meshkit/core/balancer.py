"""Choosing an endpoint: Istio's four load balancers.

A balancer is a small piece of state over the healthy endpoints of one
cluster, with no I/O, so a test can walk it and see the exact sequence.
Every balancer has `pick(key)`, where `key` is the hash key (the value of the
consistent-hash header) and the others ignore it; `pick` returns None when
there is nothing to pick (Envoy's UH). Randomness comes from the caller, so
tests can seed it.

- ROUND_ROBIN: in turn, from a random start.
- RANDOM: uniformly at random.
- LEAST_REQUEST: Envoy's power of two choices: two endpoints drawn at
  random, the one with fewer requests in flight wins ("the LB picks two
  random hosts ... and picks the host which has fewer active requests",
  https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers#weighted-least-request).
  Istio's default since 1.14.
- consistentHash on a header: a ring hash (Karger's consistent hashing,
  Envoy's RING_HASH): each endpoint owns 256 points on a 64-bit ring and a
  key goes to the first point at or after its hash. The same key reaches
  the same endpoint while the endpoint set is unchanged, and losing an
  endpoint moves only the keys it owned. Envoy spreads a fixed ring of at
  least 1024 points over the endpoints instead, so a change in their number
  also moves a few keys between the others; a fixed count per endpoint
  keeps the property exact, which is what a learner checks. A request
  without the header gets a random endpoint, as Envoy does when the hash
  policy yields no key. meshkit hashes with BLAKE2b rather than Envoy's
  xxHash, so the mapping differs from Envoy's.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
POINTS_PER_ENDPOINT = 256


class Balancer(Protocol[T_co]):
    def pick(self, key: bytes | None = None) -> T_co | None: ...


class RoundRobin(Generic[T]):
    """Hands out the items in turn, starting from `start`.

    A random start (chosen by the caller) keeps many sidecars that were
    configured at the same moment from all sending their first request to the
    same endpoint.
    """

    __slots__ = ("_items", "_next")

    def __init__(self, items: Sequence[T], start: int = 0) -> None:
        self._items = tuple(items)
        self._next = start % len(self._items) if self._items else 0

    def __len__(self) -> int:
        return len(self._items)

    def pick(self, key: bytes | None = None) -> T | None:
        """The next item, or None when there are none (Envoy's UH)."""
        items = self._items
        if not items:
            return None
        index = self._next
        self._next = index + 1 if index + 1 < len(items) else 0
        return items[index]


class RandomPick(Generic[T]):
    """Any item, uniformly."""

    __slots__ = ("_items", "_below")

    def __init__(self, items: Sequence[T], below: Callable[[int], int]) -> None:
        self._items = tuple(items)
        self._below = below

    def pick(self, key: bytes | None = None) -> T | None:
        items = self._items
        if not items:
            return None
        return items[self._below(len(items))] if len(items) > 1 else items[0]


class LeastRequest(Generic[T]):
    """Power of two choices over the items' requests in flight (`load`)."""

    __slots__ = ("_items", "_below", "_load")

    def __init__(self, items: Sequence[T], load: Callable[[T], int], below: Callable[[int], int]) -> None:
        self._items = tuple(items)
        self._load = load
        self._below = below

    def pick(self, key: bytes | None = None) -> T | None:
        items = self._items
        count = len(items)
        if count < 2:
            return items[0] if items else None
        below = self._below
        first = items[below(count)]
        second = items[below(count)]
        return first if self._load(first) <= self._load(second) else second


def ring_hash(data: bytes) -> int:
    """A 64-bit hash of `data`, stable across processes and Python versions."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class RingHash(Generic[T]):
    """Consistent hashing: a key's hash finds the next endpoint point on the ring."""

    __slots__ = ("_items", "_points", "_owners", "_below")

    def __init__(self, items: Sequence[T], name: Callable[[T], str], below: Callable[[int], int]) -> None:
        self._items = tuple(items)
        self._below = below
        ring: list[tuple[int, int]] = []
        for index, item in enumerate(self._items):
            label = name(item)
            ring.extend((ring_hash(f"{label}_{replica}".encode()), index) for replica in range(POINTS_PER_ENDPOINT))
        ring.sort()
        self._points = [point for point, _ in ring]
        self._owners = [index for _, index in ring]

    def pick(self, key: bytes | None = None) -> T | None:
        items = self._items
        if not items:
            return None
        if key is None:
            return items[self._below(len(items))]
        position = bisect_left(self._points, ring_hash(key))
        if position == len(self._points):
            position = 0
        return items[self._owners[position]]
