"""One coarse clock for every timeout on the sidecar's connections.

Arming and cancelling a timer per request would cost more than the request's
own bookkeeping. Instead each connection notes the tick at which its current
phase began (an integer store), and one periodic sweep closes the
connections whose phase has lasted too long. The price is precision: a
timeout fires up to one tick late, which is fine for idle and slowloris
guards measured in seconds.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

TICK_S = 0.25


def ticks_for(seconds: float) -> int:
    """How many whole ticks must pass before `seconds` have surely elapsed."""
    return max(1, math.ceil(seconds / TICK_S))


class Clock:
    """Counts ticks and calls every registered sweep once per tick."""

    def __init__(self) -> None:
        self.tick = 0
        self._sweeps: list[Callable[[int], None]] = []
        self._handle: asyncio.TimerHandle | None = None

    def add_sweep(self, sweep: Callable[[int], None]) -> None:
        self._sweeps.append(sweep)

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(TICK_S, self._on_tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _on_tick(self) -> None:
        self.tick += 1
        for sweep in self._sweeps:
            sweep(self.tick)
        self._handle = asyncio.get_running_loop().call_later(TICK_S, self._on_tick)
