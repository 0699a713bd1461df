"""Percentiles from Istio's buckets, computed as Prometheus's histogram_quantile does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meshkit.observe import bucket_bounds, bucket_counts, histogram_quantile
from meshkit.sidecar.telemetry import BUCKETS_MS, RequestRecord, Telemetry


def test_bucket_counts_match_what_a_sidecar_counts() -> None:
    values = [0.1, 0.5, 0.50001, 3.0, 5.0, 7.0, 99.0, 1e9]
    t = Telemetry(1)
    route = t.route("source", "a", "v1", "s", "b", "v1")
    for v in values:
        t.record(RequestRecord(0.0, b"GET", b"/", b"s", 200, "-", v, None, None, None, route))
    series = next(iter(route.series.values()))
    assert list(bucket_counts(values)) == series.buckets


def test_interpolates_inside_the_bucket_holding_the_rank() -> None:
    counts = np.zeros(len(BUCKETS_MS) + 1)
    counts[3] = 10  # (5, 10]
    assert histogram_quantile(0.5, counts) == pytest.approx(7.5)
    assert histogram_quantile(0.99, counts) == pytest.approx(9.95)
    counts[0] = 10  # (0, 0.5]
    assert histogram_quantile(0.25, counts) == pytest.approx(0.25)


def test_a_rank_in_the_inf_bucket_gives_the_highest_finite_bound() -> None:
    counts = np.zeros(len(BUCKETS_MS) + 1)
    counts[-1] = 3
    assert histogram_quantile(0.5, counts) == BUCKETS_MS[-1]


def test_no_observations_is_nan() -> None:
    assert math.isnan(histogram_quantile(0.5, np.zeros(len(BUCKETS_MS) + 1)))


def test_the_estimate_stays_inside_the_true_quantiles_bucket() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=3.0, sigma=0.6, size=5000)
    counts = bucket_counts(values)
    for q in (0.5, 0.9, 0.99):
        lower, upper = bucket_bounds(float(np.quantile(values, q)))
        assert lower <= histogram_quantile(q, counts) <= upper
