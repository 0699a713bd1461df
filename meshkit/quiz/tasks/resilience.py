"""Live tasks of notebooks 06-08: the retry storm, the circuit breaker, an injected delay."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.quiz.tasks.base import LiveTask, TaskResult, failed, passed, records_since, resource
from meshkit.quiz.tasks.mesh import bookinfo
from meshkit.quiz.tasks.traffic import virtual_service


def service(name: str, latency: Latency, error_rate: float = 0.0, version: str = "v1") -> WorkloadSpec:
    return WorkloadSpec(name=f"{name}-{version}", service=name, version=version, service_account=name, latency=latency, error_rate=error_rate)


def fresh_lab_with(lab: Lab, *specs: WorkloadSpec) -> None:
    """The start of notebooks 06 and 07: the lab's client in the mesh, and their own services."""
    lab.reset()
    lab.inject("curl")
    lab.deploy(list(specs), inject=True)


# -- 06: stop the retry storm ------------------------------------------------------------

MAX_ATTEMPTS_PER_REQUEST = 2.0


def storm_verdict(sent: int, received: int, attempts: int | None) -> TaskResult:
    ratio = received / sent if sent else 0.0
    config = f"the VirtualService 'broken' allows {attempts} retries" if attempts is not None else "no retries are set on 'broken'"
    if ratio > MAX_ATTEMPTS_PER_REQUEST:
        return failed(
            f"broken received {received} attempts for {sent} requests sent ({ratio:.1f} per request); "
            f"the task asks for at most {MAX_ATTEMPTS_PER_REQUEST:g}; {config}",
            attempts_per_request=ratio,
        )
    return passed(f"broken received {received} attempts for {sent} requests ({ratio:.1f} per request); {config}", attempts_per_request=ratio)


def retry_attempts(vs: Mapping[str, Any] | None) -> int | None:
    rules = ((vs or {}).get("spec") or {}).get("http") or []
    found = [rule["retries"].get("attempts", 0) for rule in rules if rule.get("retries")]
    return int(max(found)) if found else None


def check_storm(lab: Lab) -> TaskResult:
    sent = 40
    since = time.time()
    lab.load("broken", "/", rate=20, requests=sent)
    records = records_since(lab, since, reporter="destination")
    received = int((records["destination_service"].str.startswith("broken.")).sum()) if not records.empty else 0
    return storm_verdict(sent, received, retry_attempts(resource(lab, "VirtualService", "broken")))


def broken_retries(attempts: int) -> dict[str, Any]:
    return virtual_service("broken", [{"route": [{"destination": {"host": "broken"}}], "retries": {"attempts": attempts, "retryOn": "5xx"}}])


def setup_storm(lab: Lab) -> None:
    fresh_lab_with(lab, service("broken", Latency(1.0, 3.0), error_rate=1.0))
    lab.apply(broken_retries(10))


TASK_06 = LiveTask("06-stop-the-storm", setup=setup_storm, check=check_storm, solve=lambda lab: (lab.apply(broken_retries(1)), None)[1])


# -- 07: a circuit breaker on slow ---------------------------------------------------------

FAST_MS = 100.0


def breaker_verdict(sent: int, overflow: int, overflow_median_ms: float | None, median_ms: float) -> TaskResult:
    if overflow == 0:
        return failed(
            f"none of {sent} requests was turned away fast (503 UO): with no limit each one waited for slow, median {median_ms:.0f} ms",
            overflow=0, median_ms=median_ms,
        )
    assert overflow_median_ms is not None
    if overflow_median_ms > FAST_MS:
        return failed(f"{overflow} of {sent} requests got 503 UO, but after {overflow_median_ms:.0f} ms (median): not fast", overflow=overflow)
    return passed(f"{overflow} of {sent} requests were turned away at once (503 UO, median {overflow_median_ms:.0f} ms) instead of queueing", overflow=overflow)


def check_breaker(lab: Lab) -> TaskResult:
    frame = lab.load("slow", "/", rate=20, duration=2)
    overflow = frame[frame["flags"] == "UO"]
    return breaker_verdict(
        len(frame), len(overflow), float(overflow["latency_ms"].median()) if len(overflow) else None, float(frame["latency_ms"].median())
    )


def solve_breaker(lab: Lab) -> None:
    lab.apply({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "slow", "namespace": "default"},
        "spec": {"host": "slow", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}}}},
    })


TASK_07 = LiveTask(
    "07-break-the-circuit",
    setup=lambda lab: fresh_lab_with(lab, service("slow", Latency(200.0, 250.0))),
    check=check_breaker,
    solve=solve_breaker,
)


# -- 08: delay jason's ratings -------------------------------------------------------------

DELAY_S = 2.0


def delay_verdict(jason_s: float, other_s: float) -> TaskResult:
    if jason_s < DELAY_S * 0.95:
        return failed(f"a call to ratings as jason took {jason_s:.2f} s; the task asks for a 2 s delay", jason_s=jason_s, other_s=other_s)
    if jason_s > DELAY_S + 1.5:
        return failed(f"a call to ratings as jason took {jason_s:.2f} s: more than the 2 s delay asked for", jason_s=jason_s, other_s=other_s)
    if other_s >= 1.0:
        return failed(f"jason waits {jason_s:.2f} s, but another user waited {other_s:.2f} s too: only jason should be delayed", jason_s=jason_s, other_s=other_s)
    return passed(f"ratings took {jason_s:.2f} s for jason and {1000 * other_s:.0f} ms for another user", jason_s=jason_s, other_s=other_s)


def check_delay(lab: Lab) -> TaskResult:
    jason = lab.call("ratings", "/ratings/0", headers={"end-user": "jason"}, timeout=10)
    other = lab.call("ratings", "/ratings/0", headers={"end-user": "kim"}, timeout=10)
    return delay_verdict(jason.elapsed_ms / 1000, other.elapsed_ms / 1000)


def solve_delay(lab: Lab) -> None:
    lab.apply(virtual_service("ratings", [
        {
            "match": [{"headers": {"end-user": {"exact": "jason"}}}],
            "fault": {"delay": {"percentage": {"value": 100.0}, "fixedDelay": "2s"}},
            "route": [{"destination": {"host": "ratings"}}],
        },
        {"route": [{"destination": {"host": "ratings"}}]},
    ]))


TASK_08 = LiveTask("08-delay-jason", setup=lambda lab: bookinfo(lab, inject=True), check=check_delay, solve=solve_delay)

TASKS = (TASK_06, TASK_07, TASK_08)

