"""What an exported experiment script runs on: a fresh lab of its own, and
the comparison of each measurement with the one the original session made.

A script written by `lab.export_script` reads as the experiment itself
(deploys, applies, load runs); this module keeps the bookkeeping out of it:

    with Replay("canary-results") as replay:
        lab = replay.lab
        lab.deploy("bookinfo", inject=True)
        replay.load("reviews", "/reviews/0", rate=100, requests=400, original={...})

The lab lives in a temporary home, so a script never touches the learner's
own lab, and is stopped at the end whatever happens. Each load run's rows
go to `load-NN.csv`, every comparison to `summary.csv`, the charts to
`charts.html` (plotly's own writer, plotly.js inside: it opens offline) and
the config the lab ended with to `config.yaml`.

The verdicts are statistics, not equality: a share of requests (a version's,
or the successful ones) is "consistent" when the two counts are a plausible
pair of draws from one probability (two-proportion bound at z = 3.29, 99.9%
two-sided); a latency when the two are within a factor of two of each other
or 5 ms apart, because latency depends on the machine and its load.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from meshkit import journal
from meshkit.errors import LabError
from meshkit.lab import Lab
from meshkit.progress import StatusLine

Z = 3.29
"""Two-sided 99.9%: a faithful replay is called inconsistent once in a thousand comparisons."""
LATENCY_FACTOR = 2.0
LATENCY_SLACK_MS = 5.0
CONSISTENT = "consistent"
DIFFERS = "differs"


@dataclass(frozen=True)
class Measurement:
    """One number the original session measured, next to the replay's."""

    run: int
    target: str
    name: str
    original: float | None
    replayed: float | None
    verdict: str

    def __str__(self) -> str:
        return f"load {self.run} {self.target}: {self.name} {_number(self.replayed)}, original {_number(self.original)}: {self.verdict}"


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def shares_consistent(p0: float, n0: int, p1: float, n1: int, z: float = Z) -> bool:
    """Whether p0 of n0 and p1 of n1 could both be draws at one probability.

    The pooled two-proportion bound, widened by one request's share so that
    small runs and shares of exactly 0 or 1 are not judged on rounding."""
    if n0 <= 0 or n1 <= 0:
        return n0 == n1
    pooled = (p0 * n0 + p1 * n1) / (n0 + n1)
    bound = z * math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1)) + 1 / min(n0, n1)
    return abs(p1 - p0) <= bound


def latency_consistent(original: float, replayed: float) -> bool:
    if abs(replayed - original) <= LATENCY_SLACK_MS:
        return True
    low, high = sorted((original, replayed))
    return low > 0 and high / low <= LATENCY_FACTOR


def compare(run: int, target: str, original: Mapping[str, Any], replayed: Mapping[str, Any]) -> list[Measurement]:
    """Every measurement of one load run (journal.load_summary) against the original's."""
    found: list[Measurement] = []
    n0, n1 = int(original.get("answered") or 0), int(replayed.get("answered") or 0)
    shares0, shares1 = original.get("shares") or {}, replayed.get("shares") or {}
    for version in sorted(set(shares0) | set(shares1)):
        p0, p1 = float(shares0.get(version, 0.0)), float(shares1.get(version, 0.0))
        verdict = CONSISTENT if shares_consistent(p0, n0, p1, n1) else DIFFERS
        found.append(Measurement(run, target, f"{version} share", p0, p1, verdict))
    c0, c1 = int(original.get("count") or 0), int(replayed.get("count") or 0)
    s0, s1 = original.get("success"), replayed.get("success")
    if s0 is not None and s1 is not None:
        verdict = CONSISTENT if shares_consistent(float(s0), c0, float(s1), c1) else DIFFERS
        found.append(Measurement(run, target, "success rate", float(s0), float(s1), verdict))
    for name in ("p50_ms", "p99_ms"):
        a, b = original.get(name), replayed.get(name)
        if a is not None and b is not None:
            verdict = CONSISTENT if latency_consistent(float(a), float(b)) else DIFFERS
            found.append(Measurement(run, target, name.replace("_ms", " ms"), float(a), float(b), verdict))
    return found


@dataclass(frozen=True)
class RunRecord:
    run: int
    target: str
    original: Mapping[str, Any]
    replayed: Mapping[str, Any]


class Replay:
    """A fresh lab in a temporary home for one replayed experiment, and its results folder."""

    def __init__(self, results: str | Path, cert_lifetime: timedelta | float | None = None) -> None:
        self.results = Path(results)
        try:
            self.results.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LabError(f"cannot write the results to {self.results}: {exc.strerror}") from None
        self._home = Path(tempfile.mkdtemp(prefix="meshkit-replay-"))
        self.lab = Lab(home=self._home, progress=StatusLine(), cert_lifetime=cert_lifetime)
        self.runs: list[RunRecord] = []
        self.measurements: list[Measurement] = []

    def __enter__(self) -> Replay:
        print(f"starting a lab of its own for this replay (results go to {self.results}/)")
        self.lab.up()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self.finish()
        finally:
            self.lab.down()
            shutil.rmtree(self._home, ignore_errors=True)

    def load(self, service: str, path: str = "/", *, original: Mapping[str, Any], **options: Any) -> pd.DataFrame:
        """lab.load with the original run's arguments; writes its rows and prints the comparison."""
        frame = self.lab.load(service, path, **options)
        run = len(self.runs) + 1
        target = f"{service}{path}"
        frame.to_csv(self.results / f"load-{run:02d}.csv", index=False)
        replayed = journal.load_summary(frame)
        self.runs.append(RunRecord(run, target, dict(original), replayed))
        found = compare(run, target, original, replayed)
        self.measurements += found
        for measurement in found:
            print(measurement)
        return frame

    def finish(self) -> None:
        """Write the summary, the charts and the config the lab ended with; say how many measurements agree."""
        pd.DataFrame([asdict(m) for m in self.measurements],
                     columns=["run", "target", "name", "original", "replayed", "verdict"]).to_csv(
            self.results / "summary.csv", index=False)
        self.lab.export_istio(self.results / "config.yaml")
        if self.runs:
            (self.results / "charts.html").write_text(charts_html(self.runs), encoding="utf-8")
        agreed = sum(m.verdict == CONSISTENT for m in self.measurements)
        print(f"{agreed} of {len(self.measurements)} measurements consistent with the original; "
              f"results in {self.results}/ (summary.csv, charts.html, config.yaml, load-NN.csv)")


def charts_html(runs: Sequence[RunRecord]) -> str:
    """One standalone page: per load run, each version's share and the latency percentiles, original next to replay."""
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    parts = []
    for index, record in enumerate(runs):
        figure = make_subplots(rows=1, cols=2, subplot_titles=("share of answered requests per version", "latency (ms)"))
        for label, summary, color in (("original", record.original, "#8c8c8c"), ("replay", record.replayed, "#1f77b4")):
            shares = summary.get("shares") or {}
            figure.add_trace(go.Bar(name=label, x=list(shares), y=list(shares.values()), marker_color=color,
                                    legendgroup=label), row=1, col=1)
            names = ["p50_ms", "p90_ms", "p99_ms"]
            figure.add_trace(go.Bar(name=label, x=[n.replace("_ms", "") for n in names],
                                    y=[summary.get(n) for n in names], marker_color=color, legendgroup=label,
                                    showlegend=False), row=1, col=2)
        figure.update_layout(title=f"load {record.run}: {record.target}, {record.replayed.get('count', 0)} requests",
                             barmode="group", height=380)
        figure.update_yaxes(range=[0, 1], row=1, col=1)
        parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=index == 0))
    body = "\n".join(parts)
    return f"<!doctype html>\n<html><head><meta charset='utf-8'><title>meshkit replay</title></head><body>\n{body}\n</body></html>\n"
