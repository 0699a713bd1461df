"""After a failed attempt, what next: a table of (what happened, policy, counts) -> verdict."""

from __future__ import annotations

import pytest

from meshkit.core.attempts import (
    BODY_GONE,
    EXHAUSTED,
    GIVE_UP_FLAG,
    NOT_RETRIABLE,
    OUTLIER_STATUS,
    OVERFLOW,
    RETRY,
    Verdict,
    next_attempt,
    retry_stale_connection,
)
from meshkit.core.retry import CONNECT_FAILURE, PER_TRY_TIMEOUT, RESET, RetryBudget, RetryPolicy
from meshkit.core.rules import DEFAULT_RETRY, RetrySpec

ISTIO_DEFAULT = RetryPolicy(DEFAULT_RETRY)
ON_5XX = RetryPolicy(RetrySpec(3, None, ("5xx",), ()))
ON_RESET = RetryPolicy(RetrySpec(2, None, ("reset",), ()))
ON_CODES = RetryPolicy(RetrySpec(2, None, ("retriable-status-codes",), (429,)))
NONE = RetryPolicy(RetrySpec(0, None, ("5xx",), ()))


def spent_budget() -> RetryBudget:
    """A budget with nothing left: no requests in the window and the reserve used up."""
    budget = RetryBudget(percent=20, min_per_s=1, ttl_s=1)
    assert budget.spend(0.0)
    return budget


# (policy, failure, status, retries made, body kept, holds a retry slot, active retries, max retries, budget) -> verdict
TABLE = [
    pytest.param(ISTIO_DEFAULT, CONNECT_FAILURE, 0, 0, True, False, 0, 10, RetryBudget(), RETRY, id="connect failure, Istio default: retry"),
    pytest.param(ISTIO_DEFAULT, CONNECT_FAILURE, 0, 2, True, True, 1, 10, RetryBudget(), EXHAUSTED, id="two retries made of two: URX"),
    pytest.param(ISTIO_DEFAULT, RESET, 0, 0, True, False, 0, 10, RetryBudget(), NOT_RETRIABLE, id="reset, Istio default: not retried"),
    pytest.param(ISTIO_DEFAULT, None, 503, 0, True, False, 0, 10, RetryBudget(), NOT_RETRIABLE, id="503 answer, Istio default: relayed"),
    pytest.param(ON_5XX, None, 503, 0, True, False, 0, 10, RetryBudget(), RETRY, id="503 under 5xx: retry"),
    pytest.param(ON_5XX, None, 404, 0, True, False, 0, 10, RetryBudget(), NOT_RETRIABLE, id="404 under 5xx: relayed"),
    pytest.param(ON_5XX, PER_TRY_TIMEOUT, 0, 1, True, True, 1, 10, RetryBudget(), RETRY, id="per-try timeout under 5xx: retry"),
    pytest.param(ON_5XX, None, 500, 3, True, True, 1, 10, RetryBudget(), EXHAUSTED, id="attempts used up: URX"),
    pytest.param(ON_5XX, None, 500, 0, False, False, 0, 10, RetryBudget(), BODY_GONE, id="body not kept: relayed, no flag"),
    pytest.param(ON_5XX, None, 500, 0, True, False, 3, 3, RetryBudget(), OVERFLOW, id="maxRetries in flight: UO"),
    pytest.param(ON_5XX, None, 500, 1, True, True, 3, 3, RetryBudget(), RETRY, id="holding a slot already: not counted twice"),
    pytest.param(ON_5XX, None, 500, 0, True, False, 0, 10, spent_budget(), OVERFLOW, id="budget spent: UO"),
    pytest.param(ON_RESET, RESET, 0, 0, True, False, 0, 10, RetryBudget(), RETRY, id="reset under reset: retry"),
    pytest.param(ON_RESET, CONNECT_FAILURE, 0, 0, True, False, 0, 10, RetryBudget(), RETRY, id="connect failure under reset: retry"),
    pytest.param(ON_CODES, None, 429, 0, True, False, 0, 10, RetryBudget(), RETRY, id="a listed status code: retry"),
    pytest.param(ON_CODES, RESET, 0, 0, True, False, 0, 10, RetryBudget(), NOT_RETRIABLE, id="reset, only 429 listed: not retried"),
    pytest.param(NONE, None, 503, 0, True, False, 0, 10, RetryBudget(), NOT_RETRIABLE, id="attempts 0: relayed without URX"),
]


@pytest.mark.parametrize(
    ("policy", "failure", "status", "retries", "body_kept", "holds", "active", "max_retries", "budget", "expected"), TABLE
)
def test_next_attempt(
    policy: RetryPolicy,
    failure: int | None,
    status: int,
    retries: int,
    body_kept: bool,
    holds: bool,
    active: int,
    max_retries: int,
    budget: RetryBudget,
    expected: Verdict,
) -> None:
    assert next_attempt(policy, failure, status, retries, body_kept, holds, active, max_retries, budget, 0.5) is expected


def test_the_budget_is_not_consulted_when_something_else_refuses() -> None:
    budget = spent_budget()
    assert next_attempt(ON_5XX, None, 500, 0, False, False, 0, 10, budget, 0.5) is BODY_GONE
    assert next_attempt(ON_5XX, None, 404, 0, True, False, 0, 10, budget, 0.5) is NOT_RETRIABLE


@pytest.mark.parametrize(
    ("reused", "has_body", "expected"),
    [
        pytest.param(True, False, True, id="pooled, no body: a new connection"),
        pytest.param(True, True, False, id="pooled, a body: not replayed"),
        pytest.param(False, False, False, id="a new connection (or the replacement) closed: no second chance"),
        pytest.param(False, True, False, id="new, a body"),
    ],
)
def test_a_stale_pooled_connection_gets_one_new_one_for_a_bodiless_request(reused: bool, has_body: bool, expected: bool) -> None:
    assert retry_stale_connection(reused, has_body) is expected


def test_each_unanswered_failure_has_its_reply_flag_and_outlier_status() -> None:
    assert {f: (GIVE_UP_FLAG[f], OUTLIER_STATUS[f]) for f in (CONNECT_FAILURE, RESET, PER_TRY_TIMEOUT)} == {
        CONNECT_FAILURE: ("UF", 503),
        RESET: ("UC", 503),
        PER_TRY_TIMEOUT: ("UT", 504),
    }
