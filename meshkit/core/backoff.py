"""How long to wait before reconnecting to the control plane.

Exponential backoff with full jitter (AWS architecture blog, "Exponential
Backoff And Jitter"): the wait is uniform in [0, min(cap, base * 2**attempt)].
Full jitter spreads a crowd of sidecars that lost the control plane at the
same moment, so they do not all return at the same moment either.
"""

from __future__ import annotations

from collections.abc import Callable

BASE_S = 0.1
CAP_S = 5.0


def ceiling(attempt: int, base: float = BASE_S, cap: float = CAP_S) -> float:
    """The longest wait allowed after `attempt` consecutive failures (0-based)."""
    if attempt >= 64:
        return cap
    return min(cap, base * 2.0**attempt)


def full_jitter(attempt: int, uniform: Callable[[float, float], float], base: float = BASE_S, cap: float = CAP_S) -> float:
    """A wait drawn uniformly from [0, ceiling(attempt)]."""
    return uniform(0.0, ceiling(attempt, base, cap))
