"""Notebook 13's canary analysis (a pure function of a step's rows), its table of verdicts, and its chart."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from meshkit.notebook.charts import canary
from meshkit.notebook.recorder import COLUMNS, DTYPES


def step_rows(run: int, versions: dict[str, tuple[int, int, float]], slow: dict[str, float] | None = None) -> list[tuple]:
    """{version: (requests, errors, latency_ms)} -> rows of one run; `slow` adds one request of that many ms per version."""
    out = []
    for version, (count, errors, ms) in versions.items():
        for i in range(count):
            out.append((float(run * 100 + i), ms, 500 if i < errors else 200, "", version, "", "catalog", run))
    for version, ms in (slow or {}).items():
        out.append((float(run * 100 + 99), ms, 200, "", version, "", "catalog", run))
    return out


def frame(*runs: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([r for run in runs for r in run], columns=COLUMNS).astype(DTYPES)


def test_errors_are_5xx_and_unanswered_requests_not_4xx() -> None:
    assert [canary.is_error(c) for c in (200, 404, 403, 500, 503, 0)] == [False, False, False, True, True, True]


def test_signals_per_version_count_requests_errors_and_p99() -> None:
    signals = canary.version_signals(frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 6, 40.0)})))
    assert list(signals.index) == ["v1", "v2"]
    assert signals.loc["v2", "requests"] == 30 and signals.loc["v2", "errors"] == 6
    assert signals.loc["v2", "error_rate"] == pytest.approx(0.2)
    assert signals.loc["v1", "p99_ms"] == pytest.approx(5.0)
    assert signals["requests"].dtype == "int64"


def test_a_canary_failing_more_than_two_percent_fails_the_step() -> None:
    step = canary.analyse(frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 5, 5.0)})), canary="v2", weight=10)
    assert not step.passed
    assert step.verdict == "fail: v2 error rate 16.7% > 2%"
    assert step.canary_requests == 30 and step.baseline_requests == 270


def test_a_single_error_among_thirty_is_already_above_two_percent() -> None:
    step = canary.analyse(frame(step_rows(1, {"v1": (270, 0, 5.0), "v3": (30, 1, 5.0)})), canary="v3", weight=10)
    assert not step.passed and "3.3% > 2%" in step.verdict


def test_a_canary_slower_than_twice_the_baselines_p99_fails() -> None:
    step = canary.analyse(frame(step_rows(1, {"v1": (270, 0, 10.0), "v2": (30, 0, 25.0)})), canary="v2", weight=10)
    assert not step.passed and step.verdict == "fail: v2 p99 25 ms > 2 x v1's 10 ms"
    assert step.p99_limit_ms == pytest.approx(20.0)


def test_a_canary_as_good_as_the_baseline_passes() -> None:
    step = canary.analyse(frame(step_rows(1, {"v1": (150, 0, 10.0), "v3": (150, 0, 11.0)})), canary="v3", weight=50)
    assert step.passed and step.verdict == "pass"
    assert canary.action(step) == "next step"


def test_at_100_percent_the_p99_is_compared_with_the_baselines_at_the_step_before() -> None:
    rows = frame(step_rows(4, {"v3": (300, 0, 15.0)}))
    passed = canary.analyse(rows, canary="v3", weight=100, reference_p99_ms=10.0)
    assert passed.passed and passed.baseline_p99_ms == 10.0 and passed.baseline_requests == 0
    assert canary.action(passed) == "promoted: v3 100%"
    failed = canary.analyse(rows, canary="v3", weight=100, reference_p99_ms=5.0)
    assert failed.verdict == "fail: v3 p99 15 ms > 2 x v1's at the step before 5 ms"
    unchecked = canary.analyse(rows, canary="v3", weight=100)
    assert unchecked.passed and math.isnan(unchecked.p99_limit_ms), "no baseline at all: only the error rate decides"


def test_a_step_where_the_canary_served_nothing_fails() -> None:
    step = canary.analyse(frame(step_rows(1, {"v1": (300, 0, 5.0)})), canary="v2", weight=10)
    assert not step.passed and "served no request" in step.verdict
    assert canary.action(step) == "roll back: v1 100%"


def test_thresholds_can_be_changed() -> None:
    rows = frame(step_rows(1, {"v1": (270, 0, 10.0), "v2": (30, 1, 25.0)}))
    assert canary.analyse(rows, canary="v2", weight=10, thresholds=canary.Thresholds(0.05, 3.0)).passed


def test_the_table_has_one_row_per_step_numbered_from_one() -> None:
    steps = [canary.analyse(frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 6, 40.0)})), canary="v2", weight=10),
             canary.analyse(frame(step_rows(2, {"v1": (270, 0, 5.0), "v3": (30, 0, 5.0)})), canary="v3", weight=10)]
    table = canary.steps_table(steps)
    assert list(table.index) == [1, 2] and table.index.name == "step"
    assert list(table["canary"]) == ["v2", "v3"] and list(table["share %"]) == [10, 10]
    assert list(table["canary requests"]) == [30, 30]
    assert table.loc[1, "canary error %"] == pytest.approx(20.0)
    assert list(table["then"]) == ["roll back: v1 100%", "next step"]


def test_each_run_is_named_by_its_canary_and_observed_share() -> None:
    rows = frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 6, 40.0)}), step_rows(2, {"v1": (200, 0, 6.0)}),
                 step_rows(3, {"v3": (300, 0, 7.0)}))
    table = canary.run_signals(rows)
    assert list(dict.fromkeys(table["label"])) == ["#1 v2 10%", "#2 v1 only", "#3 v3 100%"]
    assert list(table.drop_duplicates("run")["baseline_p99_ms"]) == [5.0, 6.0, 6.0], "run 3 keeps run 2's baseline"


def test_the_chart_draws_both_signals_per_version_and_the_limits() -> None:
    rows = frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 6, 40.0)}), step_rows(2, {"v1": (200, 0, 6.0)}))
    traces, layout = canary.analysis_traces(rows)
    names = [(t.name, t.yaxis) for t in traces]
    assert names == [("v1", "y"), ("v1", "y2"), ("v2", "y"), ("v2", "y2"), ("p99 limit (2 x v1)", "y2"),
                     ("error-rate limit (2%)", "y")]
    assert list(traces[0].x) == ["#1", "#2"], "a group's place is its run, which does not change while it fills"
    assert list(layout["xaxis2"]["ticktext"]) == ["#1 v2 10%", "#2 v1 only"]
    assert list(layout["xaxis2"]["tickvals"]) == ["#1", "#2"]
    assert list(traces[0].y) == [0.0, 0.0]
    assert traces[2].y[0] == pytest.approx(20.0) and math.isnan(traces[2].y[1]), "v2 got nothing after the rollback"
    assert traces[4].y[0] == pytest.approx(10.0) and math.isnan(traces[4].y[1]), "a run of v1 alone judges nothing"
    assert list(traces[5].y) == [2.0, 2.0]
    assert traces[0].marker.color == traces[1].marker.color != traces[2].marker.color
    assert layout["yaxis2"]["type"] == "log" and layout["barmode"] == "group" and "width" not in layout
    assert layout["yaxis2"]["ticktext"][:4] == ["1", "2", "5", "10"] and "200" in layout["yaxis2"]["ticktext"]


def test_a_versions_colour_does_not_change_when_another_version_appears() -> None:
    before, _ = canary.analysis_traces(frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 0, 5.0)})))
    after, _ = canary.analysis_traces(frame(step_rows(1, {"v1": (270, 0, 5.0), "v2": (30, 0, 5.0)}),
                                            step_rows(2, {"v1": (270, 0, 5.0), "v3": (30, 0, 5.0)})))
    assert before[2].marker.color == after[2].marker.color


def test_no_rows_draw_an_empty_chart_that_says_so() -> None:
    traces, layout = canary.analysis_traces(frame())
    assert traces == [] and layout["title"]["text"].endswith("no steps yet, set a split and start load")
