"""Live tasks' verdicts as pure functions: the sentence a learner reads, with the measured value."""

from __future__ import annotations

import pandas as pd

from meshkit.quiz.tasks import mesh, observe, resilience, security, traffic
from meshkit.quiz.tasks.base import route_weights


def test_the_split_verdict_names_the_share_the_range_and_the_weights() -> None:
    result = traffic.shift_verdict({"v1": 59, "v3": 41}, {"v1": 0.59, "v3": 0.41}, 200)
    assert not result.passed
    assert result.message == "41% of the last 200 requests reached v3; the task asks for 20-30%; your VirtualService 'reviews' gives v1 59, v3 41"
    assert traffic.shift_verdict({"v1": 75, "v3": 25}, {"v1": 0.75, "v3": 0.25}, 200).passed
    assert "v2, which should get none" in traffic.shift_verdict({}, {"v2": 0.4, "v3": 0.25, "v1": 0.35}, 200).message


def test_a_rollback_names_every_version_still_answering() -> None:
    message = traffic.rollback_verdict({"v1": 0, "v3": 100}, {"v3": 1.0}, 100, 1.0, 50).message
    assert message.startswith("100% of 100 fresh catalog requests did not reach v1 (v3 100%)")
    assert traffic.rollback_verdict({"v1": 100, "v2": 0}, {"v1": 1.0}, 100, 0.99, 50).passed
    assert "only 90% of 50 shop page loads" in traffic.rollback_verdict({"v1": 100}, {"v1": 1.0}, 100, 0.9, 50).message


def test_the_storm_verdict_counts_attempts_per_request() -> None:
    assert not resilience.storm_verdict(40, 148, 10).passed
    assert "148 attempts for 40 requests sent (3.7 per request)" in resilience.storm_verdict(40, 148, 10).message
    assert resilience.storm_verdict(40, 48, 1).passed


def test_strict_for_productpage_only() -> None:
    assert security.strict_verdict("refused (ReadError)", "200", "200").passed
    assert "so does details" in security.strict_verdict("refused (ReadError)", "200", "refused (ReadError)").message
    assert "still got 200" in security.strict_verdict("200", "200", "200").message


def test_sticky_users_and_the_failing_edge_and_details_out_of_the_mesh() -> None:
    assert "2 of 3 users reached more than one version" in mesh.sticky_verdict({"a": ["v1", "v2"], "b": ["v1", "v3"], "c": ["v1"]}, None).message
    assert "answered 72% of 100 calls (28 with FI)" in observe.edge_verdict(100, 72, {"FI": 28}, True).message
    assert observe.out_verdict(False, 20, 20).passed and not observe.out_verdict(True, 20, 20).passed


def test_route_weights_read_the_catch_all_rule() -> None:
    vs = {"spec": {"http": [
        {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [{"destination": {"host": "r", "subset": "v2"}}]},
        {"route": [{"destination": {"host": "r", "subset": "v1"}, "weight": 80}, {"destination": {"host": "r", "subset": "v3"}, "weight": 20}]},
    ]}}
    assert route_weights(vs) == {"v1": 80, "v3": 20}
    assert route_weights({"spec": {"http": [{"route": [{"destination": {"host": "r"}}]}]}}) == {"all": 100}
    assert route_weights(None) == {}
    assert mesh.pin_verdict({}, pd.Series(["v1"] * 10 + ["v2"] * 5), []).message.startswith("10 of 15 fresh requests reached reviews v1 (v2 5)")


def test_the_breaker_verdict_tells_waiting_from_failing_fast() -> None:
    assert resilience.breaker_verdict(40, 0, None, 207.0).message == (
        "none of 40 requests was turned away fast (503 UO): with no limit each one waited for slow, median 207 ms")
    assert resilience.breaker_verdict(40, 29, 2.0, 150.0).passed
    assert "not fast" in resilience.breaker_verdict(40, 29, 180.0, 150.0).message
