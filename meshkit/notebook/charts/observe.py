"""Charts of lesson 11 (observability): golden signals per workload over time, and the callers' topology.

A fault on one service changes what the telemetry shows, and where: the
workload's own sidecar (reporter "destination", what `lab.stat()` shows)
never sees a call the caller's sidecar aborted, while the caller's sidecar
(reporter "source") records every one. Two charts make that visible while
load runs:

- `signals_traces`: rps, success rate and p99 latency per workload, one
  line each, in three panels over time. Its source, `SignalHistory`, reads
  `lab.metrics` over a short window (5 s, a rate as Prometheus's
  `rate(...[5s])` would give it) each time the bench asks, and keeps each
  reading with its time, so the lines grow while load runs;
- `topology_traces`: who calls whom, with rps, success and p99 on each
  edge, from `lab.topology` over the last seconds; its source,
  `TopologySource`, attaches the lab's workloads so the graph reads as one
  path (service -> the workloads behind it).

Both draw functions are pure functions of DataFrames, so a script or a test
gets the same figure; only the sources talk to the lab. A chart with nothing
to draw says so in its title rather than in an annotation: a live figure's
layout is updated in place, and plotly's update never shortens a list of
annotations, so a note once shown would stay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.lab import Lab
from meshkit.notebook import figures
from meshkit.notebook.figures import LEGEND_UNDER, chart_layout, version_color, wall_clock

Drawn = tuple[list[BaseTraceType], dict[str, Any]]

WINDOW_S = 5.0
"""Seconds each reading covers: long enough for a stable rate at a few requests per second,
short enough that a change of config shows within a few seconds."""

KEEP = 900
"""Readings a history keeps (the oldest go first): half an hour at one every 2 s."""

PANELS: tuple[tuple[str, str, str], ...] = (
    # (column, axis, title): top to bottom
    ("rps", "y", "requests/s"),
    ("success_pct", "y2", "success %"),
    ("p99_ms", "y3", "p99 ms"),
)
DOMAINS = {"y": [0.70, 1.0], "y2": [0.36, 0.64], "y3": [0.0, 0.30]}

HISTORY_COLUMNS = ["t", "key", "requests", "rps", "success_rate", "p99_ms"]


# -- sources ---------------------------------------------------------------------------


class SignalHistory:
    """A chart source: each call reads the golden signals of the last `window_s` and keeps them.

    `by` and `reporter` are lab.metrics's: the default, per destination
    workload as each workload's own sidecar served it, is `lab.stat()`'s
    view. Each reading becomes one row per group with its time `t` (epoch
    seconds); a call
    returns every reading kept (at most `keep`), oldest first, with columns
    t, key (the group, its columns joined by " -> "), requests, rps,
    success_rate and p99_ms.
    """

    def __init__(
        self,
        lab: Lab,
        *,
        by: Sequence[str] = ("destination_workload",),
        reporter: str = "destination",
        window_s: float = WINDOW_S,
        keep: int = KEEP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lab = lab
        self.by = list(by)
        self.reporter = reporter
        self.window_s = window_s
        self.keep = keep
        self.clock = clock
        self.readings: list[pd.DataFrame] = []

    def __call__(self) -> pd.DataFrame:
        at = self.clock()
        metrics = self.lab.metrics(window=self.window_s, by=self.by, reporter=self.reporter)
        self.readings.append(reading(metrics, self.by, at))
        del self.readings[: max(0, len(self.readings) - self.keep)]
        return history(self.readings)


def reading(metrics: pd.DataFrame, by: Sequence[str], at: float) -> pd.DataFrame:
    """One reading of lab.metrics as history rows, stamped with the time `at` (epoch seconds)."""
    if metrics.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in HISTORY_COLUMNS})
    keys = [" -> ".join(figures.short_host(str(part)) for part in parts)
            for parts in zip(*(metrics[c] for c in by), strict=True)]
    return pd.DataFrame({
        "t": float(at),
        "key": keys,
        "requests": metrics["requests"].astype("int64").to_numpy(),
        "rps": metrics["rps"].astype("float64").to_numpy(),
        "success_rate": metrics["success_rate"].astype("float64").to_numpy(),
        "p99_ms": metrics["p99_ms"].astype("float64").to_numpy(),
    })


def history(readings: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Readings one after the other, as one table."""
    kept = [r for r in readings if not r.empty]
    if not kept:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in HISTORY_COLUMNS})
    return pd.concat(kept, ignore_index=True)


class TopologySource:
    """A chart source: lab.topology over the last `window_s` seconds, with the lab's workloads in `attrs["workloads"]`.

    reporter "source" is the callers' view: an abort a caller's sidecar
    injected shows on its edge. "auto" takes each edge from the callee's
    sidecar when it has one, as `lab.topology()` does by default.
    """

    def __init__(self, lab: Lab, *, window_s: float = 10.0, reporter: str = "source") -> None:
        self.lab = lab
        self.window_s = window_s
        self.reporter = reporter

    def __call__(self) -> pd.DataFrame:
        edges = self.lab.topology(window=self.window_s, reporter=self.reporter)
        edges.attrs["workloads"] = self.lab.workloads()
        edges.attrs["window_s"] = self.window_s
        edges.attrs["reporter"] = self.reporter
        return edges


# -- drawing ---------------------------------------------------------------------------


def signals_traces(frame: pd.DataFrame, title: str = "Golden signals per workload, as each workload's sidecar served them") -> Drawn:
    """Three panels over time, one line per key (workload): requests/s, success % and p99 ms.

    `frame` is a SignalHistory's table. A key with no requests in a reading
    has no point there (its line breaks) rather than a made-up zero; success
    and p99 are blank when nothing was served.
    """
    keys = sorted({str(k) for k in frame["key"]}) if not frame.empty else []
    traces: list[BaseTraceType] = []
    for key in keys:
        rows = frame[frame["key"] == key].sort_values("t")
        served = rows["requests"].astype("int64") > 0
        values = {
            "rps": rows["rps"].astype("float64").where(served),
            "success_pct": (rows["success_rate"].astype("float64") * 100.0).where(served),
            "p99_ms": rows["p99_ms"].astype("float64").where(served),
        }
        color = version_color(key, keys)
        for i, (column, axis, label) in enumerate(PANELS):
            unit = "%" if column == "success_pct" else " ms" if column == "p99_ms" else "/s"
            traces.append(go.Scatter(
                x=wall_clock(rows["t"]), y=values[column], mode="lines+markers", name=key, legendgroup=key,
                showlegend=i == 0, yaxis=axis, line={"color": color, "width": 2}, marker={"size": 5},
                connectgaps=False,
                hovertemplate=f"{key}<br>{label}: %{{y:.3~g}}{unit}<extra></extra>",
            ))
    layout = chart_layout(
        title if keys else f"{title} (no requests yet: start load)", 540,
        xaxis={"title": {"text": "time"}, "type": "date", "anchor": "y3"},
        yaxis={"title": {"text": "requests/s"}, "domain": DOMAINS["y"], "rangemode": "tozero"},
        yaxis2={"title": {"text": "success %"}, "domain": DOMAINS["y2"], "range": [0, 105], "tickvals": [0, 50, 80, 100]},
        yaxis3={"title": {"text": "p99 ms"}, "domain": DOMAINS["y3"], "rangemode": "tozero"},
        legend={**LEGEND_UNDER, "title": {"text": "workload:"}},
    )
    return traces, layout


def topology_traces(edges: pd.DataFrame) -> Drawn:
    """The topology of a TopologySource's table: meshkit.notebook.figures' graph with a title saying whose view it is."""
    workloads = edges.attrs.get("workloads")
    traces, layout = figures.topology_traces(edges, workloads)
    layout = dict(layout)
    title = topology_title(edges.attrs.get("reporter", "auto"), edges.attrs.get("window_s"))
    layout["title"] = {**layout["title"], "text": title if len(edges) else f"{title}: no calls yet, start load"}
    return traces, layout


def topology_title(reporter: str, window_s: float | None) -> str:
    """Whose records an edge's numbers come from, in words."""
    span = "since the lab started" if window_s is None or (isinstance(window_s, float) and math.isnan(window_s)) else f"last {window_s:g} s"
    view = {
        "source": "as each caller's sidecar saw its calls",
        "destination": "as each callee's sidecar served them",
    }.get(reporter, "from the callee's sidecar where it has one")
    return f"Topology {view} ({span})"
