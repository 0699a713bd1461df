"""Charts of lessons 07 and 08 (circuit breaker, outlier detection, faults) as pure functions of small tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from meshkit.errors import UnknownWorkload
from meshkit.observe import endpoints_frame

from meshkit.notebook.charts import faults
from meshkit.notebook.charts.faults import (
    ABORTED,
    APP_ERROR,
    DELAYED,
    NO_HEALTHY,
    OK,
    OTHER,
    OUTCOMES,
    OVERFLOW,
    TIMEOUT,
)
from meshkit.notebook.figures import fill, wall_clock
from meshkit.notebook.recorder import COLUMNS, DTYPES

T0 = 1_767_268_800.0  # 2026-01-01 12:00 UTC, on a whole second


def rows(*spec: tuple[float, float, int, str, str], run: int = 1) -> pd.DataFrame:
    """Recorder rows from (seconds after T0, latency ms, code, flags, version)."""
    out = [(T0 + at, latency, code, flags, version, "", "svc", run) for at, latency, code, flags, version in spec]
    return pd.DataFrame(out, columns=COLUMNS).astype(DTYPES)


def by_name(traces: list[Any]) -> dict[str, Any]:
    return {t.name: t for t in traces}


# -- outcomes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "flags", "expected"),
    [
        (200, "", OK),
        (204, "", OK),
        (200, "DI", DELAYED),
        (503, "UO", OVERFLOW),
        (503, "UH", NO_HEALTHY),
        (504, "UT", TIMEOUT),
        (500, "FI", ABORTED),
        (503, "DI,FI", ABORTED),  # delayed, then aborted: the abort is what the caller got
        (418, "FI", ABORTED),
        (500, "", APP_ERROR),
        (503, "", APP_ERROR),
        (404, "", OTHER),
        (0, "", OTHER),  # no answer at all
        (403, "RBAC", OTHER),
    ],
)
def test_each_request_gets_one_outcome_from_its_code_and_flags(code: int, flags: str, expected: str) -> None:
    assert faults.outcome(code, flags) == expected


def test_every_outcome_has_its_own_colour() -> None:
    assert len(set(OUTCOMES.values())) == len(OUTCOMES)
    assert OUTCOMES[OVERFLOW] != OUTCOMES[APP_ERROR] != OUTCOMES[OK]


def test_outcomes_per_second_stacks_one_bar_per_second_with_a_segment_per_outcome() -> None:
    frame = rows(
        (0.1, 200, 200, "", "v1"), (0.3, 1, 503, "UO", ""), (0.6, 1, 503, "UO", ""),
        (1.2, 210, 200, "", "v1"), (1.5, 5, 500, "", "v2"),
    )
    counts = faults.outcome_counts(frame)
    assert set(map(tuple, counts[["second", "outcome", "count"]].values.tolist())) == {
        (T0, OK, 1), (T0, OVERFLOW, 2), (T0 + 1, OK, 1), (T0 + 1, APP_ERROR, 1)}
    assert counts["count"].dtype == "int64"
    traces, layout = faults.outcomes_per_second(frame)
    assert [t.name for t in traces] == [OK, OVERFLOW, APP_ERROR]  # OUTCOMES order, absent ones left out
    assert all(isinstance(t, go.Bar) for t in traces)
    assert layout["barmode"] == "stack" and not any(a["visible"] for a in layout["annotations"])
    bars = by_name(traces)
    assert list(bars[OVERFLOW].y) == [2] and list(bars[OK].y) == [1, 1]
    assert bars[OVERFLOW].marker.color == OUTCOMES[OVERFLOW]
    # centred in its second, on the wall clock
    assert bars[OVERFLOW].x[0] == wall_clock([T0 + 0.5])[0]


def test_outcomes_per_second_keeps_the_newest_seconds() -> None:
    frame = rows((0.0, 1, 200, "", "v1"), (500.0, 1, 200, "", "v1"))
    counts = faults.outcome_counts(frame, horizon_s=120.0)
    assert list(counts["second"]) == [T0 + 500]


def test_empty_charts_say_why_and_a_filled_chart_clears_that_note() -> None:
    traces, layout = faults.outcomes_per_second(rows())
    assert traces == [] and "start the load" in layout["annotations"][0]["text"]
    fig = go.Figure()
    fill(fig, traces, layout)
    assert len(fig.layout.annotations) == 1
    fill(fig, *faults.outcomes_per_second(rows((0.1, 200, 200, "", "v1"))))
    assert not any(a.visible for a in fig.layout.annotations) and [t.name for t in fig.data] == [OK]
    traces, layout = faults.latency_per_outcome(rows())
    assert traces == [] and layout["annotations"]


def test_latency_per_outcome_is_one_dot_per_request_coloured_by_outcome_on_a_log_axis() -> None:
    frame = rows(
        (0.0, 220.0, 200, "", "v1"), (0.1, 1.2, 503, "UO", ""), (0.2, 7000.0, 200, "DI", "v1"),
        (0.3, 0.0, 503, "FI", ""),
    )
    traces, layout = faults.latency_per_outcome(frame)
    dots = by_name(traces)
    assert list(dots) == [OK, DELAYED, OVERFLOW, ABORTED]
    assert all(t.mode == "markers" for t in traces)
    assert list(dots[DELAYED].y) == [7000.0] and dots[DELAYED].marker.color == OUTCOMES[DELAYED]
    assert list(dots[ABORTED].y) == [0.1], "a 0 ms latency is drawn at 0.1 ms: a log axis has no 0"
    assert list(dots[OK].text) == ["200 from v1"] and list(dots[OVERFLOW].text) == ["503 UO"]
    assert layout["yaxis"]["type"] == "log"


def test_latency_per_outcome_draws_only_the_newest_points() -> None:
    frame = rows(*[(i * 0.01, 1.0, 200, "", "v1") for i in range(50)])
    traces, _ = faults.latency_per_outcome(frame, max_points=10)
    assert len(traces[0].x) == 10
    assert traces[0].x[-1] == wall_clock([T0 + 0.49])[0]


def test_outcome_table_counts_requests_with_latencies_in_legend_order() -> None:
    frame = rows((0.0, 200.0, 200, "", "v1"), (0.1, 400.0, 200, "", "v1"), (0.2, 1.0, 503, "UO", ""))
    table = faults.outcome_table(frame)
    assert list(table["outcome"]) == [OK, OVERFLOW]
    assert list(table["requests"]) == [2, 1] and table["requests"].dtype == "int64"
    assert list(table["median_ms"]) == [300.0, 1.0] and list(table["max_ms"]) == [400.0, 1.0]


def test_last_run_keeps_the_newest_run_only() -> None:
    frame = pd.concat([rows((0.0, 1, 200, "", "v1"), run=1), rows((5.0, 1, 503, "UO", ""), run=2)])
    assert list(faults.last_run(frame)["code"]) == [503]
    assert faults.last_run(rows()).empty


# -- endpoints: the caller's sidecar ---------------------------------------------------------


def clusters_page(v2_ejected: bool) -> pd.DataFrame:
    """lab.endpoints() of a sidecar's /clusters page (meshkit.sidecar.cluster.Cluster.describe)."""
    def endpoint(version: str, ejected: bool, ejections: int) -> dict[str, Any]:
        return {"address": f"127.0.0.1:1{version[1]}", "instance": f"pick-{version}-0", "version": version,
                "ejected": ejected, "ejections": ejections, "consecutive_5xx": 0, "active_requests": 0}

    pick = [endpoint("v1", False, 0), endpoint("v2", v2_ejected, int(v2_ejected))]
    return endpoints_frame([
        {"name": "outbound|9080||pick.default.svc.cluster.local", "host": "pick.default.svc.cluster.local",
         "subset": None, "endpoints": pick},
        {"name": "outbound|9080|v2|pick.default.svc.cluster.local", "host": "pick.default.svc.cluster.local",
         "subset": "v2", "endpoints": [pick[1]]},
        {"name": "outbound|9080||slow.default.svc.cluster.local", "host": "slow.default.svc.cluster.local",
         "subset": None, "endpoints": [endpoint("v1", False, 0)]},
    ])


def test_endpoint_rows_read_one_services_endpoints_once_each() -> None:
    found = faults.endpoint_rows(clusters_page(v2_ejected=True), T0, "pick")
    assert [(r["endpoint"], r["ejected"], r["ejections"]) for r in found] == [
        ("v1 (pick-v1-0)", False, 0), ("v2 (pick-v2-0)", True, 1)]
    assert all(r["at"] == T0 and r["service"] == "pick" for r in found)
    assert len(faults.endpoint_rows(clusters_page(False), T0)) == 3, "without a service: every service's"


def samples(states: list[tuple[float, bool]]) -> pd.DataFrame:
    out = []
    for at, v2_ejected in states:
        out += faults.endpoint_rows(clusters_page(v2_ejected), T0 + at, "pick")
    return pd.DataFrame(out, columns=faults.ENDPOINT_COLUMNS)


def test_endpoint_states_draw_a_lane_per_endpoint_green_in_rotation_red_when_ejected() -> None:
    traces, layout = faults.endpoint_states(samples([(0.0, False), (2.0, True), (4.0, True)]))
    marks = {t.name: t for t in traces if t.mode == "markers"}
    assert set(marks) == {"in rotation", "ejected by outlier detection"}
    ejected = marks["ejected by outlier detection"]
    assert list(ejected.y) == ["v2 (pick-v2-0)", "v2 (pick-v2-0)"]
    assert ejected.marker.color == faults.EJECTED_COLOR and marks["in rotation"].marker.color == faults.IN_ROTATION_COLOR
    assert "ejected 1 time(s) so far" in ejected.text[0]
    assert list(marks["in rotation"].y).count("v1 (pick-v1-0)") == 3
    assert layout["yaxis"]["categoryarray"] == ["v2 (pick-v2-0)", "v1 (pick-v1-0)"]  # v1 on top
    lanes = {t.name: t for t in traces if t.mode == "lines"}
    assert not any(t.showlegend for t in lanes.values()), "the legend names each state once"


def test_state_segments_join_close_readings_and_leave_gaps_open() -> None:
    segments = faults.state_segments([0.0, 2.0, 4.0, 30.0], [False, True, True, False], join_s=3.0)
    assert segments[False] == [0.0, 2.0, None, 30.0, 30.0, None]
    assert segments[True] == [2.0, 4.0, None, 4.0, 4.0, None], "no bar across the 26 s nobody read"


def test_endpoint_states_empty_says_why() -> None:
    traces, layout = faults.endpoint_states(pd.DataFrame(columns=faults.ENDPOINT_COLUMNS))
    assert traces == [] and "start the load" in layout["annotations"][0]["text"]


class GoneLab:
    """A lab whose caller has no sidecar any more: lab.endpoints raises as the real one does."""

    def endpoints(self, workload: str) -> pd.DataFrame:
        raise UnknownWorkload(f"{workload!r} has no sidecar: inject it first")


def test_a_sampler_whose_sidecar_is_gone_keeps_its_history_and_says_why() -> None:
    sampler = faults.EndpointSampler(GoneLab(), "pick")  # type: ignore[arg-type]
    frame = sampler()
    assert frame.empty and list(frame.columns) == faults.ENDPOINT_COLUMNS
    assert "no sidecar" in sampler.last_error


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (2000.0, 6200.0, ["2 s", "5 s", "10 s"]),  # a narrow range still gets labels
        (1.0, 460.0, ["1 ms", "2 ms", "5 ms", "10 ms", "20 ms", "50 ms", "100 ms", "200 ms", "500 ms"]),
        (0.7, 7000.0, ["0.1 ms", "1 ms", "10 ms", "100 ms", "1 s", "10 s"]),  # wide: powers of ten only
        (0.0, 0.0, ["0.1 ms", "0.2 ms"]),  # always two ticks, so the axis has a span
    ],
)
def test_latency_ticks_label_every_range_in_ms_or_s(low: float, high: float, expected: list[str]) -> None:
    values, labels = faults.latency_ticks(low, high)
    assert labels == expected and len(values) == len(labels)


def test_latency_axis_is_labelled_around_the_dots_and_the_legend_shows_a_single_outcome() -> None:
    traces, layout = faults.latency_per_outcome(rows((0.0, 2100.0, 200, "", "v1"), (1.0, 6100.0, 200, "", "v1")))
    assert len(traces) == 1 and layout["showlegend"] is True
    yaxis = layout["yaxis"]
    assert yaxis["ticktext"] == ["2 s", "5 s", "10 s"] and yaxis["tickvals"] == [2000.0, 5000.0, 10000.0]
    low, high = yaxis["range"]  # decades: the axis spans every tick, so each label is drawn
    assert low < 3.31 < 4.0 < high and high - low < 0.8
