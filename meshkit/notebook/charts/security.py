"""Charts of the security lessons (09 mTLS, 10 authorization): every hop of the mesh, request by request.

Both charts read one table, the *calls*: one row per request on one hop
(caller -> callee), built by pure functions from

- the sidecars' telemetry (`lab.requests()`): the callee's sidecar saw the
  request arrive, knows whether it came over mutual TLS and whether an
  AuthorizationPolicy denied it (403, flags RBAC); a plaintext caller is
  named by its own sidecar's report of the hop, never by what it claimed;
- the load generator's own rows for a caller outside the mesh: a connection
  that a STRICT sidecar closes never becomes a request, so no telemetry has
  it, and only the caller knows it failed.

Each hop gets a lane of its own (stacked areas, requests per second), so
hops with the same rate do not hide each other:

- `mtls_hops` (09): per hop, mTLS / plaintext / refused;
- `authz_hops` (10): per hop, allowed / denied (403).

`HopSource` fetches the calls for a `Bench` chart, `outside_caller` makes
every load run of a bench also send from a workload outside the mesh (pass
it to `bench.run_load(also=[...])` to wait for its runs too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.lab import Lab
from meshkit.notebook import frontend
from meshkit.notebook.bench import Bench, Chart
from meshkit.notebook.figures import SECURITY_STYLE, chart_layout, layered_layout, short_host, wall_clock
from meshkit.notebook.load import LoadGenerator, LoadRun

Drawn = tuple[list[BaseTraceType], dict[str, Any]]

CALL_COLUMNS = ["at", "caller", "callee", "security", "denied", "code"]
"""at: epoch seconds the request started; caller: the calling service (or OUTSIDE); callee: the service called;
security: MTLS, PLAINTEXT or REFUSED; denied: an AuthorizationPolicy refused it (403 RBAC); code: HTTP status (0: none)."""

OUTSIDE = "outside the mesh"
"""The caller of a request that no sidecar sent (telemetry's source workload "unknown")."""

MTLS, PLAINTEXT, REFUSED = "mTLS", "plaintext", "refused (connection closed)"
ALLOWED, DENIED = "allowed", "denied (403)"

MTLS_STYLE: dict[str, str] = {
    MTLS: SECURITY_STYLE["mutual_tls"]["color"],
    PLAINTEXT: SECURITY_STYLE["none"]["color"],
    REFUSED: "#404040",
}
AUTHZ_STYLE: dict[str, str] = {ALLOWED: "#2ca02c", DENIED: "#d62728"}

WINDOW_S = 2.0
"""Each point is the rate over the trailing window ending at it: long enough to smooth, short enough to see a switch."""
STEP_S = 1.0
HORIZON_S = 120.0
"""The charts show the last two minutes."""
MAX_LANES = 8
"""Lanes drawn at most (Bookinfo has five hops with an outside caller); every layout names this many y axes,
so a lane that goes away leaves no axis behind in a live figure (plotly merges a new layout into the old)."""
LANE_PX = 78


# -- calls: one row per request on one hop ----------------------------------------------------


def caller_name(workload: object, version: object = "") -> str:
    """The service a source workload belongs to: productpage-v1 (v1) -> productpage; unknown -> OUTSIDE."""
    name = str(workload or "unknown")
    if name == "unknown":
        return OUTSIDE
    suffix = f"-{version}" if version else ""
    return name[: -len(suffix)] if suffix and name.endswith(suffix) else name


def empty_calls() -> pd.DataFrame:
    return pd.DataFrame({"at": pd.Series(dtype="float64"), "caller": pd.Series(dtype="str"),
                         "callee": pd.Series(dtype="str"), "security": pd.Series(dtype="str"),
                         "denied": pd.Series(dtype="bool"), "code": pd.Series(dtype="int64")})


def calls_from_telemetry(records: pd.DataFrame) -> pd.DataFrame:
    """The calls the callees' sidecars reported (lab.requests(); rows of reporter "source" are not
    counted, so a request is counted once, where it arrived).

    A callee's sidecar names a caller only as its mTLS certificate proves it:
    a plaintext caller is "unknown" there, whatever header it sent. When the
    caller had a sidecar, that sidecar reported the same hop (reporter
    "source", same request id and destination service) and names it from its
    own bootstrap; only a caller no sidecar reported is outside the mesh.
    """
    if records.empty:
        return empty_calls()
    rows = records[records["reporter"] == "destination"] if "reporter" in records else records
    if rows.empty:
        return empty_calls()
    rows = _named_by_their_sidecars(rows, records)
    if "start" in rows:
        at = rows["start"].astype("float64")
    else:
        at = pd.Series(pd.to_datetime(rows["time"], utc=True).astype("int64") / 1e9, index=rows.index)
    versions = rows["source_version"] if "source_version" in rows else pd.Series("", index=rows.index)
    flags = rows["flags"].astype("str")
    codes = rows["code"].astype("int64")
    return pd.DataFrame({
        "at": at.to_numpy(),
        "caller": [caller_name(w, v) for w, v in zip(rows["source_workload"], versions, strict=True)],
        "callee": [service_name(str(d)) for d in rows["destination_service"]],
        "security": np.where(rows["connection_security_policy"] == "mutual_tls", MTLS, PLAINTEXT),
        "denied": ((codes == 403) & flags.str.contains("RBAC")).to_numpy(),
        "code": codes.to_numpy(),
    }).astype({"caller": "str", "callee": "str", "security": "str"})


def _named_by_their_sidecars(rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """`rows` (the callees' reports) with each unknown caller named by its own sidecar's report of the hop."""
    if "reporter" not in records or "request_id" not in records:
        return rows
    sent = records[records["reporter"] == "source"]
    unknown = rows["source_workload"] == "unknown"
    if sent.empty or not unknown.any():
        return rows
    callers = {(r, d): (w, v) for r, d, w, v in zip(sent["request_id"], sent["destination_service"], sent["source_workload"],
                                                  sent["source_version"], strict=True) if r}  # fmt: skip
    named = rows.copy()
    for index in named.index[unknown]:
        found = callers.get((named.at[index, "request_id"], named.at[index, "destination_service"]))
        if found is not None:
            named.at[index, "source_workload"], named.at[index, "source_version"] = found
    return named


def calls_from_client(rows: pd.DataFrame, caller: str, callee: str) -> pd.DataFrame:
    """A caller's own failed requests (load generator rows with no HTTP answer, code 0) as refused calls.

    Its answered requests are left out: the callee's sidecar reported those
    (calls_from_telemetry), and counting them here too would count them twice.
    """
    failed = rows[rows["code"] == 0] if not rows.empty else rows
    if failed.empty:
        return empty_calls()
    return pd.DataFrame({
        "at": failed["at"].astype("float64").to_numpy(),
        "caller": caller, "callee": service_name(callee), "security": REFUSED, "denied": False, "code": 0,
    }).astype({"caller": "str", "callee": "str", "security": "str", "code": "int64"})


def combine(*frames: pd.DataFrame) -> pd.DataFrame:
    """Calls from several sources, oldest first."""
    parts = [f for f in frames if not f.empty]
    if not parts:
        return empty_calls()
    return pd.concat(parts, ignore_index=True).sort_values("at", kind="stable", ignore_index=True)


def service_name(host: str) -> str:
    """The service a host names, as a learner says it: reviews.default.svc.cluster.local, reviews.default:9080 -> reviews."""
    name = short_host(host.rsplit(":", 1)[0] if ":" in host else host)
    service, _, namespace = name.partition(".")
    return service if namespace in ("", "default") else name


def hop_name(caller: str, callee: str) -> str:
    return f"{caller} \N{RIGHTWARDS ARROW} {callee}"


def hop_order(hops: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Hops in the order a request travels: first the callers nobody calls, then their callees' calls.

    A caller's node is its service name, the same as the callee's name of the
    hop that reaches it (curl -> productpage, then productpage -> reviews).
    """
    nodes = sorted({n for hop in hops for n in hop})
    depth = {node: x for node, (x, _) in layered_layout(nodes, list(hops)).items()}
    return sorted(set(hops), key=lambda h: (depth.get(h[0], 0.0), h[0] == OUTSIDE, h[0], h[1]))


# -- rates per hop ---------------------------------------------------------------------------


def _steps(start: float, end: float, step_s: float) -> np.ndarray:
    """Ends of whole steps on a grid of `step_s` from the first after `start` to the last not after `end`."""
    first = np.floor(start / step_s) * step_s + step_s
    last = np.floor(end / step_s) * step_s
    count = int(round((last - first) / step_s)) + 1
    return first + step_s * np.arange(max(0, count))


def hop_rates(
    calls: pd.DataFrame,
    category: str,
    *,
    window_s: float = WINDOW_S,
    step_s: float = STEP_S,
    horizon_s: float | None = HORIZON_S,
    now: float | None = None,
) -> pd.DataFrame:
    """Requests per second per (hop, category value) over trailing windows: columns t (epoch s), caller, callee, value, rps.

    `category` is a column of the calls ("security") or a label column made
    from one. Every (hop, value) seen gets a row at every step, 0 where it
    had no request, so stacked areas drop to zero instead of bridging a gap.
    Steps end at whole seconds up to `now` (default: the newest call).
    """
    columns = ["t", "caller", "callee", "value", "rps"]
    if calls.empty:
        return pd.DataFrame(columns=columns)
    end = float(calls["at"].max()) if now is None else float(now)
    rows = calls[calls["at"] > end - horizon_s] if horizon_s is not None else calls
    if rows.empty:
        return pd.DataFrame(columns=columns)
    steps = _steps(float(rows["at"].min()), end, step_s)
    if len(steps) == 0:
        steps = np.array([np.floor(end / step_s) * step_s + step_s])
    out = []
    for (caller, callee, value), group in rows.groupby(["caller", "callee", category], sort=True):
        at = np.sort(group["at"].to_numpy(dtype="float64"))
        counts = np.searchsorted(at, steps) - np.searchsorted(at, steps - window_s)
        out.append(pd.DataFrame({"t": steps, "caller": caller, "callee": callee, "value": value, "rps": counts / window_s}))
    return pd.concat(out, ignore_index=True)[columns]


# -- the lane chart ----------------------------------------------------------------------------


def _axis(i: int) -> str:
    return "y" if i == 0 else f"y{i + 1}"


def lanes(rates: pd.DataFrame, styles: Mapping[str, str], title: str, empty: str) -> Drawn:
    """One lane per hop (in hop_order), each a stack of areas, one per category value in `styles`' order.

    Every lane has the same y range (the busiest moment of any lane), so a
    lane's height compares with the others'. The legend holds each value
    once; a lane's name is written at its top left by a text trace, not an
    annotation: a live figure merges a layout's annotations into the old
    ones element by element, so a list of another length would leave stale
    labels behind. For the same reason an empty chart says so in its title.
    """
    hops = hop_order(list(zip(rates["caller"], rates["callee"], strict=True))) if not rates.empty else []
    hops = hops[:MAX_LANES]
    n = max(1, len(hops))
    gap = 0.06 if n > 1 else 0.0
    size = (1.0 - gap * (n - 1)) / n
    top = 1.0
    for_axes: dict[str, Any] = {}
    traces: list[BaseTraceType] = []
    labels: list[BaseTraceType] = []
    peak = 0.0
    if not rates.empty:
        totals = rates.groupby(["caller", "callee", "t"])["rps"].sum()
        peak = float(totals.max()) if len(totals) else 0.0
    y_range = [0.0, max(1.0, peak * 1.35)]  # room above the busiest moment for the lane's name
    start = wall_clock([float(rates["t"].min())])[0] if not rates.empty else None
    shown: set[str] = set()
    for i in range(MAX_LANES):
        name = _axis(i)
        key = "yaxis" if i == 0 else f"yaxis{i + 1}"
        if i >= len(hops):
            for_axes[key] = {"visible": False, "domain": [0.0, 0.001], "anchor": "x", "fixedrange": True}
            continue
        low = max(0.0, top - size)
        # "visible" said again: a live figure merges each layout into the last, where this axis may have been hidden.
        for_axes[key] = {"visible": True, "domain": [low, top], "anchor": "x", "range": y_range, "nticks": 3,
                         "automargin": True, "fixedrange": True,
                         "title": {"text": "req/s" if i == len(hops) - 1 else ""}}
        caller, callee = hops[i]
        lane = rates[(rates["caller"] == caller) & (rates["callee"] == callee)]
        for rank, (value, color) in enumerate(styles.items()):
            rows = lane[lane["value"] == value]
            if rows.empty:
                continue
            traces.append(go.Scatter(
                x=wall_clock(rows["t"]), y=rows["rps"].to_numpy(), yaxis=name, mode="lines", name=value,
                legendgroup=value, legendrank=rank + 1, showlegend=value not in shown, stackgroup=f"lane{i}",
                line={"color": color, "width": 1}, fillcolor=color,
                hovertemplate=f"{hop_name(caller, callee)}, {value}: %{{y:.1f}} req/s<extra></extra>",
            ))
            shown.add(value)
        labels.append(go.Scatter(
            x=[start], y=[y_range[1]], yaxis=name, mode="text", name=hop_name(caller, callee), showlegend=False,
            text=[f"<b>{hop_name(caller, callee)}</b>"], textposition="bottom right", textfont={"size": 12},
            hoverinfo="skip", cliponaxis=False,
        ))
        top = low - gap
    layout = chart_layout(
        title if hops else f"{title} ({empty})", 110 + LANE_PX * n,
        xaxis={"title": {"text": "time"}, "anchor": _axis(len(hops) - 1) if hops else "y", "automargin": True},
        **for_axes,
    )
    return traces + labels, layout


MTLS_TITLE = "Requests per second on each hop, by how they arrived"
AUTHZ_TITLE = "Requests per second on each hop: allowed, or denied by a policy"


def mtls_hops(calls: pd.DataFrame, horizon_s: float | None = HORIZON_S) -> Drawn:
    """09: per hop, requests per second over mTLS, in plaintext, and refused (a caller outside the mesh under STRICT)."""
    return lanes(hop_rates(calls, "security", horizon_s=horizon_s), MTLS_STYLE, MTLS_TITLE,
                 "no requests yet: start the load")


def authz_hops(calls: pd.DataFrame, horizon_s: float | None = HORIZON_S) -> Drawn:
    """10: per hop, requests per second a policy let through and requests it denied with 403."""
    labelled = calls.assign(verdict=np.where(calls["denied"].astype(bool), DENIED, ALLOWED)) if not calls.empty else \
        calls.assign(verdict=pd.Series(dtype="str"))
    return lanes(hop_rates(labelled, "verdict", horizon_s=horizon_s), AUTHZ_STYLE, AUTHZ_TITLE,
                 "no requests yet: start the load")


# -- a bench's data, from the lab ------------------------------------------------------------------


@dataclass
class Outsider:
    """A caller outside the mesh whose failed requests a HopSource adds: the rows of `recorder` sent to `target`."""

    recorder: Any
    target: str
    caller: str = OUTSIDE


class HopSource:
    """Fetch a bench chart's calls: the sidecars' telemetry since the bench began (at most `horizon_s`),
    plus each outsider's refused requests from its load generator's rows."""

    def __init__(self, lab: Lab, outsiders: Sequence[Outsider] = (), horizon_s: float = HORIZON_S) -> None:
        self.lab = lab
        self.outsiders = list(outsiders)
        self.horizon_s = horizon_s
        self.since = time.time()

    def __call__(self) -> pd.DataFrame:
        window = min(self.horizon_s, max(1.0, time.time() - self.since))
        records = self.lab.requests(window=window)  # both reporters: a plaintext caller's sidecar names it
        frames = [calls_from_telemetry(records)]
        for outsider in self.outsiders:
            rows = outsider.recorder.frame(outsider.target, since=self.since)
            frames.append(calls_from_client(rows, outsider.caller, outsider.target))
        calls = combine(*frames)
        return calls[calls["at"] >= self.since].reset_index(drop=True) if not calls.empty else calls


def mtls_chart(lab: Lab, outsiders: Sequence[Outsider] = ()) -> Chart:
    return Chart(mtls_hops, source=HopSource(lab, outsiders))


def authz_chart(lab: Lab) -> Chart:
    return Chart(authz_hops, source=HopSource(lab))


# -- load from outside the mesh, and driving a bench from code -----------------------------------


class Mirror:
    """Each run of one load generator starts a run of another with the same rate, duration, path and headers.

    `start(**values)` starts the other run (LoadGenerator.start); a run of
    the first stopped by hand stops its mirror too.
    """

    def __init__(self, start: Callable[..., LoadRun | None]) -> None:
        self.start = start
        self.mirrors: dict[int, LoadRun | None] = {}
        self._lock = threading.Lock()

    def __call__(self, run: LoadRun) -> None:
        with self._lock:
            known = id(run) in self.mirrors
            if not known and run.state == "running":
                self.mirrors[id(run)] = None
        if not known:
            if run.state == "running":
                spec = run.spec
                mirror = self.start(rate=spec.rate, duration_s=spec.duration_s, path=urlsplit(spec.url).path or "/",
                                    headers=dict(spec.headers))
                with self._lock:
                    self.mirrors[id(run)] = mirror
            return
        mirror = self.mirrors.get(id(run))
        if run.state == "stopped" and mirror is not None:
            mirror.stop()


def outside_caller(bench: Bench, source: str = "legacy/curl", service: str | None = None) -> LoadGenerator:
    """A load generator that sends from `source` (a workload outside the mesh) whenever the bench's load runs.

    It shares the bench's recorder; `service` is the bench's service as
    `source` names it (another namespace needs `productpage.default`). The
    bench's charts drawn from a HopSource add its refused requests as
    calls from OUTSIDE.
    """
    target = service or bench.service
    outsider = LoadGenerator(bench.lab, bench.recorder, service=target, path=bench.loadgen.path.value,
                             rate=bench.loadgen.rate.value, duration_s=bench.loadgen.duration.value, source=source)

    def start(**values: Any) -> LoadRun | None:
        run = outsider.start(service=target, **values)
        if run is not None:  # shown under the bench's own runs, with its progress bar and Stop button
            run.label.value += f" from {source}"
            bench.loadgen.run_box.children = [*bench.loadgen.run_box.children, run]
        return run

    bench.loadgen.on_run(Mirror(start))
    for chart in bench.charts:
        if isinstance(chart.source, HopSource):
            chart.source.outsiders.append(Outsider(bench.recorder, target))
    return outsider


