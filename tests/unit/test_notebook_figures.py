"""Figures as pure functions of tables; live figures updated in place, in one batch."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from meshkit.notebook import figures
from meshkit.notebook.live import new_figure

NOW = pd.Timestamp("2026-01-01 12:00", tz="UTC")


def percentiles(versions: list[str], p99: float = 9.0) -> pd.DataFrame:
    rows = [(NOW + pd.Timedelta(seconds=s), v, 1.0, 5.0, p99, 10) for v in versions for s in range(3)]
    return pd.DataFrame(rows, columns=["t", "version", "p50_ms", "p90_ms", "p99_ms", "count"])


def test_latency_has_three_lines_per_version_in_one_color() -> None:
    fig = figures.latency_figure(percentiles(["v1", "v2"]))
    assert [t.name for t in fig.data] == ["v1 p50", "v1 p90", "v1 p99", "v2 p50", "v2 p90", "v2 p99"]
    assert len({t.line.color for t in fig.data[:3]}) == 1 and fig.data[0].line.color != fig.data[3].line.color
    assert [t.line.dash for t in fig.data[:3]] == ["solid", "dash", "dot"]


@pytest.mark.parametrize("live", [False, True], ids=["Figure", "FigureWidget"])
def test_fill_updates_the_same_series_in_place_and_replaces_changed_ones(live: bool) -> None:
    if live:
        pytest.importorskip("anywidget", reason="plotly's FigureWidget needs anywidget")
    fig = new_figure(live, figures.LATENCY_LAYOUT)
    assert isinstance(fig, go.FigureWidget) == live
    figures.fill(fig, figures.latency_traces(percentiles(["v1"])))
    first = fig.data[0]
    figures.fill(fig, figures.latency_traces(percentiles(["v1"], p99=42.0)))
    assert fig.data[0] is first and list(fig.data[2].y) == [42.0, 42.0, 42.0]
    figures.fill(fig, figures.latency_traces(percentiles(["v1", "v3"])), {"title": {"text": "new"}})
    assert len(fig.data) == 6 and fig.layout.title.text == "new"
    figures.fill(fig, [])
    assert fig.data == ()


def test_split_bars_show_configured_and_observed() -> None:
    table = pd.DataFrame({"version": ["v1", "v2"], "configured": [80.0, 20.0], "observed": [78.5, 21.5], "count": [157, 43]})
    fig = figures.split_figure(table)
    assert [t.name for t in fig.data] == ["configured", "observed"]
    assert list(fig.data[1].y) == [78.5, 21.5] and list(fig.data[1].text) == ["78%", "22%"]


def test_rate_puts_success_on_a_second_axis_in_percent() -> None:
    rates = pd.DataFrame({"t": [NOW], "rps": [20.0], "success_rate": [0.95], "count": [20]})
    fig = figures.rate_figure(rates)
    assert fig.data[1].yaxis == "y2" and list(fig.data[1].y) == [95.0]


EDGES = pd.DataFrame([
    {"source": "unknown", "destination": "productpage.default.svc.cluster.local", "requests": 100,
     "success_rate": 1.0, "security": "none", "reporter": "destination"},
    {"source": "productpage-v1", "destination": "reviews.default.svc.cluster.local", "requests": 100,
     "success_rate": 0.9, "security": "mutual_tls", "reporter": "destination"},
    {"source": "reviews-v2", "destination": "ratings.default.svc.cluster.local", "requests": 50,
     "success_rate": 1.0, "security": "mixed", "reporter": "destination"},
])
WORKLOADS = pd.DataFrame({"workload": ["productpage-v1", "reviews-v1", "reviews-v2", "ratings-v1"],
                          "service": ["productpage", "reviews", "reviews", "ratings"]})


def test_topology_draws_each_security_state_its_own_way() -> None:
    fig = figures.topology_figure(EDGES, WORKLOADS)
    by_name = {t.name: t for t in fig.data}
    assert by_name["mTLS (locked)"].line.dash == "solid"
    assert by_name["plaintext"].line.dash == "dash" and by_name["mixed mTLS and plaintext"].line.dash == "dot"
    labels = list(by_name["edge labels"].text)
    assert labels[1] == "\N{LOCK} 100 req, 90% ok" and labels[0].startswith("\N{OPEN LOCK} ")
    nodes = list(by_name["nodes"].text)
    assert "unknown (outside the mesh)" in nodes and "reviews" in nodes and "reviews-v2" in nodes
    assert len(fig.layout.annotations) == 3, "one arrow per observed edge"


def test_topology_shows_rps_and_p99_when_the_table_has_them() -> None:
    fig = figures.topology_figure(EDGES.assign(rps=[5.0, 5.0, 2.5], p99_ms=[12.0, 30.4, float("nan")]))
    labels = list(next(t for t in fig.data if t.name == "edge labels").text)
    assert labels[1] == "\N{LOCK} 100 req, 90% ok, 5.0 rps, p99 30 ms"
    assert labels[2] == "\N{WARNING SIGN} 50 req, 100% ok, 2.5 rps"


def test_topology_of_nothing_is_an_empty_graph() -> None:
    fig = figures.topology_figure(EDGES.iloc[0:0])
    assert [t.name for t in fig.data] == ["nodes"] and list(fig.data[0].x) == []


def test_layout_puts_callers_left_of_callees() -> None:
    nodes, links = figures.graph_links(EDGES, WORKLOADS)
    pos = figures.layered_layout(list(nodes), links)
    assert pos["unknown"][0] < pos["productpage"][0] < pos["productpage-v1"][0] < pos["reviews"][0]
    assert pos["reviews"][0] < pos["reviews-v2"][0] < pos["ratings"][0]
    cyclic = figures.layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    assert cyclic["a"][0] == 0.0 and cyclic["b"][0] == 1.0 and cyclic["c"][0] == 2.0


def test_a_service_named_like_its_workload_is_one_node() -> None:
    edges = pd.DataFrame([{"source": "curl", "destination": "curl.default.svc.cluster.local", "requests": 1,
                           "success_rate": 1.0, "security": "none"}])
    nodes, links = figures.graph_links(edges, pd.DataFrame({"workload": ["curl"], "service": ["curl"]}))
    assert nodes == {"curl": "service"} and links == [("curl", "curl")]
    assert figures.layered_layout(list(nodes), links) == {"curl": (0.0, 0.0)}


def test_certificates_chart_from_a_hand_made_frame() -> None:
    certs = pd.DataFrame({
        "identity": ["spiffe://cluster.local/ns/default/sa/reviews", "spiffe://cluster.local/ns/default/sa/ratings"],
        "not_before": [NOW - pd.Timedelta(minutes=9), NOW - pd.Timedelta(minutes=1)],
        "not_after": [NOW + pd.Timedelta(minutes=1), NOW + pd.Timedelta(minutes=9)],
        "rotations": [[NOW - pd.Timedelta(minutes=9), NOW - pd.Timedelta(minutes=19)], 0],
    })
    fig = figures.certificates_figure(certs, NOW)
    bars, marks = fig.data
    assert list(bars.y) == ["spiffe://cluster.local/ns/default/sa/ratings", "spiffe://cluster.local/ns/default/sa/reviews"]
    assert list(bars.text) == ["9m 00s left, rotated 0x", "1m 00s left, rotated 2x"]
    assert list(bars.marker.color) == ["#2ca02c", "#d62728"]
    assert list(bars.x) == [pytest.approx(600_000.0)] * 2
    assert marks.name == "rotation" and len(marks.x) == 2
    assert pd.Timestamp(fig.layout.shapes[0].x0) == NOW


ALL_LAYOUTS = {
    "latency": figures.LATENCY_LAYOUT, "split": figures.SPLIT_LAYOUT, "rate": figures.RATE_LAYOUT,
    "topology": figures.TOPOLOGY_LAYOUT, "certificates": figures.CERTIFICATES_LAYOUT,
}


@pytest.mark.parametrize("name", list(ALL_LAYOUTS))
def test_charts_take_their_containers_width_with_the_legend_under_them(name: str) -> None:
    # A fixed width overflows a laptop's notebook; a legend at the side eats the plot's width
    # (or covers the data); a title measured from the plot area is pushed off by long tick labels.
    layout = go.Figure(layout=ALL_LAYOUTS[name]).layout
    assert layout.width is None and layout.autosize is True and layout.height
    assert layout.legend.orientation == "h" and layout.legend.yref == "container" and layout.legend.y == 0
    assert layout.title.xref == "container" and layout.title.x == 0 and layout.title.automargin is True
    for axis in (layout.xaxis, layout.yaxis):
        assert axis.visible is False or axis.automargin is True, "tick labels push the margin instead of being cut"


def test_split_axis_leaves_room_for_a_full_bars_label() -> None:
    assert figures.SPLIT_LAYOUT["yaxis"]["range"][1] > 105


def test_topology_ranges_leave_room_for_the_outer_names() -> None:
    traces, layout = figures.topology_traces(EDGES, WORKLOADS)
    nodes = next(t for t in traces if t.name == "nodes")
    assert layout["xaxis"]["range"][0] < min(nodes.x) and layout["xaxis"]["range"][1] > max(nodes.x)
    assert layout["yaxis"]["range"][0] < min(nodes.y) and layout["xaxis"]["visible"] is False
    assert nodes.cliponaxis is False


def test_certificates_axis_names_namespace_and_service_account() -> None:
    certs = pd.DataFrame({"identity": ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"],
                          "not_before": [NOW - pd.Timedelta(minutes=1)], "not_after": [NOW + pd.Timedelta(minutes=9)]})
    fig = figures.certificates_figure(certs, NOW)
    assert list(fig.data[0].y) == ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"], "bars keep the full identity"
    assert list(fig.layout.yaxis.ticktext) == ["default/bookinfo-reviews"]
    assert figures.short_identity("not-a-spiffe-id") == "not-a-spiffe-id"


def test_fill_drops_an_annotation_the_new_layout_leaves_out() -> None:
    import plotly.graph_objects as go

    from meshkit.notebook.figures import fill

    fig = go.Figure()
    fill(fig, [go.Bar(x=[], y=[], name="a")], {"annotations": [{"text": "no requests yet", "showarrow": False}]})
    assert [a.text for a in fig.layout.annotations] == ["no requests yet"]
    fill(fig, [go.Bar(x=["v1"], y=[3], name="a")], {"title": {"text": "t"}})
    assert fig.layout.annotations == ()
    fill(fig, [go.Bar(x=["v1"], y=[4], name="a")])
    assert fig.layout.title.text == "t", "no layout given: the layout stays"
    fill(fig, [go.Bar(x=["v1"], y=[4], name="a")], {"annotations": [{"text": "x", "x": 1}, {"text": "y"}]})
    fill(fig, [go.Bar(x=["v1"], y=[4], name="a")], {"annotations": [{"text": "z"}]})
    assert [(a.text, a.x) for a in fig.layout.annotations] == [("z", None)], "a shorter list replaces, not merges"


def test_wall_clock_is_text_a_live_chart_reads_as_a_date() -> None:
    import time as _time

    from meshkit.notebook.figures import wall_clock

    (text,) = wall_clock([_time.time()])
    assert isinstance(text, str) and text.startswith(_time.strftime("%Y-%m-%d %H:"))
