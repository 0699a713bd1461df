"""lab.metrics, topology, edges, stat, top, traces and trace as pure functions of records."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from meshkit.control.telemetry import COLUMNS
from meshkit.observe import (
    EDGE_COLUMNS,
    drops,
    edges,
    metrics,
    requests_frame,
    stat,
    top,
    topology,
    trace,
    trace_text,
    traces,
)

SVC = "{}.default.svc.cluster.local"


def row(reporter: str, src: str, dst_wl: str, code: int = 200, ms: float = 10.0, start: float = 1000.0, **kw: Any) -> dict[str, Any]:
    base = {
        "start": start, "reporter": reporter, "node": "n", "source_workload": src, "source_namespace": "default",
        "source_version": "v1", "source_principal": "", "destination_service": SVC.format(dst_wl.split("-")[0]),
        "destination_workload": dst_wl, "destination_namespace": "default", "destination_version": "v1",
        "destination_principal": "", "connection_security_policy": "none", "method": "GET", "path": "/",
        "authority": "x", "protocol": "HTTP/1.1", "response_code": code, "response_flags": "-", "duration": ms,
        "bytes_received": 0, "bytes_sent": 10, "upstream_host": "h", "request_id": "r", "trace_id": None,
        "span_id": None, "parent_span_id": None, "retries": 0, "dry_run": None, "seq": 0,
    }  # fmt: skip
    base.update(kw)
    return base


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return requests_frame({"columns": list(COLUMNS), "rows": [[r[c] for c in COLUMNS] for r in rows]})


def test_requests_frame_names_and_types() -> None:
    f = frame([row("source", "a", "b-v1", code=503, ms=2.5)])
    assert f.loc[0, "code"] == 503 and f.loc[0, "duration_ms"] == 2.5 and f.loc[0, "time"].year == 1970
    assert {"flags", "request_bytes", "response_bytes", "connection_security_policy"} <= set(f.columns)


def test_metrics_per_group_over_the_window() -> None:
    rows = [row("destination", "a", "b-v1", code=200, ms=7.0, start=95.0 + i * 0.1) for i in range(8)]
    rows += [row("destination", "a", "b-v1", code=503, ms=7.0, start=99.0), row("destination", "a", "b-v1", code=503, ms=7.0, start=99.5)]
    rows += [row("source", "a", "b-v1", code=200, start=99.0), row("destination", "a", "b-v1", start=50.0)]
    table = metrics(frame(rows), window_s=10.0, by=["destination_workload"], now=100.0)
    got = table.iloc[0]
    assert (got["destination_workload"], got["requests"]) == ("b-v1", 10)
    assert got["rps"] == pytest.approx(1.0) and got["success_rate"] == pytest.approx(0.8)
    assert 5.0 <= got["p50_ms"] <= 10.0 and got["p99_ms"] <= 10.0
    exact = metrics(frame(rows), window_s=10.0, now=100.0, exact=True)
    assert exact.loc[0, "p50_ms"] == pytest.approx(7.0)


def test_topology_prefers_the_destination_reporter_and_gives_the_mtls_share() -> None:
    rows = [row("destination", "a", "b-v1", connection_security_policy="mutual_tls", start=1000.0 + i) for i in range(3)]
    rows += [row("destination", "a", "b-v1", start=1004.0)]
    rows += [row("source", "a", "b-v1", code=503, start=1001.0)]
    rows += [row("source", "a", "c-v1", code=503, start=1002.0)]  # c has no sidecar: only its caller saw it
    table = topology(frame(rows))
    b = table[table["destination"] == SVC.format("b")].iloc[0]
    c = table[table["destination"] == SVC.format("c")].iloc[0]
    assert (b["requests"], b["reporter"], b["mtls_share"], b["security"]) == (4, "destination", 0.75, "mixed")
    assert (c["requests"], c["reporter"], c["success_rate"]) == (1, "source", 0.0)
    assert list(edges(frame(rows)).columns) == EDGE_COLUMNS
    forced = topology(frame(rows), reporter="source")
    assert set(forced["reporter"]) == {"source"}


def test_stat_shows_every_workload_and_dashes_for_no_traffic() -> None:
    workloads = pd.DataFrame(
        [{"namespace": "default", "workload": "b-v1", "ready": "2/2", "sidecar": True},
         {"namespace": "default", "workload": "c-v1", "ready": "1/1", "sidecar": False}]
    )  # fmt: skip
    rows = [row("destination", "a", "b-v1", start=95.0 + i, ms=3.0) for i in range(5)]
    table = stat(frame(rows), workloads, window_s=10.0, now=100.0)
    b, c = table.iloc[0], table.iloc[1]
    assert (b["meshed"], b["requests"], b["success_rate"], b["rps"]) == ("2/2", 5, 1.0, 0.5)
    assert c["meshed"] == "0/1" and math.isnan(c["success_rate"]) and math.isnan(c["p99_ms"])


def test_top_orders_by_count() -> None:
    rows = [row("destination", "a", "b-v1", path="/x", start=99.0, ms=float(i)) for i in range(1, 4)]
    rows += [row("destination", "a", "b-v1", path="/y", start=99.5)]
    table = top(frame(rows), window_s=10.0, now=100.0)
    first = table.iloc[0]
    assert (first["path"], first["count"], first["best_ms"], first["worst_ms"], first["last_ms"]) == ("/x", 3, 1.0, 3.0, 3.0)


def chain() -> list[dict[str, Any]]:
    """curl -> a -> b, one request; each hop a client span and a server span."""
    return [
        row("source", "curl", "a-v1", start=10.000, ms=30.0, trace_id="T", span_id="s1", parent_span_id=None),
        row("destination", "curl", "a-v1", start=10.001, ms=28.0, trace_id="T", span_id="s2", parent_span_id="s1"),
        row("source", "a-v1", "b-v1", start=10.005, ms=10.0, trace_id="T", span_id="s3", parent_span_id="s2", code=503),
        row("destination", "a-v1", "b-v1", start=10.006, ms=8.0, trace_id="T", span_id="s4", parent_span_id="s3", code=503),
        row("source", "curl", "a-v1", start=20.0, ms=5.0, trace_id="U", span_id="u1", parent_span_id=None),
    ]


def test_trace_is_a_tree_with_each_hops_time() -> None:
    tree = trace(frame(chain()), "T")
    assert list(tree["depth"]) == [0, 1, 2, 3]
    assert list(tree["kind"]) == ["client", "server", "client", "server"]
    assert list(tree["workload"]) == ["curl", "a-v1", "a-v1", "b-v1"]
    assert tree["offset_ms"].tolist() == pytest.approx([0.0, 1.0, 5.0, 6.0], abs=1e-6)
    assert tree.attrs["duration_ms"] == pytest.approx(30.0)
    assert "b-v1 server" in trace_text(tree)


def test_traces_summarise_each_trace_newest_first() -> None:
    table = traces(frame(chain()))
    assert list(table["trace_id"]) == ["U", "T"]
    t = table.iloc[1]
    assert (t["spans"], t["errors"], t["code"], t["root"]) == (4, 2, 200, "curl -> a/")
    assert t["duration_ms"] == pytest.approx(30.0)


def test_drops_names_the_size_of_each_loss() -> None:
    status = {"records": 5, "capacity": 10, "evicted": 1, "persisted": True, "streams": [
        {"node": "n", "boot": "b", "started_at": 1.0, "received": 5, "next_seq": 9, "duplicates": 0, "gaps": 4,
         "dropped": 4, "recorded": 9, "last_push": 2.0}]}  # fmt: skip
    table = drops(status)
    assert table.loc[0, "lost"] == 4 and table.attrs["evicted"] == 1


def test_the_notebooks_topology_chart_draws_lab_topology() -> None:
    from meshkit.notebook.figures import topology_figure

    table = topology(frame(chain()))
    assert {"rps", "p99_ms"} <= set(table.columns)
    figure = topology_figure(table)
    assert figure.data and any("a-v1" in str(getattr(t, "text", "")) for t in figure.data)
