"""What happens after an attempt fails: try again, or give up with which flags.

The exchange (meshkit.sidecar.exchange) carries a routed request through
its attempts; at each failure it asks these functions what next and does
exactly that. The rules are Envoy's router, in the order it checks them:

    the failure is not one the route retries on   -> give up, no flag
    the route's attempts are used up              -> give up, URX (retry limit exceeded)
    the body went upstream and was not kept       -> give up, no flag (Envoy's buffer limit)
    the cluster's maxRetries are all in flight    -> give up, UO (retry overflow)
    the retry budget is spent                     -> give up, UO
    otherwise                                     -> retry after the jittered backoff

When the exchange gives up on an attempt that got no answer, the client gets
the sidecar's own reply for that failure (`GIVE_UP_FLAG`); one that got an
answer the policy would have retried gets that answer, flagged.

A connection taken from the pool may have been closed by the server just as
the request was written; the request cannot have been acted on, so a request
without a body gets one fresh connection (`retry_stale_connection`), whatever
the route's policy, and this does not count as a retry.

Verdicts are preallocated constants: deciding allocates nothing.
"""

from __future__ import annotations

from typing import NamedTuple

from meshkit.core.retry import CONNECT_FAILURE, FAILURE_STATUS, PER_TRY_TIMEOUT, RESET, RetryBudget, RetryPolicy


class Verdict(NamedTuple):
    """Retry or not; `flag` is the Envoy letter a refusal adds to the response flags (None: none)."""

    retry: bool
    flag: str | None


RETRY = Verdict(True, None)
NOT_RETRIABLE = Verdict(False, None)  # the policy does not retry this failure or status
EXHAUSTED = Verdict(False, "URX")  # every attempt the route allows was made
BODY_GONE = Verdict(False, None)  # the request body was streamed and not kept (over the replay limit)
OVERFLOW = Verdict(False, "UO")  # the cluster's maxRetries in flight, or the retry budget

# The sidecar's own reply when it gives up on an attempt that got no answer.
GIVE_UP_FLAG = {CONNECT_FAILURE: "UF", RESET: "UC", PER_TRY_TIMEOUT: "UT"}
# What outlier detection is told about an attempt that got no answer (a 503 or a 504).
OUTLIER_STATUS = FAILURE_STATUS


def next_attempt(
    policy: RetryPolicy,
    failure: int | None,
    status: int,
    retries: int,
    body_kept: bool,
    holds_retry_slot: bool,
    active_retries: int,
    max_retries: int,
    budget: RetryBudget,
    now: float,
) -> Verdict:
    """After an attempt ended with `failure` (CONNECT_FAILURE, RESET, PER_TRY_TIMEOUT) or, when that
    is None, with an answer of `status`: retry, or give up (and with which flag).

    `retries` is how many retries were made already; `body_kept` is False when
    the request's body went upstream and was not kept for a replay;
    `holds_retry_slot` is True when this request already counts among the
    cluster's `active_retries` (bounded by `max_retries`). The budget is
    only consulted when everything else allows a retry.
    """
    wanted = policy.retries_failure(failure) if failure is not None else policy.retries_status(status)
    if not wanted:
        return NOT_RETRIABLE
    if retries >= policy.attempts:
        return EXHAUSTED if policy.attempts else NOT_RETRIABLE
    if not body_kept:
        return BODY_GONE
    if not holds_retry_slot and active_retries >= max_retries:
        return OVERFLOW
    if not budget.allows(now):
        return OVERFLOW
    return RETRY


def retry_stale_connection(reused: bool, has_body: bool) -> bool:
    """A connection closed before any answer: is a new connection safe?

    Only when it was a pooled one (`reused`), and the request has no body.
    The new connection is not a pooled one, so this happens once per attempt.
    """
    return reused and not has_body

