"""Waking long-polling sidecars when the store changes, with bursts coalesced.

A commit does not wake sidecars at once: it (re)arms a timer `debounce`
seconds later, so a burst of changes (a notebook cell applying ten resources)
reaches each sidecar as one snapshot. A steady stream of changes cannot
postpone the wake-up forever: a burst is published at most `max_delay` after
its first change. The timing rule is the pure function `next_wake_at`.

Sidecars are served from the *published* state, not the latest commit, so a
sidecar that has the published version waits even while a burst is pending,
instead of fetching every intermediate version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from meshkit.control.store import State

DEFAULT_DEBOUNCE_S = 0.005
MAX_DELAY_FACTOR = 10


def next_wake_at(first_commit: float, last_commit: float, debounce: float, max_delay: float) -> float:
    """When to publish a burst: `debounce` after its last commit, but no later than `max_delay` after its first."""
    return min(last_commit + debounce, first_commit + max_delay)


class Publisher:
    """Holds the published state and wakes the sidecars waiting for a newer one."""

    def __init__(self, state: State, debounce: float = DEFAULT_DEBOUNCE_S) -> None:
        self.published = state
        self.debounce = debounce
        self.max_delay = debounce * MAX_DELAY_FACTOR
        self.closed = False
        self._latest = state
        self._burst_started: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()

    def committed(self, state: State) -> None:
        """Note a committed state and schedule its publication."""
        self._latest = state
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._burst_started is None:
            self._burst_started = now
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(next_wake_at(self._burst_started, now, self.debounce, self.max_delay), self._publish)

    def _publish(self) -> None:
        self._timer = None
        self._burst_started = None
        self.published = self._latest
        self._wake()

    def close(self) -> None:
        """Release every waiting sidecar: the control plane is shutting down."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _wake(self) -> None:
        # Each waiter holds the event that was current when it started; a new
        # one is made for the next round, so no waiter sees a stale "set".
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, version: int | None, timeout: float, gone: Awaitable[object]) -> bool:
        """True once the published version differs from `version`; False on timeout, close or `gone`.

        `gone` completes when the client disconnects, so an abandoned long
        poll stops counting as a connected sidecar at once.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        gone_task = asyncio.ensure_future(gone)
        try:
            while not self.closed and self.published.version == version:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or gone_task.done():
                    return False
                changed = asyncio.ensure_future(self._changed.wait())
                done, _ = await asyncio.wait({changed, gone_task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if changed not in done:
                    changed.cancel()
            return not self.closed
        finally:
            gone_task.cancel()
