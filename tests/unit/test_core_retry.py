"""Retry conditions, backoff and the retry budget (meshkit.core.retry)."""

from __future__ import annotations

import random

import pytest

from meshkit.core.retry import (
    BASE_BACKOFF_S,
    CONNECT_FAILURE,
    MAX_BACKOFF_S,
    PER_TRY_TIMEOUT,
    RESET,
    RetryBudget,
    RetryPolicy,
    backoff_s,
)
from meshkit.core.rules import DEFAULT_RETRY, RetrySpec


def policy(*conditions: str, codes: tuple[int, ...] = (), attempts: int = 2) -> RetryPolicy:
    return RetryPolicy(RetrySpec(attempts, None, conditions, codes))


@pytest.mark.parametrize(
    ("conditions", "codes", "retried"),
    [
        (("5xx",), (), {500, 502, 503, 504, 599, "connect", "reset", "timeout"}),
        (("gateway-error",), (), {502, 503, 504, "connect", "reset", "timeout"}),
        (("connect-failure",), (), {"connect"}),
        (("reset",), (), {"connect", "reset", "timeout"}),
        (("retriable-4xx",), (), {409}),
        (("retriable-status-codes",), (503, 429), {503, 429, "connect", "reset"}),
        (("refused-stream", "unavailable", "cancelled"), (), set()),
        ((), (), set()),
    ],
)
def test_what_each_condition_retries(conditions: tuple[str, ...], codes: tuple[int, ...], retried: set[object]) -> None:
    p = policy(*conditions, codes=codes)
    outcomes: dict[object, bool] = {status: p.retries_status(status) for status in (200, 404, 409, 429, 500, 502, 503, 504, 599)}
    outcomes.update({"connect": p.retries_failure(CONNECT_FAILURE), "reset": p.retries_failure(RESET), "timeout": p.retries_failure(PER_TRY_TIMEOUT)})
    assert {key for key, yes in outcomes.items() if yes} == retried


def test_istios_default_policy_retries_only_what_never_reached_the_app() -> None:
    p = RetryPolicy(DEFAULT_RETRY)
    assert p.attempts == 2 and p.retries_failure(CONNECT_FAILURE)
    assert not p.retries_failure(RESET) and not p.retries_status(503) and not p.retries_status(500)
    assert not p.replays  # so a POST body need not be kept, and is never sent twice


def test_a_policy_that_can_retry_after_sending_keeps_the_body() -> None:
    assert policy("5xx").replays and policy("reset").replays and policy("retriable-status-codes", codes=(503,)).replays
    assert not policy("5xx", attempts=0).replays and not policy("connect-failure").replays


def test_backoff_is_fully_jittered_exponential_from_25ms_capped_at_250ms() -> None:
    assert backoff_s(1, lambda low, high: high) == pytest.approx(BASE_BACKOFF_S)
    assert backoff_s(2, lambda low, high: high) == pytest.approx(3 * BASE_BACKOFF_S)
    assert backoff_s(3, lambda low, high: high) == pytest.approx(7 * BASE_BACKOFF_S)
    assert backoff_s(10, lambda low, high: high) == MAX_BACKOFF_S
    assert backoff_s(100, lambda low, high: high) == MAX_BACKOFF_S
    assert backoff_s(4, lambda low, high: low) == 0.0
    rng = random.Random(3)
    waits = [backoff_s(2, rng.uniform) for _ in range(1000)]
    assert 0 <= min(waits) and max(waits) <= 3 * BASE_BACKOFF_S


def test_budget_allows_20_percent_of_requests_plus_10_per_second_over_10_seconds() -> None:
    budget = RetryBudget()
    now = 1000.0
    for _ in range(500):
        budget.record_request(now)
    granted = sum(budget.spend(now) for _ in range(1000))
    assert granted == 100 + 100  # reserve 10/s x 10 s, plus 20% of 500


def test_budget_frees_up_as_the_window_moves_on() -> None:
    budget = RetryBudget()
    assert sum(budget.spend(0.0) for _ in range(150)) == 100
    assert not budget.spend(9.5)
    assert budget.spend(10.0)  # the second that held the spent retries has left the window
    budget.record_request(10.0)
    assert budget.allows(10.0)


def test_a_backend_that_always_fails_sees_at_most_the_budget() -> None:
    """1000 requests over 5 s, each allowed 5 retries, all failing: the attempts stay within budget."""
    budget = RetryBudget()
    attempts = 0
    for i in range(1000):
        now = i * 0.005
        budget.record_request(now)
        attempts += 1
        for _ in range(5):
            if not budget.spend(now):
                break
            attempts += 1
    assert attempts <= 1000 + 0.2 * 1000 + 100
    assert attempts >= 1000 + 0.2 * 1000  # and the budget is really spent
