"""Plotly figures as pure functions of small tables.

Each chart is a `*_traces` function (the tables of meshkit.notebook.stats,
or the edges and certificates the Lab gives, in; plotly traces out) and a
`*_figure` function that puts them into a static go.Figure. A live chart is
a FigureWidget that `fill` refreshes with new traces inside one
`batch_update()`, so the browser gets one message per refresh instead of one
per changed property. Headless runs and tests use the same functions and get
the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from plotly.colors import qualitative

from meshkit.names import CLUSTER_DOMAIN
from meshkit.notebook.stats import PERCENTILES, certificate_table, human_seconds, utc

PALETTE = qualitative.Plotly
DASHES = {50: "solid", 90: "dash", 99: "dot"}
SECURITY_STYLE: dict[str, dict[str, str]] = {
    # How Kiali draws an edge: a padlock for mTLS; meshkit adds plaintext and mixed.
    "mutual_tls": {"color": "#2ca02c", "dash": "solid", "label": "mTLS (locked)", "mark": "\N{LOCK} "},
    "none": {"color": "#d62728", "dash": "dash", "label": "plaintext", "mark": "\N{OPEN LOCK} "},
    "mixed": {"color": "#ff7f0e", "dash": "dot", "label": "mixed mTLS and plaintext", "mark": "\N{WARNING SIGN} "},
    "unknown": {"color": "#7f7f7f", "dash": "dot", "label": "unknown", "mark": ""},
}
OUTSIDE = "unknown"
"""The source workload telemetry reports for a caller without a sidecar."""


def version_color(version: str, versions: Sequence[str]) -> str:
    """A stable color per version: the same version keeps its color across charts."""
    ordered = sorted(set(versions))
    return str(PALETTE[ordered.index(version) % len(PALETTE)] if version in ordered else PALETTE[0])


def fill(fig: go.Figure, traces: Sequence[BaseTraceType], layout: Mapping[str, Any] | None = None) -> go.Figure:
    """Show `traces` (and layout changes) in `fig`, a go.Figure or a FigureWidget.

    When the traces are the same series as before (same count, types and
    names), only their values change, all inside one batch_update. When the
    series changed (a new version appeared), the trace list is replaced.
    A layout given is the chart's whole set of annotations: one it leaves out
    (such as "no requests yet") is removed, not kept from the last redraw.
    """
    same = len(fig.data) == len(traces) and all(
        old.type == new.type and old.name == new.name for old, new in zip(fig.data, traces, strict=True)
    )
    if not same:
        fig.data = ()
        fig.add_traces(list(traces))
    with fig.batch_update():
        if same:
            for old, new in zip(fig.data, traces, strict=True):
                values = {k: v for k, v in new.to_plotly_json().items() if k not in ("type", "uid")}
                old.update(values, overwrite=True)
        if layout:
            # update_layout merges a list item by item (an old annotation survives a shorter
            # new list), so the annotations are set whole, apart from the rest.
            annotations = layout.get("annotations", ())
            if annotations or fig.layout.annotations:
                fig.layout.annotations = annotations
            fig.update_layout({k: v for k, v in layout.items() if k != "annotations"})
    return fig


def wall_clock(epoch_s: Sequence[float] | np.ndarray | pd.Series) -> list[str]:
    """Epoch seconds as this machine's wall clock (what a learner's clock shows), as text plotly reads as dates.

    Text, not datetime64: a live FigureWidget sends a numpy datetime64 array
    to the browser as raw integers (nanoseconds), and its time axis then
    shows numbers like 1796404625000000000.
    """
    offset = datetime.now().astimezone().utcoffset()
    seconds = np.asarray(epoch_s, dtype="float64") + (offset.total_seconds() if offset else 0.0)
    return [str(t) for t in pd.DatetimeIndex(pd.to_datetime(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S.%f")]


def static(traces: Sequence[BaseTraceType], layout: Mapping[str, Any]) -> go.Figure:
    return go.Figure(data=list(traces), layout=dict(layout))


# -- shared layout ----------------------------------------------------------------
#
# A chart never gets a width: plotly then sizes it to the element it is drawn
# in (the notebook's output, or half of it when two charts share a row), so
# it fits a laptop with the file browser open as well as a wide screen. What
# must stay readable at any width is placed where width does not matter:
# the title left-aligned, reserving its own room above the plot area; the
# legend as a horizontal row (wrapping onto more rows when narrow) under the
# chart, where it cannot cover data; axis labels pushing the margins instead
# of being clipped.

TITLE_FONT = {"size": 15}
LEGEND_UNDER: dict[str, Any] = {
    # yref "container": y is measured in the whole figure, and plotly reserves the legend's
    # height at the bottom, so tick labels and axis titles are pushed up instead of covered.
    "orientation": "h", "x": 0.0, "xanchor": "left", "y": 0.0, "yanchor": "bottom", "yref": "container",
}


def chart_layout(title: str, height: int, **rest: Any) -> dict[str, Any]:
    """A layout that follows its container's width: no width, a left title with its own margin, legend under the chart."""
    layout: dict[str, Any] = {
        # Measured from the figure's left edge (not the plot area's, which long tick labels push right).
        "title": {"text": title, "font": TITLE_FONT, "x": 0.0, "xanchor": "left", "xref": "container",
                  "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 8, "l": 10}, "automargin": True},
        "autosize": True,
        "height": height,
        "legend": dict(LEGEND_UNDER),
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
    }
    for key, value in rest.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(value, dict) and value.get("visible", True):
            value = {"automargin": True, **value}
        layout[key] = value
    return layout


# -- latency ------------------------------------------------------------------

LATENCY_LAYOUT: dict[str, Any] = chart_layout(
    "Latency per destination version (rolling window)", 360,
    xaxis={"title": {"text": "time"}},
    yaxis={"title": {"text": "ms"}, "rangemode": "tozero"},
    legend={**LEGEND_UNDER, "title": {"text": "version, percentile:"}},
)


def latency_traces(percentiles: pd.DataFrame) -> list[BaseTraceType]:
    """Three lines per version (p50 solid, p90 dashed, p99 dotted), one color per version."""
    versions = sorted(percentiles["version"].unique()) if not percentiles.empty else []
    traces: list[BaseTraceType] = []
    for version in versions:
        rows = percentiles[percentiles["version"] == version]
        for p in PERCENTILES:
            traces.append(
                go.Scatter(
                    x=rows["t"], y=rows[f"p{p}_ms"], mode="lines", name=f"{version} p{p}", legendgroup=version,
                    line={"color": version_color(version, versions), "dash": DASHES[p]},
                    hovertemplate=f"{version} p{p}: %{{y:.1f}} ms<extra></extra>",
                )
            )
    return traces


def latency_figure(percentiles: pd.DataFrame) -> go.Figure:
    return static(latency_traces(percentiles), LATENCY_LAYOUT)


# -- split ----------------------------------------------------------------------

SPLIT_LAYOUT: dict[str, Any] = chart_layout(
    "Configured vs observed split", 360,
    barmode="group",
    xaxis={"title": {"text": "destination version"}, "type": "category"},
    # Up to 115 so a full bar's "100%" label, drawn above the bar, stays inside the plot.
    yaxis={"title": {"text": "% of requests"}, "range": [0, 115], "tickvals": [0, 20, 40, 60, 80, 100]},
)


def split_traces(table: pd.DataFrame) -> list[BaseTraceType]:
    """Two bars per version: the weight configured and the share observed."""
    return [
        go.Bar(x=table["version"], y=table["configured"], name="configured", marker={"color": "#bcbd22"},
               text=[f"{v:.0f}%" for v in table["configured"]], textposition="outside"),
        go.Bar(x=table["version"], y=table["observed"], name="observed", marker={"color": "#1f77b4"},
               text=[f"{v:.0f}%" for v in table["observed"]], textposition="outside",
               customdata=table["count"], hovertemplate="%{y:.1f}% of %{customdata} requests<extra>observed</extra>"),
    ]


def split_figure(table: pd.DataFrame) -> go.Figure:
    return static(split_traces(table), SPLIT_LAYOUT)


# -- rate and success -------------------------------------------------------------

RATE_LAYOUT: dict[str, Any] = chart_layout(
    "Request rate and success rate", 320,
    xaxis={"title": {"text": "time"}},
    yaxis={"title": {"text": "requests per second"}, "rangemode": "tozero"},
    yaxis2={"title": {"text": "success %"}, "overlaying": "y", "side": "right", "range": [0, 105], "dtick": 25,
            "showgrid": False},
)


def rate_traces(rates: pd.DataFrame) -> list[BaseTraceType]:
    return [
        go.Scatter(x=rates["t"], y=rates["rps"], mode="lines", name="requests/s", line={"color": "#1f77b4"}),
        go.Scatter(x=rates["t"], y=rates["success_rate"] * 100.0, mode="lines", name="success %", yaxis="y2",
                   line={"color": "#2ca02c"}),
    ]


def rate_figure(rates: pd.DataFrame) -> go.Figure:
    return static(rate_traces(rates), RATE_LAYOUT)


# -- topology ---------------------------------------------------------------------

TOPOLOGY_LAYOUT: dict[str, Any] = chart_layout(
    "Topology: who calls whom, and how it is secured", 420,
    xaxis={"visible": False},
    yaxis={"visible": False},
)


def short_host(name: str) -> str:
    """reviews.default.svc.cluster.local -> reviews (the name a learner uses)."""
    suffix = f".{CLUSTER_DOMAIN}"
    if name.endswith(suffix):
        service, _, namespace = name[: -len(suffix)].partition(".")
        return service if namespace in ("", "default") else f"{service}.{namespace}"
    return name


def graph_links(edges: pd.DataFrame, workloads: pd.DataFrame | None = None) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Nodes (name -> "workload" | "service" | "outside") and the links between them.

    Observed edges go from a source workload to a destination service; with
    the lab's workloads table, each service is also linked to the workloads
    behind it, so the graph reads as one path from caller to callee.
    """
    nodes: dict[str, str] = {}
    links: list[tuple[str, str]] = []
    for source, destination in zip(edges.get("source", []), edges.get("destination", []), strict=True):
        nodes.setdefault(str(source), "outside" if source == OUTSIDE else "workload")
        nodes[short_host(str(destination))] = "service"
        links.append((str(source), short_host(str(destination))))
    if workloads is not None:
        for workload, service in zip(workloads["workload"], workloads["service"], strict=True):
            if service in nodes and workload != service:
                nodes.setdefault(str(workload), "workload")
                links.append((str(service), str(workload)))
    return nodes, links


def layered_layout(nodes: Sequence[str], links: Sequence[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """x by depth (longest path from a node nobody calls), y spread within a layer.

    A call graph may have a cycle (a calls b, b calls a): the links that
    close one are found by a depth-first walk and left out of the depth, so
    every node still gets a finite layer.
    """
    back = _back_links(nodes, links)
    forward = [link for link in links if link not in back]
    depth = {n: 0 for n in nodes}
    for _ in range(len(nodes)):
        changed = False
        for a, b in forward:
            if a in depth and b in depth and depth[b] < depth[a] + 1:
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    layers: dict[int, list[str]] = {}
    for node in sorted(nodes):
        layers.setdefault(depth[node], []).append(node)
    positions: dict[str, tuple[float, float]] = {}
    for x, members in layers.items():
        for i, node in enumerate(members):
            positions[node] = (float(x), (len(members) - 1) / 2.0 - i)
    return positions


def _back_links(nodes: Sequence[str], links: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Links that point back to a node on the current depth-first path (self-links included)."""
    callees: dict[str, list[str]] = {n: [] for n in nodes}
    called = {b for _, b in links}
    for a, b in links:
        if a in callees and b in callees:
            callees[a].append(b)
    state: dict[str, int] = {}  # 1: on the path, 2: done
    back: set[tuple[str, str]] = set()
    roots = sorted(n for n in nodes if n not in called) + sorted(nodes)
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(sorted(callees[root])))]
        while stack:
            node, todo = stack[-1]
            child = next(todo, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(callees[child]))))
    return back


def edge_label(row: Mapping[str, Any]) -> str:
    """What an edge says: requests and success, plus rps and p99 when the table has them."""
    style = SECURITY_STYLE.get(str(row.get("security", "unknown")), SECURITY_STYLE["unknown"])
    parts = [f"{int(row.get('requests', 0))} req"]
    success = row.get("success_rate")
    if success is not None and not (isinstance(success, float) and math.isnan(success)):
        parts.append(f"{float(success) * 100:.0f}% ok")
    if _number(row.get("rps")) is not None:
        parts.append(f"{float(row['rps']):.1f} rps")
    if _number(row.get("p99_ms")) is not None:
        parts.append(f"p99 {float(row['p99_ms']):.0f} ms")
    return style["mark"] + ", ".join(parts)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def topology_traces(edges: pd.DataFrame, workloads: pd.DataFrame | None = None) -> tuple[list[BaseTraceType], dict[str, Any]]:
    """Traces and layout (arrows) for the graph.

    `edges` has source, destination, requests, success_rate and security
    (lab.edges()); optional rps and p99_ms columns are shown when present.
    Edges are grouped by security state so the legend explains the styles.
    """
    nodes, links = graph_links(edges, workloads)
    positions = layered_layout(list(nodes), links)
    traces: list[BaseTraceType] = []
    annotations = []
    records = edges.to_dict("records")
    for state, style in SECURITY_STYLE.items():
        xs: list[float | None] = []
        ys: list[float | None] = []
        for row in records:
            if str(row.get("security", "unknown")) not in SECURITY_STYLE:
                row = {**row, "security": "unknown"}
            if row.get("security", "unknown") != state:
                continue
            (x0, y0), (x1, y1) = positions[str(row["source"])], positions[short_host(str(row["destination"]))]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
            annotations.append(_arrow(x0, y0, x1, y1, style["color"]))
        if xs:
            traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=style["label"], hoverinfo="skip",
                                     line={"color": style["color"], "dash": style["dash"], "width": 2}))
    inner = [(a, b) for a, b in links if nodes.get(a) == "service"]
    if inner:
        xs, ys = [], []
        for a, b in inner:
            xs += [positions[a][0], positions[b][0], None]
            ys += [positions[a][1], positions[b][1], None]
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", name="service -> workload", hoverinfo="skip",
                                 line={"color": "#c7c7c7", "width": 1}))
    if records:
        mids = [_midpoint(positions[str(r["source"])], positions[short_host(str(r["destination"]))]) for r in records]
        traces.append(go.Scatter(x=[m[0] for m in mids], y=[m[1] for m in mids], mode="text", name="edge labels",
                                 text=[edge_label(r) for r in records], textfont={"size": 11}, showlegend=False,
                                 cliponaxis=False,
                                 hovertext=[f"{r['source']} -> {short_host(str(r['destination']))}: {edge_label(r)}" for r in records],
                                 hoverinfo="text"))
    symbols = {"workload": "circle", "service": "triangle-up", "outside": "square"}
    names = sorted(nodes)
    traces.append(go.Scatter(
        x=[positions[n][0] for n in names], y=[positions[n][1] for n in names], mode="markers+text", name="nodes",
        text=[f"{n} (outside the mesh)" if nodes[n] == "outside" else n for n in names], textposition="bottom center",
        marker={"size": 18, "symbol": [symbols[nodes[n]] for n in names], "color": "#4c78a8"}, showlegend=False,
        hovertext=[f"{nodes[n]}: {n}" for n in names], hoverinfo="text", cliponaxis=False,
    ))
    return traces, {**TOPOLOGY_LAYOUT, **_graph_ranges(positions), "annotations": annotations}


def _graph_ranges(positions: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """Axis ranges with room around the outer nodes: their names and the edge labels are
    drawn centered on a node and would otherwise be cut at the chart's left and right edges."""
    xs = [x for x, _ in positions.values()] or [0.0]
    ys = [y for _, y in positions.values()] or [0.0]
    return {
        "xaxis": {**TOPOLOGY_LAYOUT["xaxis"], "range": [min(xs) - 0.6, max(xs) + 0.6]},
        "yaxis": {**TOPOLOGY_LAYOUT["yaxis"], "range": [min(ys) - 0.6, max(ys) + 0.45]},
    }


def _midpoint(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return (a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0 + 0.12


def _arrow(x0: float, y0: float, x1: float, y1: float, color: str) -> dict[str, Any]:
    """An arrowhead near the callee (85% of the way), pointing along the edge."""
    hx, hy = x0 + (x1 - x0) * 0.85, y0 + (y1 - y0) * 0.85
    return {"x": hx, "y": hy, "ax": x0 + (x1 - x0) * 0.7, "ay": y0 + (y1 - y0) * 0.7, "xref": "x", "yref": "y",
            "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 2, "arrowsize": 1.3, "arrowcolor": color,
            "text": ""}


def topology_figure(edges: pd.DataFrame, workloads: pd.DataFrame | None = None) -> go.Figure:
    traces, layout = topology_traces(edges, workloads)
    return static(traces, layout)


# -- certificates -------------------------------------------------------------------

CERTIFICATES_LAYOUT: dict[str, Any] = chart_layout(
    "Workload certificates: lifetime left, rotations marked", 340,
    xaxis={"type": "date", "title": {"text": "time"}},
    yaxis={"type": "category"},
    barmode="overlay",
)


def certificates_traces(certs: pd.DataFrame, now: pd.Timestamp) -> tuple[list[BaseTraceType], dict[str, Any]]:
    """One bar per identity from not_before to not_after, colored by life left; a line at `now`.

    `certs` has identity, not_before, not_after and rotations (a count, or a
    list of rotation times, which are then marked with an x); see
    meshkit.notebook.stats.certificate_table.
    """
    table = certificate_table(certs, now)
    colors = [_life_color(f) for f in table["life_left"]] if not table.empty else []
    traces: list[BaseTraceType] = [
        go.Bar(
            y=table["identity"], base=table["not_before"],
            x=(table["not_after"] - table["not_before"]).dt.total_seconds() * 1000.0 if not table.empty else [],
            orientation="h", name="certificate lifetime", marker={"color": colors},
            text=[f"{human_seconds(left)} left, rotated {n}x" for left, n in zip(table["left_s"], table["rotation_count"], strict=True)],
            textposition="inside", insidetextanchor="end",
            customdata=table["identity"] if not table.empty else [],
            hovertemplate="%{customdata}<br>%{text}<extra></extra>",
        )
    ]
    marks_x = [t for times in table.get("rotation_times", []) for t in times]
    marks_y = [i for i, times in zip(table.get("identity", []), table.get("rotation_times", []), strict=True) for _ in times]
    if marks_x:
        traces.append(go.Scatter(x=marks_x, y=marks_y, mode="markers", name="rotation",
                                 marker={"symbol": "x", "size": 10, "color": "black"}))
    now_ts = utc(now)
    identities = list(table["identity"]) if not table.empty else []
    layout = {**CERTIFICATES_LAYOUT, "shapes": [{"type": "line", "x0": now_ts, "x1": now_ts, "yref": "paper", "y0": 0,
                                                 "y1": 1, "line": {"color": "black", "dash": "dash"}}],
              # Bars stay keyed by the full SPIFFE ID (hover shows it); the axis names only
              # namespace/service-account, so the bars keep the chart's width on a narrow screen.
              "yaxis": {**CERTIFICATES_LAYOUT["yaxis"], "tickmode": "array", "tickvals": identities,
                        "ticktext": [short_identity(i) for i in identities]}}
    return traces, layout


def short_identity(identity: str) -> str:
    """spiffe://cluster.local/ns/default/sa/reviews -> default/reviews; anything else unchanged."""
    _, _, path = identity.partition("://")
    parts = path.split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa":
        return f"{parts[2]}/{parts[4]}"
    return identity


def _life_color(fraction: float) -> str:
    """Green with most of its life left, amber past half (renewal is due), red near the end."""
    if fraction > 0.5:
        return "#2ca02c"
    if fraction > 0.2:
        return "#ff7f0e"
    return "#d62728"


def certificates_figure(certs: pd.DataFrame, now: pd.Timestamp | None = None) -> go.Figure:
    """The certificates chart at `now` (default: the current time)."""
    traces, layout = certificates_traces(certs, pd.Timestamp.now(tz="UTC") if now is None else now)
    return static(traces, layout)
