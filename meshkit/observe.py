"""What the mesh observed, as pandas tables: pure functions over request records.

The sidecars record every request they proxy (one record per request per
reporter: the caller's sidecar reports "source", the callee's "destination")
and push the records to the control plane (meshkit.control.telemetry). The
Lab fetches them and calls the functions here; nothing in this module does
I/O, so every table can be tested from a hand-made frame.

    requests_frame   the records as a DataFrame (lab.requests)
    metrics          rps, success rate, p50/p90/p99 per group (lab.metrics)
    topology         edges with rps, success, p99, mTLS share (lab.topology, Kiali's graph data)
    edges            the same, in lab.edges()'s long-standing columns
    stat             Linkerd's `stat` per workload: meshed, success, rps, p50, p95, p99
    top              Linkerd's `top`: the busiest (source, destination, method, path)
    traces, trace    spans grouped by trace, and one trace as a tree
    drops            what the telemetry pipeline lost, and where

Percentiles come from Istio's duration histogram, the way Prometheus's
histogram_quantile computes them (linear interpolation inside the bucket
holding the rank), so a number here and the PromQL in docs/observability.md
agree; `exact=True` gives the records' own quantiles instead. Success means a
2xx or 3xx response (a 4xx is the caller's mistake, and still not a success
to the caller: Istio's dashboards count only 5xx as errors, Linkerd's success
excludes 5xx only; the lab is stricter, like its load generator).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from meshkit.sidecar.telemetry import BUCKETS_MS

RENAMES = {
    "response_code": "code",
    "response_flags": "flags",
    "duration": "duration_ms",
    "bytes_received": "request_bytes",
    "bytes_sent": "response_bytes",
}
REQUEST_COLUMNS = [
    "time",
    "reporter",
    "source_workload",
    "source_version",
    "destination_service",
    "destination_workload",
    "destination_version",
    "method",
    "path",
    "code",
    "flags",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "retries",
    "connection_security_policy",
    "dry_run",
    "source_principal",
    "destination_principal",
    "upstream_host",
    "request_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "authority",
    "protocol",
    "source_namespace",
    "destination_namespace",
    "node",
    "seq",
    "start",
]
METRIC_COLUMNS = ["requests", "rps", "success_rate", "p50_ms", "p90_ms", "p99_ms"]
SUMMARY_FIELDS = [
    "start", "reporter", "source_workload", "source_version", "destination_service", "destination_workload",
    "destination_namespace", "destination_version", "connection_security_policy", "response_code", "duration",
    "method", "path",
]  # fmt: skip
"""The stored fields the summary tables (metrics, topology, edges, stat, top) read: what the Lab fetches for them."""
EDGE_COLUMNS = ["source", "destination", "requests", "success_rate", "security", "reporter"]
TOPOLOGY_COLUMNS = [
    "source", "destination", "destination_workloads", "requests", "rps", "success_rate",
    "p50_ms", "p99_ms", "mtls_share", "security", "reporter",
]  # fmt: skip
STAT_COLUMNS = ["namespace", "workload", "meshed", "success_rate", "rps", "p50_ms", "p95_ms", "p99_ms", "requests"]
TOP_COLUMNS = ["source", "destination", "method", "path", "count", "best_ms", "worst_ms", "last_ms", "success_rate"]
TRACES_COLUMNS = ["trace_id", "time", "root", "duration_ms", "spans", "services", "errors", "code"]
TRACE_COLUMNS = [
    "depth", "kind", "workload", "peer", "service", "method", "path", "code", "flags",
    "offset_ms", "duration_ms", "retries", "security", "span_id", "parent_span_id",
]  # fmt: skip
DROP_COLUMNS = ["node", "boot", "started", "received", "gaps", "dropped", "lost", "duplicates", "recorded", "last_push"]
_UPPER = np.array(BUCKETS_MS, dtype=float)


# -- records ------------------------------------------------------------------


def requests_frame(doc: Mapping[str, Any]) -> pd.DataFrame:
    """The control plane's {"columns", "rows"} answer as a frame, oldest first.

    `time` is the request's start (UTC timestamp), `start` the same in unix
    seconds; names follow Istio's labels, with code, flags, duration_ms and
    the byte counts shortened.
    """
    frame = pd.DataFrame(doc.get("rows", []), columns=list(doc.get("columns", [])))
    frame = frame.rename(columns=RENAMES)
    for column in REQUEST_COLUMNS:
        if column not in frame.columns and column != "time":
            frame[column] = pd.Series(dtype=object)
    frame["start"] = pd.to_numeric(frame["start"], errors="coerce").astype(float)
    frame["time"] = pd.to_datetime(frame["start"], unit="s", utc=True)
    for column in ("code", "request_bytes", "response_bytes", "retries", "seq"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(int)
    frame["duration_ms"] = pd.to_numeric(frame["duration_ms"], errors="coerce").astype(float)
    frame = frame[REQUEST_COLUMNS]
    return frame.sort_values(["start", "reporter"], kind="stable", ignore_index=True)


def success(codes: pd.Series) -> pd.Series:
    """True for a 2xx or 3xx response."""
    return (codes >= 200) & (codes < 400)


# -- quantiles ----------------------------------------------------------------


def bucket_counts(durations_ms: Iterable[float]) -> np.ndarray:
    """How many durations fall in each of Istio's buckets (last: +Inf), as a sidecar counts them."""
    values = np.asarray(list(durations_ms) if not isinstance(durations_ms, (np.ndarray, pd.Series)) else durations_ms, dtype=float)
    index = np.searchsorted(_UPPER, values, side="left")
    return np.bincount(index, minlength=len(_UPPER) + 1)


def histogram_quantile(q: float, counts: Sequence[float] | np.ndarray, upper: Sequence[float] = BUCKETS_MS) -> float:
    """Prometheus's histogram_quantile over per-bucket (not cumulative) counts; the last count is +Inf's.

    The rank q*total is located in the first bucket whose cumulative count
    reaches it and interpolated linearly between that bucket's bounds (the
    first bucket's lower bound is 0). A rank in the +Inf bucket gives the
    highest finite bound, as Prometheus does. NaN without observations.
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0 or not 0 <= q <= 1:
        return math.nan
    cumulative = np.cumsum(counts)
    rank = q * total
    index = int(np.searchsorted(cumulative, rank, side="left"))
    bounds = list(upper)
    if index >= len(bounds):
        return float(bounds[-1])
    lower = 0.0 if index == 0 else float(bounds[index - 1])
    below = 0.0 if index == 0 else float(cumulative[index - 1])
    inside = float(counts[index])
    if inside <= 0:
        return float(bounds[index])
    return lower + (float(bounds[index]) - lower) * (rank - below) / inside


def bucket_bounds(value_ms: float) -> tuple[float, float]:
    """The (lower, upper) bounds of the Istio bucket holding `value_ms`: the histogram's error bar."""
    index = int(np.searchsorted(_UPPER, value_ms, side="left"))
    lower = 0.0 if index == 0 else float(_UPPER[index - 1])
    upper = float(_UPPER[index]) if index < len(_UPPER) else math.inf
    return lower, upper


def quantiles(durations_ms: pd.Series, qs: Sequence[float], exact: bool = False) -> list[float]:
    if durations_ms.empty:
        return [math.nan for _ in qs]
    if exact:
        return [float(durations_ms.quantile(q)) for q in qs]
    counts = bucket_counts(durations_ms.to_numpy(dtype=float))
    return [histogram_quantile(q, counts) for q in qs]


# -- metrics --------------------------------------------------------------------


def in_window(frame: pd.DataFrame, window_s: float | None, now: float | None) -> pd.DataFrame:
    """The records that started in [now - window_s, now)."""
    if window_s is None or frame.empty:
        return frame
    end = now if now is not None else float(frame["start"].max()) + 1e-9
    return frame[(frame["start"] >= end - window_s) & (frame["start"] < end)]


def _span_s(frame: pd.DataFrame, window_s: float | None) -> float:
    """Seconds to divide by for a rate: the window, or (no window) the records' time span."""
    if window_s is not None:
        return float(window_s)
    if frame.empty:
        return math.nan
    first = float(frame["start"].min())
    last = float((frame["start"] + frame["duration_ms"] / 1000.0).max())
    return max(last - first, 1e-3)


def _summary(group: pd.DataFrame, seconds: float, qs: Sequence[float], exact: bool) -> dict[str, float]:
    count = len(group)
    ok = int(success(group["code"]).sum())
    values = quantiles(group["duration_ms"], qs, exact)
    row: dict[str, float] = {
        "requests": count,
        "rps": count / seconds if seconds and not math.isnan(seconds) else math.nan,
        "success_rate": ok / count if count else math.nan,
    }
    for q, value in zip(qs, values, strict=True):
        row[f"p{round(q * 100):d}_ms"] = value
    return row


def metrics(
    frame: pd.DataFrame,
    window_s: float | None = 60.0,
    by: Sequence[str] = ("destination_workload",),
    reporter: str | None = "destination",
    now: float | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """Per group of `by`: requests, rps, success_rate, p50_ms, p90_ms, p99_ms over the window.

    `reporter` picks whose records count ("destination": the callee's
    sidecar, Istio's dashboards' default; "source": the caller's, which also
    sees faults injected at the caller and requests that never arrived; None:
    both, which counts a request twice where both ends have sidecars).
    """
    frame = in_window(frame, window_s, now)
    if reporter is not None:
        frame = frame[frame["reporter"] == reporter]
    by = list(by)
    seconds = _span_s(frame, window_s)
    rows = []
    if not frame.empty:
        groups = frame.groupby(by, sort=True, dropna=False) if by else [((), frame)]
        for key, group in groups:
            keys = key if isinstance(key, tuple) else (key,)
            rows.append({**dict(zip(by, keys)), **_summary(group, seconds, (0.5, 0.9, 0.99), exact)})
    result = pd.DataFrame(rows, columns=by + METRIC_COLUMNS)
    result["requests"] = result["requests"].astype(int)
    result.attrs.update(window_s=window_s, reporter=reporter, exact=exact)
    return result


# -- topology -----------------------------------------------------------------


def security_word(share: float) -> str:
    """mutual_tls, none, or mixed: how Kiali colours an edge, from the share of mTLS requests."""
    if math.isnan(share):
        return "unknown"
    if share >= 1.0:
        return "mutual_tls"
    return "none" if share <= 0.0 else "mixed"


def topology(
    frame: pd.DataFrame,
    window_s: float | None = None,
    reporter: str = "auto",
    now: float | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """One row per edge (source workload -> destination service), Kiali's graph data.

    With reporter "auto" an edge's numbers come from the destination's
    sidecar where it has one (it saw the request arrive and how it was
    secured), else from the caller's; "source" or "destination" force one.
    `mtls_share` is the share of the edge's requests that arrived over mutual
    TLS; `security` says the same in a word (mutual_tls, none, mixed).
    """
    frame = in_window(frame, window_s, now)
    seconds = _span_s(frame, window_s)
    rows = []
    if not frame.empty:
        keyed = frame.assign(_edge=list(zip(frame["source_workload"], frame["destination_service"])))
        destination_edges = set(keyed.loc[keyed["reporter"] == "destination", "_edge"])
        for (source, destination, who), group in keyed.groupby(["source_workload", "destination_service", "reporter"], sort=True):
            if reporter == "auto":
                if who == "source" and (source, destination) in destination_edges:
                    continue
            elif who != reporter:
                continue
            summary = _summary(group, seconds, (0.5, 0.99), exact)
            share = float((group["connection_security_policy"] == "mutual_tls").mean())
            workloads = ", ".join(sorted({str(w) for w in group["destination_workload"] if w and w != "unknown"}))
            rows.append({
                "source": source, "destination": destination, "destination_workloads": workloads,
                **summary, "mtls_share": share, "security": security_word(share), "reporter": who,
            })  # fmt: skip
    result = pd.DataFrame(rows, columns=TOPOLOGY_COLUMNS)
    result["requests"] = result["requests"].astype(int)
    result.attrs.update(window_s=window_s, reporter=reporter)
    return result.sort_values(["source", "destination"], ignore_index=True)


def edges(frame: pd.DataFrame) -> pd.DataFrame:
    """lab.edges(): every edge since the lab began, in its long-standing columns."""
    table = topology(frame, window_s=None)
    return table[EDGE_COLUMNS].reset_index(drop=True)


# -- stat and top -----------------------------------------------------------------


def stat(
    frame: pd.DataFrame,
    workloads: pd.DataFrame,
    window_s: float = 60.0,
    now: float | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """`linkerd stat deploy`: per workload, the golden signals of what it served.

    Requests the workload received, as its own sidecar reported them
    (reporter=destination). `meshed` is instances with a sidecar over
    instances; a workload without a sidecar, or without traffic in the
    window, shows NaN (Linkerd's "-"). `workloads` is lab.workloads().
    """
    frame = in_window(frame, window_s, now)
    served = frame[frame["reporter"] == "destination"]
    rows = []
    for w in workloads.itertuples(index=False):
        mine = served[(served["destination_workload"] == w.workload) & (served["destination_namespace"].isin([w.namespace, None, "unknown"]))]
        ready = str(getattr(w, "ready", "1/1"))
        total = ready.split("/")[-1] if "/" in ready else "1"
        meshed = f"{total if bool(w.sidecar) else 0}/{total}"
        if mine.empty:
            rows.append({"namespace": w.namespace, "workload": w.workload, "meshed": meshed, "success_rate": math.nan,
                         "rps": 0.0 if bool(w.sidecar) else math.nan, "p50_ms": math.nan, "p95_ms": math.nan,
                         "p99_ms": math.nan, "requests": 0})
            continue
        summary = _summary(mine, float(window_s), (0.5, 0.95, 0.99), exact)
        rows.append({"namespace": w.namespace, "workload": w.workload, "meshed": meshed, **summary})
    result = pd.DataFrame(rows, columns=STAT_COLUMNS)
    result["requests"] = result["requests"].astype(int)
    result.attrs.update(window_s=window_s)
    return result


def top(frame: pd.DataFrame, window_s: float | None = 10.0, now: float | None = None, limit: int = 20) -> pd.DataFrame:
    """`linkerd top`: the busiest (source, destination, method, path) in the window.

    Seen by the destination's sidecar where there is one, else by the caller's.
    best/worst/last are durations in ms of that route's requests.
    """
    frame = in_window(frame, window_s, now)
    rows = []
    if not frame.empty:
        key = ["source_workload", "destination_workload", "destination_service", "method", "path"]
        dest = frame[frame["reporter"] == "destination"]
        seen = set(zip(dest["source_workload"], dest["destination_service"]))
        unseen = np.array([(s, d) not in seen for s, d in zip(frame["source_workload"], frame["destination_service"])], dtype=bool)
        src = frame[(frame["reporter"] == "source").to_numpy() & unseen]
        chosen = pd.concat([dest, src]) if not src.empty else dest
        for (source, workload, service, method, path), group in chosen.groupby(key, sort=False, dropna=False):
            ordered = group.sort_values("start")
            target = workload if workload and workload != "unknown" else service
            rows.append({
                "source": source, "destination": target, "method": method, "path": path, "count": len(group),
                "best_ms": float(group["duration_ms"].min()), "worst_ms": float(group["duration_ms"].max()),
                "last_ms": float(ordered["duration_ms"].iloc[-1]),
                "success_rate": float(success(group["code"]).mean()),
            })  # fmt: skip
    result = pd.DataFrame(rows, columns=TOP_COLUMNS)
    result["count"] = result["count"].astype(int)
    return result.sort_values(["count", "source", "destination", "path"], ascending=[False, True, True, True], ignore_index=True).head(limit)


# -- traces -----------------------------------------------------------------------


def _own_workload(row: Mapping[str, Any]) -> str:
    return str(row["source_workload"] if row["reporter"] == "source" else row["destination_workload"])


def traces(frame: pd.DataFrame, limit: int | None = 50) -> pd.DataFrame:
    """One row per trace, newest first: when, which call started it, how long the whole took,
    how many spans, which services it touched, how many spans failed, the root's code."""
    rows = []
    if not frame.empty:
        for trace_id, group in frame[frame["trace_id"].notna()].groupby("trace_id", sort=False):
            ends = group["start"] + group["duration_ms"] / 1000.0
            ids = set(group["span_id"].dropna())
            roots = group[~group["parent_span_id"].isin(ids)].sort_values("start")
            root = roots.iloc[0] if not roots.empty else group.sort_values("start").iloc[0]
            services = sorted({str(s).split(".")[0] for s in group["destination_service"] if s and s != "unknown"})
            rows.append({
                "trace_id": trace_id, "time": pd.Timestamp(float(group["start"].min()), unit="s", tz="UTC"),
                "root": f"{root['source_workload']} -> {str(root['destination_service']).split('.')[0]}{root['path']}",
                "duration_ms": (float(ends.max()) - float(group["start"].min())) * 1000.0,
                "spans": len(group), "services": ", ".join(services),
                "errors": int((~success(group["code"])).sum()), "code": int(root["code"]),
            })  # fmt: skip
    result = pd.DataFrame(rows, columns=TRACES_COLUMNS)
    result = result.sort_values("time", ascending=False, ignore_index=True)
    return result.head(limit) if limit else result


def trace(frame: pd.DataFrame, trace_id: str) -> pd.DataFrame:
    """One request's spans as a tree, depth-first in time order.

    Each sidecar hop is a span: `kind` "client" for the caller's sidecar
    (reporter=source), "server" for the callee's (reporter=destination).
    `offset_ms` is when the span started after the trace's first span,
    `depth` its level in the tree (children of a span are the calls made
    under it). A span whose parent was not recorded (an app without a
    sidecar in between) is shown as a root.
    """
    spans = frame[frame["trace_id"] == trace_id].sort_values("start", kind="stable")
    if spans.empty:
        return pd.DataFrame(columns=TRACE_COLUMNS)
    t0 = float(spans["start"].min())
    records = spans.to_dict("records")
    ids = {r["span_id"] for r in records if r["span_id"]}
    children: dict[Any, list[dict[str, Any]]] = {}
    roots = []
    for record in records:
        parent = record["parent_span_id"]
        if parent and parent in ids and parent != record["span_id"]:
            children.setdefault(parent, []).append(record)
        else:
            roots.append(record)
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()

    def walk(record: dict[str, Any], depth: int) -> None:
        if id(record) in seen:
            return
        seen.add(id(record))
        client = record["reporter"] == "source"
        rows.append({
            "depth": depth, "kind": "client" if client else "server", "workload": _own_workload(record),
            "peer": record["destination_workload"] if client else record["source_workload"],
            "service": str(record["destination_service"]).split(".")[0], "method": record["method"],
            "path": record["path"], "code": int(record["code"]), "flags": record["flags"],
            "offset_ms": (float(record["start"]) - t0) * 1000.0, "duration_ms": float(record["duration_ms"]),
            "retries": int(record["retries"]), "security": record["connection_security_policy"],
            "span_id": record["span_id"], "parent_span_id": record["parent_span_id"],
        })  # fmt: skip
        for child in children.get(record["span_id"], []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    result = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    result.attrs.update(trace_id=trace_id, duration_ms=float(((spans["start"] + spans["duration_ms"] / 1000.0).max() - t0) * 1000.0))
    return result


def trace_text(tree: pd.DataFrame, width: int = 40) -> str:
    """The tree as text with a time bar per span (for the terminal)."""
    if tree.empty:
        return "(no spans)"
    total = max(float((tree["offset_ms"] + tree["duration_ms"]).max()), 1e-6)
    lines = []
    for row in tree.itertuples(index=False):
        start = int(round(row.offset_ms / total * width))
        length = max(1, int(round(row.duration_ms / total * width)))
        bar = " " * start + "#" * min(length, width - start if width > start else 1)
        label = f"{'  ' * row.depth}{row.workload} {row.kind} -> {row.peer if row.kind == 'client' else row.service}"
        what = f"{row.method} {row.path} {row.code}{' ' + row.flags if row.flags and row.flags != '-' else ''}"
        lines.append(f"{label:<44} {what:<36} {row.offset_ms:8.2f} +{row.duration_ms:8.2f} ms |{bar:<{width}}|")
    return "\n".join(lines)


# -- the pipeline's own health -------------------------------------------------------


def drops(status: Mapping[str, Any]) -> pd.DataFrame:
    """Per sidecar process: records received, and records lost on the way.

    `gaps` are records the control plane never got (sequence numbers it
    skipped), `dropped` what the sidecar says it discarded (its buffer was
    full while the control plane was away); `lost` is the larger, the size of
    the hole. The frame's attrs carry the store's size, capacity and
    `evicted` (old records the bounded store let go).
    """
    rows = []
    for s in status.get("streams", []):
        rows.append({
            "node": s["node"], "boot": s["boot"],
            "started": pd.Timestamp(s["started_at"], unit="s", tz="UTC") if s.get("started_at") else pd.NaT,
            "received": s["received"], "gaps": s["gaps"], "dropped": s["dropped"], "lost": max(s["gaps"], s["dropped"]),
            "duplicates": s["duplicates"], "recorded": s["recorded"],
            "last_push": pd.Timestamp(s["last_push"], unit="s", tz="UTC") if s.get("last_push") else pd.NaT,
        })  # fmt: skip
    result = pd.DataFrame(rows, columns=DROP_COLUMNS)
    result.attrs.update({k: status.get(k) for k in ("records", "capacity", "evicted", "persisted", "otlp")})
    return result


ENDPOINT_COLUMNS = [
    "service", "subset", "address", "instance", "version", "mtls", "ejected", "ejections", "consecutive_5xx",
    "active_requests", "host",
]  # fmt: skip


def endpoints_frame(clusters: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per endpoint of a sidecar's /clusters page; `service` is the host's first label."""
    rows = [
        {
            "service": str(cluster.get("host", "")).split(".", 1)[0],
            "subset": cluster.get("subset"),
            "host": cluster.get("host"),
            **{key: endpoint.get(key) for key in ("address", "instance", "version", "mtls", "active_requests")},
            "ejected": bool(endpoint.get("ejected")),
            "ejections": int(endpoint.get("ejections") or 0),
            "consecutive_5xx": int(endpoint.get("consecutive_5xx") or 0),
        }
        for cluster in clusters
        for endpoint in cluster.get("endpoints", [])
    ]
    return pd.DataFrame(rows, columns=ENDPOINT_COLUMNS)
