"""Choosing an endpoint: round robin, Envoy's default for a cluster.

The balancer is a small piece of state (where the rotation stands) with no
I/O, so a test can walk it and see the exact sequence. One balancer lives per
service per snapshot: a new snapshot starts a new rotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


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

    def pick(self) -> T | None:
        """The next item, or None when there are none (Envoy's UH)."""
        items = self._items
        if not items:
            return None
        index = self._next
        self._next = index + 1 if index + 1 < len(items) else 0
        return items[index]
