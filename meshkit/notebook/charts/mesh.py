"""Charts and controls of the first lessons (00-03): sidecars, pushed config, load balancing.

Each chart is a pure function `draw(frame) -> (traces, layout)` for a
`meshkit.notebook.bench.Bench`, drawn from the bench's own request rows (what
the client saw) or from a lab source (what the sidecars or the control plane
saw):

- `latency_per_request`: one dot per request, one color per load run, each
  run named by what the lab was when it started (00: without sidecars, then
  with them);
- `edge_traffic`: requests per second on every edge the sidecars reported
  in the last seconds, colored by how it was secured (01);
- `ack_times`: the last config versions, each sidecar's ACK time and the
  slowest (02);
- `versions_over_time`: requests per second answered by each version of the
  service (02, 03).

Two controls go with them, both views of the lab:

- `SidecarControl`: pick a workload (or a whole namespace), Inject or
  Uninject; it lists every workload's sidecar state as `lab.workloads()`
  says it, and reads it again after each click;
- `BalancerWidget`: the load balancer of a service's DestinationRule
  (ROUND_ROBIN, LEAST_REQUEST, RANDOM, or a consistent hash on a header).
  It starts from the DestinationRule the lab has and changes only
  `spec.trafficPolicy.loadBalancer`: subsets, connectionPool,
  outlierDetection and every other field stay as they are.

A notebook drives a bench from code the way a learner would with
`bench.run_load(steps=[(second, move_the_control), ...])`.
"""

from __future__ import annotations

import copy
import html
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from traitlets import Dict

from meshkit import journal
from meshkit.errors import MeshkitError
from meshkit.lab import Lab
from meshkit.notebook import frontend
from meshkit.notebook.bench import Bench, Chart
from meshkit.notebook.controls import ConfigControl, lab_resources
from meshkit.notebook.figures import LEGEND_UNDER, PALETTE, SECURITY_STYLE, chart_layout, short_host, version_color
from meshkit.notebook.istio import NETWORKING, find_destination_rule
from meshkit.notebook.load import LoadRun

Manifest = dict[str, Any]
Drawn = tuple[list[BaseTraceType], dict[str, Any]]

FAILED_COLOR = "#d62728"
P50_DASH = "dash"


def _note(text: str) -> dict[str, Any]:
    """An annotation in the middle of an empty chart, saying why it is empty.

    A chart with data says `"annotations": []`, and figures.fill sets a
    layout's annotations whole, so a live chart drops the note once data comes."""
    return {"text": text, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "showarrow": False, "font": {"size": 13, "color": "#7f7f7f"}}


# -- run labels ---------------------------------------------------------------------


class RunLabels(dict[int, str]):
    """Load run number -> the name a chart gives it, decided when the run starts.

    `describe(run)` is called once per run, in the thread that starts it
    (the kernel's), so it may ask the lab: `RunLabels(lambda run:
    sidecar_summary(lab.workloads()))` names each run after the sidecars the
    lab had when it started. Attach it with `bench.loadgen.on_run(labels.on_run)`.
    """

    def __init__(self, describe: Callable[[LoadRun], str]) -> None:
        super().__init__()
        self.describe = describe

    def on_run(self, run: LoadRun) -> None:
        if run.run_id not in self:
            self[run.run_id] = self.describe(run)


def sidecar_summary(workloads: pd.DataFrame) -> str:
    """'without sidecars', 'with sidecars' or 'sidecars on 3 of 7 workloads' for lab.workloads()."""
    total = len(workloads)
    with_sidecar = int(workloads["sidecar"].astype(bool).sum()) if total else 0
    if with_sidecar == 0:
        return "without sidecars"
    if with_sidecar == total:
        return "with sidecars"
    return f"sidecars on {with_sidecar} of {total} workloads"


def run_name(run: int, labels: Mapping[int, str]) -> str:
    return f"run {run}: {labels[run]}" if run in labels else f"run {run}"


# -- 00: latency per request, one color per run ----------------------------------------

LATENCY_PER_REQUEST_LAYOUT = chart_layout(
    "Latency of each request (dashed: each run's median)", 380,
    xaxis={"title": {"text": "seconds into the run"}, "rangemode": "tozero"},
    yaxis={"title": {"text": "latency (ms)"}, "rangemode": "tozero"},
)


def latency_per_request(frame: pd.DataFrame, labels: Mapping[int, str] | None = None) -> Drawn:
    """One dot per request (x: seconds since its run's first request, y: latency), one color per run.

    `frame` has the recorder's columns at, latency_ms, code and run. Each
    run also gets a dashed line at its median latency of answered requests
    (code 200), and requests that failed are red crosses.
    """
    labels = labels or {}
    traces: list[BaseTraceType] = []
    if frame.empty:
        return traces, {**LATENCY_PER_REQUEST_LAYOUT, "annotations": [_note("no requests yet: start the load")]}
    runs = sorted(int(r) for r in frame["run"].unique())
    failed_x: list[float] = []
    failed_y: list[float] = []
    failed_text: list[str] = []
    for i, run in enumerate(runs):
        rows = frame[frame["run"] == run]
        x = (rows["at"] - rows["at"].min()).to_numpy()
        ok = (rows["code"] == 200).to_numpy()
        name = run_name(run, labels)
        color = str(PALETTE[i % len(PALETTE)])
        traces.append(go.Scatter(
            x=x[ok], y=rows["latency_ms"].to_numpy()[ok], mode="markers", name=name, legendgroup=name,
            marker={"color": color, "size": 6, "opacity": 0.75},
            hovertemplate=f"{html.escape(name)}<br>%{{y:.1f}} ms at %{{x:.1f}} s<extra></extra>",
        ))
        if ok.any():
            median = float(rows["latency_ms"][ok].median())
            traces.append(go.Scatter(
                x=[0.0, float(x.max())], y=[median, median], mode="lines", name=f"{name} median",
                legendgroup=name, showlegend=False, line={"color": color, "dash": P50_DASH, "width": 2},
                hovertemplate=f"{html.escape(name)}: median {median:.1f} ms<extra></extra>",
            ))
        bad = rows[~ok]
        failed_x += list(x[~ok])
        failed_y += list(bad["latency_ms"])
        failed_text += [f"{name}: {code or 'no answer'}" for code in bad["code"]]
    if failed_x:
        traces.append(go.Scatter(
            x=failed_x, y=failed_y, mode="markers", name="failed", text=failed_text,
            marker={"color": FAILED_COLOR, "symbol": "x", "size": 8},
            hovertemplate="%{text}<br>%{y:.1f} ms<extra></extra>",
        ))
    return traces, {**LATENCY_PER_REQUEST_LAYOUT, "annotations": []}


def latency_chart(labels: Mapping[int, str]) -> Chart:
    """A bench chart of `latency_per_request` with runs named by `labels`."""
    return Chart(partial(latency_per_request, labels=labels))


# -- 01: what the sidecars saw, per edge ------------------------------------------------

EDGE_WINDOW_S = 10.0
"""The edge chart shows the last this many seconds, so an edge fades once its sidecars stop reporting it."""

EDGE_LAYOUT = chart_layout(
    "What the sidecars report, per edge", 360,
    barmode="stack",
    xaxis={"title": {"text": "requests per second"}, "rangemode": "tozero"},
    yaxis={"type": "category", "title": {"text": ""}},
    legend={**LEGEND_UNDER, "title": {"text": "secured as:"}},
)


def edge_name(source: str, destination: str) -> str:
    """'productpage-v1 -> reviews'; a caller without a sidecar reads 'unknown (no sidecar)'."""
    caller = "unknown (no sidecar)" if source == "unknown" else source
    return f"{caller} \N{RIGHTWARDS ARROW} {short_host(destination)}"


def edge_traffic(topology: pd.DataFrame) -> Drawn:
    """One bar per edge the sidecars reported (lab.topology(window)): its requests per second,
    colored by how the calls were secured; the text says how many requests and who reported them.

    `topology` has source, destination, requests, rps and security; its
    attrs' window_s (set by lab.topology) goes into the title.
    """
    window = topology.attrs.get("window_s") if hasattr(topology, "attrs") else None
    title = EDGE_LAYOUT["title"]["text"] + (f" (last {window:g} s)" if window else "")
    layout = {**EDGE_LAYOUT, "title": {**EDGE_LAYOUT["title"], "text": title}}
    if topology.empty:
        return [], {**layout, "yaxis": {**EDGE_LAYOUT["yaxis"], "visible": False},
                    "annotations": [_note("no edges: without sidecars nothing in between sees the calls")]}
    rows = topology.assign(edge=[edge_name(str(s), str(d)) for s, d in zip(topology["source"], topology["destination"], strict=True)])
    order = sorted(rows["edge"].unique(), reverse=True)  # read top-down in name order
    traces: list[BaseTraceType] = []
    for state, style in SECURITY_STYLE.items():
        chosen = rows[rows["security"].where(rows["security"].isin(list(SECURITY_STYLE)), "unknown") == state]
        if chosen.empty:
            continue
        traces.append(go.Bar(
            y=chosen["edge"], x=chosen["rps"].astype(float), orientation="h", name=style["label"],
            marker={"color": style["color"]},
            text=[f"{int(n)} req" for n in chosen["requests"]], textposition="auto",
            customdata=list(chosen["reporter"]) if "reporter" in chosen else None,
            hovertemplate="%{y}<br>%{x:.1f} requests/s, %{text}<br>reported by the %{customdata}'s sidecar<extra></extra>",
        ))
    return traces, {**layout, "annotations": [],
                    "yaxis": {**EDGE_LAYOUT["yaxis"], "visible": True, "categoryorder": "array",
                              "categoryarray": order}}


def edges_chart(lab: Lab, window_s: float = EDGE_WINDOW_S) -> Chart:
    """A bench chart of `edge_traffic` over the lab's telemetry of the last `window_s` seconds."""
    return Chart(edge_traffic, source=lambda: lab.topology(window=window_s))


# -- 02: config pushes and ACKs ------------------------------------------------------------

PUSH_COLUMNS = ["version", "at", "node", "ack_ms", "nack"]

ACK_LAYOUT = chart_layout(
    "Config versions: each sidecar's ACK time (log scale)", 380,
    xaxis={"title": {"text": "config version"}, "type": "category"},
    # dtick 1: a tick at each power of ten only (10, 100, 1000 ms), not plotly's unlabelled 2s and 5s.
    yaxis={"title": {"text": "ms from the change to the ACK"}, "type": "log", "dtick": 1},
)


def push_table(pushes: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The control plane's push history (version, at, acks {node: ms}, nacks {node: reason}) as one row per
    (version, sidecar): ack_ms, or the NACK's reason; a version nobody answered keeps one row with node ''."""
    rows: list[dict[str, Any]] = []
    for push in pushes:
        version, at = int(push["version"]), pd.Timestamp(float(push["at"]), unit="s")
        acks: Mapping[str, float] = push.get("acks") or {}
        nacks: Mapping[str, str] = push.get("nacks") or {}
        for node, ms in sorted(acks.items()):
            rows.append({"version": version, "at": at, "node": _node_name(node), "ack_ms": float(ms), "nack": ""})
        for node, reason in sorted(nacks.items()):
            rows.append({"version": version, "at": at, "node": _node_name(node), "ack_ms": math.nan, "nack": str(reason)})
        if not acks and not nacks:
            rows.append({"version": version, "at": at, "node": "", "ack_ms": math.nan, "nack": ""})
    return pd.DataFrame(rows, columns=PUSH_COLUMNS)


def _node_name(node: str) -> str:
    """'default/reviews-v1-0' -> 'reviews-v1-0' (the namespace is the lab's in these lessons)."""
    return node.split("/", 1)[-1]


def ack_times(pushes: pd.DataFrame) -> Drawn:
    """Per config version: a bar up to the slowest ACK, a dot per sidecar's ACK, a cross per NACK.

    `pushes` is `push_table`'s: version, node, ack_ms, nack. Each bar's text
    counts the ACKs; a version no sidecar ACKed (a change that a newer one
    replaced before the sidecars polled, or one still in flight) says "0 ACKs".
    """
    if pushes.empty:
        return [], {**ACK_LAYOUT, "annotations": [_note("no config pushed yet")]}
    versions = sorted(int(v) for v in pushes["version"].unique())
    labels = [str(v) for v in versions]
    acked = pushes.dropna(subset=["ack_ms"])
    slowest = [acked.loc[acked["version"] == v, "ack_ms"].max() for v in versions]
    counts = [int((acked["version"] == v).sum()) for v in versions]
    traces: list[BaseTraceType] = [
        go.Bar(x=labels, y=[None if pd.isna(s) else float(s) for s in slowest], name="slowest ACK",
               marker={"color": "#c6dbef"}, text=[f"{n} ACK{'s' if n != 1 else ''}" for n in counts],
               textposition="outside", cliponaxis=False,
               hovertemplate="version %{x}: slowest ACK %{y:.0f} ms, %{text}<extra></extra>"),
        go.Scatter(x=[str(v) for v in acked["version"]], y=acked["ack_ms"].astype(float), mode="markers",
                   name="one sidecar's ACK", text=list(acked["node"]),
                   marker={"color": "#1f77b4", "size": 7, "opacity": 0.8},
                   hovertemplate="%{text}: ACKed version %{x} in %{y:.1f} ms<extra></extra>"),
    ]
    nacked = pushes[pushes["nack"].astype(str) != ""]
    if not nacked.empty:
        floor = float(acked["ack_ms"].min()) if not acked.empty else 1.0
        traces.append(go.Scatter(
            x=[str(v) for v in nacked["version"]], y=[floor] * len(nacked), mode="markers", name="NACK",
            text=[f"{n}: {r}" for n, r in zip(nacked["node"], nacked["nack"], strict=True)],
            marker={"color": FAILED_COLOR, "symbol": "x", "size": 10}, hovertemplate="%{text}<extra>NACK</extra>",
        ))
    return traces, {**ACK_LAYOUT, "annotations": [],
                    "xaxis": {**ACK_LAYOUT["xaxis"], "categoryorder": "array", "categoryarray": labels}}


def push_history(lab: Lab, limit: int = 8) -> pd.DataFrame:
    """The last `limit` config versions with each sidecar's ACK time (`push_table`).

    `lab.pushes()` keeps the slowest ACK of each version; the time of every
    sidecar comes from the same push history in the control plane.
    """
    return push_table(lab._control().pushes(limit))  # noqa: SLF001 - the per-sidecar times lab.pushes() sums up


def pushes_chart(lab: Lab, limit: int = 8) -> Chart:
    """A bench chart of `ack_times` for the lab's last `limit` config versions."""
    return Chart(ack_times, source=lambda: push_history(lab, limit))


# -- 02, 03: requests per version over time ------------------------------------------------

VERSIONS_LAYOUT = chart_layout(
    "Requests per second answered by each version", 360,
    xaxis={"title": {"text": "seconds since the first request"}, "rangemode": "tozero"},
    yaxis={"title": {"text": "requests per second"}, "rangemode": "tozero"},
    legend={**LEGEND_UNDER, "title": {"text": "answered by:"}},
)
FAILED = "failed"
VERSION_DASHES = ("solid", "dash", "dot", "dashdot")


def versions_over_time(frame: pd.DataFrame, bin_s: float = 1.0, horizon_s: float = 120.0) -> Drawn:
    """One line per version: requests per second it answered, in bins of `bin_s` seconds (a point mid-bin).

    `frame` has the recorder's columns at, version and code. Requests that
    failed (no 200) are a line of their own. Bins with no request are 0,
    so a version that stops getting traffic drops to the floor; the newest
    bin, still filling while load runs, is left out; only the last
    `horizon_s` seconds are drawn.
    """
    if frame.empty:
        return [], {**VERSIONS_LAYOUT, "annotations": [_note("no requests yet: start the load")]}
    start = float(frame["at"].min())
    rows = frame.assign(
        bin=((frame["at"] - start) // bin_s).astype(int),
        answered=[v if c == 200 and v else FAILED for v, c in zip(frame["version"], frame["code"], strict=True)],
    )
    last = int(rows["bin"].max())
    keep_to = last - 1 if last > 0 else last
    first = max(0, keep_to - int(horizon_s // bin_s) + 1)
    bins = list(range(first, keep_to + 1))
    counts = rows[(rows["bin"] >= first) & (rows["bin"] <= keep_to)].groupby(["answered", "bin"]).size()
    versions = sorted(v for v in rows["answered"].unique() if v != FAILED)
    names = versions + ([FAILED] if FAILED in set(rows["answered"]) else [])
    traces: list[BaseTraceType] = []
    for i, name in enumerate(names):
        y = [float(counts.get((name, b), 0)) / bin_s for b in bins]
        color = FAILED_COLOR if name == FAILED else version_color(name, versions)
        # Versions often carry the same rate (round robin: a third each); a dash of its own keeps each line visible.
        dash = "solid" if name == FAILED else VERSION_DASHES[i % len(VERSION_DASHES)]
        traces.append(go.Scatter(
            x=[(b + 0.5) * bin_s for b in bins], y=y, mode="lines+markers", name=name,
            line={"color": color, "dash": dash, "width": 2.5}, marker={"size": 5},
            hovertemplate=f"{html.escape(name)}: %{{y:.1f}} requests/s around %{{x:.1f}} s<extra></extra>",
        ))
    return traces, {**VERSIONS_LAYOUT, "annotations": []}


def versions_chart(bin_s: float = 1.0) -> Chart:
    """A bench chart of `versions_over_time` over the bench's own requests."""
    return Chart(partial(versions_over_time, bin_s=bin_s))


# -- control: sidecars ------------------------------------------------------------------


def sidecar_options(workloads: pd.DataFrame, namespace: str) -> list[tuple[str, str]]:
    """Dropdown choices: each workload with its sidecar state, then the whole namespace."""
    options = [
        (f"{w} ({'sidecar' if s else 'no sidecar'})", str(w))
        for w, s in zip(workloads["workload"], workloads["sidecar"].astype(bool), strict=True)
    ]
    return [*options, (f"every workload of namespace {namespace}", namespace)]


def sidecar_table_html(workloads: pd.DataFrame) -> str:
    """The workloads and their sidecar state, as lab.workloads() has them, as a small HTML table."""
    head = "".join(f"<th style='text-align:left; padding-right:1em'>{h}</th>" for h in ("workload", "version", "sidecar", "config"))
    body = "".join(
        "<tr>"
        f"<td style='padding-right:1em'>{html.escape(str(w))}</td>"
        f"<td style='padding-right:1em'>{html.escape(str(v))}</td>"
        f"<td style='padding-right:1em'>{'&#10004; yes' if s else '&mdash; no'}</td>"
        f"<td>{html.escape(str(c))}</td>"
        "</tr>"
        for w, v, s, c in zip(workloads["workload"], workloads["version"], workloads["sidecar"].astype(bool),
                              workloads["config"], strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class SidecarControl(ConfigControl):
    """Inject or uninject a workload (or every workload of the namespace), and see each one's sidecar.

    Injection is a restart, as on Kubernetes: the click returns once the
    workload is back (a second or so). The dropdown and the table are a view
    of `lab.workloads()`: read when the control is made, after every click,
    and, while it is displayed, whenever the lab's config version moves (an
    injection from the CLI or another cell changes the registry, which
    bumps it). `sidecars` (workload -> has a sidecar), `message` and `error`
    can be read or observed.
    """

    sidecars = Dict()

    def __init__(self, lab: Lab, namespace: str | None = None) -> None:
        self.namespace = namespace or lab.namespace
        self.target = widgets.Dropdown(description="workload", style={"description_width": "70px"},
                                       layout=widgets.Layout(width="max-content", min_width="320px"))
        self.inject_button = widgets.Button(description="Inject", button_style="primary", icon="plus",
                                            tooltip="restart it with a sidecar")
        self.uninject_button = widgets.Button(description="Uninject", icon="minus", tooltip="restart it without its sidecar")
        self.inject_button.on_click(lambda _: self.inject())
        self.uninject_button.on_click(lambda _: self.uninject())
        self.table = widgets.HTML()
        row = widgets.HBox([self.target, self.inject_button, self.uninject_button],
                           layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__(lab, "Sidecars", [row, self.table])
        self.refresh()

    def workloads(self) -> pd.DataFrame:
        """lab.workloads() of the control's namespace."""
        frame = self.lab.workloads()
        return frame[frame["namespace"] == self.namespace].reset_index(drop=True)

    def reload(self) -> str:
        workloads = self.workloads()
        options = sidecar_options(workloads, self.namespace)
        self.set_choices(self.target, options, options[0][1])
        self.table.value = sidecar_table_html(workloads)
        self.sidecars = {str(w): bool(s) for w, s in zip(workloads["workload"], workloads["sidecar"], strict=True)}
        return ""

    def inject(self, target: str | None = None) -> bool:
        """Restart `target` (default: the one chosen) with a sidecar."""
        return self._restart(target, True)

    def uninject(self, target: str | None = None) -> bool:
        """Restart `target` (default: the one chosen) without its sidecar."""
        return self._restart(target, False)

    def _restart(self, target: str | None, sidecar: bool) -> bool:
        if target is not None:
            self.target.value = target
        chosen = str(self.target.value)
        what = "with a sidecar" if sidecar else "without a sidecar"
        self.show_message(f"restarting {chosen} {what} ...")
        self.inject_button.disabled = self.uninject_button.disabled = True
        try:
            with journal.acting_widget(self.journal_name):
                (self.lab.inject if sidecar else self.lab.uninject)(chosen)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        finally:
            self.inject_button.disabled = self.uninject_button.disabled = False
        self.refresh()
        workloads = self.workloads()
        who = f"every workload of namespace {chosen}" if chosen == self.namespace else chosen
        self.show_message(f"{who} restarted {what}: {int(workloads['sidecar'].astype(bool).sum())} of "
                          f"{len(workloads)} workloads have a sidecar now")
        return True


# -- control: the load balancer -----------------------------------------------------------

SIMPLE = ("LEAST_REQUEST", "ROUND_ROBIN", "RANDOM")
CONSISTENT_HASH = "CONSISTENT_HASH"
DEFAULT_POLICY = "LEAST_REQUEST"
"""What a service without a loadBalancer gets: Istio's default since 1.14."""
ALIASES = {"LEAST_CONN": "LEAST_REQUEST", "UNSPECIFIED": DEFAULT_POLICY}
DEFAULT_HEADER = "end-user"
POLICY_OPTIONS = [
    ("LEAST_REQUEST (Istio's default)", "LEAST_REQUEST"),
    ("ROUND_ROBIN", "ROUND_ROBIN"),
    ("RANDOM", "RANDOM"),
    ("consistent hash on a header", CONSISTENT_HASH),
]


def balancer_values(rule: Mapping[str, Any] | None) -> dict[str, str]:
    """What the widget shows for a DestinationRule: its policy (one of SIMPLE or CONSISTENT_HASH) and hash header."""
    policy = ((rule or {}).get("spec") or {}).get("trafficPolicy") or {}
    balancer = policy.get("loadBalancer") or {}
    consistent = balancer.get("consistentHash")
    if consistent:
        return {"policy": CONSISTENT_HASH, "header": str(consistent.get("httpHeaderName") or DEFAULT_HEADER)}
    simple = str(balancer.get("simple") or DEFAULT_POLICY)
    return {"policy": ALIASES.get(simple, simple), "header": DEFAULT_HEADER}


def with_load_balancer(rule: Mapping[str, Any] | None, service: str, namespace: str, policy: str, header: str = "") -> Manifest:
    """The DestinationRule with `spec.trafficPolicy.loadBalancer` set to `policy`, everything else kept.

    `policy` is one of SIMPLE, or CONSISTENT_HASH with `header`. Subsets
    (and their own trafficPolicy), connectionPool, outlierDetection, tls,
    portLevelSettings, labels and annotations are kept; so are fields of
    the loadBalancer other than `simple` and `consistentHash` (which exclude
    each other) and, for a hash, the consistentHash's fields other than its
    header. Without a rule, a new one named after the service.
    """
    policy = ALIASES.get(policy, policy)
    if policy not in (*SIMPLE, CONSISTENT_HASH):
        raise ValueError(f"unknown load balancer {policy!r}: one of {', '.join((*SIMPLE, CONSISTENT_HASH))}")
    if policy == CONSISTENT_HASH and not header.strip():
        raise ValueError("a consistent hash needs the header whose value picks the endpoint, such as end-user")
    out: Manifest = copy.deepcopy(dict(rule)) if rule else {
        "apiVersion": NETWORKING, "kind": "DestinationRule",
        "metadata": {"name": service, "namespace": namespace}, "spec": {"host": service},
    }
    spec = out.setdefault("spec", {})
    traffic = spec.get("trafficPolicy") or {}
    balancer = {k: v for k, v in (traffic.get("loadBalancer") or {}).items() if k not in ("simple", "consistentHash")}
    if policy == CONSISTENT_HASH:
        consistent = dict(((traffic.get("loadBalancer") or {}).get("consistentHash")) or {})
        consistent["httpHeaderName"] = header.strip()
        balancer["consistentHash"] = consistent
    else:
        balancer["simple"] = policy
    spec["trafficPolicy"] = {**traffic, "loadBalancer": balancer}
    return out


class BalancerWidget(ConfigControl):
    """The load balancer of a service's DestinationRule: ROUND_ROBIN, LEAST_REQUEST, RANDOM or a consistent hash.

    It shows the policy of the DestinationRule the lab has now (LEAST_REQUEST,
    Istio's default, when there is none), follows it when it changes
    elsewhere (meshkit.notebook.controls), and on Apply writes only
    `spec.trafficPolicy.loadBalancer` (`with_load_balancer`): subsets, the
    circuit breaker and outlier detection stay. A per-subset loadBalancer,
    if the rule has one, still wins for that subset, as in Istio.
    From code: `set_policy("ROUND_ROBIN")` or `set_policy("CONSISTENT_HASH", "end-user")`,
    or set `policy.value` / `header.value` and click `apply_button`.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.service = service
        self.namespace = namespace or lab.namespace
        style = {"description_width": "110px"}
        self.policy = widgets.Dropdown(options=POLICY_OPTIONS, value=DEFAULT_POLICY, description="load balancer",
                                       style=style, layout=widgets.Layout(width="max-content", min_width="300px"))
        self.header = widgets.Text(value=DEFAULT_HEADER, description="hash on header", style=style,
                                   layout=widgets.Layout(width="300px"))
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.apply_button.on_click(lambda _: self.apply_policy())
        self.policy.observe(lambda _: self._enable(), names="value")
        super().__init__(lab, f"Load balancing for {service}", [self.policy, self.header, self.apply_button])
        self.form = {"policy": self.policy, "header": self.header}
        self.refresh()
        rule = self.destination_rule()
        where = f"DestinationRule {rule['metadata']['name']}" if rule else "no DestinationRule yet: Istio's default"
        self.show_message(f"{self.service}: {self.describe()} ({where})")

    def destination_rule(self) -> Manifest | None:
        return find_destination_rule(lab_resources(self.lab, "DestinationRule"), self.service, self.namespace)

    def reload(self) -> str:
        self.show_values(balancer_values(self.destination_rule()))
        self._enable()
        return ""

    def describe(self) -> str:
        """The policy on screen in words."""
        if self.policy.value == CONSISTENT_HASH:
            return f"consistent hash on header {self.header.value!r}"
        return str(self.policy.value)

    def _enable(self) -> None:
        self.header.disabled = self.policy.value != CONSISTENT_HASH

    def set_policy(self, policy: str, header: str | None = None) -> bool:
        """Choose a policy (and the hash header) and apply it, as the dropdown and Apply would."""
        self.policy.value = ALIASES.get(policy, policy)
        if header is not None:
            self.header.value = header
        return self.apply_policy()

    def apply_policy(self) -> bool:
        if not self.sync():
            return False
        try:
            resource = with_load_balancer(self.destination_rule(), self.service, self.namespace,
                                          str(self.policy.value), self.header.value)
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        return self.apply(resource)


# -- driving a bench from code ---------------------------------------------------------------


