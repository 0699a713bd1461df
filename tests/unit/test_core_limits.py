"""Circuit breakers and timeouts: tables of (counts or moment) -> verdict, and the texts a refusal carries."""

from __future__ import annotations

import errno as _errno

import pytest

from meshkit.core.limits import (
    ACCEPT_LOG_INTERVAL_S,
    ACCEPT_PAUSE_S,
    ADMITTED,
    BODY_IDLE_CUT,
    BODY_IDLE_REPLY,
    BODY_NOT_IDLE,
    PENDING_FULL,
    REQUESTS_FULL,
    ROUTE_AFTER_HEAD,
    ROUTE_BEFORE_HEAD,
    TOO_LATE,
    TRY_BEFORE_HEAD,
    Admission,
    BodyIdleVerdict,
    TimeoutVerdict,
    accept_log_due,
    accept_pause,
    admit_connection,
    admit_request,
    admit_waiting,
    body_idle_detail,
    body_idle_expired,
    on_body_idle,
    on_route_timeout,
    on_try_timeout,
    pending_full_detail,
    per_try_timeout,
    per_try_timeout_detail,
    requests_full_detail,
    route_timeout_detail,
    route_timer_start,
)
from meshkit.core.retry import RetryPolicy
from meshkit.core.rules import RetrySpec


# (in flight or waiting, the limit) -> verdict, for both breakers
@pytest.mark.parametrize(
    ("count", "limit", "requests", "waiting"),
    [
        pytest.param(0, 1, ADMITTED, ADMITTED, id="none yet, limit 1: admitted"),
        pytest.param(1, 2, ADMITTED, ADMITTED, id="one below the limit: admitted"),
        pytest.param(2, 2, REQUESTS_FULL, PENDING_FULL, id="at the limit: refused"),
        pytest.param(3, 2, REQUESTS_FULL, PENDING_FULL, id="above a lowered limit: refused"),
        pytest.param(0, 0, REQUESTS_FULL, PENDING_FULL, id="limit 0: every request refused"),
    ],
)
def test_the_breakers_admit_below_their_limit_and_refuse_at_it(count: int, limit: int, requests: Admission, waiting: Admission) -> None:
    assert admit_request(count, limit) is requests
    assert admit_waiting(count, limit) is waiting


def test_a_breaker_refusal_is_a_uo_and_admission_carries_no_flag() -> None:
    assert (REQUESTS_FULL.admitted, REQUESTS_FULL.flag) == (False, "UO")
    assert (PENDING_FULL.admitted, PENDING_FULL.flag) == (False, "UO")
    assert (ADMITTED.admitted, ADMITTED.flag) == (True, "")


def test_the_refusal_texts_name_the_cluster_the_counts_and_the_setting_to_change() -> None:
    assert requests_full_detail("outbound|80||reviews.default.svc.cluster.local", 3, 3) == (
        "Circuit breaker of outbound|80||reviews.default.svc.cluster.local: 3 requests are already in flight, "
        "the DestinationRule's http2MaxRequests allows 3."
    )
    assert pending_full_detail("reviews", 1, 2) == (
        "Circuit breaker of reviews: 1 requests already wait for a connection (http1MaxPendingRequests 1, maxConnections 2)."
    )


# (route timeout, admitted, request fully received) -> seconds the route timer runs from now, or None
@pytest.mark.parametrize(
    ("timeout", "admitted", "complete", "expected"),
    [
        pytest.param(2.0, True, True, 2.0, id="admitted with the body in: starts at admission"),
        pytest.param(2.0, True, False, None, id="admitted, body still arriving: waits for its end"),
        pytest.param(2.0, False, True, None, id="body in before admission (a fault delay): waits for admission"),
        pytest.param(2.0, False, False, None, id="neither: not yet"),
        pytest.param(None, True, True, None, id="no route timeout: never"),
    ],
)
def test_the_route_timeout_starts_when_the_request_is_both_admitted_and_complete(
    timeout: float | None, admitted: bool, complete: bool, expected: float | None
) -> None:
    assert route_timer_start(timeout, admitted, complete) == expected


@pytest.mark.parametrize(
    ("attempts", "per_try", "expected"),
    [
        pytest.param(2, 0.5, 0.5, id="a route that retries: each attempt timed"),
        pytest.param(0, 0.5, None, id="no retries: perTryTimeout does not apply"),
        pytest.param(2, None, None, id="no perTryTimeout"),
    ],
)
def test_the_per_try_timeout_applies_only_to_a_route_that_retries(attempts: int, per_try: float | None, expected: float | None) -> None:
    assert per_try_timeout(RetryPolicy(RetrySpec(attempts, per_try, ("5xx",), ()))) == expected


# (which timer, a response head went to the client, the request is over) -> verdict
@pytest.mark.parametrize(
    ("route", "head_sent", "answered", "expected"),
    [
        pytest.param(True, False, False, ROUTE_BEFORE_HEAD, id="route, before the head: 504 UT reply"),
        pytest.param(True, True, False, ROUTE_AFTER_HEAD, id="route, head out: cut the connection, UT"),
        pytest.param(True, True, True, TOO_LATE, id="route, answered: nothing"),
        pytest.param(True, False, True, TOO_LATE, id="route, abandoned by the client: nothing"),
        pytest.param(False, False, False, TRY_BEFORE_HEAD, id="per-try, before the head: retry or 504 UT"),
        pytest.param(False, True, False, TOO_LATE, id="per-try, head arrived: the try is over"),
        pytest.param(False, False, True, TOO_LATE, id="per-try, abandoned: nothing"),
        pytest.param(False, True, True, TOO_LATE, id="per-try, answered: nothing"),
    ],
)
def test_what_a_timeout_does_depends_on_which_and_when(route: bool, head_sent: bool, answered: bool, expected: TimeoutVerdict) -> None:
    decide = on_route_timeout if route else on_try_timeout
    assert decide(head_sent, answered) is expected


def test_each_timeout_verdict_says_what_happens_to_the_attempt_and_the_client() -> None:
    # (acts, flag, status told to outlier detection, may retry, cut the client's connection)
    assert tuple(ROUTE_BEFORE_HEAD) == (True, "UT", 504, False, False)
    assert tuple(ROUTE_AFTER_HEAD) == (True, "UT", 504, False, True)
    assert tuple(TRY_BEFORE_HEAD) == (True, "UT", 504, True, False)
    assert TOO_LATE.acts is False


def test_the_timeout_texts_say_which_timeout_and_how_many_attempts() -> None:
    assert route_timeout_detail("reviews.default.svc.cluster.local", 0.5, 0) == (
        "No complete answer from reviews.default.svc.cluster.local within the route timeout of 0.5 s."
    )
    assert route_timeout_detail("reviews", 2.0, 2) == "No complete answer from reviews within the route timeout of 2 s after 3 attempts."
    assert per_try_timeout_detail("10.0.0.7:9080", 0.25) == "10.0.0.7:9080 did not answer within the per-try timeout of 0.25 s."


# --- listeners: the connection limit and accept failures ---


@pytest.mark.parametrize(
    ("open_now", "limit", "admitted"),
    [(0, 1, True), (1, 1, False), (1023, 1024, True), (1024, 1024, False), (2000, 1024, False), (10**6, None, True)],
)
def test_a_connection_is_kept_only_below_the_listener_limit(open_now: int, limit: int | None, admitted: bool) -> None:
    assert admit_connection(open_now, limit) is admitted


@pytest.mark.parametrize(
    ("error", "pause"),
    [
        (_errno.EMFILE, ACCEPT_PAUSE_S),
        (_errno.ENFILE, ACCEPT_PAUSE_S),
        (_errno.ENOBUFS, ACCEPT_PAUSE_S),
        (_errno.ENOMEM, ACCEPT_PAUSE_S),
        (_errno.ECONNABORTED, None),
        (_errno.EPERM, None),
        (None, None),
    ],
)
def test_running_out_of_descriptors_or_memory_pauses_accepting_other_failures_do_not(error: int | None, pause: float | None) -> None:
    assert accept_pause(error) == pause


def test_the_pause_is_short_but_not_zero() -> None:
    assert 0 < ACCEPT_PAUSE_S <= 1.0


@pytest.mark.parametrize(
    ("now", "last", "due"),
    [(5.0, None, True), (5.0, 4.5, False), (5.0, 5.0 - ACCEPT_LOG_INTERVAL_S, True), (5.0, 4.0001, False), (100.0, 4.0, True)],
)
def test_an_accept_failure_is_logged_at_most_once_a_second(now: float, last: float | None, due: bool) -> None:
    assert accept_log_due(now, last) is due


# --- the stream idle timeout on request bodies ---


@pytest.mark.parametrize(
    ("now", "last", "limit", "expired"),
    [(10, 8, 2, False), (10, 7, 2, True), (10, 10, 2, False), (100, 0, None, False), (5, 0, 4, True)],
)
def test_a_body_is_idle_once_silent_for_more_than_its_ticks(now: int, last: int, limit: int | None, expired: bool) -> None:
    assert body_idle_expired(now, last, limit) is expired


@pytest.mark.parametrize(
    ("complete", "head_sent", "answered", "verdict"),
    [
        (False, False, False, BODY_IDLE_REPLY),  # still waiting for the body: 408 SI
        (False, True, False, BODY_IDLE_CUT),  # the answer is under way: only closing can tell
        (True, False, False, BODY_NOT_IDLE),  # the body is all there: the route timeout governs
        (True, True, False, BODY_NOT_IDLE),
        (False, False, True, BODY_NOT_IDLE),  # answered already (403, 429...)
        (False, True, True, BODY_NOT_IDLE),
    ],
)
def test_stream_idle_verdicts(complete: bool, head_sent: bool, answered: bool, verdict: BodyIdleVerdict) -> None:
    assert on_body_idle(complete, head_sent, answered) is verdict


def test_the_stream_idle_reply_is_envoys_408_si() -> None:
    assert (BODY_IDLE_REPLY.flag, BODY_IDLE_REPLY.status, BODY_IDLE_REPLY.cut) == ("SI", 408, False)
    assert BODY_IDLE_CUT.flag == "SI" and BODY_IDLE_CUT.cut
    assert body_idle_detail(0.5).startswith("stream timeout: the request body stopped arriving for 0.5 s")
