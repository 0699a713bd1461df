"""Traffic management in a real sidecar process: routes, retries, timeouts, faults, mirror, breakers.

Each test starts a sidecar with a static snapshot holding Istio resources in
the canonical form the control plane sends (sidecar_fixtures.traffic), in
front of recording echo servers, and checks what the upstreams saw and what
the client got.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.integration.sidecar_fixtures import (
    PER_REQUEST_DRAW,
    Client,
    EchoServer,
    Response,
    SidecarProcess,
    binomial_bounds,
    bootstrap,
    echo_server,
    endpoint,
    get_json,
    running_sidecar,
    service,
    snapshot,
    stand_in_control_plane,
    traffic,
    wait_for,
)

NODE = "default/client-0"


def vs(http: str, host: str = "echo") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {host}}}
spec:
  hosts: [{host}]
  http:
{http}
"""


def dr(policy: str = "", subsets: str = "", host: str = "echo") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {host}}}
spec:
  host: {host}
  trafficPolicy: {{{policy}}}
  subsets: [{subsets}]
"""


SUBSETS = "{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}"


@contextmanager
def sidecar_for(tmp_path: Path, echoes: list[EchoServer], *resources: str, extra_services: list | None = None) -> Iterator[SidecarProcess]:
    """A sidecar whose service `echo` has one endpoint per echo server (versions v1, v2, ... in order)."""
    endpoints = [endpoint(e.port, f"echo-v{i + 1}", f"v{i + 1}") for i, e in enumerate(echoes)]
    services = [service("echo", endpoints), *(extra_services or [])]
    static = snapshot(NODE, services, **traffic(*resources))
    with running_sidecar(bootstrap(node=NODE, static=static), tmp_path) as proc:
        yield proc


def get(proc: SidecarProcess, path: str = "/", headers: dict[str, str] | None = None, method: str = "GET", body: bytes = b"") -> Response:
    with Client(proc.outbound, timeout=15) as client:
        return client.request(method, f"http://echo{path}", headers, body)


def flags(response: Response) -> str | None:
    return response.header("x-meshkit-response-flags")


# --- routing ---


def test_header_routing_sends_jason_to_v2_and_everyone_else_to_v1(tmp_path: Path) -> None:
    rules = vs("""
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - route: [{destination: {host: echo, subset: v1}}]
""")
    with echo_server("v1") as v1, echo_server("v2") as v2, sidecar_for(tmp_path, [v1, v2], dr(subsets=SUBSETS), rules) as proc:
        with Client(proc.outbound) as client:
            jason = [client.request("GET", "http://echo/", {"end-user": "jason"}).header("x-echo-server") for _ in range(20)]
            others = [client.request("GET", "http://echo/", {"end-user": name}).header("x-echo-server") for name in ("bob", "JASON", "") * 7]
            anonymous = [client.request("GET", "http://echo/").header("x-echo-server") for _ in range(10)]
    assert set(jason) == {"v2"} and set(others) == {"v1"} and set(anonymous) == {"v1"}


def test_a_90_10_split_stays_within_a_binomial_bound(tmp_path: Path) -> None:
    rules = vs("""
  - route:
    - {destination: {host: echo, subset: v1}, weight: 90}
    - {destination: {host: echo, subset: v2}, weight: 10}
""")
    with echo_server("v1") as v1, echo_server("v2") as v2, sidecar_for(tmp_path, [v1, v2], dr(subsets=SUBSETS), rules) as proc:
        with Client(proc.outbound) as client:
            served = Counter(client.request("GET", "http://echo/").header("x-echo-server") for _ in range(1000))
    low, high = binomial_bounds(1000, 0.1)
    assert low <= served["v2"] <= high and served["v1"] + served["v2"] == 1000, served


def test_no_matching_rule_is_404_nr_and_an_undefined_subset_is_503_nc(tmp_path: Path) -> None:
    rules = vs("""
  - match: [{uri: {prefix: /known}}]
    route: [{destination: {host: echo, subset: v1}}]
  - match: [{uri: {prefix: /ghost}}]
    route: [{destination: {host: echo, subset: v9}}]
""")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], dr(subsets="{name: v1, labels: {version: v1}}"), rules) as proc:
        known, unknown, ghost = get(proc, "/known"), get(proc, "/elsewhere"), get(proc, "/ghost")
    assert known.status == 200
    assert (unknown.status, flags(unknown)) == (404, "NR") and b"VirtualService default/echo" in unknown.body
    assert (ghost.status, flags(ghost)) == (503, "NC") and b"subset 'v9'" in ghost.body


def test_rewrite_and_header_edits_reach_the_upstream_and_the_client(tmp_path: Path) -> None:
    rules = vs("""
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new}
    headers:
      request: {set: {x-set: route}, add: {x-added: "1"}, remove: [x-drop]}
      response: {set: {x-served-by: mesh}, remove: [x-echo-server]}
    route:
    - destination: {host: echo}
      headers: {request: {set: {x-dest: "yes"}}}
""")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc:
        response = get(proc, "/old/thing?q=1", {"x-set": "client", "x-drop": "secret"})
        seen = v1.snapshot()[0]
    assert seen.path == "/new/thing?q=1"
    assert seen.header_all("x-set") == ["route"] and seen.header("x-added") == "1" and seen.header("x-dest") == "yes"
    assert seen.header("x-drop") is None
    assert response.header("x-served-by") == "mesh" and response.header("x-echo-server") is None


def test_consistent_hash_keeps_each_user_on_one_endpoint(tmp_path: Path) -> None:
    policy = dr("loadBalancer: {consistentHash: {httpHeaderName: x-user}}")
    with echo_server("a") as a, echo_server("b") as b, echo_server("c") as c, sidecar_for(tmp_path, [a, b, c], policy) as proc:
        with Client(proc.outbound) as client:
            homes = {
                user: {client.request("GET", "http://echo/", {"x-user": user}).header("x-echo-server") for _ in range(5)}
                for user in (f"user-{i}" for i in range(30))
            }
    assert all(len(servers) == 1 for servers in homes.values())
    assert len({next(iter(s)) for s in homes.values()}) == 3  # and the users are spread over all three


# --- retries ---


RETRY_5XX = vs("""
  - route: [{destination: {host: echo}}]
    retries: {attempts: 3, retryOn: 5xx}
""")


def test_retries_turn_failures_into_success_and_telemetry_counts_them(tmp_path: Path) -> None:
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], RETRY_5XX) as proc:
        v1.statuses.extend([503, 500])
        response = get(proc, "/flaky")
        records = [r for r in get_json(proc.admin, "/requests?limit=10") if r["path"] == "/flaky"]
    assert response.status == 200 and flags(response) is None
    assert [r.path for r in v1.snapshot()] == ["/flaky"] * 3
    assert records[-1]["retries"] == 2 and records[-1]["code"] == 200


def test_retries_exhausted_relay_the_last_answer_flagged_urx(tmp_path: Path) -> None:
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], RETRY_5XX) as proc:
        response = get(proc, "/down", {"x-echo-status": "503"})
    assert response.status == 503 and flags(response) == "URX"
    assert response.header("x-echo-server") == "v1"  # the upstream's own answer, not the mesh's
    assert len(v1.snapshot()) == 4


def test_post_is_not_retried_by_istios_default_policy_but_is_when_asked(tmp_path: Path) -> None:
    with echo_server("v1") as v1:
        with sidecar_for(tmp_path, [v1]) as proc:
            default = get(proc, "/order", {"x-echo-status": "503"}, method="POST", body=b"one order")
            seen_default = len(v1.snapshot())
        v1.clear()
        v1.statuses.extend([503])
        with sidecar_for(tmp_path, [v1], RETRY_5XX) as proc:
            asked = get(proc, "/order", method="POST", body=b"one order")
        bodies = {r.body_sha256 for r in v1.snapshot()}
    assert default.status == 503 and seen_default == 1
    assert asked.status == 200 and len(v1.snapshot()) == 2 and len(bodies) == 1  # the same body, sent again


def test_a_backend_that_always_fails_gets_no_more_than_the_retry_budget(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo}}]
    retries: {attempts: 5, retryOn: 5xx}
""")
    clients, each = 10, 30
    requests = clients * each
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc:

        def run(_: int) -> list[int]:
            with Client(proc.outbound) as client:
                return [client.request("GET", "http://echo/", {"x-echo-status": "500"}).status for _ in range(each)]

        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            answers = Counter(status for statuses in pool.map(run, range(clients)) for status in statuses)
        elapsed = time.monotonic() - started
        received = len(v1.snapshot())
    # Linkerd's budget: in any 10 s, retries <= 20% of the requests + 10 per second.
    reserve = 10 * max(10.0, elapsed + 1.0)
    assert answers == {500: requests}
    assert received <= requests + 0.2 * requests + reserve, (received, elapsed)
    assert received < requests * 2  # without the budget it would be 6 per request


def test_connect_failures_are_retried_on_another_endpoint(tmp_path: Path) -> None:
    with echo_server("v1") as v1:
        services = [service("echo", [endpoint(1, "echo-dead", "v0"), endpoint(v1.port, "echo-v1", "v1")])]
        static = snapshot(NODE, services, **traffic(dr("loadBalancer: {simple: ROUND_ROBIN}")))
        with running_sidecar(bootstrap(node=NODE, static=static), tmp_path) as proc, Client(proc.outbound) as client:
            statuses = Counter(client.request("GET", "http://echo/").status for _ in range(20))
    assert statuses == {200: 20}


# --- timeouts ---


def test_route_timeout_answers_504_ut_at_the_set_time(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo}}]
    timeout: 300ms
""")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc, Client(proc.outbound) as client:
        client.request("GET", "http://echo/warm")
        elapsed = []
        for _ in range(3):
            started = time.monotonic()
            response = client.request("GET", "http://echo/slow", {"x-echo-delay-ms": "2000"})
            elapsed.append(time.monotonic() - started)
            assert (response.status, flags(response)) == (504, "UT")
        fast = client.request("GET", "http://echo/fast")
    assert fast.status == 200
    assert all(0.29 <= e < 0.6 for e in elapsed), elapsed


def test_upstream_that_never_answers_gets_504_ut_at_the_route_timeout(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo}}]
    timeout: 0.5s
""")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc:
        started = time.monotonic()
        response = get(proc, "/hang", {"x-echo-hang": "1"})
        elapsed = time.monotonic() - started
    assert (response.status, flags(response)) == (504, "UT") and b"route timeout of 0.5 s" in response.body
    assert 0.49 <= elapsed < 0.9


def test_per_try_timeout_retries_and_the_route_timeout_bounds_the_whole(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo}}]
    timeout: 2s
    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}
""")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc:
        started = time.monotonic()
        response = get(proc, "/slow", {"x-echo-delay-ms": "1000"})
        elapsed = time.monotonic() - started
    assert (response.status, flags(response)) == (504, "UT,URX")
    assert len(v1.snapshot()) == 3  # three tries of 200 ms each (and two short backoffs)
    assert 0.6 <= elapsed < 1.5


# --- faults ---


def test_abort_fault_hits_its_percentage_within_a_binomial_bound(tmp_path: Path) -> None:
    rules = vs("""
  - fault: {abort: {httpStatus: 418, percentage: {value: 30}}}
    route: [{destination: {host: echo}}]
""")
    n = 600
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc, Client(proc.outbound) as client:
        answers = [client.request("GET", "http://echo/") for _ in range(n)]
        reached = len(v1.snapshot())
    aborted = [a for a in answers if a.status == 418]
    low, high = binomial_bounds(n, 0.3, PER_REQUEST_DRAW)
    assert low <= len(aborted) <= high, len(aborted)
    assert all(flags(a) == "FI" for a in aborted) and reached == n - len(aborted)


def test_delay_fault_holds_its_percentage_of_requests_for_the_fixed_delay(tmp_path: Path) -> None:
    rules = vs("""
  - fault: {delay: {fixedDelay: 200ms, percentage: {value: 25}}}
    route: [{destination: {host: echo}}]
""")
    n = 120
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], rules) as proc:
        with ThreadPoolExecutor(24) as pool:

            def timed(_: int) -> tuple[float, Response]:
                started = time.monotonic()
                response = get(proc, "/")
                return time.monotonic() - started, response

            results = list(pool.map(timed, range(n)))
    delayed = [(t, r) for t, r in results if flags(r) == "DI"]
    low, high = binomial_bounds(n, 0.25, PER_REQUEST_DRAW)
    assert low <= len(delayed) <= high, len(delayed)
    assert all(t >= 0.19 and r.status == 200 for t, r in delayed)
    assert all(r.status == 200 for _, r in results)


# --- mirror ---


def test_mirror_sends_copies_the_caller_never_sees(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo, subset: v1}}]
    mirror: {host: echo, subset: v2}
""")
    with echo_server("v1") as v1, echo_server("v2") as v2, sidecar_for(tmp_path, [v1, v2], dr(subsets=SUBSETS), rules) as proc:
        with Client(proc.outbound) as client:
            answers = [client.request("POST", "http://echo:80/m", {"x-echo-status": "201"}, body=b"payload") for _ in range(10)]
        assert wait_for(lambda: len(v2.snapshot()) == 10)
        primary, copies = v1.snapshot(), v2.snapshot()
    assert all(a.status == 201 and a.header("x-echo-server") == "v1" for a in answers)
    assert len(primary) == 10
    assert {c.header("host") for c in copies} == {"echo-shadow:80"}
    assert {c.body_sha256 for c in copies} == {primary[0].body_sha256}


def test_a_slow_mirror_does_not_delay_the_caller(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo, subset: v1}}]
    mirror: {host: echo, subset: v2}
""")
    with echo_server("v1") as v1, echo_server("v2") as v2, sidecar_for(tmp_path, [v1, v2], dr(subsets=SUBSETS), rules) as proc:
        v2.delay_s = 1.5
        with Client(proc.outbound) as client:
            started = time.monotonic()
            answers = [client.request("GET", "http://echo/") for _ in range(3)]
            elapsed = time.monotonic() - started
        assert wait_for(lambda: len(v2.snapshot()) == 3, 5.0)
    assert all(a.status == 200 for a in answers)
    assert elapsed < 1.0  # three answers while each copy took 1.5 s


def test_mirror_percentage_copies_that_share_of_requests(tmp_path: Path) -> None:
    rules = vs("""
  - route: [{destination: {host: echo, subset: v1}}]
    mirror: {host: echo, subset: v2}
    mirrorPercentage: {value: 20}
""")
    n = 500
    with echo_server("v1") as v1, echo_server("v2") as v2, sidecar_for(tmp_path, [v1, v2], dr(subsets=SUBSETS), rules) as proc:
        with Client(proc.outbound) as client:
            for _ in range(n):
                client.request("GET", "http://echo/")
        time.sleep(0.3)
        copies = len(v2.snapshot())
    low, high = binomial_bounds(n, 0.2, PER_REQUEST_DRAW)
    assert low <= copies <= high, copies


# --- circuit breaking ---


def test_circuit_breaker_lets_at_most_max_connections_reach_the_app_and_the_rest_fail_fast(tmp_path: Path) -> None:
    policy = dr("connectionPool: {tcp: {maxConnections: 2}, http: {http1MaxPendingRequests: 1}}")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], policy) as proc:
        barrier = threading.Barrier(12)

        def one(_: int) -> tuple[float, Response]:
            barrier.wait()
            started = time.monotonic()
            response = get(proc, "/", {"x-echo-delay-ms": "400"})
            return time.monotonic() - started, response

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(one, range(12)))
        clusters = get_json(proc.admin, "/clusters")
    overflow = [(t, r) for t, r in results if r.status == 503]
    assert v1.max_in_flight <= 2
    assert overflow and all(flags(r) == "UO" and t < 0.3 for t, r in overflow)
    assert 2 <= len(results) - len(overflow) <= 3  # two connections and one waiting request
    echo_cluster = next(c for c in clusters if c["name"] == "outbound|80||echo.default.svc.cluster.local")
    assert echo_cluster["limits"]["max_connections"] == 2 and echo_cluster["active_requests"] == 0


def test_max_requests_per_connection_closes_connections_after_that_many(tmp_path: Path) -> None:
    policy = dr("connectionPool: {http: {maxRequestsPerConnection: 2}}")
    with echo_server("v1") as v1, sidecar_for(tmp_path, [v1], policy) as proc, Client(proc.outbound) as client:
        for _ in range(6):
            assert client.request("GET", "http://echo/").status == 200
        connections = Counter(r.connection_id for r in v1.snapshot())
    assert sorted(connections.values()) == [2, 2, 2]


# --- outlier detection ---


OUTLIER = dr("loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 2, interval: 100ms, baseEjectionTime: 1s, maxEjectionPercent: 100}")


def test_an_endpoint_returning_500s_is_ejected_then_readmitted(tmp_path: Path) -> None:
    with echo_server("good") as good, echo_server("bad") as bad, sidecar_for(tmp_path, [good, bad], OUTLIER) as proc:
        bad.statuses.extend([500] * 2)
        with Client(proc.outbound) as client:
            first = [client.request("GET", "http://echo/").status for _ in range(6)]
            ejected_at = time.monotonic()
            during = Counter(client.request("GET", "http://echo/").header("x-echo-server") for _ in range(10))
            ejected = [e for c in get_json(proc.admin, "/clusters") for e in c["endpoints"] if e["ejected"]]
            assert wait_for(lambda: not any(e["ejected"] for c in get_json(proc.admin, "/clusters") for e in c["endpoints"]), 3.0)
            back_after = time.monotonic() - ejected_at
            after = Counter(client.request("GET", "http://echo/").header("x-echo-server") for _ in range(10))
    assert first.count(500) == 2
    assert during == {"good": 10}
    assert [e["instance"] for e in ejected] == [f"echo-v2-{bad.port}"]
    assert 0.8 <= back_after < 2.0  # base ejection time 1 s, swept every 100 ms
    assert after == {"good": 5, "bad": 5}


def test_all_endpoints_ejected_means_503_uh(tmp_path: Path) -> None:
    with echo_server("a") as a, echo_server("b") as b, sidecar_for(tmp_path, [a, b], OUTLIER) as proc:
        with Client(proc.outbound) as client:
            failing = [client.request("GET", "http://echo/", {"x-echo-status": "503"}).status for _ in range(4)]
            response = client.request("GET", "http://echo/")
    assert failing == [503] * 4
    assert (response.status, flags(response)) == (503, "UH") and b"ejected by outlier detection" in response.body


# --- the Faults section of HARDENING.md ---


def test_no_endpoints_is_503_uh_and_a_closed_port_503_uf_then_urx(tmp_path: Path) -> None:
    services = [service("empty", []), service("closed", [endpoint(1, "closed-v1", "v1")])]
    with running_sidecar(bootstrap(node=NODE, static=snapshot(NODE, services)), tmp_path) as proc, Client(proc.outbound) as client:
        empty = client.request("GET", "http://empty/")
        closed = client.request("GET", "http://closed/")
        nowhere = client.request("GET", "http://nowhere/")
    assert (empty.status, flags(empty)) == (503, "UH")
    assert (closed.status, flags(closed)) == (503, "UF,URX")
    assert (nowhere.status, flags(nowhere)) == (404, "NR")
    assert b"upstream retry limit exceeded" in closed.body and b"connection failure" in closed.body


# --- local rate limit (inbound) ---


def test_local_rate_limit_answers_429_rl_on_the_inbound_side(tmp_path: Path) -> None:
    limit = """
apiVersion: meshkit.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: reviews}
spec:
  tokenBucket: {maxTokens: 3, tokensPerFill: 1, fillInterval: 60s}
  paths: ["/api/*"]
"""
    with echo_server("app") as app:
        node = "default/reviews-v1-0"
        boot = bootstrap(node=node, name="reviews-v1", app_port=app.port, static=snapshot(node, [], **traffic(limit)))
        with running_sidecar(boot, tmp_path) as proc, Client(proc.inbound) as client:
            limited = [client.request("GET", "/api/x", {"host": "reviews"}) for _ in range(5)]
            free = client.request("GET", "/health", {"host": "reviews"})
    assert [r.status for r in limited] == [200, 200, 200, 429, 429]
    assert flags(limited[-1]) == "RL" and b"LocalRateLimit default/reviews" in limited[-1].body
    assert free.status == 200 and len(app.snapshot()) == 4


# --- config changes ---


def test_a_new_config_keeps_outlier_state_and_in_flight_requests_keep_their_rule(tmp_path: Path) -> None:
    """Clusters that persist keep their records (an ejected endpoint stays out);
    a request routed before the change finishes by the rule it started with."""
    patient = vs("""
  - match: [{uri: {prefix: /fail}}]
    route: [{destination: {host: echo, subset: v1}}]
  - route: [{destination: {host: echo, subset: v2}}]
    timeout: 5s
""")
    hasty = patient.replace("timeout: 5s", "timeout: 200ms")
    policy = dr("outlierDetection: {consecutive5xxErrors: 1, interval: 100ms, baseEjectionTime: 30s, maxEjectionPercent: 100}", SUBSETS)
    with echo_server("v1") as v1, echo_server("v2") as v2, stand_in_control_plane("t") as control:
        services = [service("echo", [endpoint(v1.port, "echo-v1", "v1"), endpoint(v2.port, "echo-v2", "v2")])]
        control.publish(snapshot(NODE, services, version=1, **traffic(policy, patient)))
        boot = bootstrap(node=NODE, control_plane={"url": control.url, "token": "t"})
        with running_sidecar(boot, tmp_path) as proc:
            assert wait_for(lambda: (1, "ACK") in [(a["version"], a["status"]) for a in control.acks], 10.0)
            assert get(proc, "/fail", {"x-echo-status": "500"}).status == 500  # ejects v1 from subset v1's cluster
            with ThreadPoolExecutor(1) as pool:
                in_flight = pool.submit(get, proc, "/slow", {"x-echo-delay-ms": "800"})
                assert wait_for(lambda: any(r.path == "/slow" for r in v2.snapshot()), 5.0)
                control.publish(snapshot(NODE, services, version=2, **traffic(policy, hasty)))
                assert wait_for(lambda: (2, "ACK") in [(a["version"], a["status"]) for a in control.acks], 10.0)
                after = get(proc, "/slow-after", {"x-echo-delay-ms": "800"})
                answered = in_flight.result(10)
            clusters = get_json(proc.admin, "/clusters")
    assert answered.status == 200  # routed under version 1: its 5 s timeout, not the new 200 ms
    assert (after.status, flags(after)) == (504, "UT")
    subset_v1 = next(c for c in clusters if c["subset"] == "v1")
    assert [e["ejected"] for e in subset_v1["endpoints"]] == [True]  # the ejection outlived the change
