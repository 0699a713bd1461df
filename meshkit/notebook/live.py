"""Live charts over a Recorder, refreshed from the Lab's loop while load runs.

`LiveCharts` owns the figures (FigureWidgets in a live frontend, plain
go.Figures headless) and redraws them from the recorder with the pure
functions of meshkit.notebook.stats and meshkit.notebook.figures.
`Refresher` drives it: a coroutine on the Lab's loop thread wakes every
half second while any run is active and hands the redraw to a worker thread
(pandas work would otherwise stall the loop that is sending the load, and
add its pause to the latencies being measured). Each redraw is one
batch_update per figure, so the frontend gets a few messages a second at
most.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from meshkit import aio
from meshkit.notebook import figures, stats
from meshkit.notebook.recorder import Recorder

REFRESH_S = 0.5
TOPOLOGY_EVERY = 4
"""Ticks between topology redraws: the graph needs a scrape of every sidecar."""


def new_figure(live: bool, layout: Mapping[str, Any]) -> go.Figure:
    """A FigureWidget for a live frontend, a go.Figure otherwise.

    plotly's FigureWidget needs the anywidget package; without it the chart
    is a static figure, redrawn on each show(), rather than failing.
    """
    if live:
        try:
            return go.FigureWidget(layout=dict(layout))
        except ImportError:
            pass
    return go.Figure(layout=dict(layout))


class LiveCharts:
    """Latency, split, rate and (with a lab) topology and certificate charts over one recorder.

    `target` limits the charts to rows of one service; `configured` is the
    configured split by version (set_configured updates it after a split
    changes). `edges` and `certificates` are callables returning the frames
    for those charts (lab.edges, and lab.certificates once the Lab has it).
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        target: str | None = None,
        live: bool = True,
        window_s: float = 5.0,
        step_s: float = 1.0,
        horizon_s: float = 120.0,
        split_window_s: float = 3.0,
        edges: Callable[[], pd.DataFrame] | None = None,
        workloads: Callable[[], pd.DataFrame] | None = None,
        certificates: Callable[[], pd.DataFrame] | None = None,
    ) -> None:
        self.recorder = recorder
        self.target = target
        self.live = live
        self.window_s, self.step_s, self.horizon_s, self.split_window_s = window_s, step_s, horizon_s, split_window_s
        self.configured: dict[str, float] = {}
        self._edges, self._workloads, self._certificates = edges, workloads, certificates
        self.latency = new_figure(live, figures.LATENCY_LAYOUT)
        self.split = new_figure(live, figures.SPLIT_LAYOUT)
        self.rate = new_figure(live, figures.RATE_LAYOUT)
        self.topology = new_figure(live, figures.TOPOLOGY_LAYOUT) if edges is not None else None
        self.certificates = new_figure(live, figures.CERTIFICATES_LAYOUT) if certificates is not None else None
        self._seen = -1
        self._lock = threading.Lock()

    def set_configured(self, by_version: Mapping[str, float]) -> None:
        self.configured = dict(by_version)

    def frame(self) -> pd.DataFrame:
        return self.recorder.frame(target=self.target)

    def refresh(self, force: bool = False) -> bool:
        """Redraw latency, split and rate from the recorder; False when nothing changed."""
        with self._lock:
            if not force and self.recorder.changes == self._seen:
                return False
            self._seen = self.recorder.changes
            frame = self.frame()
            percentiles = stats.rolling_percentiles(frame, self.window_s, self.step_s, self.horizon_s)
            rates = stats.rate_series(frame, min(self.window_s, 2.0), self.step_s, self.horizon_s)
            table = stats.split_table(self.configured, frame, self.split_window_s)
            figures.fill(self.latency, figures.latency_traces(percentiles))
            figures.fill(self.split, figures.split_traces(table))
            figures.fill(self.rate, figures.rate_traces(rates))
            return True

    def refresh_topology(self, edges: pd.DataFrame | None = None, workloads: pd.DataFrame | None = None) -> None:
        """Redraw the topology from `edges` (default: ask the lab); no-op without a topology chart."""
        if self.topology is None or self._edges is None:
            return
        traces, layout = figures.topology_traces(
            self._edges() if edges is None else edges,
            workloads if workloads is not None or self._workloads is None else self._workloads(),
        )
        figures.fill(self.topology, traces, layout)

    def refresh_certificates(self, certs: pd.DataFrame | None = None, now: pd.Timestamp | None = None) -> None:
        """Redraw the certificate lifetimes at `now` (default: the current time), so they count down."""
        if self.certificates is None or self._certificates is None:
            return
        when = pd.Timestamp.now(tz="UTC") if now is None else now
        traces, layout = figures.certificates_traces(self._certificates() if certs is None else certs, when)
        figures.fill(self.certificates, traces, layout)

    def figures(self) -> dict[str, go.Figure]:
        """Static copies of every chart, for scripts and headless notebooks."""
        named = {"latency": self.latency, "split": self.split, "rate": self.rate, "topology": self.topology,
                 "certificates": self.certificates}
        return {name: go.Figure(fig) for name, fig in named.items() if fig is not None}

    def widget(self) -> widgets.Widget:
        """The charts in one box (live figures are widgets themselves)."""
        row = widgets.HBox([self.latency, self.split]) if self.live else widgets.VBox()
        extra = [f for f in (self.topology, self.certificates) if f is not None]
        return widgets.VBox([row, self.rate, *extra])


class Refresher:
    """Run `tick(n)` on a worker thread every `interval_s`, from the Lab's loop, while `active()`.

    `kick()` (thread-safe) starts it; it stops by itself one tick after
    `active()` turns False, so the charts show the last rows of a run. An
    exception in a tick is kept in `last_error` and does not stop the loop:
    a chart that failed once should not freeze the others.
    """

    def __init__(self, tick: Callable[[int], None], active: Callable[[], bool], interval_s: float = REFRESH_S) -> None:
        self.tick = tick
        self.active = active
        self.interval_s = interval_s
        self.ticks = 0
        self.last_error = ""
        self._running = False
        self._lock = threading.Lock()

    def kick(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        aio.submit(self._run())

    @property
    def running(self) -> bool:
        return self._running

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while True:
                await loop.run_in_executor(None, self._safe_tick)
                if not self.active():
                    break
                await asyncio.sleep(self.interval_s)
            await loop.run_in_executor(None, self._safe_tick)
            with self._lock:
                if not self.active():
                    self._running = False
                    return

    def _safe_tick(self) -> None:
        try:
            self.tick(self.ticks)
        except Exception:  # noqa: BLE001 - shown to the learner, the loop goes on
            self.last_error = traceback.format_exc(limit=3)
        self.ticks += 1
