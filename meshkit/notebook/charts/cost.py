"""Lesson 12 (the price of a mesh): a control that switches one hop's path, and charts of what it costs.

One hop, the lab's client calling one service, can take three paths:

- "direct": neither end has a sidecar;
- "sidecars, plaintext": both ends have one, and the mesh-wide
  PeerAuthentication (istio-system/default) says DISABLE, so the caller's
  sidecar dials plaintext;
- "sidecars, mTLS": both ends have one and nothing disables mTLS, so the
  caller's sidecar dials mutual TLS (auto mTLS), the default.

`PathControl` is the control: three toggle buttons. It reads the path the
lab is on (each end's sidecar, and the mTLS mode in force for the callee as
the sidecars decide it), and switching restarts the ends with or without
their sidecars (`lab.inject` / `lab.uninject`, a restart as on Kubernetes)
and sets or clears the mode of the mesh-wide PeerAuthentication. It owns
only that mode: the policy's other fields (labels, annotations) are kept,
and the policy is deleted only when nothing but the mode was in it.

The charts are pure functions of DataFrames:

- `usage_traces`: CPU (% of one core) and resident memory of every process
  on the hop, sidecars and apps, over time, from the readings of
  `lab.resources()` that a `UsageSampler` keeps (each reading covers a
  window of `sample_s` seconds, so the bench asks for one at most every 2 s);
- `hop_traces`: the hop's latency (p50, p90, p99) for each path, from the
  client's own rows, each labelled with the path its run was sent on
  (`with_paths`), the first half second of each run left out as warm-up.

`hop_table` and `sidecar_sizing` are the numbers behind them: the latency
each path adds, and what one sidecar needed here, turned into Kubernetes
requests and limits.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from traitlets import Unicode

from meshkit import config, journal
from meshkit.core.peer_auth import ROOT_NAMESPACE, effective_mode
from meshkit.errors import MeshkitError
from meshkit.lab import CLIENT, Lab
from meshkit.notebook import frontend
from meshkit.notebook.bench import Bench, Chart
from meshkit.notebook.controls import ConfigControl, lab_resources
from meshkit.notebook.figures import LEGEND_UNDER, SECURITY_STYLE, chart_layout, version_color, wall_clock
from meshkit.notebook.load import LoadRun
from meshkit.notebook.recorder import rows_from_frame

Drawn = tuple[list[BaseTraceType], dict[str, Any]]
Manifest = dict[str, Any]

DIRECT = "direct"
PLAINTEXT = "sidecars, plaintext"
MTLS = "sidecars, mTLS"
PATHS = (DIRECT, PLAINTEXT, MTLS)
MIXED = "mixed"
"""The label of a run sent while only some ends had a sidecar."""

MESH_POLICY = "default"
"""The mesh-wide PeerAuthentication: this name in the root namespace, without a selector (Istio's convention)."""

PATH_COLORS = {DIRECT: "#7f7f7f", PLAINTEXT: SECURITY_STYLE["none"]["color"], MTLS: SECURITY_STYLE["mutual_tls"]["color"],
               MIXED: SECURITY_STYLE["mixed"]["color"]}

WARMUP_S = 0.5
"""Seconds at the start of each run left out of the latency: the first requests on a new path open
its connections (with mTLS, a TLS handshake each), which a steady hop has already paid for."""

PERCENTILES = (50, 90, 99)
KEEP = 900
"""Readings a UsageSampler keeps (the oldest go first)."""

CPU_HEADROOM = 1.5
MEMORY_HEADROOM = 1.5
CPU_LIMIT_FACTOR = 4
MEMORY_LIMIT_FACTOR = 2
CPU_STEP_M = 10
MEMORY_STEP_MIB = 16


# -- reading the path ------------------------------------------------------------------


def path_of(sidecars: Mapping[str, bool], modes: Mapping[str, str]) -> str:
    """The path of a hop: DIRECT when no end has a sidecar, MIXED when only some do; with sidecars on
    both ends, PLAINTEXT when the mode in force for a callee is DISABLE, else MTLS."""
    if not sidecars or not any(sidecars.values()):
        return DIRECT
    if not all(sidecars.values()):
        return MIXED
    return PLAINTEXT if any(mode == "DISABLE" for mode in modes.values()) else MTLS


def modes_in_force(policies: Iterable[Mapping[str, Any]], namespace: str, labels: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The mTLS mode each workload's sidecar enforces (workload -> mode), decided as the sidecars decide it.

    `policies` are PeerAuthentications as lab.get gives them; `labels` maps
    each workload to its pod labels (app, version).
    """
    found = [dict(p) for p in policies if p.get("kind") == "PeerAuthentication"]
    forms = [config.canonical(r) for r in config.load(found)] if found else []
    return {workload: effective_mode(forms, namespace, dict(own)).mode for workload, own in labels.items()}


def mesh_policy(current: Mapping[str, Any] | None, path: str) -> tuple[str, Manifest | None]:
    """What to do with the mesh-wide PeerAuthentication to put a hop on `path`: ("keep" | "apply" | "delete", resource).

    PLAINTEXT sets its mode to DISABLE (creating it if need be), everything
    else in it kept. MTLS clears a DISABLE: the mode is removed (UNSET, so the
    default, PERMISSIVE, applies and sidecars dial mTLS), and the policy is
    deleted when nothing but its name was left; a policy that already allows
    mTLS (PERMISSIVE, STRICT) is kept as it is. DIRECT has no sidecars to
    configure and keeps it.
    """
    mode = ((current or {}).get("spec") or {}).get("mtls", {}).get("mode") if current else None
    if path == PLAINTEXT:
        if mode == "DISABLE":
            return "keep", dict(current) if current else None
        resource: Manifest = copy.deepcopy(dict(current)) if current else {
            "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": MESH_POLICY, "namespace": ROOT_NAMESPACE}, "spec": {},
        }
        spec = dict(resource.get("spec") or {})
        spec["mtls"] = {**dict(spec.get("mtls") or {}), "mode": "DISABLE"}
        resource["spec"] = spec
        return "apply", resource
    if path == MTLS and current is not None and mode == "DISABLE":
        resource = copy.deepcopy(dict(current))
        spec = dict(resource.get("spec") or {})
        mtls = {k: v for k, v in dict(spec.get("mtls") or {}).items() if k != "mode"}
        if mtls:
            spec["mtls"] = mtls
        else:
            spec.pop("mtls", None)
        resource["spec"] = spec
        meta = {k: v for k, v in (resource.get("metadata") or {}).items() if k not in ("name", "namespace")}
        if not spec and not meta:
            return "delete", None
        return "apply", resource
    return "keep", dict(current) if current else None


def describe_path(path: str, sidecars: Mapping[str, bool], modes: Mapping[str, str]) -> str:
    """The lab's state behind a path, in words, for the line under the buttons."""
    ends = ", ".join(f"{w} {'with' if has else 'without'} a sidecar" for w, has in sidecars.items())
    callee_modes = ", ".join(f"{w} accepts {m}" for w, m in modes.items())
    if path == DIRECT:
        return f"{DIRECT}: {ends}"
    if path == MIXED:
        return f"not one of the three paths: {ends}"
    return f"{path}: {ends}; {callee_modes}"


# -- the control -----------------------------------------------------------------------


class PathControl(ConfigControl):
    """Three buttons: direct, sidecars with plaintext, sidecars with mTLS, for the hop `client` -> `workloads`.

    It starts on the path the lab is on (none chosen when only some ends
    have a sidecar). Picking a path restarts the ends that must gain or lose
    their sidecar, then sets or clears DISABLE on the mesh-wide
    PeerAuthentication (`mesh_policy`). `path` is the path on screen;
    `run_paths` labels load runs (run number -> path) when `note_run` is a
    load generator's listener (`cost_bench` wires it).
    """

    path = Unicode("")

    def __init__(self, lab: Lab, client: str = CLIENT.name, workloads: Sequence[str] = ("details-v1",),
                 namespace: str | None = None) -> None:
        self.client = client
        self.targets = list(workloads)
        self.namespace = namespace or lab.namespace
        self.run_paths: dict[int, str] = {}
        self._reading = False
        self.buttons = widgets.ToggleButtons(options=list(PATHS), value=None, description="path",
                                             style={"description_width": "60px", "button_width": "150px"})
        self.state = widgets.HTML()
        super().__init__(lab, f"The path of one hop: {client} -> {', '.join(self.targets)}", [self.buttons, self.state])
        problem = self.reload()
        if problem:
            self.show_error(problem)
        self.buttons.observe(self._picked, names="value")

    @property
    def ends(self) -> list[str]:
        return [self.client, *self.targets]

    def reload(self) -> str:
        """Read the lab: each end's sidecar and the mode in force for the callees; show the path they make."""
        table = self.lab.workloads()
        rows = table[table["namespace"] == self.namespace].set_index("workload")
        missing = [w for w in self.ends if w not in rows.index]
        if missing:
            self._show("")
            self.state.value = ""
            return f"no workload {', '.join(missing)} in namespace {self.namespace}: deploy it first"
        sidecars = {w: bool(rows.loc[w, "sidecar"]) for w in self.ends}
        labels = {w: {"app": str(rows.loc[w, "service"]), "version": str(rows.loc[w, "version"])} for w in self.targets}
        modes = modes_in_force(lab_resources(self.lab, "PeerAuthentication"), self.namespace, labels)
        path = path_of(sidecars, modes)
        self._show(path)
        self.state.value = f"<i>the lab now: {describe_path(path, sidecars, modes)}</i>"
        return ""

    def _show(self, path: str) -> None:
        self._reading = True
        try:
            self.buttons.value = path if path in PATHS else None
        finally:
            self._reading = False
        self.path = path

    def _picked(self, change: dict[str, Any]) -> None:
        if self._reading or change["new"] is None:
            return
        self.set_path(str(change["new"]))

    def set_path(self, path: str) -> bool:
        """Put the hop on `path` (one of PATHS); False, with the reason shown, when the lab refused."""
        if path not in PATHS:
            self.show_error(f"unknown path {path!r}: choose one of {', '.join(PATHS)}")
            return False
        try:
            table = self.lab.workloads()
            rows = table[table["namespace"] == self.namespace].set_index("workload")
            want = path != DIRECT
            restart = [w for w in self.ends if w in rows.index and bool(rows.loc[w, "sidecar"]) != want]
            with journal.acting_widget(self.journal_name):
                for workload in restart:
                    target = f"{self.namespace}/{workload}"
                    if want:
                        self.lab.inject(target)
                    else:
                        self.lab.uninject(target)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        said = [f"restarted {', '.join(restart)} {'with' if want else 'without'} a sidecar" if restart
                else "no restart needed"]
        current = next((r for r in lab_resources(self.lab, "PeerAuthentication", ROOT_NAMESPACE)
                        if r["metadata"]["name"] == MESH_POLICY), None)
        action, resource = mesh_policy(current, path)
        if action == "apply" and resource is not None:
            if not self.apply(resource):
                return False
            said.append(self.message)
        elif action == "delete":
            if not self.delete("PeerAuthentication", MESH_POLICY, ROOT_NAMESPACE):
                return False
            said.append(self.message)
        problem = self.reload()
        if problem:
            self.show_error(problem)
            return False
        if self.path != path:
            self.show_error(f"asked for {path!r}, but the lab is on {self.path!r}: {self.state.value}")
            return False
        self.show_message("\n".join(said))
        return True

    def note_run(self, run: LoadRun) -> None:
        """A load generator listener: remember the path each run was sent on (called at its start and end)."""
        self.run_paths.setdefault(run.run_id, self.path or MIXED)


# -- latency per hop ---------------------------------------------------------------------


def with_paths(rows: pd.DataFrame, run_paths: Mapping[int, str]) -> pd.DataFrame:
    """The client's rows with a `path` column, looked up by their run (a run not in `run_paths`: MIXED)."""
    labels = [run_paths.get(int(run), MIXED) for run in rows["run"]]
    return rows.assign(path=pd.Series(labels, index=rows.index, dtype="str"))


def _steady(rows: pd.DataFrame, warmup_s: float) -> pd.DataFrame:
    """The rows of each run after its first `warmup_s` seconds."""
    if rows.empty:
        return rows
    starts = rows.groupby("run")["at"].transform("min")
    return rows[rows["at"] >= starts + warmup_s]


def path_order(paths: Iterable[str]) -> list[str]:
    present = set(paths)
    return [p for p in (*PATHS, MIXED) if p in present]


def hop_table(rows: pd.DataFrame, warmup_s: float = WARMUP_S) -> pd.DataFrame:
    """One row per path (in PATHS order): requests, success, p50/p90/p99 in ms, and what each adds to "direct".

    `rows` are the client's rows with a `path` column (`with_paths`). The
    first `warmup_s` of each run are left out; percentiles are of the
    successful requests, latency from each request's intended send time.
    `+p50_ms` and the others are NaN when there is no "direct" row.
    """
    columns = ["requests", "success", *(f"p{q}_ms" for q in PERCENTILES), *(f"+p{q}_ms" for q in PERCENTILES)]
    steady = _steady(rows, warmup_s)
    records = []
    for path in path_order(steady["path"]) if not steady.empty else []:
        part = steady[steady["path"] == path]
        ok = part[part["code"] == 200]["latency_ms"]
        record: dict[str, Any] = {"path": path, "requests": len(part), "success": float((part["code"] == 200).mean())}
        for q in PERCENTILES:
            record[f"p{q}_ms"] = float(ok.quantile(q / 100)) if len(ok) else math.nan
        records.append(record)
    table = pd.DataFrame(records, columns=["path", *columns[:5]]).set_index("path")
    table["requests"] = table["requests"].astype("int64")
    for q in PERCENTILES:
        base = table.loc[DIRECT, f"p{q}_ms"] if DIRECT in table.index else math.nan
        table[f"+p{q}_ms"] = table[f"p{q}_ms"] - base
    return table


def hop_traces(rows: pd.DataFrame, hop: str = "", warmup_s: float = WARMUP_S) -> Drawn:
    """Grouped bars: p50, p90 and p99 of the hop for each path it was measured on, in ms."""
    table = hop_table(rows, warmup_s)
    names = [f"p{q}" for q in PERCENTILES]
    traces: list[BaseTraceType] = []
    for path, row in table.iterrows():
        values = [float(row[f"p{q}_ms"]) for q in PERCENTILES]
        traces.append(go.Bar(
            x=names, y=values, name=str(path), marker={"color": PATH_COLORS.get(str(path), "#1f77b4")},
            text=[f"{v:.1f}" if not math.isnan(v) else "" for v in values], textposition="outside", cliponaxis=False,
            customdata=[int(row["requests"])] * len(names),
            hovertemplate=f"{path}<br>%{{x}}: %{{y:.2f}} ms of %{{customdata}} requests<extra></extra>",
        ))
    title = f"Latency of one hop{f' ({hop})' if hop else ''} by path, as the client saw it"
    layout = chart_layout(
        title if len(table) else f"{title}: no requests yet, pick a path and start load", 380,
        barmode="group",
        xaxis={"title": {"text": "percentile"}, "type": "category"},
        yaxis={"title": {"text": "ms"}, "rangemode": "tozero"},
        legend={**LEGEND_UNDER, "title": {"text": "path:"}},
    )
    return traces, layout


def labelled_rows(bench: Callable[[], Bench], control: PathControl) -> Callable[[], pd.DataFrame]:
    """A chart source: the rows of the bench `bench()` returns, each with the path its run was sent on."""

    def rows() -> pd.DataFrame:
        return with_paths(bench().frame(), dict(control.run_paths))

    return rows


# -- CPU and memory --------------------------------------------------------------------


class UsageSampler:
    """A chart source: each call measures the hop's processes with lab.resources and keeps the reading.

    One reading is a `sample_s` window (the call takes that long); each row
    gets the time the window ended (`t`), a `process` name ("details-v1
    sidecar", "control plane") and the `label` of that moment (the path, from
    `label()`). A call returns every reading kept, oldest first.
    """

    def __init__(self, lab: Lab, workloads: Sequence[str], *, sample_s: float = 1.0, label: Callable[[], str] = lambda: "",
                 control_plane: bool = True, keep: int = KEEP, clock: Callable[[], float] = time.time) -> None:
        self.lab = lab
        self.workloads = list(workloads)
        self.sample_s = sample_s
        self.label = label
        self.control_plane = control_plane
        self.keep = keep
        self.clock = clock
        self.readings: list[pd.DataFrame] = []
        self._lock = threading.Lock()  # the bench's refresher and measure_paths's thread may both read

    def __call__(self) -> pd.DataFrame:
        label = self.label()
        usage = self.lab.resources(sample=self.sample_s)
        reading = usage_reading(usage, self.workloads, self.clock(), label, self.control_plane)
        with self._lock:
            self.readings.append(reading)
            del self.readings[: max(0, len(self.readings) - self.keep)]
        return self.history()

    def history(self) -> pd.DataFrame:
        with self._lock:
            kept = [r for r in self.readings if not r.empty]
        return pd.concat(kept, ignore_index=True) if kept else usage_reading(pd.DataFrame(columns=USAGE_INPUT), [], 0.0, "")


USAGE_INPUT = ["namespace", "workload", "instance", "role", "pid", "cpu_percent", "cpu_seconds", "memory_mb"]
USAGE_COLUMNS = ["t", "label", "process", "workload", "role", "cpu_percent", "memory_mb"]


def usage_reading(usage: pd.DataFrame, workloads: Sequence[str], at: float, label: str, control_plane: bool = True) -> pd.DataFrame:
    """lab.resources() rows of `workloads` (and the control plane) as one reading: `t` is `at` (epoch seconds, when
    the window ended), `label` what was going on (the path)."""
    keep = usage["workload"].isin(list(workloads)) | ((usage["role"] == "control plane") & control_plane)
    rows = usage[keep]
    process = [("control plane" if role == "control plane" else f"{w} {role}") for w, role in zip(rows["workload"], rows["role"], strict=True)]
    return pd.DataFrame({
        "t": pd.Series([float(at)] * len(rows), dtype="float64"),
        "label": pd.Series([label] * len(rows), dtype="str"),
        "process": pd.Series(process, dtype="str"),
        "workload": rows["workload"].astype("str").to_numpy(),
        "role": rows["role"].astype("str").to_numpy(),
        "cpu_percent": rows["cpu_percent"].astype("float64").to_numpy(),
        "memory_mb": rows["memory_mb"].astype("float64").to_numpy(),
    }, columns=USAGE_COLUMNS)


ROLE_DASH = {"sidecar": "solid", "app": "dot", "control plane": "dash"}


def usage_traces(readings: pd.DataFrame) -> Drawn:
    """Two panels over time: CPU (% of one core) and resident memory (MiB), one line per process.

    A sidecar's line is solid, an app's dotted, the control plane's dashed;
    a process that is gone (its sidecar removed) simply stops. The path of
    each stretch of readings is named above the CPU panel.
    """
    processes = sorted(set(readings["process"])) if not readings.empty else []
    traces: list[BaseTraceType] = [stretch_trace(readings)] if processes else []
    for name in processes:
        rows = readings[readings["process"] == name].sort_values("t")
        role = str(rows["role"].iloc[0])
        color = version_color(name, processes)
        for i, (column, axis, unit) in enumerate((("cpu_percent", "y", "% of a core"), ("memory_mb", "y2", "MiB"))):
            traces.append(go.Scatter(
                x=wall_clock(rows["t"]), y=rows[column], mode="lines+markers", name=name, legendgroup=name, showlegend=i == 0,
                yaxis=axis, line={"color": color, "dash": ROLE_DASH.get(role, "solid"), "width": 2}, marker={"size": 5},
                hovertemplate=f"{name}<br>%{{y:.1f}} {unit}<extra></extra>",
            ))
    title = "CPU and memory of each process on the hop (lab.resources)"
    layout = chart_layout(
        title if processes else f"{title}: no reading yet, start load", 460,
        xaxis={"title": {"text": "time"}, "type": "date", "anchor": "y2"},
        yaxis={"title": {"text": "CPU % of one core"}, "domain": [0.52, 1.0], "rangemode": "tozero"},
        yaxis2={"title": {"text": "memory MiB"}, "domain": [0.0, 0.40], "rangemode": "tozero"},
        legend={**LEGEND_UNDER, "title": {"text": "process:"}},
    )
    return traces, layout


def stretches(readings: pd.DataFrame) -> list[tuple[str, float, float]]:
    """Consecutive readings with the same label: (label, first time, last time) in epoch seconds, in time order."""
    if readings.empty:
        return []
    times = readings.drop_duplicates("t").sort_values("t")[["t", "label"]]
    out: list[tuple[str, float, float]] = []
    for t, label in zip(times["t"], times["label"], strict=True):
        if out and out[-1][0] == label:
            out[-1] = (label, out[-1][1], float(t))
        else:
            out.append((str(label), float(t), float(t)))
    return out


def stretch_trace(readings: pd.DataFrame) -> BaseTraceType:
    """The path of each stretch of readings, written above the CPU lines in the middle of its stretch.

    A text trace rather than layout annotations: a live chart's traces are
    replaced when their number changes, its annotations are not.
    """
    marks = [(label, first + (last - first) / 2) for label, first, last in stretches(readings) if label]
    top = float(readings["cpu_percent"].max()) if not readings.empty else 0.0
    return go.Scatter(
        x=wall_clock([t for _, t in marks]), y=[max(top * 1.15, 5.0)] * len(marks), mode="text", yaxis="y", name="path",
        text=[label for label, _ in marks], textfont={"size": 11, "color": [PATH_COLORS.get(label, "#444") for label, _ in marks]},
        showlegend=False, hoverinfo="skip", cliponaxis=False,
    )


# -- what a sidecar needs -----------------------------------------------------------------


def _round_up(value: float, step: int) -> int:
    return int(max(step, math.ceil(value / step) * step))


def sidecar_sizing(readings: pd.DataFrame, rate: float, label: str = MTLS) -> pd.DataFrame:
    """What each sidecar used while the hop carried `rate` requests/s on `label`'s path, and the
    Kubernetes requests and limits that follow from it. One row per sidecar.

    Columns: peak_cpu_percent and peak_memory_mib (the highest reading),
    cpu_us_per_request (peak CPU over the rate: the CPU one request cost that
    sidecar), then cpu_request_m and memory_request_mib (the peak with
    CPU_HEADROOM / MEMORY_HEADROOM, rounded up to 10m and 16 MiB) and
    cpu_limit_m and memory_limit_mib (CPU_LIMIT_FACTOR and
    MEMORY_LIMIT_FACTOR times the request).
    """
    columns = ["peak_cpu_percent", "cpu_us_per_request", "peak_memory_mib", "cpu_request_m", "cpu_limit_m",
               "memory_request_mib", "memory_limit_mib"]
    rows = readings[(readings["label"] == label) & (readings["role"] == "sidecar")] if not readings.empty else readings
    records = []
    for process, part in rows.groupby("process", sort=True) if not rows.empty else []:
        cpu = float(part["cpu_percent"].max())
        memory = float(part["memory_mb"].max())
        cpu_request = _round_up(cpu * 10.0 * CPU_HEADROOM, CPU_STEP_M)
        memory_request = _round_up(memory * MEMORY_HEADROOM, MEMORY_STEP_MIB)
        records.append({
            "sidecar": str(process).removesuffix(" sidecar"),
            "peak_cpu_percent": cpu,
            "cpu_us_per_request": cpu / 100.0 / rate * 1e6 if rate > 0 else math.nan,
            "peak_memory_mib": memory,
            "cpu_request_m": cpu_request,
            "cpu_limit_m": cpu_request * CPU_LIMIT_FACTOR,
            "memory_request_mib": memory_request,
            "memory_limit_mib": memory_request * MEMORY_LIMIT_FACTOR,
        })
    return pd.DataFrame(records, columns=["sidecar", *columns]).set_index("sidecar")


def istio_annotations(row: Mapping[str, Any]) -> dict[str, str]:
    """The pod annotations that give Istio's injected sidecar these requests and limits (a sidecar_sizing row)."""
    return {
        "sidecar.istio.io/proxyCPU": f"{int(row['cpu_request_m'])}m",
        "sidecar.istio.io/proxyCPULimit": f"{int(row['cpu_limit_m'])}m",
        "sidecar.istio.io/proxyMemory": f"{int(row['memory_request_mib'])}Mi",
        "sidecar.istio.io/proxyMemoryLimit": f"{int(row['memory_limit_mib'])}Mi",
    }


# -- the bench ---------------------------------------------------------------------------


def cost_bench(lab: Lab, control: PathControl, usage: UsageSampler, *, service: str, **options: Any) -> Bench:
    """A Bench for the lesson: the path control, a load generator, CPU and memory per process, latency per path.

    `usage` measures the processes (its readings are labelled with the
    control's path); `options` are Bench's (path, rate, duration_s, title,
    live). Every run is labelled with the path it was sent on.
    """
    made: list[Bench] = []
    hop = f"{control.client} -> {service}"
    charts = [Chart(usage_traces, source=usage),
              Chart(partial(hop_traces, hop=hop), source=labelled_rows(lambda: made[0], control))]
    bench = Bench(lab, control, service=service, charts=charts, **options)
    bench.loadgen.on_run(control.note_run)
    made.append(bench)
    return bench


def measure_paths(bench: Bench, control: PathControl, paths: Sequence[str], *, usage: UsageSampler | None = None,
                  requests: int = 1000) -> list[int]:
    """Put the hop on each path in turn and send it `requests` at the bench's rate; returns the run numbers.

    The load is `lab.load`, not the bench's load generator, and the charts
    are redrawn after each run rather than during it: a chart redraw runs
    in the kernel's process and, live, holds it for milliseconds at a time,
    which would add to the very latencies being compared (a sidecar pair
    costs about a millisecond). The rows go into the bench's recorder as one
    run each, labelled with the path, so the charts and `hop_table` show
    exactly what was measured. `usage` (the bench's CPU and memory source)
    is read about every `sample_s` from a thread while each load runs; it
    mostly waits, so it adds nothing measurable. Headless, the charts are
    shown once at the end. A path the lab refuses stops the round, with the
    reason on the control.
    """
    lab, runs = bench.lab, []
    target, url, rate = bench.service, str(bench.loadgen.path.value), float(bench.loadgen.rate.value)
    for path in paths:
        if not control.set_path(path):
            break
        run = bench.recorder.new_run()
        control.run_paths[run] = control.path
        started = time.time()
        frame = _sampled(usage, lambda: lab.load(target, url, rate=rate, requests=requests))
        bench.recorder.add(rows_from_frame(frame, target=target, run=run, started_at=started))
        runs.append(run)
        bench.refresh()
    if not bench.live:
        frontend.show(*bench.static_figures())
    return runs


def _sampled(usage: UsageSampler | None, work: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Run `work` while a thread takes `usage` readings one after another (each waits its window); the last one
    ends at most one window after `work`."""
    if usage is None:
        return work()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            usage()

    thread = threading.Thread(target=sample, name="meshkit-usage", daemon=True)
    thread.start()
    try:
        return work()
    finally:
        done.set()
        thread.join()
