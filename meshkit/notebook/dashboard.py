"""The dashboard: split widget, load generator and charts for one service in one output cell.

    from meshkit.notebook import dashboard
    dash = dashboard(lab, service="reviews")      # shows it; returns the Dashboard

In a live frontend it is widgets: move a slider, start load, and the charts
under them follow (latency per version, configured vs observed split, rate
and success, topology). Headless (meshkit.notebook.frontend) the same call
shows text and static figures, and the Dashboard's methods give the data:
`run_load(...)` sends load and waits, `figures()` returns go.Figures,
`frame()` the request rows, `summary()` the numbers.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from IPython.display import Pretty

from meshkit.lab import CLIENT, Lab
from meshkit.loadgen import summary as load_summary
from meshkit.notebook import frontend, stats
from meshkit.notebook.live import TOPOLOGY_EVERY, LiveCharts, Refresher
from meshkit.notebook.load import LoadGenerator, LoadRun
from meshkit.notebook.recorder import DEFAULT_MAX_ROWS, Recorder
from meshkit.notebook.traffic import SplitWidget

TOPOLOGY_WINDOW_S = 60.0
"""The topology chart shows the last minute: what the learner just did, at a
cost that does not grow with everything the lab has recorded."""


def caller_note(workloads: pd.DataFrame, source: str = CLIENT.name) -> str:
    """A warning when the load's source has no sidecar: routing rules would not apply to it.

    Routing happens in the caller's sidecar, so load from a workload without
    one goes straight to an endpoint and never follows a split.
    """
    rows = workloads[workloads["workload"] == source]
    if rows.empty or bool(rows["sidecar"].iloc[0]):
        return ""
    return (f"Note: the load comes from {source!r}, which has no sidecar, so routing rules do not apply to it. "
            f"Run lab.inject({source!r}) to put it in the mesh.")


def first_answering_path(lab: Lab, service: str, candidates: tuple[str, ...] | None = None) -> str:
    """The first of `/`, `/<service>`, `/<service>/1` that the service answers with 2xx (else `/`).

    Demo services serve different paths (Bookinfo's reviews only
    /reviews/{id}); one request each finds one that works, so
    dashboard(lab, "reviews") charts real answers rather than 404s.
    """
    for path in candidates or ("/", f"/{service}", f"/{service}/1"):
        if 200 <= lab.call(service, path).status < 300:
            return path
    return "/"


class Dashboard:
    """One service's split, load and charts, sharing one Recorder."""

    def __init__(
        self,
        lab: Lab,
        service: str = "reviews",
        *,
        path: str | None = None,
        namespace: str | None = None,
        rate: float = 20.0,
        duration_s: float = 10.0,
        live: bool | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self.lab = lab
        self.service = service
        self.live = frontend.is_live() if live is None else live
        self.recorder = Recorder(max_rows)
        self.split = SplitWidget(lab, service, namespace)
        path = path if path is not None else first_answering_path(lab, service)
        self.loadgen = LoadGenerator(lab, self.recorder, service=service, path=path, rate=rate, duration_s=duration_s)
        self.charts = LiveCharts(self.recorder, target=service, live=self.live, edges=lambda: lab.topology(window=TOPOLOGY_WINDOW_S),
                                 workloads=lab.workloads, certificates=getattr(lab, "certificates", None))
        self._configured()
        # `weights` (not `version`): the split also follows changes made elsewhere (another cell, the CLI).
        self.split.observe(lambda _: self._configured(), names="weights")
        self.refresher = Refresher(self._tick, lambda: self.loadgen.active > 0)
        self.loadgen.on_run(lambda _: self.refresher.kick())
        self.note = widgets.HTML(html.escape(caller_note(lab.workloads())))
        self._shown_at: int | None = None

    def _configured(self) -> None:
        self.charts.set_configured(stats.configured_split(self.split.weights, self.split.versions))

    def _tick(self, n: int) -> None:
        self.charts.refresh()
        if n % TOPOLOGY_EVERY == 0:
            self.charts.refresh_topology()
            self.charts.refresh_certificates()

    def refresh(self) -> None:
        """Redraw every chart now (the topology asks the lab's sidecars)."""
        self._configured()
        self.charts.refresh(force=True)
        self.charts.refresh_topology()
        self.charts.refresh_certificates()

    # -- plain data -------------------------------------------------------

    def run_load(self, wait: bool = True, **values: Any) -> LoadRun | None:
        """Start a run (keyword overrides as LoadGenerator.start); with `wait`, return when it ends, charts redrawn."""
        run = self.loadgen.start(**values)
        if run is not None and wait:
            run.wait()
            self.refresh()
        return run

    def frame(self) -> pd.DataFrame:
        """The request rows recorded for this service."""
        return self.charts.frame()

    def summary(self) -> dict[str, float | int]:
        """count, rps, success_rate, p50/p90/p99 and errors over every recorded row (meshkit.loadgen.summary)."""
        return load_summary(self.frame().rename(columns={"at": "intended_at"}))

    def split_table(self) -> pd.DataFrame:
        """Configured vs observed percent per version over the charts' split window."""
        return stats.split_table(self.charts.configured, self.frame(), self.charts.split_window_s)

    def figures(self) -> dict[str, go.Figure]:
        """Static copies of every chart."""
        return self.charts.figures()

    # -- display ----------------------------------------------------------

    def widget(self) -> widgets.Widget:
        """Note, controls and charts, as wide as the notebook: the split and the load
        generator sit side by side when they fit and wrap one under the other when not."""
        controls = widgets.HBox([self.split, self.loadgen], layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        return widgets.VBox([self.note, controls, self.charts.widget()], layout=widgets.Layout(width="100%"))

    def text(self) -> str:
        """What the dashboard shows, in words: the split, the last config version, the load's numbers."""
        weights = ", ".join(f"{k} {v}%" for k, v in self.split.weights.items()) or "no subsets"
        applied = f"applied as config version {self.split.version}" if self.split.version else "as found in the lab"
        lines = [f"{self.service}: split {weights} ({applied})"]
        if self.split.error:
            lines.append(self.split.error)
        numbers = self.summary()
        if numbers["count"]:
            lines.append(
                f"{numbers['count']} requests, {numbers['rps']:.1f}/s, {numbers['success_rate'] * 100:.1f}% 2xx, "
                f"p50 {numbers['p50_ms']:.1f} ms, p99 {numbers['p99_ms']:.1f} ms"
            )
        note = caller_note(self.lab.workloads())
        return "\n".join([*lines, note] if note else lines)

    def show(self) -> None:
        """Display it: widgets live, text and static figures headless."""
        shell = _shell()
        self._shown_at = getattr(shell, "execution_count", None)
        if self.live:
            frontend.show(self.widget())
            self.refresher.kick()
            return
        self.refresh()
        frontend.show(Pretty(self.text()), *self.figures().values())

    def _ipython_display_(self) -> None:
        # dashboard() already showed it in this cell: do not show it twice when it is also the cell's value.
        shell = _shell()
        if self._shown_at is not None and getattr(shell, "execution_count", None) == self._shown_at:
            return
        self.show()

    def __repr__(self) -> str:
        return f"<Dashboard {self.service}: {len(self.recorder)} rows, {'live' if self.live else 'static'}>"


def _shell() -> Any:
    if not frontend.in_kernel():
        return None
    from IPython import get_ipython

    return get_ipython()


def dashboard(lab: Lab, service: str = "reviews", **options: Any) -> Dashboard:
    """Build the dashboard for `service`, show it, and return it (options as Dashboard's)."""
    board = Dashboard(lab, service, **options)
    board.show()
    return board
