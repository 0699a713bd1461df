"""The limits a routed request runs under: the cluster's circuit breakers and the route's timeouts.

The exchange (meshkit.sidecar.exchange) asks these functions and does exactly
what they say; this module says what Envoy's router does.

Circuit breakers (a DestinationRule's connectionPool), checked in this order:

    requests in flight >= http2MaxRequests        -> refuse at once: 503, UO
    (then an endpoint is picked; its pool has no idle connection)
    requests waiting >= http1MaxPendingRequests   -> refuse at once: 503, UO
    otherwise                                     -> the request is admitted

An admitted request counts among the cluster's requests in flight until it
is answered; a retry also counts among its retries in flight (maxRetries,
meshkit.core.attempts). A refused one was never counted.

Timeouts (a VirtualService's timeout and retries.perTryTimeout):

    route timeout   runs from the moment the request is both admitted and
                    fully received (Envoy starts it at the request's end), over
                    every attempt and backoff. When it fires the attempt in
                    hand is abandoned (outlier detection hears a 504) and the
                    request is not retried: before the response head, the
                    sidecar answers 504 UT; after it, only closing the client's
                    connection can say the answer is cut short (flag UT).
    per-try timeout runs over one attempt, from its start to its response
                    head, when the route retries. When it fires the attempt is
                    abandoned (a 504 to outlier detection) and
                    meshkit.core.attempts decides: another attempt, or the
                    sidecar's own 504 UT. Once the head has arrived it no
                    longer applies.

Listeners (docs/limits.md has every limit with its default and Envoy's equivalent):

    connection limit    a new connection while `max_connections` are open is
                        closed at once, nothing sent, and counted: Envoy's
                        per-listener limit (runtime key
                        envoy.resource_limits.listener.<name>.connection_limit,
                        stat downstream_cx_overflow), not the connection_limit
                        network filter, whose delay would hold a descriptor on
                        purpose.
    accept errors       EMFILE, ENFILE, ENOBUFS, ENOMEM: stop accepting for
                        ACCEPT_PAUSE_S, then try again (asyncio's and so
                        uvicorn's answer; Envoy treats it as fatal). Logged at
                        most once per ACCEPT_LOG_INTERVAL_S. Any other accept
                        error concerns that one connection: accept on.
    stream idle timeout a request whose body stops arriving for the timeout is
                        answered 408 with flag SI and response code details
                        stream_idle_timeout (Envoy's HCM stream_idle_timeout);
                        after the response head, the client's connection is
                        closed instead. Either way the upstream connection is
                        dropped, never reused: the request on it is cut short.

Verdicts are preallocated constants: deciding allocates nothing. Only a
refusal's text, written for the learner, is built when it is needed.
"""

from __future__ import annotations

import errno
from typing import NamedTuple

from meshkit.core.attempts import GIVE_UP_FLAG, OUTLIER_STATUS
from meshkit.core.retry import PER_TRY_TIMEOUT, RetryPolicy

# --- circuit breakers ---


class Admission(NamedTuple):
    """Admitted or not; `flag` is the Envoy letter of a refusal (the reply is a 503), "" when admitted."""

    admitted: bool
    flag: str


ADMITTED = Admission(True, "")
REQUESTS_FULL = Admission(False, "UO")  # http2MaxRequests requests already in flight
PENDING_FULL = Admission(False, "UO")  # http1MaxPendingRequests requests already wait for a connection


def admit_request(active_requests: int, max_requests: int) -> Admission:
    """May one more request go to the cluster, with `active_requests` already in flight?"""
    return ADMITTED if active_requests < max_requests else REQUESTS_FULL


def admit_waiting(pending: int, max_pending: int) -> Admission:
    """No connection is free: may one more request wait for one, with `pending` waiting already?"""
    return ADMITTED if pending < max_pending else PENDING_FULL


def requests_full_detail(cluster: str, active_requests: int, max_requests: int) -> str:
    """The text of a REQUESTS_FULL reply."""
    return (
        f"Circuit breaker of {cluster}: {active_requests} requests are already in flight, "
        f"the DestinationRule's http2MaxRequests allows {max_requests}."
    )


def pending_full_detail(cluster: str, max_pending: int, max_connections: int) -> str:
    """The text of a PENDING_FULL reply (as many wait as may: `max_pending`)."""
    return (
        f"Circuit breaker of {cluster}: {max_pending} requests already wait for a connection "
        f"(http1MaxPendingRequests {max_pending}, maxConnections {max_connections})."
    )


# --- timeouts ---

class TimeoutVerdict(NamedTuple):
    """What a timeout that fired does.

    `acts` is False when it fired too late to matter (the request was
    answered, or the attempt already has its response head). Otherwise the
    attempt in hand is abandoned and outlier detection hears
    `outlier_status`; when `may_retry`, meshkit.core.attempts decides whether
    another attempt follows; when not, `cut` says the response head is out
    (close the client's connection, with `flag`) rather than the sidecar
    answering with `flag`'s reply.
    """

    acts: bool
    flag: str
    outlier_status: int
    may_retry: bool
    cut: bool


TOO_LATE = TimeoutVerdict(False, "", 0, False, False)
ROUTE_BEFORE_HEAD = TimeoutVerdict(True, "UT", 504, False, False)
ROUTE_AFTER_HEAD = TimeoutVerdict(True, "UT", 504, False, True)
TRY_BEFORE_HEAD = TimeoutVerdict(True, GIVE_UP_FLAG[PER_TRY_TIMEOUT], OUTLIER_STATUS[PER_TRY_TIMEOUT], True, False)


def route_timer_start(timeout: float | None, admitted: bool, request_complete: bool) -> float | None:
    """The seconds the route timeout runs if it starts now, or None: asked when the request is admitted
    and when its body ends (whichever comes second starts it)."""
    return timeout if admitted and request_complete else None


def per_try_timeout(policy: RetryPolicy) -> float | None:
    """The timeout over each attempt, or None: Istio applies perTryTimeout only to a route that retries."""
    return policy.per_try_timeout if policy.attempts else None


def on_route_timeout(head_sent: bool, answered: bool) -> TimeoutVerdict:
    """The route timeout fired; `head_sent`: a response head went to the client;
    `answered`: the request is over (answered or abandoned)."""
    if answered:
        return TOO_LATE
    return ROUTE_AFTER_HEAD if head_sent else ROUTE_BEFORE_HEAD


def on_try_timeout(head_sent: bool, answered: bool) -> TimeoutVerdict:
    """The per-try timeout fired (the arguments as for on_route_timeout)."""
    return TOO_LATE if answered or head_sent else TRY_BEFORE_HEAD


def route_timeout_detail(host: str, timeout: float, retries: int) -> str:
    """The text of the sidecar's 504 UT when the route timeout fires before any answer."""
    tries = f" after {retries + 1} attempts" if retries else ""
    return f"No complete answer from {host} within the route timeout of {timeout:g} s{tries}."


def per_try_timeout_detail(endpoint: str, timeout: float) -> str:
    """The text of the sidecar's 504 UT when the last attempt's per-try timeout fires."""
    return f"{endpoint} did not answer within the per-try timeout of {timeout:g} s."


# --- listeners ---


def admit_connection(open_now: int, max_connections: int | None) -> bool:
    """May a listener with `open_now` connections keep one more? None: no limit."""
    return max_connections is None or open_now < max_connections


# How long a listener stops accepting after running out of descriptors or memory:
# long enough that the loop does not spin on a listening socket that stays readable,
# short enough that a freed descriptor is used within a human's blink.
ACCEPT_PAUSE_S = 0.5
ACCEPT_LOG_INTERVAL_S = 1.0
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def accept_pause(error: int | None) -> float | None:
    """Seconds to stop accepting after accept() failed with `error` (an errno);
    None: the failure was that connection's own (ECONNABORTED, EPERM...): accept the next."""
    return ACCEPT_PAUSE_S if error in _OUT_OF_RESOURCES else None


def accept_log_due(now: float, last_logged: float | None) -> bool:
    """Log this accept failure? At most one line per ACCEPT_LOG_INTERVAL_S, however many fail."""
    return last_logged is None or now - last_logged >= ACCEPT_LOG_INTERVAL_S


# --- the stream idle timeout on request bodies ---

STREAM_IDLE_DETAILS = "stream_idle_timeout"  # Envoy's response code details for it


class BodyIdleVerdict(NamedTuple):
    """What a stalled request body leads to: `acts` False when nothing (the body is all
    there, or the request is over); else answer `status` with `flag`, or, when `cut`
    (the response head is out), close the client's connection with `flag`."""

    acts: bool
    flag: str
    status: int
    cut: bool


BODY_NOT_IDLE = BodyIdleVerdict(False, "", 0, False)
BODY_IDLE_REPLY = BodyIdleVerdict(True, "SI", 408, False)
BODY_IDLE_CUT = BodyIdleVerdict(True, "SI", 408, True)


def body_idle_expired(now_tick: int, last_byte_tick: int, limit_ticks: int | None) -> bool:
    """Has the body been silent for longer than the limit (ticks of the coarse clock)? None: no limit."""
    return limit_ticks is not None and now_tick - last_byte_tick > limit_ticks


def on_body_idle(body_complete: bool, head_sent: bool, answered: bool) -> BodyIdleVerdict:
    """The request body has been silent for the stream idle timeout."""
    if body_complete or answered:
        return BODY_NOT_IDLE
    return BODY_IDLE_CUT if head_sent else BODY_IDLE_REPLY


def body_idle_detail(timeout: float) -> str:
    """The text of the sidecar's 408 SI."""
    return (
        f"stream timeout: the request body stopped arriving for {timeout:g} s "
        "(the sidecar's stream idle timeout); the request was not completed upstream."
    )
