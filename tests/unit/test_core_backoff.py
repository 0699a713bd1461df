"""Reconnect delays: exponential with full jitter (meshkit.core.backoff)."""

from __future__ import annotations

import random

import pytest

from meshkit.core.backoff import ceiling, full_jitter


def test_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [ceiling(n) for n in range(8)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert ceiling(10_000) == 5.0


def test_full_jitter_is_uniform_between_zero_and_the_ceiling() -> None:
    rng = random.Random(3)
    draws = [full_jitter(4, rng.uniform) for _ in range(2000)]
    assert min(draws) >= 0 and max(draws) <= 1.6
    assert 0.6 < sum(draws) / len(draws) < 1.0
    assert full_jitter(3, lambda low, high: high) == pytest.approx(0.8)
