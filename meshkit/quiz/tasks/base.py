"""What a live task is, and the measurements tasks share.

A live task is checked on the running lab, through the Lab API only (so it
runs on every backend), twice over: on the applied config, and on behaviour
(fresh traffic, a real plaintext connection, a real POST, telemetry). The
verdict is a pure function of what was read and measured, so the sentence a
learner gets ("41% of 200 fresh requests reached v3; the task asks for
20-30%") is tested without a lab; `check` only does the I/O around it.

Each task also has `setup` (the notebook's start state, for tests and for a
learner who wants to begin again) and `solve` (the solution, through the same
Lab API a learner uses: for a learner who gives up, and for the tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from meshkit.errors import LabError, UnknownWorkload
from meshkit.lab import Lab


@dataclass(frozen=True)
class TaskResult:
    passed: bool
    message: str  # one sentence a learner reads: what was found, with the measured value
    measured: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ("PASSED: " if self.passed else "NOT YET: ") + self.message


@dataclass(frozen=True)
class LiveTask:
    id: str
    setup: Callable[[Lab], None]
    check: Callable[[Lab], TaskResult]
    solve: Callable[[Lab], None]


def passed(message: str, **measured: Any) -> TaskResult:
    return TaskResult(True, message, measured)


def failed(message: str, **measured: Any) -> TaskResult:
    return TaskResult(False, message, measured)


# -- reading the config --------------------------------------------------------


def resource(lab: Lab, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
    """One stored resource, or None when the lab has none by that name."""
    try:
        found = lab.get(kind, name, namespace)
    except UnknownWorkload:
        return None
    return dict(found)


def route_weights(vs: Mapping[str, Any] | None) -> dict[str, int]:
    """subset -> weight of a VirtualService's last (catch-all) route; {} when there is none.

    A destination without a subset counts as "all"; one destination with no
    weight has weight 100, as in Istio."""
    if not vs:
        return {}
    http = vs.get("spec", {}).get("http") or []
    catch_all = [rule for rule in http if not rule.get("match")]
    if not catch_all:
        return {}
    routes = catch_all[0].get("route") or []
    weights: dict[str, int] = {}
    for route in routes:
        subset = route.get("destination", {}).get("subset") or "all"
        weights[subset] = weights.get(subset, 0) + int(route.get("weight", 100 if len(routes) == 1 else 0))
    return weights


def describe_weights(weights: Mapping[str, int]) -> str:
    return ", ".join(f"{subset} {weight}" for subset, weight in sorted(weights.items())) or "no weighted route"


# -- measuring -------------------------------------------------------------------


def fresh_load(lab: Lab, service: str, path: str, requests: int, rate: float = 100.0, **options: Any) -> pd.DataFrame:
    """`requests` new requests from the lab's client, so the verdict is about now, not history."""
    return lab.load(service, path, rate=rate, requests=requests, **options)


def shares(frame: pd.DataFrame) -> dict[str, float]:
    """version -> share of the answered requests."""
    answered = frame[frame["code"] > 0]
    if answered.empty:
        return {}
    counts = answered["version"].fillna("?").replace("", "?").value_counts()
    return {str(v): float(n) / len(answered) for v, n in counts.items()}


def records_since(lab: Lab, since: float, reporter: str = "destination") -> pd.DataFrame:
    """Telemetry the sidecars recorded since `since` (epoch seconds), from one reporter."""
    frame = lab.requests(window=max(1.0, time.time() - since + 1.0), reporter=reporter)
    if frame.empty:
        return frame
    return frame[frame["start"].astype(float) >= since - 0.05].reset_index(drop=True)


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def require_running(lab: Lab) -> None:
    """One sentence instead of a traceback when a task is checked with no lab up."""
    if not lab.running():
        raise LabError("no lab is running here: start it (Lab().up(), or `meshkit up`) and set up the notebook first")
