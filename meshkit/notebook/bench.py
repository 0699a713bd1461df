"""A lesson's bench: the concept's control, a load generator, and live charts of its effect.

Every lesson notebook has the same shape of experiment: move a control (a
config widget), run load, watch a chart change. `Bench` wires those parts
(all existing: a config widget, LoadGenerator, a Recorder, Refresher) and
takes each chart as a pure function `draw(data) -> (traces, layout)`, where
`data` is the recorder's rows for the bench's service (what the client saw)
unless the chart names another source (a lab call such as `lab.security` or
`lab.resources`, for what the sidecars saw). So a lesson adds one pure
function and a test of it, never a new widget class.

    bench = Bench(lab, BreakerWidget(lab, "slow"), service="slow",
                  charts=[Chart(outcomes_per_second)], rate=20, duration_s=6)
    bench.show()
    bench.run_load()          # from code: headless runs and tests
    bench.run_load(steps=[(4, lambda: widget.set_mode("STRICT"))])   # move the control mid-run

Live, the charts redraw every half second while load runs; headless, `show`
and `run_load` draw them once, statically, after the run.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from meshkit.lab import Lab
from meshkit.notebook import frontend
from meshkit.notebook.figures import fill, static
from meshkit.notebook.live import Refresher, chart_row, new_figure
from meshkit.notebook.load import LoadGenerator, LoadRun
from meshkit.notebook.recorder import Recorder

Draw = Callable[[pd.DataFrame], tuple[Sequence[BaseTraceType], Mapping[str, Any]]]

SLOW_SOURCE_EVERY = 4
"""Ticks between reads of a chart's lab source (it asks every sidecar): about every 2 s."""


@dataclass(frozen=True)
class Chart:
    """A chart of a bench: `draw` turns data into traces; `source` (optional) fetches that data from the lab."""

    draw: Draw
    source: Callable[[], pd.DataFrame] | None = None


class Bench:
    def __init__(
        self,
        lab: Lab,
        control: widgets.Widget | None,
        *,
        service: str,
        charts: Sequence[Chart],
        path: str = "/",
        rate: float = 20.0,
        duration_s: float = 10.0,
        title: str = "",
        live: bool | None = None,
    ) -> None:
        self.lab = lab
        self.control = control
        self.service = service
        self.title = title
        self.live = frontend.is_live() if live is None else live
        self.recorder = Recorder()
        self.loadgen = LoadGenerator(lab, self.recorder, service=service, path=path, rate=rate, duration_s=duration_s)
        self.charts = list(charts)
        self.figures = [new_figure(self.live, {}) for _ in self.charts]
        self._sourced: dict[int, pd.DataFrame] = {}
        self.refresher = Refresher(self._tick, lambda: self.loadgen.active > 0)
        self.loadgen.on_run(lambda _run: self.refresher.kick())

    # -- data -------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """Every request the bench's load generator sent, one row each."""
        return self.recorder.frame(self.service)

    def data(self, index: int, fresh: bool = True) -> pd.DataFrame:
        chart = self.charts[index]
        if chart.source is None:
            return self.frame()
        if fresh or index not in self._sourced:
            self._sourced[index] = chart.source()
        return self._sourced[index]

    def refresh(self, fresh_sources: bool = True) -> None:
        """Redraw every chart now."""
        for i, (chart, fig) in enumerate(zip(self.charts, self.figures, strict=True)):
            traces, layout = chart.draw(self.data(i, fresh_sources))
            fill(fig, traces, layout)

    def _tick(self, n: int) -> None:
        # The tick after the last run ended reads the lab too, so a sourced chart shows the run's last seconds.
        self.refresh(fresh_sources=n % SLOW_SOURCE_EVERY == 0 or self.loadgen.active == 0)

    def run_load(
        self,
        wait: bool = True,
        steps: Sequence[tuple[float, Callable[[], Any]]] = (),
        also: Sequence[LoadGenerator] = (),
        **values: Any,
    ) -> LoadRun | None:
        """Start load (keyword overrides as LoadGenerator.start: rate, duration_s, headers, ...).

        With `wait`, return once it ended (and the runs of the `also`
        generators, such as a second caller's), charts redrawn; headless,
        they are shown as static figures. `steps` are (second, callable):
        each is called at its second after the start while the load runs,
        as a learner moving the control in the middle of a run would.
        """
        run = self.loadgen.start(**values)
        if run is None or not wait:
            return run
        started = time.monotonic()
        for at, step in sorted(steps, key=lambda s: s[0]):
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            step()
        run.wait()
        for generator in also:
            generator.wait()
        self.refresh()
        if not self.live:
            frontend.show(*self.static_figures())
        return run

    def rows(self, run: LoadRun) -> pd.DataFrame:
        """The request rows of one load run (latency_ms, code, flags, version, ...), oldest first."""
        frame = self.frame()
        return frame[frame["run"] == run.run_id].reset_index(drop=True)

    def static_figures(self) -> list[go.Figure]:
        return [static(fig.data, fig.layout.to_plotly_json()) for fig in self.figures]

    # -- display ------------------------------------------------------------------

    def widget(self) -> widgets.Widget:
        parts: list[widgets.Widget] = []
        if self.title:
            parts.append(widgets.HTML(f"<h4>{html.escape(self.title)}</h4>"))
        if self.control is not None:
            parts.append(self.control)
        parts += [self.loadgen, chart_row(*self.figures)]
        return widgets.VBox(parts, layout=widgets.Layout(width="100%"))

    def show(self) -> None:
        """Display it: widgets and live charts in JupyterLab; headless, the control and static charts."""
        self.refresh()  # drawn before shown: a chart with an empty layout is drawn at plotly's 700 px
        if self.live:
            frontend.show(self.widget())
            return
        text = f"{self.title}: " if self.title else ""
        frontend.show(frontend_text(f"{text}control {type(self.control).__name__ if self.control else 'none'}, load on {self.service}"))

    def _ipython_display_(self) -> None:
        self.show()

    def __repr__(self) -> str:
        return f"<Bench {self.service}: {len(self.charts)} chart(s), {len(self.frame())} requests, {'live' if self.live else 'static'}>"


def frontend_text(text: str) -> Any:
    from IPython.display import Pretty

    return Pretty(text)
