"""Widgets and charts for the lab: thin views over Lab, no mesh logic.

    from meshkit.notebook import dashboard
    dash = dashboard(lab, service="reviews")   # split sliders, load generator, live charts

Every widget builds Istio-shaped config with the pure functions of
meshkit.notebook.istio and applies it with lab.apply, the path YAML takes;
every chart is a pure function of a DataFrame (meshkit.notebook.stats and
.figures), so scripts and headless runs get the same data and static
figures. docs/notebook.md has the tour.

    istio.py      resources from widget values (pure)
    weights.py    split weights that add up to 100 (pure)
    stats.py      percentiles, rates, split from request rows (pure)
    figures.py    plotly figures from those tables (pure)
    recorder.py   the shared, bounded, thread-safe store of request rows
    controls.py   apply-and-report, shared by the config widgets
    traffic.py    split, header routing, fault, retries, circuit breaker
    security.py   mTLS mode, authorization
    load.py       the load generator widget (runs on the Lab's loop thread)
    live.py       live charts and their refresher
    dashboard.py  all of it for one service
    frontend.py   live frontend or headless
"""

from __future__ import annotations

from meshkit.notebook.dashboard import Dashboard, dashboard
from meshkit.notebook.figures import (
    certificates_figure,
    latency_figure,
    rate_figure,
    split_figure,
    topology_figure,
)
from meshkit.notebook.frontend import is_live
from meshkit.notebook.live import LiveCharts, Refresher
from meshkit.notebook.load import LoadGenerator, LoadRun
from meshkit.notebook.recorder import Recorder
from meshkit.notebook.security import AuthorizationWidget, MtlsWidget
from meshkit.notebook.services import service_links
from meshkit.notebook.stats import observed_split, rate_series, rolling_percentiles, split_table
from meshkit.notebook.traffic import BreakerWidget, FaultWidget, HeaderRouteWidget, RetryWidget, SplitWidget
from meshkit.notebook.weights import rebalance

__all__ = [
    "AuthorizationWidget",
    "BreakerWidget",
    "Dashboard",
    "FaultWidget",
    "HeaderRouteWidget",
    "LiveCharts",
    "LoadGenerator",
    "LoadRun",
    "MtlsWidget",
    "Recorder",
    "Refresher",
    "RetryWidget",
    "SplitWidget",
    "certificates_figure",
    "dashboard",
    "is_live",
    "latency_figure",
    "observed_split",
    "rate_figure",
    "rate_series",
    "rebalance",
    "rolling_percentiles",
    "service_links",
    "split_figure",
    "split_table",
    "topology_figure",
]
