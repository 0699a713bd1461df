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

import anywidget
import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from meshkit import aio
from meshkit.notebook import figures, stats
from meshkit.notebook.recorder import Recorder

REFRESH_S = 0.5
TOPOLOGY_EVERY = 4
"""Ticks between topology redraws: the graph needs a scrape of every sidecar."""

CHART_BASIS = "500px"
"""Two charts share a row while each gets at least this much; narrower, they wrap one under the other."""

LIVE_CONFIG = {"responsive": True, "displaylogo": False}
"""plotly.js config of a live chart: `responsive` redraws it at its element's width on a window resize."""


def new_figure(live: bool, layout: Mapping[str, Any]) -> go.Figure:
    """A FigureWidget for a live frontend, a go.Figure otherwise.

    plotly's FigureWidget needs the anywidget package; without it the chart
    is a static figure, redrawn on each show(), rather than failing.
    """
    if live:
        try:
            fig = go.FigureWidget(layout=dict(layout))
        except ImportError:
            pass
        else:
            fig._config = dict(LIVE_CONFIG)  # the widget's synced plotly.js config (FigureWidget has no public setter)
            return fig
    return go.Figure(layout=dict(layout))


def chart_box(fig: widgets.Widget, in_row: bool = False) -> widgets.VBox:
    """A box that gives a live chart its width: its parent's, or a share of a row.

    A FigureWidget cannot take an ipywidgets Layout (its `layout` is the
    plotly layout), so the box carries the CSS. `min_width` 0 lets it shrink
    below the width the chart was drawn at instead of pushing the notebook
    wider; in a row, `flex` shares the row with a neighbour and wraps under
    it below CHART_BASIS (in a column the same `flex` would set the height).
    A column box stretches the chart's element to its own width, which is
    the width ChartFitter then draws it at.
    """
    share = {"flex": f"1 1 {CHART_BASIS}"} if in_row else {"width": "100%"}
    return widgets.VBox([fig], layout=widgets.Layout(min_width="0", overflow="hidden", **share))


def chart_row(*figs: widgets.Widget) -> widgets.HBox:
    """Live charts (from new_figure) side by side when the notebook is wide, one under the other when narrow.

    The row carries a ChartFitter, which keeps every chart of the widget tree
    it ends up in (this row, and the boxes around it) drawn at its box's width.
    """
    return widgets.HBox([*(chart_box(f, in_row=True) for f in figs), ChartFitter()],
                        layout=widgets.Layout(flex_flow="row wrap", width="100%"))


FITTER_ESM = """
// Keeps the plotly charts of this widget's box as wide as their elements.
//
// A FigureWidget measures its element once, when it is first drawn, and that
// is often before JupyterLab has put it on the page: it then falls back to
// plotly's 700 px, wider than a laptop's notebook. Afterwards it only follows
// window resizes (config `responsive`), not the notebook getting narrower
// because the file browser opened. So this watches the outermost widget box
// around it and, when a chart's drawing and its element differ in width,
// sends the window resize that responsive charts redraw on. Charts that
// already fit do not trigger it, so it settles after one redraw. One fitter
// per widget tree is enough: a second one in the same tree stays idle.
function outermostBox(el) {
  let box = el.parentElement && el.parentElement.closest(".jupyter-widget-box, .widget-box");
  for (let up = box; up; up = up.parentElement && up.parentElement.closest(".jupyter-widget-box, .widget-box")) {
    box = up;
  }
  return box;
}

function misfit(scope) {
  for (const plot of scope.querySelectorAll(".js-plotly-plot")) {
    const svg = plot.querySelector(".main-svg");
    const width = plot.clientWidth;
    if (svg && width > 0 && Math.abs(svg.getBoundingClientRect().width - width) > 1) return true;
  }
  return false;
}

export default {
  render({ el }) {
    el.style.display = "none";
    let observer = null;
    let frame = 0;
    const check = (scope) => {
      frame = 0;
      if (misfit(scope)) window.dispatchEvent(new Event("resize"));
    };
    let owned = null;
    const attach = () => {
      const scope = el.isConnected ? outermostBox(el) : null;
      if (!scope) {
        frame = requestAnimationFrame(attach);
        return;
      }
      if (scope.dataset.meshkitFitted) return;
      scope.dataset.meshkitFitted = "1";
      owned = scope;
      observer = new ResizeObserver(() => {
        if (!frame) frame = requestAnimationFrame(() => check(scope));
      });
      observer.observe(scope);
      for (const plot of scope.querySelectorAll(".js-plotly-plot")) observer.observe(plot);
    };
    attach();
    return () => {
      if (frame) cancelAnimationFrame(frame);
      if (observer) observer.disconnect();
      if (owned) delete owned.dataset.meshkitFitted;
    };
  },
};
"""


class ChartFitter(anywidget.AnyWidget):
    """Invisible: redraws the live charts of the box it is in at their boxes' width (see FITTER_ESM)."""

    _esm = FITTER_ESM


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
        """The charts in one box as wide as the notebook (live figures are widgets themselves).

        Latency and split share a row when there is room for both and wrap
        otherwise; the wider charts (rate, topology, certificates) take a row
        each. The row's ChartFitter keeps every chart drawn at its box's width.
        """
        rows = [chart_row(self.latency, self.split), chart_box(self.rate)]
        rows += [chart_box(f) for f in (self.topology, self.certificates) if f is not None]
        return widgets.VBox(rows, layout=widgets.Layout(width="100%"))


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
