"""Notebook 11's charts: golden signals per workload over time, and the topology from the callers' view."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from meshkit.notebook.charts import observe

METRICS_COLUMNS = ["destination_workload", "requests", "rps", "success_rate", "p50_ms", "p90_ms", "p99_ms"]


def metrics(rows: list[tuple[str, int, float, float, float]]) -> pd.DataFrame:
    """(workload, requests, rps, success_rate, p99_ms) -> a lab.metrics() table."""
    data = [(w, n, rps, ok, p99 / 3, p99 / 2, p99) for w, n, rps, ok, p99 in rows]
    return pd.DataFrame(data, columns=METRICS_COLUMNS)


class FakeLab:
    """lab.metrics and lab.topology as a notebook's lab would answer them, from canned tables."""

    def __init__(self, answers: list[pd.DataFrame]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    def metrics(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(kwargs)
        return self.answers.pop(0)

    def topology(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(kwargs)
        return pd.DataFrame([{"source": "curl", "destination": "productpage.default.svc.cluster.local", "requests": 10,
                              "success_rate": 1.0, "security": "mutual_tls", "rps": 2.0, "p99_ms": 12.0}])

    def workloads(self) -> pd.DataFrame:
        return pd.DataFrame({"workload": ["productpage-v1"], "service": ["productpage"]})


def test_each_reading_is_kept_with_its_time_so_the_lines_grow() -> None:
    times = iter([100.0, 102.0])
    lab = FakeLab([metrics([("details-v1", 40, 8.0, 1.0, 9.0)]),
                   metrics([("details-v1", 32, 6.4, 1.0, 9.5), ("productpage-v1", 40, 8.0, 1.0, 30.0)])])
    source = observe.SignalHistory(lab, window_s=5.0, clock=lambda: next(times))  # type: ignore[arg-type]
    first = source()
    assert len(first) == 1
    frame = source()
    assert list(frame["key"]) == ["details-v1", "details-v1", "productpage-v1"]
    assert list(frame["t"]) == [100.0, 102.0, 102.0]
    assert lab.calls[0] == {"window": 5.0, "by": ["destination_workload"], "reporter": "destination"}


def test_a_history_keeps_only_its_newest_readings() -> None:
    lab = FakeLab([metrics([("a", 1, 1.0, 1.0, 1.0)]) for _ in range(5)])
    source = observe.SignalHistory(lab, keep=2)  # type: ignore[arg-type]
    for _ in range(5):
        frame = source()
    assert len(source.readings) == 2 and len(frame) == 2


def test_an_edge_key_joins_caller_and_short_service_name() -> None:
    table = pd.DataFrame({"source_workload": ["productpage-v1"], "destination_service": ["details.default.svc.cluster.local"],
                          "requests": [200], "rps": [40.0], "success_rate": [0.8], "p99_ms": [9.0]})
    row = observe.reading(table, ["source_workload", "destination_service"], 0.0)
    assert list(row["key"]) == ["productpage-v1 -> details"]


def test_an_empty_reading_adds_nothing() -> None:
    assert observe.history([observe.reading(metrics([]), ["destination_workload"], 1.0)]).empty


def history(points: list[tuple[float, str, int, float, float, float]]) -> pd.DataFrame:
    """(t, key, requests, rps, success_rate, p99_ms) -> a SignalHistory table."""
    return pd.DataFrame([{"t": float(t), "key": k, "requests": n, "rps": rps,
                          "success_rate": ok, "p99_ms": p99} for t, k, n, rps, ok, p99 in points])


def test_three_panels_one_line_per_workload_with_one_legend_entry_each() -> None:
    frame = history([(0, "details-v1", 40, 8.0, 1.0, 9.0), (2, "details-v1", 32, 6.4, 1.0, 9.5),
                     (0, "productpage-v1", 40, 8.0, 0.5, 30.0), (2, "productpage-v1", 40, 8.0, 1.0, 31.0)])
    traces, layout = observe.signals_traces(frame)
    assert [(t.name, t.yaxis) for t in traces] == [
        ("details-v1", "y"), ("details-v1", "y2"), ("details-v1", "y3"),
        ("productpage-v1", "y"), ("productpage-v1", "y2"), ("productpage-v1", "y3"),
    ]
    assert [t.showlegend for t in traces] == [True, False, False] * 2
    assert list(traces[0].y) == [8.0, 6.4]
    assert list(traces[4].y) == [50.0, 100.0]  # success in percent
    assert list(traces[5].y) == [30.0, 31.0]
    assert traces[0].line.color == traces[1].line.color != traces[3].line.color
    assert layout["xaxis"]["anchor"] == "y3" and layout["yaxis2"]["range"] == [0, 105]
    assert all(isinstance(x, str) for x in traces[0].x), "times as text: a live chart sends datetime64 as nanoseconds"
    assert layout["xaxis"]["type"] == "date"
    assert "width" not in layout and layout["legend"]["orientation"] == "h"


def test_a_reading_without_requests_breaks_the_line_instead_of_drawing_zero() -> None:
    frame = history([(0, "reviews-v2", 10, 2.0, 1.0, 20.0), (2, "reviews-v2", 0, 0.0, math.nan, math.nan)])
    traces, _ = observe.signals_traces(frame)
    assert math.isnan(traces[0].y[1]) and math.isnan(traces[1].y[1])


def test_no_readings_draw_an_empty_chart_that_says_so() -> None:
    traces, layout = observe.signals_traces(observe.history([]))
    assert traces == [] and layout["title"]["text"].endswith("(no requests yet: start load)")
    assert "annotations" not in layout, "a live figure's annotations cannot shrink, so none are used"


def test_the_topology_source_attaches_workloads_and_says_whose_view() -> None:
    lab = FakeLab([])
    edges = observe.TopologySource(lab, window_s=10.0, reporter="source")()  # type: ignore[arg-type]
    assert lab.calls == [{"window": 10.0, "reporter": "source"}]
    traces, layout = observe.topology_traces(edges)
    assert "as each caller's sidecar saw its calls (last 10 s)" in layout["title"]["text"]
    nodes = [t for t in traces if t.name == "nodes"][0]
    assert {"curl", "productpage", "productpage-v1"} <= set(nodes.text)  # the service is linked to its workload
    labels = [t for t in traces if t.name == "edge labels"][0]
    assert "100% ok" in labels.text[0] and "p99 12 ms" in labels.text[0]


def test_an_empty_topology_says_to_start_load() -> None:
    empty = pd.DataFrame(columns=["source", "destination", "requests", "success_rate", "security"])
    _, layout = observe.topology_traces(empty)
    assert layout["title"]["text"] == "Topology from the callee's sidecar where it has one (since the lab started): no calls yet, start load"
