"""Charts of the routing lessons 04 and 05: which version each user reached.

Notebook 04 watches its weighted split on the dashboard's own charts
(meshkit.notebook.dashboard: configured vs observed split, latency per
version). Notebook 05 routes by a request header, so its chart asks a
question the split chart cannot answer: *who* went where.

- `versions_by_user`: for each value of the `end-user` header (and the
  requests without one), the share of its requests answered by each version
  in that user's latest load run (its last seconds, for a long run), one
  stacked bar per user, the number of requests written in each part, each
  version in its own colour (05). A request that no version answered (404 NR when no rule
  matched, a 503) is its own grey part of the bar, named by its code and
  flags.

The chart is a pure function `draw(frame) -> (traces, layout)` for a
`meshkit.notebook.bench.Bench`. The recorder's rows say which run a request
came from but not which headers it carried; the runs do. So the bench's
chart reads a small source (`users_source`) that adds a `user` column to
the bench's rows from the headers of the run each row came from;
`users_bench` builds a Bench with that chart. Every load run is one user:
start several at once to watch several users (`load_as_users` does that
from code, as the notebook's unattended run needs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.lab import Lab
from meshkit.notebook import frontend
from meshkit.notebook.bench import Bench, Chart
from meshkit.notebook.figures import LEGEND_UNDER, chart_layout, version_color
from meshkit.notebook.load import LoadRun

Drawn = tuple[list[BaseTraceType], dict[str, Any]]

HEADER = "end-user"
"""The header Bookinfo's productpage passes on with the signed-in user's name (Istio's request-routing task)."""

NO_HEADER = "(no header)"
"""The user of a request sent without the header: an anonymous visitor."""

WINDOW_S = 5.0
"""Seconds of a user's latest run the chart counts: all of a short run, the recent part of a long
one, so a rule changed while a long run goes on shows within seconds."""

FAILED_COLOR = "#7f7f7f"
EMPTY = "no requests yet: start load with a header, such as end-user: jason"


def header_value(headers: Mapping[str, str], name: str = HEADER) -> str | None:
    """The value of header `name` in `headers`, whatever the case of its name (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value)
    return None


def run_users(runs: Iterable[tuple[int, Mapping[str, str]]], header: str = HEADER) -> dict[int, str]:
    """Run number -> the user it played: the value of `header` it sent, or NO_HEADER."""
    users: dict[int, str] = {}
    for run, headers in runs:
        value = header_value(headers, header)
        users[int(run)] = NO_HEADER if value is None else value
    return users


def with_users(frame: pd.DataFrame, users: Mapping[int, str]) -> pd.DataFrame:
    """The rows with a `user` column, looked up by their `run` (a run not in `users`: NO_HEADER)."""
    names = [users.get(int(run), NO_HEADER) for run in frame["run"]]
    return frame.assign(user=pd.Series(names, index=frame.index, dtype="str"))


def answered_by(version: str, code: int, flags: str) -> str:
    """What a row's bar part is called: its version, or for a request no version answered, its code and flags."""
    if version:
        return version
    return f"{code} {flags}".strip() if code else f"no answer {flags}".strip()


def latest(frame: pd.DataFrame, window_s: float | None = WINDOW_S) -> pd.DataFrame:
    """For each user, the rows of its latest load run, and of those the last `window_s` seconds (None: all).

    So a bar shows what the user's newest run met, never a mix with a run
    made before the rule changed; a long run shows its recent seconds.
    """
    if frame.empty:
        return frame
    newest_run = frame.groupby("user")["run"].transform("max")
    rows = frame[frame["run"] == newest_run]
    if window_s is not None:
        newest_at = rows.groupby("user")["at"].transform("max")
        rows = rows[rows["at"] > newest_at - window_s]
    return rows


def user_table(frame: pd.DataFrame, window_s: float | None = WINDOW_S) -> pd.DataFrame:
    """Requests per (user, answered by) in each user's latest run, its last `window_s` seconds (`latest`).

    Columns: user, answered_by, count, percent (of that user's requests
    counted). Users in the order they first appear, so a chart's bars do
    not jump around between redraws.
    """
    columns = {"user": "str", "answered_by": "str", "count": "int64", "percent": "float64"}
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    rows = latest(frame, window_s)
    labels = [answered_by(str(v), int(c), str(f)) for v, c, f in zip(rows["version"], rows["code"], rows["flags"], strict=True)]
    rows = rows.assign(answered_by=pd.Series(labels, index=rows.index, dtype="str"))
    order = list(dict.fromkeys(frame["user"]))
    counts = rows.groupby(["user", "answered_by"]).size().rename("count").reset_index()
    counts["count"] = counts["count"].astype("int64")
    totals = counts.groupby("user")["count"].transform("sum")
    counts["percent"] = counts["count"] / totals * 100.0
    counts["rank"] = counts["user"].map({u: i for i, u in enumerate(order)})
    counts = counts.sort_values(["rank", "answered_by"], kind="stable").drop(columns="rank").reset_index(drop=True)
    return counts.astype(columns)


def user_versions(frame: pd.DataFrame, runs: Iterable[int] | None = None) -> pd.DataFrame:
    """Requests per user (rows) and answering version (columns), as whole numbers: the chart's data as a table.

    `runs` keeps the rows of those load runs only (all rows without it).
    """
    rows = frame if runs is None else frame[frame["run"].isin([int(r) for r in runs])]
    table = user_table(rows, window_s=None)  # each user's latest run (of `runs`), all of it
    if table.empty:
        return pd.DataFrame(index=pd.Index([], name="user", dtype="str"))
    wide = table.pivot(index="user", columns="answered_by", values="count").fillna(0).astype("int64")
    wide = wide.reindex(list(dict.fromkeys(table["user"])))
    wide = wide[sorted(wide.columns, key=lambda label: (not _is_version(label), label))]
    wide.columns.name = None
    return wide


def _is_version(label: str) -> bool:
    return not label[:1].isdigit() and not label.startswith("no answer")


def versions_by_user(frame: pd.DataFrame, window_s: float | None = WINDOW_S, header: str = HEADER,
                     versions: Sequence[str] = ()) -> Drawn:
    """One stacked bar per user: the share of its requests each version answered (text: how many).

    `frame` is the bench's rows with a `user` column (`users_source`).
    `versions` are every version the service has (`service_versions`): each
    keeps its colour whichever of them the window holds.
    """
    table = user_table(frame, window_s)
    users = list(dict.fromkeys(table["user"]))
    labels = sorted(set(table["answered_by"]), key=lambda label: (not _is_version(label), label))
    versions = sorted({*versions, *(label for label in labels if _is_version(label))})
    traces: list[BaseTraceType] = []
    for label in labels:
        rows = table[table["answered_by"] == label].set_index("user")
        percent = [float(rows["percent"].get(u, 0.0)) for u in users]
        count = [int(rows["count"].get(u, 0)) for u in users]
        color = version_color(label, versions) if _is_version(label) else FAILED_COLOR
        traces.append(go.Bar(
            x=users, y=percent, name=label, marker={"color": color},
            text=[str(c) if c else "" for c in count], textposition="inside", insidetextanchor="middle",
            customdata=count,
            hovertemplate=f"{header}: %{{x}}<br>{label}: %{{customdata}} requests (%{{y:.0f}}%)<extra></extra>",
        ))
    span = "latest run per user" if window_s is None else f"latest run per user, last {window_s:g} s"
    layout = chart_layout(
        f"Which version each user reached ({span})", 360,
        barmode="stack",
        xaxis={"title": {"text": f"{header} header sent"}, "type": "category"},
        yaxis={"title": {"text": "% of the user's requests"}, "range": [0, 100], "tickvals": [0, 25, 50, 75, 100]},
        # Stacked bars reverse the legend by default; the legend reads v1, v2, v3 like the bars' colours.
        legend={**LEGEND_UNDER, "title": {"text": "answered by:"}, "traceorder": "normal"},
        # Always one annotation, shown only while there is nothing to draw: a live figure is updated
        # in place, and an update to an empty list would leave the old note standing.
        annotations=[{"text": EMPTY, "visible": not users, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                      "showarrow": False, "font": {"size": 13, "color": "#7f7f7f"}}],
    )
    return traces, layout


def service_versions(lab: Lab, service: str) -> list[str]:
    """The version labels of the service's workloads (Bookinfo's reviews: v1, v2, v3)."""
    workloads = lab.workloads()
    return sorted({str(v) for v in workloads.loc[workloads["service"] == service, "version"] if str(v)})


# -- wiring for a bench ----------------------------------------------------------------


def users_source(bench: Callable[[], Bench], header: str = HEADER) -> Callable[[], pd.DataFrame]:
    """A chart source: the rows of the bench `bench()` returns, each with the user (value of `header`) its run sent."""

    def rows() -> pd.DataFrame:
        current = bench()
        runs = [(run.run_id, run.spec.headers) for run in list(current.loadgen.runs)]
        return with_users(current.frame(), run_users(runs, header))

    return rows


def users_bench(lab: Lab, control: widgets.Widget | None, *, service: str, header: str = HEADER,
                window_s: float | None = WINDOW_S, **options: Any) -> Bench:
    """A Bench whose chart is `versions_by_user`: the control, a load generator (one run per user) and the chart.

    `options` are Bench's (path, rate, duration_s, title, live). Live, the
    chart reads the runs' headers again about every 2 s while load runs.
    The chart is drawn once at once, so a live chart is first shown with its
    layout (its own width, legend and axes) rather than plotly's default one.
    """
    made: list[Bench] = []
    draw = partial(versions_by_user, window_s=window_s, header=header, versions=service_versions(lab, service))
    chart = Chart(draw, source=users_source(lambda: made[0], header))
    bench = Bench(lab, control, service=service, charts=[chart], **options)
    made.append(bench)
    bench.refresh()
    return bench


def load_as_users(bench: Bench, users: Sequence[str | None], header: str = HEADER, **values: Any) -> list[LoadRun]:
    """One load run per user at once (None: no header), as several people using the app together.

    `values` overrides the load generator's form (rate per user, duration_s,
    path). Returns once every run ended, with the charts redrawn; headless,
    shows them as static figures (as Bench.run_load does).
    """
    runs: list[LoadRun] = []
    for user in users:
        run = bench.run_load(wait=False, headers={} if user is None else {header: user}, **values)
        if run is not None:
            runs.append(run)
    for run in runs:
        run.wait()
    bench.refresh()
    if not bench.live:
        frontend.show(*bench.static_figures())
    return runs
