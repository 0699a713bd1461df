"""Whether to try a request again, when, and how many retries a destination can afford.

Conditions (`retry_on`) follow Envoy's router, which is what Istio's
`retryOn` configures
(https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on):

- 5xx: any 5xx answer, and no answer at all (connect failure, reset,
  per-try timeout).
- gateway-error: 502, 503 and 504 answers, and no answer at all (the sidecar
  would answer those itself with 503 or 504).
- connect-failure: the connection could not be made (or its connect timed out).
- reset: no answer at all: connect failure, the connection closed or reset
  before a response head, or the per-try timeout.
- retriable-4xx: 409.
- retriable-status-codes: the codes listed in `retriable_status_codes`.
- refused-stream, unavailable, cancelled: HTTP/2 and gRPC conditions that
  never happen on HTTP/1.1; accepted and never fire.

Envoy does not look at the method: a POST is retried under the same
conditions as a GET. What keeps a POST from being repeated by default is
Istio's default policy (canonical.py), which retries only when the request
never reached the application (connect-failure, refused-stream); a route
that asks for `5xx` or `reset` gets POST retried too, as on Istio.

Between attempts the sidecar waits Envoy's fully jittered exponential
backoff: uniform in [0, (2^n - 1) x 25 ms] before retry n, capped at 250 ms
(base_interval 25 ms, max_interval 10 x base,
https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#config-http-filters-router-x-envoy-max-retries).

The retry budget is Linkerd's
(https://linkerd.io/2/reference/service-profiles/#retry-budget, the
defaults of tower's TpsBudget): over the last 10 s, retries may be at most
20% of the requests plus 10 retries per second. Envoy's alternative bounds
retries *in flight* (a share of active requests), which a slow, steady
stream of failing requests never reaches; Linkerd's bounds the *extra
load* retries add, which is what "retries cannot multiply an outage"
asks for: a backend that always fails receives at most
1.2 x requests + 100 per 10 s, however many attempts a route allows.
"""

from __future__ import annotations

from collections.abc import Callable

from meshkit.core.rules import RetrySpec

BASE_BACKOFF_S = 0.025
MAX_BACKOFF_S = 0.25

BUDGET_PERCENT = 20
BUDGET_MIN_PER_S = 10
BUDGET_TTL_S = 10

# Why an attempt ended without a response head.
CONNECT_FAILURE = 1
RESET = 2
PER_TRY_TIMEOUT = 3

# What the sidecar would answer for a failure, for conditions defined on status codes.
FAILURE_STATUS = {CONNECT_FAILURE: 503, RESET: 503, PER_TRY_TIMEOUT: 504}


class RetryPolicy:
    """A route's retry policy, compiled into flags for the per-attempt decision."""

    __slots__ = ("attempts", "per_try_timeout", "on_5xx", "on_gateway", "on_connect_failure", "on_reset", "on_409", "codes", "replays")

    def __init__(self, spec: RetrySpec) -> None:
        conditions = set(spec.retry_on)
        self.attempts = spec.attempts
        self.per_try_timeout = spec.per_try_timeout
        self.on_5xx = "5xx" in conditions
        self.on_gateway = "gateway-error" in conditions
        self.on_connect_failure = "connect-failure" in conditions
        self.on_reset = "reset" in conditions
        self.on_409 = "retriable-4xx" in conditions
        self.codes = frozenset(spec.retriable_status_codes) if "retriable-status-codes" in conditions else frozenset()
        # Can a retry happen after the request reached the upstream? Then its
        # body must be kept to send again (connect failures never sent it).
        self.replays = self.attempts > 0 and (self.on_5xx or self.on_gateway or self.on_reset or self.on_409 or bool(self.codes))

    def retries_status(self, status: int) -> bool:
        """Does an answer with `status` deserve another attempt?"""
        if status < 400:
            return False
        if self.on_5xx and status >= 500:
            return True
        if self.on_gateway and status in (502, 503, 504):
            return True
        if self.on_409 and status == 409:
            return True
        return status in self.codes

    def retries_failure(self, failure: int) -> bool:
        """Does an attempt that got no answer (`CONNECT_FAILURE`, `RESET`, `PER_TRY_TIMEOUT`) deserve another?"""
        if self.on_5xx or self.on_gateway or self.on_reset:
            return True
        if failure == CONNECT_FAILURE and self.on_connect_failure:
            return True
        return FAILURE_STATUS[failure] in self.codes


NO_RETRIES = RetryPolicy(RetrySpec(0, None, (), ()))


def backoff_s(retry: int, uniform: Callable[[float, float], float]) -> float:
    """The wait before retry number `retry` (1 for the first retry)."""
    ceiling = BASE_BACKOFF_S * (2 ** min(retry, 16) - 1)
    return uniform(0.0, min(MAX_BACKOFF_S, ceiling))


class RetryBudget:
    """Linkerd's retry budget over a sliding window of one-second buckets.

    `now` is any monotonic clock in seconds, passed in so tests can step it.
    """

    __slots__ = ("percent", "reserve", "ttl", "requests", "retries", "second")

    def __init__(self, percent: int = BUDGET_PERCENT, min_per_s: int = BUDGET_MIN_PER_S, ttl_s: int = BUDGET_TTL_S) -> None:
        self.percent = percent
        self.reserve = min_per_s * ttl_s
        self.ttl = ttl_s
        self.requests = [0] * ttl_s
        self.retries = [0] * ttl_s
        self.second = 0

    def _roll(self, now: float) -> int:
        second = int(now)
        if second != self.second:
            gap = second - self.second
            if gap >= self.ttl or gap < 0:
                self.requests = [0] * self.ttl
                self.retries = [0] * self.ttl
            else:
                for step in range(1, gap + 1):
                    slot = (self.second + step) % self.ttl
                    self.requests[slot] = 0
                    self.retries[slot] = 0
            self.second = second
        return second % self.ttl

    def record_request(self, now: float) -> None:
        """An original request (not a retry) went to the destination."""
        slot = self._roll(now)  # first: rolling may replace the lists
        self.requests[slot] += 1

    def allows(self, now: float) -> bool:
        """Is there budget for one more retry in the window ending now?"""
        self._roll(now)
        # In whole percents, so the bound is exact (0.2 * 500 is not 100.0 in floating point).
        return 100 * (sum(self.retries) + 1) <= 100 * self.reserve + self.percent * sum(self.requests)

    def spend(self, now: float) -> bool:
        """Take one retry from the budget; False (and nothing taken) when there is none."""
        if not self.allows(now):
            return False
        slot = self._roll(now)
        self.retries[slot] += 1
        return True
