"""What the charts plot, computed from load rows: pure functions of a DataFrame.

The rows are the load generator's (one per request; meshkit.notebook.recorder
adds the absolute time `at`, in seconds since the epoch, of each request's
intended send). Every function here takes such a frame and returns a small
table, so a script, a test or a headless notebook gets exactly the numbers a
live chart shows.

Time series use trailing windows evaluated at regular steps: the value at t
covers the requests intended in [t - window, t). A window longer than the step
smooths a series without hiding a change for longer than one window, which is
what a learner needs to see a split move within a second or two.

Latency percentiles count only requests that got a response (code > 0), as
meshkit.loadgen.summary does: a refused connection fails in microseconds and
would flatter them. Success rate counts every row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

PERCENTILES = (50, 90, 99)
LATENCY_COLUMNS = ["t", "version", "p50_ms", "p90_ms", "p99_ms", "count"]
RATE_COLUMNS = ["t", "rps", "success_rate", "count"]
SPLIT_COLUMNS = ["version", "configured", "observed", "count"]


def _steps(start: float, end: float, step_s: float, complete: bool) -> np.ndarray:
    """Step ends on a grid of `step_s`, from the first after `start`.

    With `complete`, the last step is the last grid point not after `end`
    (every window is over); otherwise the first one after `end`, so the
    newest rows are shown (in a window still filling).
    """
    first = math.floor(start / step_s) * step_s + step_s
    last = math.floor(end / step_s) * step_s + (0.0 if complete else step_s)
    count = int(round((last - first) / step_s)) + 1
    return first + step_s * np.arange(max(0, count))


def _window(frame: pd.DataFrame, horizon_s: float | None) -> pd.DataFrame:
    if frame.empty or horizon_s is None:
        return frame
    return frame[frame["at"] > frame["at"].max() - horizon_s]


def rolling_percentiles(
    frame: pd.DataFrame, window_s: float = 5.0, step_s: float = 1.0, horizon_s: float | None = None
) -> pd.DataFrame:
    """p50/p90/p99 latency per destination version over trailing windows.

    One row per (step, version) whose window holds at least one answered
    request; `t` is the step's end as a pandas Timestamp (UTC). `horizon_s`
    keeps only the last so many seconds of rows (the live charts' span).
    """
    if frame.empty:
        return pd.DataFrame(columns=LATENCY_COLUMNS)
    rows = _window(frame, horizon_s)
    answered = rows[rows["code"] > 0]
    if answered.empty:
        return pd.DataFrame(columns=LATENCY_COLUMNS)
    steps = _steps(float(rows["at"].min()), float(rows["at"].max()), step_s, complete=False)
    out = []
    for version, group in answered.groupby(answered["version"].replace("", "unknown"), sort=True):
        ordered = group.sort_values("at")
        at = ordered["at"].to_numpy()
        latency = ordered["latency_ms"].to_numpy()
        lo = np.searchsorted(at, steps - window_s)
        hi = np.searchsorted(at, steps)
        for t, a, b in zip(steps, lo, hi, strict=True):
            if b > a:
                p = np.percentile(latency[a:b], PERCENTILES)
                out.append((t, str(version), float(p[0]), float(p[1]), float(p[2]), int(b - a)))
    table = pd.DataFrame(out, columns=LATENCY_COLUMNS)
    table["t"] = pd.to_datetime(table["t"], unit="s", utc=True)
    return table


def rate_series(
    frame: pd.DataFrame, window_s: float = 2.0, step_s: float = 1.0, horizon_s: float | None = None
) -> pd.DataFrame:
    """Requests per second and 2xx share over trailing windows.

    Only whole steps are shown (a rate over a second still in progress would
    dip), so the series lags the rows by at most one step. A step whose
    window holds no request shows rps 0 and no success rate (NaN), so a
    pause in the load is a drop to zero, not a gap that a line would bridge.
    """
    if frame.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    rows = _window(frame, horizon_s).sort_values("at")
    at = rows["at"].to_numpy()
    ok = ((rows["code"] >= 200) & (rows["code"] < 300)).to_numpy()
    steps = _steps(float(at[0]), float(at[-1]), step_s, complete=True)
    lo = np.searchsorted(at, steps - window_s)
    hi = np.searchsorted(at, steps)
    counts = hi - lo
    good = np.concatenate([[0], np.cumsum(ok)])
    with np.errstate(invalid="ignore", divide="ignore"):
        success = np.where(counts > 0, (good[hi] - good[lo]) / counts, np.nan)
    table = pd.DataFrame({"t": steps, "rps": counts / window_s, "success_rate": success, "count": counts})
    table["t"] = pd.to_datetime(table["t"], unit="s", utc=True)
    return table


def observed_split(frame: pd.DataFrame, window_s: float | None = 10.0) -> pd.Series:
    """Percent of answered requests served by each version, over the last `window_s` seconds (None: all)."""
    if frame.empty:
        return pd.Series(dtype="float64", name="observed")
    rows = _window(frame, window_s)
    answered = rows[rows["code"] > 0]
    if answered.empty:
        return pd.Series(dtype="float64", name="observed")
    counts = answered["version"].replace("", "unknown").value_counts().sort_index()
    return (counts / counts.sum() * 100.0).rename("observed")


def split_table(configured: Mapping[str, float], frame: pd.DataFrame, window_s: float | None = 10.0) -> pd.DataFrame:
    """Configured vs observed percent per version, side by side.

    `configured` maps a version to its weight (see
    meshkit.notebook.istio.subset_versions for subsets -> versions); a
    version seen but not configured shows configured 0, one configured but
    not seen shows observed 0.
    """
    observed = observed_split(frame, window_s)
    rows = _window(frame, window_s) if not frame.empty else frame
    counts = rows[rows["code"] > 0]["version"].replace("", "unknown").value_counts() if not rows.empty else pd.Series()
    versions = sorted(set(configured) | set(observed.index))
    return pd.DataFrame(
        {
            "version": versions,
            "configured": [float(configured.get(v, 0.0)) for v in versions],
            "observed": [float(observed.get(v, 0.0)) for v in versions],
            "count": [int(counts.get(v, 0)) for v in versions],
        },
        columns=SPLIT_COLUMNS,
    )


def configured_split(weights: Mapping[str, int], versions: Mapping[str, str]) -> dict[str, float]:
    """Subset weights as version weights (two subsets of one version add up)."""
    out: dict[str, float] = {}
    for subset, weight in weights.items():
        version = versions.get(subset, subset)
        out[version] = out.get(version, 0.0) + float(weight)
    return out


def certificate_table(certs: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Per identity: lifetime, time left and the share of life left at `now`.

    Takes the frame lab.certificates() gives (identity, not_before, not_after,
    rotations); times may be Timestamps or epoch seconds. `rotations` may be
    a count or a list of rotation times; both give `rotation_count`.
    """
    table = certs.copy()
    for column in ("not_before", "not_after"):
        table[column] = _timestamps(table[column])
    now = utc(now)
    lifetime = (table["not_after"] - table["not_before"]).dt.total_seconds()
    left = (table["not_after"] - now).dt.total_seconds().clip(lower=0.0)
    table["lifetime_s"] = lifetime
    table["left_s"] = left
    table["life_left"] = (left / lifetime.where(lifetime > 0)).fillna(0.0).clip(0.0, 1.0)
    rotations = table["rotations"] if "rotations" in table else pd.Series([0] * len(table), index=table.index)
    table["rotation_times"] = [_rotation_times(r) for r in rotations]
    table["rotation_count"] = [len(r) if isinstance(r, (list, tuple)) else int(r or 0) for r in rotations]
    return table.sort_values("identity", ignore_index=True)


def _timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True)


def _rotation_times(value: object) -> list[pd.Timestamp]:
    if not isinstance(value, (list, tuple)):
        return []
    return [utc(v) for v in value]


def utc(value: object) -> pd.Timestamp:
    """A UTC Timestamp from a Timestamp, datetime, ISO string or epoch seconds."""
    stamp = pd.Timestamp(value, unit="s") if isinstance(value, (int, float)) else pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def human_seconds(seconds: float) -> str:
    """12 s, 4m 05s, 3h 20m, 2d 4h: how long a certificate has left, for a label."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
