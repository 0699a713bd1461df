"""Charts of the resilience lessons 07 and 08: circuit breakers, outlier detection, injected faults.

Each chart is a pure function `draw(frame) -> (traces, layout)` for a
`meshkit.notebook.bench.Bench`:

- `outcomes_per_second`: the bench's requests, one stacked bar per second,
  split by outcome (200, `503 UO` from a circuit breaker, `503 UH` with no
  endpoint left, aborts and delays injected by a fault rule, timeouts,
  errors from the app, anything else), each outcome in its own colour
  (07, 08);
- `latency_per_outcome`: one dot per request, its latency on a log scale,
  coloured by the same outcomes: a breaker's `503 UO` a millisecond or two,
  a queued 200 hundreds, an injected delay exactly its length (07, 08);
- `endpoint_states`: for each endpoint of a service, whether the caller's
  sidecar had it in rotation or ejected by outlier detection, over time (07).

The first two read what the client saw (the recorder's rows: at, latency_ms,
code, flags, version). The third reads what the caller's sidecar knows: its
admin page `/clusters` lists every endpoint of every outbound cluster with
`ejected`, `ejections` and `consecutive_5xx`. `EndpointSampler` reads it
each time the bench asks (about every 2 s while load runs, and once after
each run), through `lab.endpoints(workload)`, and keeps the history.

Every chart's x axis is the wall clock of this machine, so the charts of one
bench line up: the second v2's errors stop in one is the second it is marked
ejected in the other.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.errors import MeshkitError
from meshkit.lab import Lab
from meshkit.notebook.bench import Chart
from meshkit.notebook.figures import LEGEND_UNDER, chart_layout, wall_clock

Drawn = tuple[list[BaseTraceType], dict[str, Any]]

# -- outcomes ------------------------------------------------------------------------

OK = "200 OK"
DELAYED = "200 after an injected delay (DI)"
OVERFLOW = "503 UO: circuit breaker"
NO_HEALTHY = "503 UH: no healthy endpoint"
ABORTED = "aborted by fault injection (FI)"
TIMEOUT = "504 UT: timeout"
APP_ERROR = "5xx from the app"
OTHER = "other error"

OUTCOMES: dict[str, str] = {
    # outcome -> colour; this order is the legend's and the stacking's (successes at the bottom).
    OK: "#2ca02c",
    DELAYED: "#17becf",
    OVERFLOW: "#ff7f0e",
    NO_HEALTHY: "#8c564b",
    ABORTED: "#9467bd",
    TIMEOUT: "#e377c2",
    APP_ERROR: "#d62728",
    OTHER: "#7f7f7f",
}

MAX_POINTS = 4000
"""Dots the per-request chart draws at most (the newest): more only slows the browser."""

HORIZON_S = 120.0
"""Seconds of history the per-second chart shows: the newest, while a learner keeps experimenting."""


def outcome(code: int, flags: str) -> str:
    """What happened to one request, in words a learner reads in the legend.

    The mesh's own answers are told apart by their response flags (Envoy's
    letters, several joined by commas): an injected abort (FI) whatever its
    status, a breaker's overflow (UO), no healthy endpoint (UH), a timeout
    (UT). A 2xx or 3xx is a success, "after an injected delay" when DI is set.
    A 5xx without a flag came from the application itself.
    """
    letters = {f.strip() for f in str(flags or "").split(",") if f.strip()}
    if "FI" in letters:
        return ABORTED
    if "UO" in letters:
        return OVERFLOW
    if "UH" in letters:
        return NO_HEALTHY
    if "UT" in letters:
        return TIMEOUT
    if 200 <= code < 400:
        return DELAYED if "DI" in letters else OK
    if 500 <= code < 600 and not letters:
        return APP_ERROR
    return OTHER


def with_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with an `outcome` column (see `outcome`)."""
    labels = [outcome(int(c), str(f)) for c, f in zip(frame["code"], frame["flags"], strict=True)]
    return frame.assign(outcome=pd.Series(labels, index=frame.index, dtype="str"))


def _note(text: str = "") -> dict[str, Any]:
    """An annotation in the middle of an empty chart, saying why it is empty; without text, hidden.

    A chart with data still has it, hidden: a live figure's layout is
    updated, not replaced, so the note of the empty chart it was first drawn
    as must be overwritten, and an empty list would leave it in place.
    """
    return {"text": text, "visible": bool(text), "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "showarrow": False, "font": {"size": 13, "color": "#7f7f7f"}}


def outcome_counts(frame: pd.DataFrame, horizon_s: float | None = HORIZON_S) -> pd.DataFrame:
    """Requests per whole second of intended send time and outcome: columns second (epoch), outcome, count.

    Seconds inside the span with no request of an outcome are absent; only
    the last `horizon_s` seconds before the newest request are kept.
    """
    if frame.empty:
        return pd.DataFrame({"second": pd.Series(dtype="float64"), "outcome": pd.Series(dtype="str"),
                             "count": pd.Series(dtype="int64")})
    rows = with_outcomes(frame)
    if horizon_s is not None:
        rows = rows[rows["at"] > rows["at"].max() - horizon_s]
    rows = rows.assign(second=np.floor(rows["at"].to_numpy()))
    counts = rows.groupby(["second", "outcome"]).size().rename("count").reset_index()
    counts["count"] = counts["count"].astype("int64")
    return counts


OUTCOMES_LAYOUT = chart_layout(
    "Requests per second by outcome (what the client got)", 380,
    barmode="stack",
    bargap=0.1,
    xaxis={"title": {"text": "time (second each request was sent)"}, "type": "date", "tickformat": "%H:%M:%S"},
    yaxis={"title": {"text": "requests per second"}, "rangemode": "tozero"},
    legend={**LEGEND_UNDER, "title": {"text": "outcome:"}, "traceorder": "normal"},
)


def outcomes_per_second(frame: pd.DataFrame, horizon_s: float | None = HORIZON_S) -> Drawn:
    """One stacked bar per second, a segment per outcome in its own colour (see OUTCOMES).

    `frame` has the recorder's columns at, code and flags. A bar's height is
    the number of requests sent in that second; the newest second may still
    be filling while load runs.
    """
    counts = outcome_counts(frame, horizon_s)
    if counts.empty:
        return [], {**OUTCOMES_LAYOUT, "annotations": [_note("no requests yet: start the load")]}
    traces: list[BaseTraceType] = []
    for name, color in OUTCOMES.items():
        rows = counts[counts["outcome"] == name]
        if rows.empty:
            continue
        traces.append(go.Bar(
            x=wall_clock(rows["second"].to_numpy() + 0.5), y=rows["count"].to_numpy(), name=name,
            marker={"color": color}, width=900,  # ms: a bar fills most of its second
            hovertemplate=f"{html.escape(name)}: %{{y}} requests in the second from %{{x|%H:%M:%S}}<extra></extra>",
        ))
    return traces, {**OUTCOMES_LAYOUT, "annotations": [_note()]}


def outcomes_chart(horizon_s: float | None = HORIZON_S) -> Chart:
    """A bench chart of `outcomes_per_second` over the bench's own requests."""
    return Chart(lambda frame: outcomes_per_second(frame, horizon_s))


# -- latency of each request -------------------------------------------------------------

LATENCY_LAYOUT = chart_layout(
    "Latency of each request, by outcome", 380,
    showlegend=True,  # even with one outcome: the legend says what the colour means
    xaxis={"title": {"text": "time the request was sent"}, "type": "date", "tickformat": "%H:%M:%S"},
    yaxis={"title": {"text": "latency (log scale)"}, "type": "log"},
    legend={**LEGEND_UNDER, "title": {"text": "outcome:"}},
)
MIN_MS = 0.1
"""Latencies are drawn from this up: a log axis has no 0, and a refusal can be answered in less than it."""


def duration_label(ms: float) -> str:
    """A tick label: 0.5 ms, 20 ms, 2 s."""
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def latency_ticks(low_ms: float, high_ms: float) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log latency axis from `low_ms` to `high_ms`.

    Within three decades the ticks are 1, 2 and 5 of each decade, so a
    narrow range (2 to 6 s) still gets labels; wider, only powers of ten,
    so they do not crowd. The ticks run from the last one at or below the
    data to the first one at or above it (at least two), and the chart's
    axis spans exactly them, so every dot sits between labelled lines.
    """
    low, high = max(MIN_MS, low_ms), max(MIN_MS, high_ms)
    first, last = int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1
    steps = (1, 2, 5) if last - first <= 4 else (1,)
    values = [round(m * 10.0 ** e, 6) for e in range(first, last + 1) for m in steps]
    start = max(i for i, v in enumerate(values) if v <= low * (1 + 1e-9))
    end = min(i for i, v in enumerate(values) if v >= high * (1 - 1e-9))
    kept = values[start:max(end, start + 1) + 1]
    return kept, [duration_label(v) for v in kept]


def latency_per_outcome(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> Drawn:
    """One dot per request (x: when it was sent, y: its latency), coloured by outcome.

    `frame` has the recorder's columns at, latency_ms, code, flags and
    version. The y axis is logarithmic, so a 1 ms refusal and a 7 s delay
    both stay readable; only the newest `max_points` requests are drawn.
    """
    if frame.empty:
        return [], {**LATENCY_LAYOUT, "annotations": [_note("no requests yet: start the load")]}
    rows = with_outcomes(frame.sort_values("at").tail(max_points))
    traces: list[BaseTraceType] = []
    for name, color in OUTCOMES.items():
        group = rows[rows["outcome"] == name]
        if group.empty:
            continue
        detail = [f"{code} {flags}".strip() + (f" from {version}" if version else "")
                  for code, flags, version in zip(group["code"], group["flags"], group["version"], strict=True)]
        traces.append(go.Scatter(
            x=wall_clock(group["at"].to_numpy()), y=group["latency_ms"].clip(lower=MIN_MS).to_numpy(),
            mode="markers", name=name, text=detail,
            marker={"color": color, "size": 6, "opacity": 0.75},
            hovertemplate="%{text}: %{y:.1f} ms at %{x|%H:%M:%S.%L}<extra></extra>",
        ))
    latency = rows["latency_ms"].clip(lower=MIN_MS)
    values, labels = latency_ticks(float(latency.min()), float(latency.max()))
    # A log axis' range is in decades: from the first tick to the last, with a little room for the dots on them.
    bottom, top = float(np.log10(values[0])), float(np.log10(values[-1]))
    pad = (top - bottom) * 0.03
    yaxis = {**LATENCY_LAYOUT["yaxis"], "tickmode": "array", "tickvals": values, "ticktext": labels,
             "range": [bottom - pad, top + pad]}
    return traces, {**LATENCY_LAYOUT, "yaxis": yaxis, "annotations": [_note()]}


def latency_chart(max_points: int = MAX_POINTS) -> Chart:
    """A bench chart of `latency_per_outcome` over the bench's own requests."""
    return Chart(lambda frame: latency_per_outcome(frame, max_points))


# -- endpoints in rotation or ejected (the caller's sidecar) -----------------------------------

ENDPOINT_COLUMNS = ["at", "service", "endpoint", "version", "ejected", "ejections", "consecutive_5xx"]


def service_of(host: str) -> str:
    """pick.default.svc.cluster.local -> pick."""
    return host.split(".", 1)[0]


def endpoint_rows(endpoints: pd.DataFrame, at: float, service: str | None = None) -> list[dict[str, Any]]:
    """One row per endpoint of a `lab.endpoints()` reading at time `at` (epoch seconds).

    Only clusters without a subset are read (a subset's cluster lists the
    same endpoints again); `service` keeps one service's. `endpoint` is
    "version (instance)", what a learner recognises.
    """
    rows = []
    for row in endpoints.itertuples(index=False):
        if isinstance(row.subset, str) or (service is not None and row.service != service):  # subset: NaN when none
            continue
        version = str(row.version or "")
        instance = str(row.instance or row.address or "")
        rows.append({
            "at": float(at), "service": row.service,
            "endpoint": f"{version} ({instance})" if version else instance,
            "version": version, "ejected": bool(row.ejected),
            "ejections": int(row.ejections), "consecutive_5xx": int(row.consecutive_5xx),
        })
    return rows


class EndpointSampler:
    """Reads the caller's view of a service's endpoints each time it is called, and keeps the history.

    `sampler()` asks `workload`'s sidecar (the load's source, curl) for its
    /clusters page and returns every sample so far (ENDPOINT_COLUMNS), the
    newest last. Give it to a bench as a chart's source:
    `Chart(endpoint_states, source=EndpointSampler(lab, "pick"))`; the bench
    calls it about every 2 s while load runs and once after each run. A
    sidecar that does not answer adds no row (the chart keeps what it had).
    """

    def __init__(self, lab: Lab, service: str, workload: str = "curl", max_rows: int = 20_000) -> None:
        self.lab = lab
        self.service = service
        self.workload = workload
        self.max_rows = max_rows
        self.last_error = ""
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def sample(self) -> list[dict[str, Any]]:
        """One reading of the sidecar's endpoints (lab.endpoints), added to the history."""
        try:
            endpoints = self.lab.endpoints(self.workload)
        except MeshkitError as exc:
            self.last_error = str(exc)
            return []
        rows = endpoint_rows(endpoints, time.time(), self.service)
        with self._lock:
            self._rows = (self._rows + rows)[-self.max_rows:]
        return rows

    def frame(self) -> pd.DataFrame:
        with self._lock:
            rows = list(self._rows)
        return pd.DataFrame(rows, columns=ENDPOINT_COLUMNS)

    def __call__(self) -> pd.DataFrame:
        self.sample()
        return self.frame()


ENDPOINTS_LAYOUT = chart_layout(
    "Endpoints as the caller's sidecar sees them", 300,
    xaxis={"title": {"text": "time (the sidecar is read about every 2 s while load runs)"}, "type": "date",
           "tickformat": "%H:%M:%S"},
    yaxis={"type": "category", "title": {"text": ""}},
    legend={**LEGEND_UNDER, "title": {"text": "state:"}},
)
IN_ROTATION_COLOR = "#2ca02c"
EJECTED_COLOR = "#d62728"


JOIN_S = 3.0
"""Consecutive readings at most this far apart are joined by a bar in the earlier one's state; a longer gap
(no load ran, so nobody read the sidecar) stays empty rather than claiming what the sidecar knew then."""


def state_segments(times: Sequence[float], states: Sequence[bool], join_s: float = JOIN_S) -> dict[bool, list[float | None]]:
    """Per state, the x values of the stretches an endpoint held it: start, end, None (a break, for plotly).

    Each reading holds until the next one when that comes within `join_s`
    seconds; a reading with no such successor is a stretch of no length.
    """
    out: dict[bool, list[float | None]] = {False: [], True: []}
    for i, (at, state) in enumerate(zip(times, states, strict=True)):
        following = times[i + 1] if i + 1 < len(times) else None
        end = following if following is not None and following - at <= join_s else at
        out[bool(state)] += [float(at), float(end), None]
    return out


def _with_breaks(xs: Sequence[float | None]) -> list[Any]:
    """Epoch seconds as wall-clock times, the None breaks kept."""
    times = iter(wall_clock([x for x in xs if x is not None]))
    return [None if x is None else next(times) for x in xs]


def endpoint_states(samples: pd.DataFrame, join_s: float = JOIN_S) -> Drawn:
    """One lane per endpoint: green while in rotation, red while ejected, a mark at each reading.

    `samples` has ENDPOINT_COLUMNS (EndpointSampler's history). Readings
    within `join_s` seconds of each other are joined into a bar in the
    earlier reading's state. Hover tells how often the endpoint was ejected
    so far and its current run of 5xx.
    """
    if samples.empty:
        return [], {**ENDPOINTS_LAYOUT, "annotations": [_note("not read yet: start the load")]}
    endpoints = sorted(samples["endpoint"].unique())
    styles = {False: ("in rotation", IN_ROTATION_COLOR, "square"),
              True: ("ejected by outlier detection", EJECTED_COLOR, "x")}
    lanes: dict[bool, tuple[list[Any], list[Any]]] = {False: ([], []), True: ([], [])}
    for endpoint in endpoints:
        rows = samples[samples["endpoint"] == endpoint].sort_values("at")
        segments = state_segments(list(rows["at"]), list(rows["ejected"].astype(bool)), join_s)
        for state, xs in segments.items():
            lanes[state][0].extend(xs)
            lanes[state][1].extend(endpoint if x is not None else None for x in xs)
    traces: list[BaseTraceType] = []
    for state, (name, color, symbol) in styles.items():
        xs, ys = lanes[state]
        if xs:
            traces.append(go.Scatter(
                x=_with_breaks(xs), y=ys, mode="lines", name=name,
                legendgroup=name, showlegend=False, hoverinfo="skip", connectgaps=False,
                line={"color": color, "width": 8},
            ))
        rows = samples[samples["ejected"] == state]
        if rows.empty:
            continue
        detail = [f"ejected {n} time(s) so far, {c} 5xx in a row"
                  for n, c in zip(rows["ejections"], rows["consecutive_5xx"], strict=True)]
        traces.append(go.Scatter(
            x=wall_clock(rows["at"].to_numpy()), y=rows["endpoint"].to_numpy(), mode="markers", name=name,
            legendgroup=name, text=detail, marker={"color": color, "symbol": symbol, "size": 12},
            hovertemplate=f"%{{y}}: {name} at %{{x|%H:%M:%S}}<br>%{{text}}<extra></extra>",
        ))
    layout = {**ENDPOINTS_LAYOUT, "annotations": [_note()],
              "yaxis": {**ENDPOINTS_LAYOUT["yaxis"], "categoryorder": "array", "categoryarray": endpoints[::-1]}}
    return traces, layout


def endpoints_chart(lab: Lab, service: str, workload: str = "curl") -> Chart:
    """A bench chart of `endpoint_states`, read from `workload`'s sidecar while the load runs."""
    return Chart(endpoint_states, source=EndpointSampler(lab, service, workload))


# -- numbers the lessons quote --------------------------------------------------------------


def outcome_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per outcome: requests, the median and the largest latency (ms), in OUTCOMES order."""
    if frame.empty:
        return pd.DataFrame(columns=["outcome", "requests", "median_ms", "max_ms"])
    rows = with_outcomes(frame)
    table = rows.groupby("outcome").agg(requests=("code", "size"), median_ms=("latency_ms", "median"),
                                        max_ms=("latency_ms", "max"))
    order = [name for name in OUTCOMES if name in table.index]
    table = table.loc[order].reset_index()
    table["requests"] = table["requests"].astype("int64")
    return table


def last_run(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the newest load run in a bench's frame."""
    if frame.empty:
        return frame
    return frame[frame["run"] == frame["run"].max()]
