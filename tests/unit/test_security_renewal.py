"""When a sidecar renews its certificate (meshkit.security.renewal)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from meshkit.security.renewal import renewal_time
from tests.unit.test_security_samples import NOW


@pytest.mark.parametrize(
    ("lifetime", "earliest", "latest"),
    [
        (timedelta(hours=24), timedelta(hours=12) - timedelta(minutes=14.4), timedelta(hours=12) + timedelta(minutes=14.4)),
        (timedelta(minutes=1), timedelta(seconds=29.4), timedelta(seconds=30.6)),
        (timedelta(minutes=10), timedelta(seconds=294), timedelta(seconds=306)),
    ],
    ids=["a_day_renews_at_twelve_hours_give_or_take_a_quarter_hour", "a_minute_renews_at_thirty_seconds", "ten_minutes_renew_at_five"],
)
def test_a_certificate_is_renewed_at_half_its_life_plus_or_minus_one_percent(
    lifetime: timedelta, earliest: timedelta, latest: timedelta
) -> None:
    rng = random.Random(7)
    for _ in range(200):
        at = renewal_time(NOW, NOW + lifetime, rng)
        assert NOW + earliest <= at <= NOW + latest


def test_the_same_seed_gives_the_same_schedule() -> None:
    first = [renewal_time(NOW, NOW + timedelta(hours=1), random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1


def test_jitter_spreads_sidecars_that_received_certificates_at_the_same_moment() -> None:
    rng = random.Random(1)
    times = {renewal_time(NOW, NOW + timedelta(hours=24), rng) for _ in range(50)}
    assert len(times) == 50
    spread = max(times) - min(times)
    assert timedelta(minutes=10) < spread <= timedelta(minutes=28.8)


def test_lifetime_is_counted_from_receipt_not_from_the_backdated_not_before() -> None:
    at = renewal_time(NOW, NOW + timedelta(minutes=1), random.Random(0), jitter=0.0)
    assert at == NOW + timedelta(seconds=30)


def test_a_certificate_already_expired_on_arrival_is_renewed_at_once() -> None:
    assert renewal_time(NOW, NOW - timedelta(seconds=1), random.Random(0)) == NOW
    assert renewal_time(NOW, NOW, random.Random(0)) == NOW


@pytest.mark.parametrize(
    ("fraction", "jitter"),
    [(0.0, 0.0), (1.0, 0.0), (0.5, 0.5), (0.5, -0.1), (0.99, 0.02)],
    ids=["at_issue", "at_expiry", "jitter_reaching_zero", "negative_jitter", "jitter_reaching_expiry"],
)
def test_a_schedule_that_could_renew_at_issue_or_at_expiry_is_refused(fraction: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        renewal_time(NOW, NOW + timedelta(hours=1), random.Random(0), fraction, jitter)
