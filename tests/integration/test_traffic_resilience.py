"""Resilience features through a real lab: retries and their budget, timeouts, faults,
mirroring, circuit breaking, outlier detection, and config changes under load.

The workloads are demo apps with set failure rates and latencies, deployed
with sidecars next to the lab's `curl` client (whose sidecar carries out the
rules). What the apps received is read from their own sidecars' inbound
request records (admin /requests), so "the app never saw more than N at
once" is measured where the app is. Each test removes the config it applied.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.integration.sidecar_fixtures import PER_REQUEST_DRAW, binomial_bounds, wait_for

from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.lab import Lab

FAST = Latency(1.0, 3.0)
WORKLOADS = [
    WorkloadSpec(name="flaky-v1", service="flaky", version="v1", service_account="flaky", latency=FAST, error_rate=0.3),
    WorkloadSpec(name="broken-v1", service="broken", version="v1", service_account="broken", latency=FAST, error_rate=1.0),
    WorkloadSpec(name="order-v1", service="order", version="v1", service_account="order", latency=FAST, error_rate=1.0),
    WorkloadSpec(name="slow-v1", service="slow", version="v1", service_account="slow", latency=Latency(3000.0, 3200.0)),
    WorkloadSpec(name="busy-v1", service="busy", version="v1", service_account="busy", latency=Latency(300.0, 320.0)),
    WorkloadSpec(name="pool-v1", service="pool", version="v1", service_account="pool", latency=FAST),
    WorkloadSpec(name="pool-v2", service="pool", version="v2", service_account="pool", latency=FAST, error_rate=1.0),
    WorkloadSpec(name="steady-v1", service="steady", version="v1", service_account="steady", latency=FAST),
    WorkloadSpec(name="steady-v2", service="steady", version="v2", service_account="steady", latency=FAST),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("resilience")).up()
    try:
        lab._backend.deploy("resilience", WORKLOADS, lab.namespace, inject=True)
        lab.inject("curl")
        yield lab
    finally:
        lab.down()


Apply = Callable[[dict[str, Any]], None]


@pytest.fixture
def apply(lab: Lab) -> Iterator[Apply]:
    """lab.apply for one test; what it applied is deleted afterwards (newest first)."""
    applied: list[tuple[str, str]] = []

    def put(resource: dict[str, Any]) -> None:
        lab.apply(resource)
        key = (resource["kind"], resource["metadata"]["name"])
        if key not in applied:
            applied.append(key)

    yield put
    for kind, name in reversed(applied):
        lab.delete(kind, name)


def virtual_service(host: str, **rule: Any) -> dict[str, Any]:
    route = rule.pop("route", [{"destination": {"host": host}}])
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": host},
            "spec": {"hosts": [host], "http": [{"route": route, **rule}]}}


def destination_rule(host: str, policy: dict[str, Any] | None = None, subsets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": host}
    if policy:
        spec["trafficPolicy"] = policy
    if subsets:
        spec["subsets"] = subsets
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": host}, "spec": spec}


VERSIONS = [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]


def admin(lab: Lab, workload: str) -> str:
    view = next(v for v in lab._backend.instances() if v.workload == workload)
    url = lab._backend.sidecar_admin(view)
    assert url is not None
    return url


def inbound_records(lab: Lab, workload: str, since: float) -> list[dict[str, Any]]:
    """Requests the workload's sidecar forwarded to its app since `since` (unix time)."""
    records = httpx.get(f"{admin(lab, workload)}/requests?limit=1024", headers=lab._admin_headers(), timeout=5.0).json()
    return [r for r in records if r["reporter"] == "destination" and r["start"] >= since]


def clusters(lab: Lab) -> list[dict[str, Any]]:
    return httpx.get(f"{admin(lab, 'curl')}/clusters", headers=lab._admin_headers(), timeout=5.0).json()


def most_at_once(records: list[dict[str, Any]]) -> int:
    """The largest number of records whose [start, start + duration] overlap."""
    events = []
    for r in records:
        events.append((r["start"], 1))
        events.append((r["start"] + r["duration_ms"] / 1000.0, -1))
    running = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


# --- retries ---


def test_retries_turn_a_backend_failing_30_percent_into_99_percent_success(lab: Lab, apply: Apply) -> None:
    apply(virtual_service("flaky", retries={"attempts": 5, "retryOn": "5xx"}))
    frame = lab.load("flaky", "/", rate=100, requests=200)
    assert (frame.code == 200).mean() >= 0.99, Counter(frame.code)
    before = lab.load("flaky", "/", rate=100, requests=1)  # one more, to read the client's records after the run
    assert len(before) == 1
    records = httpx.get(f"{admin(lab, 'curl')}/requests?limit=300", headers=lab._admin_headers(), timeout=5.0).json()
    assert sum(r["retries"] for r in records if r["destination_service"].startswith("flaky.")) > 20


def test_with_a_backend_failing_every_request_attempts_stay_within_the_retry_budget(lab: Lab, apply: Apply) -> None:
    apply(virtual_service("broken", retries={"attempts": 5, "retryOn": "5xx"}))
    since = time.time()
    frame = lab.load("broken", "/", rate=150, requests=300)
    elapsed = time.time() - since
    assert (frame.code == 500).all()
    time.sleep(0.3)
    received = len(inbound_records(lab, "broken-v1", since))
    # Linkerd's budget: in any 10 s, retries <= 20% of requests + 10 per second.
    assert 300 <= received <= 300 * 1.2 + 10 * max(10.0, elapsed + 1.0), received


def test_post_is_not_retried_unless_the_route_asks(lab: Lab, apply: Apply) -> None:
    """Its own service: the retry budget of `broken` may be spent by the test before."""
    since = time.time()
    for _ in range(10):
        assert lab.call("order", "/", method="POST", body=b"order").status == 500
    time.sleep(0.2)
    assert len(inbound_records(lab, "order-v1", since)) == 10
    apply(virtual_service("order", retries={"attempts": 2, "retryOn": "5xx"}))
    since = time.time()
    for _ in range(10):
        answer = lab.call("order", "/", method="POST", body=b"order")
        assert answer.status == 500 and answer.flags == "URX"
    time.sleep(0.2)
    assert len(inbound_records(lab, "order-v1", since)) == 30


# --- timeouts and faults ---


def test_timeout_answers_504_ut_at_the_set_time(lab: Lab, apply: Apply) -> None:
    apply(virtual_service("slow", timeout="500ms"))
    for _ in range(3):
        result = lab.call("slow", "/", timeout=10.0)
        assert (result.status, result.flags) == (504, "UT")
        # Not before the timeout; well before the app's 3 s (the call itself
        # costs a connection and a busy machine's scheduling on top).
        assert 490 <= result.elapsed_ms < 2000, result.elapsed_ms


def test_delay_and_abort_hit_their_percentages(lab: Lab, apply: Apply) -> None:
    apply(virtual_service("steady", fault={"delay": {"fixedDelay": "100ms", "percentage": {"value": 10}},
                                           "abort": {"httpStatus": 503, "percentage": {"value": 20}}}))
    n = 600
    frame = lab.load("steady", "/", rate=300, requests=n)
    flags = [set(f.split(",")) for f in frame["flags"]]
    aborted = sum("FI" in f for f in flags)
    delayed = sum("DI" in f for f in flags)
    for count, share in ((aborted, 0.2), (delayed, 0.1)):
        low, high = binomial_bounds(n, share, PER_REQUEST_DRAW)
        assert low <= count <= high, (count, share)
    assert ((frame.code == 503) == [("FI" in f) for f in flags]).all()
    assert (frame.latency_ms[[("DI" in f) for f in flags]] >= 99).all()


# --- mirror ---


def test_mirror_receives_copies_and_the_caller_sees_only_the_primary(lab: Lab, apply: Apply) -> None:
    apply(destination_rule("steady", subsets=VERSIONS))
    apply(virtual_service("steady", route=[{"destination": {"host": "steady", "subset": "v1"}}],
                          mirror={"host": "steady", "subset": "v2"}))
    since = time.time()
    frame = lab.load("steady", "/", rate=100, requests=50)
    assert (frame.code == 200).all() and set(frame.version) == {"v1"}
    assert wait_for(lambda: len(inbound_records(lab, "steady-v2", since)) == 50, 5.0)
    copies = inbound_records(lab, "steady-v2", since)
    assert {r["authority"] for r in copies} == {"steady-shadow:9080"}
    assert len(inbound_records(lab, "steady-v1", since)) == 50


# --- circuit breaking ---


def test_circuit_breaker_keeps_the_app_at_max_connections_and_the_rest_get_503_uo_fast(lab: Lab, apply: Apply) -> None:
    apply(destination_rule("busy", {"connectionPool": {"tcp": {"maxConnections": 2}, "http": {"http1MaxPendingRequests": 1}}}))
    since = time.time()
    frame = lab.load("busy", "/", rate=60, requests=60, concurrency=60)
    time.sleep(0.5)
    records = inbound_records(lab, "busy-v1", since)
    overflow = frame[frame.code == 503]
    assert most_at_once(records) <= 2
    assert len(records) == int((frame.code == 200).sum()) > 0
    assert len(overflow) > 20 and (overflow["flags"] == "UO").all()
    assert (overflow.service_ms < 250).all()  # refused at once, not after the app's 300 ms


def test_a_breaker_applied_after_load_limits_the_connections_already_pooled(lab: Lab, apply: Apply) -> None:
    """Notebook 07's order: traffic first (the caller pools several connections), then the breaker.
    The connections opened under no limit must not go on serving past the new one."""
    warm = lab.load("busy", "/", rate=40, requests=40, concurrency=40)
    assert (warm.code == 200).all()
    apply(destination_rule("busy", {"connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}}}))
    since = time.time()
    frame = lab.load("busy", "/", rate=40, requests=40, concurrency=40)
    time.sleep(0.5)
    assert most_at_once(inbound_records(lab, "busy-v1", since)) <= 1
    assert (frame["flags"] == "UO").sum() > 20


# --- outlier detection ---


OUTLIER = {"loadBalancer": {"simple": "ROUND_ROBIN"},
           "outlierDetection": {"consecutive5xxErrors": 3, "interval": "100ms", "baseEjectionTime": "3s", "maxEjectionPercent": 100}}


def pool_v2_ejected(lab: Lab) -> bool:
    found = [e for c in clusters(lab) if c["host"].startswith("pool.") and c["subset"] is None for e in c["endpoints"] if e["version"] == "v2"]
    return bool(found) and found[0]["ejected"]


def test_an_endpoint_returning_500s_is_ejected_then_readmitted(lab: Lab, apply: Apply) -> None:
    apply(destination_rule("pool", OUTLIER))
    first = Counter(lab.call("pool", "/").status for _ in range(8))
    assert first[500] == 3 and pool_v2_ejected(lab)
    ejected_at = time.monotonic()
    # Calls inside the first 2 s of the 3 s ejection: a loaded machine makes
    # fewer of them, but every one must avoid v2.
    during: Counter[str] = Counter()
    while sum(during.values()) < 10 and time.monotonic() - ejected_at < 2.0:
        during[lab.call("pool", "/").version] += 1
    assert set(during) == {"v1"} and during["v1"] >= 3, during
    assert wait_for(lambda: not pool_v2_ejected(lab), 6.0)
    assert 2.0 <= time.monotonic() - ejected_at < 5.0
    after = Counter(lab.call("pool", "/").version for _ in range(4))
    assert after["v2"] >= 1  # back in the rotation (and failing again)


def test_all_endpoints_ejected_means_503_uh(lab: Lab, apply: Apply) -> None:
    apply(destination_rule("broken", OUTLIER))
    assert [lab.call("broken", "/").status for _ in range(3)] == [500, 500, 500]
    result = lab.call("broken", "/")
    assert (result.status, result.flags) == (503, "UH") and "ejected by outlier detection" in result.text


# --- config changes and the HARDENING faults ---


def test_a_config_change_under_load_loses_no_requests(lab: Lab, apply: Apply) -> None:
    apply(destination_rule("steady", subsets=VERSIONS))

    def split(v1: int) -> dict[str, Any]:
        return virtual_service("steady", route=[{"destination": {"host": "steady", "subset": "v1"}, "weight": v1},
                                                {"destination": {"host": "steady", "subset": "v2"}, "weight": 100 - v1}])

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(lab.load, "steady", "/", rate=150, duration=4.0)
        for weight in (100, 0, 50, 100, 0):
            time.sleep(0.5)
            apply(split(weight))
        frame = running.result()
    assert len(frame) >= 550 and (frame.code == 200).all(), Counter(frame.code)
    assert set(frame.version) == {"v1", "v2"}


def test_no_endpoints_is_503_uh_and_no_matching_rule_404_nr(lab: Lab, apply: Apply) -> None:
    apply(destination_rule("steady", subsets=[{"name": "ghost", "labels": {"version": "v9"}}]))
    apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "steady"},
           "spec": {"hosts": ["steady"], "http": [
               {"match": [{"uri": {"prefix": "/steady/ghost"}}], "route": [{"destination": {"host": "steady", "subset": "ghost"}}]},
               {"match": [{"uri": {"exact": "/"}}], "route": [{"destination": {"host": "steady"}}]},
           ]}})
    ghost = lab.call("steady", "/steady/ghost")
    unrouted = lab.call("steady", "/steady")
    assert (ghost.status, ghost.flags) == (503, "UH") and "subset 'ghost'" in ghost.text
    assert (unrouted.status, unrouted.flags) == (404, "NR")
    assert lab.call("steady", "/").status == 200
