"""Charts of the resilience lesson 06: retries, and the retry storm a budget contains.

A retry is one more request on a service that is already failing. These
charts show that load as the sidecars recorded it, second by second:

- `load_vs_attempts`: requests per second the callers sent to the service
  (one record each from the caller's sidecar, reporter "source") against
  attempts per second the service received (one record per attempt from its
  own sidecar, reporter "destination"); the shaded gap is the extra load
  retries add;
- `attempts_and_refusals`: attempts per request (1 + the retries the
  caller's sidecar made for it, averaged over the requests sent each
  second) and the share of requests whose retry the budget refused (flag UO
  on the caller's answer).

Both read the lab's telemetry (`lab.requests`), not the load generator's
rows: the client only ever sees one answer per request, whatever happened
behind it. `StormSource` fetches it once for both charts; `storm_charts`
gives the two Charts for a `meshkit.notebook.bench.Bench` (`storm_bench`
builds one), and `bench.run_load(steps=...)` runs its load while moving its
control, as a learner raising `attempts` in the middle of a run would.

Seconds are counted from the first request in view, so a run's seconds are
whole; the x axis is this machine's wall clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.lab import Lab
from meshkit.notebook import frontend
from meshkit.notebook.bench import Bench, Chart
from meshkit.notebook.figures import LEGEND_UNDER, chart_layout, short_host, wall_clock
from meshkit.notebook.load import LoadRun

Drawn = tuple[list[BaseTraceType], dict[str, Any]]

WINDOW_S = 60.0
"""Seconds of telemetry the charts show: the last experiment or two."""

REQUESTS_COLOR = "#1f77b4"
ATTEMPTS_COLOR = "#d62728"
REFUSED_COLOR = "#ff7f0e"

STORM_COLUMNS = {"second": "float64", "requests": "int64", "attempts": "int64", "refused": "int64",
                 "per_request": "float64", "refused_percent": "float64"}


def flag_set(flags: object) -> set[str]:
    """Envoy's response flags of one record ("UO,URX" -> {"UO", "URX"})."""
    return {f.strip() for f in str(flags or "").split(",") if f.strip() and f.strip() != "-"}


def of_service(records: pd.DataFrame, service: str) -> pd.DataFrame:
    """The records of requests to `service` (its short name or its full host), from both reporters."""
    hosts = records["destination_service"].astype("str")
    return records[[service in (h, short_host(h)) for h in hosts]]


def storm_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per second of telemetry: what callers sent and what the service received.

    `records` are lab.requests rows for one service (both reporters).
    Columns: second (epoch seconds at its start), requests (sent by callers,
    reporter "source"), attempts (received, reporter "destination"), refused
    (requests whose answer carries UO: a retry refused by the budget or a
    circuit breaker), per_request (mean attempts per request sent that
    second: 1 + its retries; NaN without requests) and refused_percent.
    Seconds are counted from the first request in view; a second without
    any record shows 0 requests and 0 attempts, so a pause is a drop, not a
    line bridging it. When `records.attrs["until"]` says when the records
    were read (epoch seconds), a second not over by then is left out: while
    load runs, the newest second would otherwise show as a dip.
    """
    if records.empty:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in STORM_COLUMNS.items()})
    sent = records[records["reporter"] == "source"]
    received = records[records["reporter"] == "destination"]
    origin = float((sent if not sent.empty else records)["start"].min())
    last = float(records["start"].max())
    seconds = origin + np.arange(int(np.floor(last - origin)) + 1, dtype="float64")
    until = records.attrs.get("until")
    if until is not None:
        seconds = seconds[seconds + 1.0 <= float(until)]

    def slot(frame: pd.DataFrame) -> np.ndarray:
        return np.floor(frame["start"].to_numpy(dtype="float64") - origin).astype("int64")

    n = len(seconds)
    sent_slot = slot(sent)
    keep = sent_slot >= 0
    requests = np.bincount(sent_slot[keep], minlength=n)[:n]
    tries = np.bincount(sent_slot[keep], weights=1.0 + sent["retries"].to_numpy(dtype="float64")[keep], minlength=n)[:n]
    refused_rows = np.array(["UO" in flag_set(f) for f in sent["flags"]], dtype=bool)
    refused = np.bincount(sent_slot[keep & refused_rows], minlength=n)[:n]
    received_slot = slot(received)
    attempts = np.bincount(received_slot[received_slot >= 0], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_request = np.where(requests > 0, tries / np.maximum(requests, 1), np.nan)
        refused_percent = np.where(requests > 0, refused / np.maximum(requests, 1) * 100.0, np.nan)
    table = pd.DataFrame({"second": seconds, "requests": requests, "attempts": attempts, "refused": refused,
                          "per_request": per_request, "refused_percent": refused_percent})
    return table.astype(STORM_COLUMNS)


def between(records: pd.DataFrame, since: float | None = None, until: float | None = None) -> pd.DataFrame:
    """The records of requests (and attempts) that started in [since, until) (epoch seconds; None: no bound)."""
    start = records["start"].astype("float64")
    keep = pd.Series(True, index=records.index)
    if since is not None:
        keep &= start >= since
    if until is not None:
        keep &= start < until
    picked = records[keep]
    picked.attrs = dict(records.attrs)
    return picked


def storm_totals(records: pd.DataFrame) -> dict[str, float | int]:
    """Over every record given: requests sent, attempts received, attempts per request, % refused by the budget,
    and the most attempts per request in any one second (`peak_per_request`)."""
    table = storm_table(records)
    requests = int(table["requests"].sum())
    attempts = int(table["attempts"].sum())
    refused = int(table["refused"].sum())
    return {
        "requests": requests,
        "attempts": attempts,
        "attempts_per_request": attempts / requests if requests else float("nan"),
        "refused_percent": refused / requests * 100.0 if requests else float("nan"),
        "peak_per_request": float(table["per_request"].max()) if requests else float("nan"),
    }


def storm_phases(records: pd.DataFrame, phases: Sequence[tuple[str, float | None, float | None]]) -> pd.DataFrame:
    """One row of `storm_totals` per phase: (name, since, until) in epoch seconds, None for no bound.

    For a table under the charts: what each setting of the control did.
    """
    rows = [{"phase": name, **storm_totals(between(records, since, until))} for name, since, until in phases]
    columns = ["phase", "requests", "attempts", "attempts_per_request", "peak_per_request", "refused_percent"]
    return pd.DataFrame(rows, columns=columns)


def _note(text: str, visible: bool) -> list[dict[str, Any]]:
    """One annotation in the middle of the chart saying why it is empty, shown only while it is.

    Always one: a live figure is updated in place, and an update to an empty
    list of annotations would leave the old note standing.
    """
    return [{"text": text, "visible": visible, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
             "showarrow": False, "font": {"size": 13, "color": "#7f7f7f"}}]


TIME_AXIS = {"title": {"text": "time (each point: one second)"}, "type": "date", "tickformat": "%H:%M:%S"}
EMPTY = "no requests to this service yet: start load"


def load_vs_attempts(records: pd.DataFrame, service: str = "the service") -> Drawn:
    """Two lines per second: requests the callers sent, attempts the service received (the gap shaded).

    The title adds up every record given (the source's window: the last minute).
    """
    table = storm_table(records)
    x = wall_clock(table["second"])
    traces: list[BaseTraceType] = [
        go.Scatter(x=x, y=table["requests"], mode="lines+markers", name="requests/s sent by the client",
                   line={"color": REQUESTS_COLOR, "width": 2}, marker={"size": 4},
                   hovertemplate="%{x|%H:%M:%S}: %{y} requests sent<extra></extra>"),
        go.Scatter(x=x, y=table["attempts"], mode="lines+markers", name=f"attempts/s received by {service}",
                   line={"color": ATTEMPTS_COLOR, "width": 2}, marker={"size": 4},
                   fill="tonexty", fillcolor="rgba(214, 39, 40, 0.15)",
                   hovertemplate="%{x|%H:%M:%S}: %{y} attempts received<extra></extra>"),
    ]
    totals = storm_totals(records)
    if totals["requests"]:
        title = f"Load on {service}: {totals['requests']} requests sent, {totals['attempts']} attempts received"
    else:
        title = f"Load on {service}: requests sent vs attempts received"
    layout = chart_layout(title, 360, xaxis=dict(TIME_AXIS),
                          yaxis={"title": {"text": "per second"}, "rangemode": "tozero"},
                          # A filled trace would put the legend in reverse; keep requests first, as drawn.
                          legend={**LEGEND_UNDER, "traceorder": "normal"},
                          annotations=_note(EMPTY, not totals["requests"]))
    return traces, layout


def attempts_and_refusals(records: pd.DataFrame) -> Drawn:
    """Per second: attempts per request (line, left axis) and % of requests the budget refused a retry (bars, right axis)."""
    table = storm_table(records)
    x = wall_clock(table["second"])
    traces: list[BaseTraceType] = [
        go.Bar(x=x, y=table["refused_percent"], name="% of requests refused a retry (UO)", yaxis="y2",
               marker={"color": REFUSED_COLOR, "opacity": 0.45},
               customdata=np.stack([table["refused"].to_numpy(), table["requests"].to_numpy()], axis=-1),
               hovertemplate="%{x|%H:%M:%S}: %{customdata[0]} of %{customdata[1]} requests refused (%{y:.0f}%)<extra></extra>"),
        go.Scatter(x=x, y=table["per_request"], mode="lines+markers", name="attempts per request",
                   line={"color": ATTEMPTS_COLOR, "width": 2}, marker={"size": 4}, connectgaps=False,
                   hovertemplate="%{x|%H:%M:%S}: %{y:.2f} attempts per request<extra></extra>"),
    ]
    totals = storm_totals(records)
    if totals["requests"]:
        title = (f"Attempts per request ({totals['attempts_per_request']:.1f} overall), "
                 f"refused a retry ({totals['refused_percent']:.0f}%)")
    else:
        title = "Attempts per request, and requests refused by the budget"
    layout = chart_layout(title, 360, xaxis=dict(TIME_AXIS),
                          yaxis={"title": {"text": "attempts per request"}, "rangemode": "tozero"},
                          yaxis2={"title": {"text": "% refused (UO)"}, "overlaying": "y", "side": "right",
                                  "range": [0, 105], "tickvals": [0, 25, 50, 75, 100], "showgrid": False},
                          bargap=0.2, legend=dict(LEGEND_UNDER),
                          annotations=_note(EMPTY, not totals["requests"]))
    return traces, layout


# -- wiring for a bench ----------------------------------------------------------------


class StormSource:
    """The lab's telemetry for one service over the last `window_s` seconds, fetched at most once per `reuse_s`.

    One object serves both charts of a bench: the second chart's read,
    a moment after the first's, gets the same table instead of asking
    every sidecar again.
    """

    def __init__(self, lab: Lab, service: str, window_s: float = WINDOW_S, reuse_s: float = 0.5) -> None:
        self.lab = lab
        self.service = service
        self.window_s = window_s
        self.reuse_s = reuse_s
        self._lock = threading.Lock()
        self._last: tuple[float, pd.DataFrame] | None = None

    def __call__(self) -> pd.DataFrame:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self.reuse_s:
                return self._last[1]
            frame = of_service(self.lab.requests(window=self.window_s), self.service).reset_index(drop=True)
            frame.attrs["until"] = time.time()
            self._last = (now, frame)
            return frame


def storm_charts(lab: Lab, service: str, window_s: float = WINDOW_S) -> list[Chart]:
    """The two charts of a retry storm on `service`, sharing one telemetry source."""
    source = StormSource(lab, service, window_s)
    return [Chart(lambda records: load_vs_attempts(records, service), source=source),
            Chart(attempts_and_refusals, source=source)]


def storm_bench(lab: Lab, control: Any, *, service: str, window_s: float = WINDOW_S, **options: Any) -> Bench:
    """A Bench on `service` with the two storm charts: the control (a RetryWidget), a load generator, the charts.

    `options` are Bench's (path, rate, duration_s, title, live). The charts
    are drawn once at once, so a live chart is first shown with its layout
    (its own width, legend and axes) rather than plotly's default one.
    """
    bench = Bench(lab, control, service=service, charts=storm_charts(lab, service, window_s), **options)
    bench.refresh()
    return bench


