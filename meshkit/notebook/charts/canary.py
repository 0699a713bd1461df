"""Lesson 13 (the capstone): a canary analysis as a pure function, the table of its verdicts, and its chart.

A canary release raises the new version's share of traffic step by step
(10%, 25%, 50%, 100%) and, at each step, compares it with the stable
version measured in the same step, on the golden signals the mesh records
for every request: its error rate and its p99 latency. `analyse` is that
comparison, a pure function of the step's rows (one per request, as the
bench's load generator recorded them: version, code, latency); it passes a
step when the canary's error rate is at most `max_error_rate` and its p99 at
most `max_p99_ratio` times the stable version's. Whoever runs the steps
(the notebook's loop here; Flagger or Argo Rollouts in production) promotes
on a pass and rolls back on a fail.

- `steps_table`: the steps as a table for people, with their verdicts;
- `analysis_traces`: per load run (one run is one step), error rate and p99
  per version, with the thresholds drawn: a line at the error-rate limit,
  and a mark at each step's p99 limit. Drawn from the bench's rows alone,
  so it follows the steps live, whoever moves the split.

An error is a request answered 5xx or not answered at all (code 0), as
Flagger's request-success-rate counts it; a 4xx is the caller's mistake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.errors import LabError
from meshkit.notebook import frontend
from meshkit.notebook.bench import Bench
from meshkit.notebook.figures import LEGEND_UNDER, chart_layout, version_color

Drawn = tuple[list[BaseTraceType], dict[str, Any]]

KNOWN_VERSIONS = ("v1", "v2", "v3")
"""Versions whose colours are fixed, so a version keeps its colour when another appears."""

LIMIT_COLOR = "#d62728"
LOG_TICKS = [m * 10**e for e in range(0, 5) for m in (1, 2, 5)]
"""Ticks of the p99 axis: 1, 2, 5, 10, 20, 50, ... ms (plotly's own log ticks label 300 as "3")."""


@dataclass(frozen=True)
class Thresholds:
    """When a canary step fails: an error rate above `max_error_rate`, or a p99 above `max_p99_ratio` x the stable version's."""

    max_error_rate: float = 0.02
    max_p99_ratio: float = 2.0


@dataclass(frozen=True)
class Step:
    """One analysed step: the canary's share, what both versions showed, and the verdict."""

    canary: str
    baseline: str
    weight: int
    passed: bool
    verdict: str
    canary_requests: int
    canary_error_rate: float
    canary_p99_ms: float
    baseline_requests: int
    baseline_p99_ms: float  # measured in this step, else the reference it was compared with (NaN: none)
    p99_limit_ms: float


def is_error(code: int) -> bool:
    """A request that failed on the server's side: answered 5xx, or not answered (code 0)."""
    return code == 0 or code >= 500


def version_signals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per version that answered: requests, errors, error_rate and p99_ms (of every request, failed ones too)."""
    columns = {"requests": "int64", "errors": "int64", "error_rate": "float64", "p99_ms": "float64"}
    answered = rows[rows["version"].astype(str) != ""] if not rows.empty else rows
    if answered.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()}).rename_axis("version")
    errors = answered["code"].map(lambda c: is_error(int(c)))
    table = answered.assign(error=errors).groupby("version").agg(
        requests=("code", "size"), errors=("error", "sum"), p99_ms=("latency_ms", lambda ms: float(ms.quantile(0.99))),
    )
    table["error_rate"] = table["errors"] / table["requests"]
    return table[list(columns)].astype(columns)


def analyse(
    rows: pd.DataFrame,
    *,
    canary: str,
    weight: int,
    baseline: str = "v1",
    thresholds: Thresholds = Thresholds(),
    reference_p99_ms: float | None = None,
) -> Step:
    """Judge one step from its rows: pass when the canary's error rate and p99 are within the thresholds.

    The p99 limit is `max_p99_ratio` times the baseline's p99 in the same
    step; when the baseline got no requests (the canary at 100%), times
    `reference_p99_ms`, the baseline's p99 at the step before. A step where
    the canary got no request fails: there is nothing to promote on.
    """
    signals = version_signals(rows)
    base = signals.loc[baseline] if baseline in signals.index else None
    base_p99 = float(base["p99_ms"]) if base is not None else (math.nan if reference_p99_ms is None else float(reference_p99_ms))
    limit = thresholds.max_p99_ratio * base_p99 if not math.isnan(base_p99) else math.nan
    base_requests = int(base["requests"]) if base is not None else 0
    if canary not in signals.index:
        return Step(canary, baseline, weight, False, f"fail: {canary} served no request, nothing to judge",
                    0, math.nan, math.nan, base_requests, base_p99, limit)
    own = signals.loc[canary]
    error_rate, p99 = float(own["error_rate"]), float(own["p99_ms"])
    if error_rate > thresholds.max_error_rate:
        verdict = f"fail: {canary} error rate {error_rate:.1%} > {thresholds.max_error_rate:.0%}"
    elif not math.isnan(limit) and p99 > limit:
        whose = f"{baseline}'s" if base is not None else f"{baseline}'s at the step before"
        verdict = f"fail: {canary} p99 {p99:.0f} ms > {thresholds.max_p99_ratio:g} x {whose} {base_p99:.0f} ms"
    else:
        verdict = "pass"
    return Step(canary, baseline, weight, verdict == "pass", verdict, int(own["requests"]), error_rate, p99,
                base_requests, base_p99, limit)


def action(step: Step, last_weight: int = 100) -> str:
    """What the release does after a step: the next step, promotion, or the rollback."""
    if not step.passed:
        return f"roll back: {step.baseline} 100%"
    return f"promoted: {step.canary} 100%" if step.weight >= last_weight else "next step"


def steps_table(steps: Sequence[Step]) -> pd.DataFrame:
    """The steps of one or more releases, one row each, for people: shares in %, rates in %, times in ms."""
    columns = ["canary", "share %", "canary requests", "canary error %", "canary p99 ms", "baseline p99 ms",
               "p99 limit ms", "verdict", "then"]
    rows = [
        {
            "canary": s.canary, "share %": s.weight, "canary requests": s.canary_requests,
            "canary error %": s.canary_error_rate * 100.0, "canary p99 ms": s.canary_p99_ms,
            "baseline p99 ms": s.baseline_p99_ms, "p99 limit ms": s.p99_limit_ms, "verdict": s.verdict,
            "then": action(s),
        }
        for s in steps
    ]
    table = pd.DataFrame(rows, columns=columns)
    table.index = pd.RangeIndex(1, len(table) + 1, name="step")
    return table


# -- the chart -----------------------------------------------------------------------


def run_label(run: int, signals: pd.DataFrame, baseline: str) -> str:
    """How a run (a step) is named on the chart: its number and the canary's observed share."""
    total = int(signals["requests"].sum()) if not signals.empty else 0
    others = signals.drop(index=baseline, errors="ignore")
    if total == 0:
        return f"#{run}"
    if others.empty:
        return f"#{run} {baseline} only"
    canary = str(others["requests"].idxmax())
    return f"#{run} {canary} {100.0 * int(others.loc[canary, 'requests']) / total:.0f}%"


def run_signals(rows: pd.DataFrame, baseline: str = "v1") -> pd.DataFrame:
    """Per (run, version): requests, error_rate, p99_ms, the run's label, and its p99 limit base
    (the baseline's p99 in that run, else in the last run before that had one)."""
    columns = ["run", "label", "version", "requests", "error_rate", "p99_ms", "baseline_p99_ms"]
    records: list[dict[str, Any]] = []
    reference = math.nan
    for run in sorted(set(int(r) for r in rows["run"])) if not rows.empty else []:
        signals = version_signals(rows[rows["run"] == run])
        if signals.empty:
            continue
        if baseline in signals.index:
            reference = float(signals.loc[baseline, "p99_ms"])
        label = run_label(run, signals, baseline)
        for version, row in signals.iterrows():
            records.append({"run": run, "label": label, "version": str(version), "requests": int(row["requests"]),
                            "error_rate": float(row["error_rate"]), "p99_ms": float(row["p99_ms"]),
                            "baseline_p99_ms": reference})
    return pd.DataFrame(records, columns=columns)


def analysis_traces(rows: pd.DataFrame, baseline: str = "v1", thresholds: Thresholds = Thresholds()) -> Drawn:
    """Two panels, one group of bars per load run: error rate % (top) and p99 ms (bottom, log scale) per version.

    The error-rate limit is a dashed line; each run's p99 limit
    (`max_p99_ratio` x the baseline's p99) a red mark over its group, for
    runs where a canary answered (a run of the baseline alone judges nothing).
    A group's place on the axis is its run number, which never changes; its
    name under the axis (canary and observed share) follows the run while it
    fills (a live chart keeps every category it was ever given).
    """
    table = run_signals(rows, baseline)
    runs = [int(r) for r in dict.fromkeys(table["run"])]
    keys = [f"#{r}" for r in runs]
    names = dict(zip(table["run"].astype(int), table["label"], strict=True)) if not table.empty else {}
    versions = sorted(set(table["version"]))
    palette = sorted({*KNOWN_VERSIONS, *versions})
    traces: list[BaseTraceType] = []
    for version in versions:
        part = table[table["version"] == version].set_index("run")
        errors = [float(part["error_rate"].get(r, math.nan)) * 100.0 for r in runs]
        p99 = [float(part["p99_ms"].get(r, math.nan)) for r in runs]
        hover = [[int(part["requests"].get(r, 0)), names[r]] for r in runs]
        color = version_color(version, palette)
        traces.append(go.Bar(x=keys, y=errors, name=version, legendgroup=version, marker={"color": color},
                             customdata=hover, yaxis="y",
                             hovertemplate=f"{version}, %{{customdata[1]}}: %{{y:.1f}}% of %{{customdata[0]}} requests failed<extra></extra>"))
        traces.append(go.Bar(x=keys, y=p99, name=version, legendgroup=version, marker={"color": color},
                             showlegend=False, customdata=hover, yaxis="y2", xaxis="x2",
                             hovertemplate=f"{version}, %{{customdata[1]}}: p99 %{{y:.0f}} ms of %{{customdata[0]}} requests<extra></extra>"))
    judged = set(table[table["version"] != baseline]["run"].astype(int)) if not table.empty else set()
    limits = (table.drop_duplicates("run").set_index("run")["baseline_p99_ms"] * thresholds.max_p99_ratio
              if not table.empty else pd.Series(dtype="float64"))
    if runs:
        traces.append(go.Scatter(
            x=keys, y=[float(limits.get(r, math.nan)) if r in judged else math.nan for r in runs],
            mode="markers", yaxis="y2", xaxis="x2", customdata=[names[r] for r in runs],
            name=f"p99 limit ({thresholds.max_p99_ratio:g} x {baseline})", marker={"symbol": "line-ew-open", "size": 36,
                                                                                "color": LIMIT_COLOR, "line": {"width": 3}},
            hovertemplate="%{customdata}: p99 limit %{y:.0f} ms<extra></extra>",
        ))
        traces.append(go.Scatter(
            x=[keys[0], keys[-1]], y=[thresholds.max_error_rate * 100.0] * 2, mode="lines", yaxis="y",
            name=f"error-rate limit ({thresholds.max_error_rate:.0%})", line={"color": LIMIT_COLOR, "dash": "dash"},
            hoverinfo="skip",
        ))
    title = "Canary analysis: each load run is a step (its canary's observed share)"
    layout = chart_layout(
        title if runs else f"{title}: no steps yet, set a split and start load", 520,
        barmode="group",
        xaxis={"type": "category", "anchor": "y", "showticklabels": False, "matches": "x2"},
        xaxis2={"type": "category", "anchor": "y2", "title": {"text": "step: run, canary, share"},
                "tickmode": "array", "tickvals": keys, "ticktext": [names[r] for r in runs]},
        yaxis={"title": {"text": "error %"}, "domain": [0.58, 1.0], "rangemode": "tozero"},
        yaxis2={"title": {"text": "p99 ms (log)"}, "domain": [0.0, 0.46], "type": "log",
                "tickvals": LOG_TICKS, "ticktext": [f"{v:g}" for v in LOG_TICKS]},
        legend={**LEGEND_UNDER, "title": {"text": "version:"}},
    )
    return traces, layout


# -- running steps on a bench -----------------------------------------------------------


def run_step(bench: Bench, **load: Any) -> pd.DataFrame:
    """Send one step's load with the bench (keyword overrides as Bench.run_load), wait, redraw; return that run's rows.

    Live, the bench's chart shows the step while it runs; headless nothing
    is shown (`show_static` shows the charts once, after the steps).
    """
    run = bench.run_load(wait=False, **load)
    if run is None:
        raise LabError(f"the load generator refused the step: {bench.loadgen.error}")
    run.wait()
    if run.state != "done":
        raise LabError(f"the step's load run ended {run.state}: {run.error}")
    bench.refresh()
    frame = bench.frame()
    return frame[frame["run"] == run.run_id].reset_index(drop=True)


def show_static(bench: Bench) -> None:
    """Headless, show the bench's charts as they are now; live, they are on screen already, so nothing."""
    if not bench.live:
        bench.refresh()
        frontend.show(*bench.static_figures())
