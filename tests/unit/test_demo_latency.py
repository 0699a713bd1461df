"""The latency distribution has the quantiles it was fitted to."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshkit.demo.latency import TAIL_CAP_FACTOR, fit_lognormal


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize(("p50", "p99"), [(2.0, 8.0), (3.0, 12.0), (40.0, 250.0), (1.0, 1.5)])
def test_seeded_draws_match_the_fitted_quantiles(p50: float, p99: float) -> None:
    latency = fit_lognormal(p50, p99)
    rng = random.Random(1234)

    draws = [latency.draw_ms(rng) for _ in range(50_000)]

    assert _quantile(draws, 0.50) == pytest.approx(p50, rel=0.03)
    assert _quantile(draws, 0.99) == pytest.approx(p99, rel=0.08)


def test_the_same_seed_gives_the_same_latencies() -> None:
    latency = fit_lognormal(2.0, 8.0)
    first = [latency.draw_ms(random.Random(7)) for _ in range(3)]
    second = [latency.draw_ms(random.Random(7)) for _ in range(3)]
    assert first == second


def test_p99_equal_to_p50_is_a_constant_latency() -> None:
    latency = fit_lognormal(5000.0, 5000.0)
    rng = random.Random(0)
    assert [latency.draw_ms(rng) for _ in range(100)] == pytest.approx([5000.0] * 100)


def test_zero_p50_means_no_latency() -> None:
    assert fit_lognormal(0.0, 0.0).draw_ms(random.Random(0)) == 0.0


@given(p50=st.floats(0.01, 1000.0), ratio=st.floats(1.0, 1000.0), seed=st.integers(0, 2**32))
def test_a_draw_is_never_negative_nor_beyond_the_tail_cap(p50: float, ratio: float, seed: int) -> None:
    latency = fit_lognormal(p50, p50 * ratio)
    draw = latency.draw_ms(random.Random(seed))
    assert 0.0 <= draw <= max(p50, p50 * ratio * TAIL_CAP_FACTOR)
