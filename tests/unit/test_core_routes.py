"""Route compilation and matching (meshkit.core.routes), from Istio YAML to the rule a request gets.

The resources go through meshkit.config's canonical form and the snapshot
parser, exactly as a sidecar receives them.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from meshkit.config import canonical, load
from meshkit.core.routes import ClusterSpec, HostRoutes, RouteTable, cluster_name, compile_routes
from meshkit.core.snapshot import parse_snapshot

NODE = "default/client-0"
REVIEWS = "reviews.default.svc.cluster.local"
KEYS = {"VirtualService": "virtual_services", "DestinationRule": "destination_rules", "LocalRateLimit": "rate_limits"}


def ep(port: int, version: str, app: str = "reviews") -> dict[str, Any]:
    return {"address": "127.0.0.1", "port": port, "instance": f"{app}-{version}-0", "workload": f"{app}-{version}",
            "version": version, "labels": {"app": app, "version": version}, "sidecar": True}


SERVICES = {
    REVIEWS: {"name": "reviews", "namespace": "default", "port": 9080, "endpoints": [ep(1, "v1"), ep(2, "v2"), ep(3, "v3")]},
    "ratings.default.svc.cluster.local": {"name": "ratings", "namespace": "default", "port": 9080, "endpoints": [ep(4, "v1", "ratings")]},
}

DR_ALL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""


def table(*yaml_docs: str, labels: dict[str, str] | None = None, namespace: str = "default") -> RouteTable[ClusterSpec]:
    doc: dict[str, Any] = {"version": 1, "node": NODE, "services": SERVICES, **{k: [] for k in KEYS.values()}}
    for text in yaml_docs:
        for resource in load(text):
            form = canonical(resource)
            doc[KEYS[form["kind"]]].append(form)
    snapshot = parse_snapshot(doc, NODE)
    return compile_routes(snapshot, namespace, labels or {"app": "curl"}, lambda spec: spec)


def routes_for(t: RouteTable[ClusterSpec], host: str = "reviews") -> HostRoutes[ClusterSpec]:
    found = t.resolve(host)
    assert found is not None
    return found


def subset_of(t: RouteTable[ClusterSpec], path: str = "/", headers: dict[str, str] | None = None, method: str = "GET",
              authority: str = "reviews:9080") -> str | None:
    """The subset the first destination of the selected rule names ("-" for none, None for 404 NR)."""
    selected = routes_for(t, authority).select(
        method.encode(), path.encode(), [(k.encode(), v.encode()) for k, v in (headers or {}).items()], authority.encode()
    )
    if selected is None:
        return None
    rule, _ = selected
    destination = rule.pick(0.0)
    return destination.subset or "-"


def vs(http: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
{http}
"""


def test_without_a_virtual_service_every_service_gets_one_default_rule_to_all_its_endpoints() -> None:
    t = table()
    routes = routes_for(t)
    assert routes.unconditional and len(routes.rules) == 1
    cluster = routes.rules[0].pick(0.5).cluster
    assert cluster is not None and cluster.name == cluster_name(REVIEWS, 9080, None) == "outbound|9080||reviews.default.svc.cluster.local"
    assert [e.version for e in cluster.endpoints] == ["v1", "v2", "v3"]
    assert cluster.policy.load_balancer == "LEAST_REQUEST"
    assert routes.rules[0].retry.attempts == 2 and routes.rules[0].retry.on_connect_failure and not routes.rules[0].retry.on_5xx
    assert routes.rules[0].timeout is None


@pytest.mark.parametrize("spelling", ["reviews", "reviews.default", "reviews.default.svc", REVIEWS, "REVIEWS:9080"])
def test_hosts_resolve_like_kubernetes_dns(spelling: str) -> None:
    assert routes_for(table(), spelling).host == REVIEWS


def test_subsets_are_clusters_of_the_endpoints_with_their_labels() -> None:
    t = table(DR_ALL)
    for version in ("v1", "v2", "v3"):
        cluster = t.clusters[cluster_name(REVIEWS, 9080, version)]
        assert [e.version for e in cluster.endpoints] == [version]


JASON = vs("""
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
""")


def test_rules_are_tried_in_order_and_the_first_match_wins() -> None:
    t = table(DR_ALL, JASON)
    assert subset_of(t, headers={"end-user": "jason"}) == "v2"
    assert subset_of(t, headers={"End-User": "jason"}) == "v2"  # header names are case-insensitive
    assert subset_of(t, headers={"end-user": "Jason"}) == "v1"  # values are not
    assert subset_of(t) == "v1"


@pytest.mark.parametrize(
    ("match", "request_", "expected"),
    [
        ("{uri: {exact: /a}}", {"path": "/a"}, True),
        ("{uri: {exact: /a}}", {"path": "/a?x=1"}, True),
        ("{uri: {exact: /a}}", {"path": "/ab"}, False),
        ("{uri: {prefix: /api}}", {"path": "/api/v1"}, True),
        ("{uri: {prefix: /api}}", {"path": "/API/v1"}, False),
        ("{uri: {prefix: /api}, ignoreUriCase: true}", {"path": "/API/v1"}, True),
        ("{uri: {regex: '/r/[0-9]+'}}", {"path": "/r/42"}, True),
        ("{uri: {regex: '/r/[0-9]+'}}", {"path": "/r/42/x"}, False),  # the whole path must match, as in Envoy
        ("{uri: {regex: '/r/[a-z]+'}, ignoreUriCase: true}", {"path": "/r/ABC"}, False),  # case ignored only for exact/prefix
        ("{headers: {x-a: {}}}", {"headers": {"x-a": ""}}, True),
        ("{headers: {x-a: {}}}", {}, False),
        ("{headers: {x-a: {prefix: ab}}}", {"headers": {"x-a": "abc"}}, True),
        ("{headers: {x-a: {regex: 'a.c'}}}", {"headers": {"x-a": "abc"}}, True),
        ("{withoutHeaders: {x-a: {exact: 'yes'}}}", {"headers": {"x-a": "yes"}}, False),
        ("{withoutHeaders: {x-a: {exact: 'yes'}}}", {"headers": {"x-a": "no"}}, True),
        ("{withoutHeaders: {x-a: {exact: 'yes'}}}", {}, True),
        ("{queryParams: {debug: {exact: 'true'}}}", {"path": "/x?a=1&debug=true"}, True),
        ("{queryParams: {debug: {exact: 'true'}}}", {"path": "/x?debug=false&debug=true"}, False),  # first value
        ("{method: {exact: POST}}", {"method": "POST"}, True),
        ("{method: {exact: POST}}", {"method": "GET"}, False),
        ("{port: 9080}", {"authority": "reviews:9080"}, True),
        ("{port: 9080}", {"authority": "reviews:9090"}, False),
        ("{uri: {prefix: /a}, method: {exact: GET}}", {"path": "/a", "method": "POST"}, False),  # AND within a match
    ],
)
def test_match_conditions(match: str, request_: dict[str, Any], expected: bool) -> None:
    t = table(DR_ALL, vs(f"""
  - match: [{match}]
    route: [{{destination: {{host: reviews, subset: v2}}}}]
  - route: [{{destination: {{host: reviews, subset: v1}}}}]
"""))
    assert (subset_of(t, **request_) == "v2") is expected


def test_match_entries_of_one_rule_are_alternatives() -> None:
    t = table(DR_ALL, vs("""
  - match: [{uri: {prefix: /a}}, {uri: {prefix: /b}}]
    route: [{destination: {host: reviews, subset: v2}}]
"""))
    assert subset_of(t, path="/a") == "v2" and subset_of(t, path="/b") == "v2"
    assert subset_of(t, path="/c") is None  # no rule matches: 404 NR, no fallback


def test_source_labels_are_decided_for_the_calling_workload() -> None:
    rules = vs("""
  - match: [{sourceLabels: {app: productpage}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
""")
    assert subset_of(table(DR_ALL, rules, labels={"app": "productpage", "version": "v1"})) == "v2"
    caller = table(DR_ALL, rules, labels={"app": "curl"})
    assert len(routes_for(caller).rules) == 1 and subset_of(caller) == "v1"


def test_weighted_pick_follows_the_weights() -> None:
    t = table(DR_ALL, vs("""
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
"""))
    rule = routes_for(t).rules[0]
    rng = random.Random(7)
    counts = Counter(rule.pick(rng.random()).subset for _ in range(20000))
    # Binomial(20000, 0.1): sd about 42; 5 sd either side.
    assert abs(counts["v3"] - 2000) < 212 and counts["v1"] + counts["v3"] == 20000
    assert rule.pick(0.0).subset == "v1" and rule.pick(0.8999).subset == "v1" and rule.pick(0.9).subset == "v3"


def test_consecutive_picks_track_the_weights_in_every_window() -> None:
    t = table(DR_ALL, vs("""
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
"""))
    rule = routes_for(t).rules[0]
    picks = [rule.pick(rule.next_draw()).subset == "v3" for _ in range(5000)]
    # Any 100 consecutive calls, not just aligned blocks: independent draws
    # would stray past 10 +- 3 in most runs of this length.
    windows = {sum(picks[i : i + 100]) for i in range(len(picks) - 100)}
    assert windows <= {8, 9, 10, 11, 12}, sorted(windows)
    assert sum(picks) in range(495, 506)


def test_evenly_spread_picks_hold_for_three_way_and_uneven_weights() -> None:
    t = table(DR_ALL, vs("""
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 33}
    - {destination: {host: reviews, subset: v2}, weight: 33}
    - {destination: {host: reviews, subset: v3}, weight: 34}
"""))
    rule = routes_for(t).rules[0]
    picks = [rule.pick(rule.next_draw()).subset for _ in range(3000)]
    for start in range(0, 3000, 300):
        counts = Counter(picks[start : start + 300])
        assert all(abs(counts[s] - 100) <= 4 for s in ("v1", "v2", "v3")), counts


def test_a_zero_weight_destination_never_gets_a_request() -> None:
    t = table(DR_ALL, vs("""
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 0}
    - {destination: {host: reviews, subset: v2}, weight: 100}
"""))
    rule = routes_for(t).rules[0]
    assert {rule.pick(x / 100).subset for x in range(100)} == {"v2"}


def test_a_subset_no_destination_rule_defines_has_no_cluster() -> None:
    t = table(vs("""
  - route: [{destination: {host: reviews, subset: v9}}]
"""))
    assert routes_for(t).rules[0].pick(0.0).cluster is None


def test_two_virtual_services_for_one_host_the_first_wins_and_the_other_is_reported() -> None:
    second = vs("""
  - route: [{destination: {host: reviews, subset: v3}}]
""").replace("name: reviews}", "name: zzz}")
    first = vs("""
  - route: [{destination: {host: reviews, subset: v1}}]
""").replace("name: reviews}", "name: aaa}")
    t = table(DR_ALL, second, first)
    assert subset_of(t) == "v3"  # snapshot order decides (the control plane sorts by name)
    assert t.ignored and "default/aaa" in t.ignored[0]


def test_two_destination_rules_for_one_host_merge_subsets_and_the_first_policy_wins() -> None:
    a = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets: [{name: v1, labels: {version: v1}}]
"""
    b = a.replace("name: a}", "name: b}").replace("RANDOM", "ROUND_ROBIN").replace("name: v1, labels: {version: v1}", "name: v2, labels: {version: v2}")
    t = table(a, b)
    assert t.clusters[cluster_name(REVIEWS, 9080, None)].policy.load_balancer == "RANDOM"
    assert cluster_name(REVIEWS, 9080, "v1") in t.clusters and cluster_name(REVIEWS, 9080, "v2") in t.clusters


def test_a_subset_policy_replaces_whole_sections_of_the_service_policy() -> None:
    t = table("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 3}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 1}}}
""")
    v1 = t.clusters[cluster_name(REVIEWS, 9080, "v1")].policy
    assert v1.load_balancer == "RANDOM" and v1.max_pending_requests == 1 and v1.max_connections == 2**32 - 1


def test_a_fault_turns_off_the_rules_retries_and_timeout_as_istio_documents() -> None:
    t = table(DR_ALL, vs("""
  - fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
    timeout: 1s
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: reviews, subset: v1}}]
"""))
    rule = routes_for(t).rules[0]
    assert rule.retry.attempts == 0 and rule.timeout is None and rule.abort is not None


def test_timeout_retries_mirror_and_rewrite_are_compiled() -> None:
    t = table(DR_ALL, vs("""
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new}
    timeout: 0.5s
    retries: {attempts: 3, perTryTimeout: 100ms, retryOn: "gateway-error,503"}
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 25}
    route: [{destination: {host: reviews, subset: v1}}]
"""))
    rule, match = routes_for(t).select(b"GET", b"/old/x", [], b"reviews")  # type: ignore[misc]
    assert match is not None and match.prefix_length == 4 and rule.rewrite == b"/new"
    assert rule.timeout == 0.5 and rule.retry.attempts == 3 and rule.retry.per_try_timeout == 0.1
    assert rule.retry.retries_status(503) and rule.retry.retries_status(502) and not rule.retry.retries_status(500)
    assert rule.mirror is not None and rule.mirror.subset == "v3" and rule.mirror_percentage == 25.0


def test_header_edits_of_the_route_and_the_destination_are_combined() -> None:
    t = table(DR_ALL, vs("""
  - headers:
      request: {set: {x-level: route}, add: {x-route: "1"}}
      response: {remove: [x-secret]}
    route:
    - destination: {host: reviews, subset: v1}
      headers: {request: {set: {x-level: destination, x-dest: "1"}}}
"""))
    destination = routes_for(t).rules[0].pick(0.0)
    assert destination.request_ops is not None and destination.response_ops is not None
    edited = destination.request_ops.apply([(b"X-Level", b"client"), (b"accept", b"*/*")])
    assert edited == [(b"accept", b"*/*"), (b"x-level", b"route"), (b"x-dest", b"1"), (b"x-route", b"1")]
    assert destination.response_ops.apply([(b"X-Secret", b"s"), (b"a", b"b")]) == [(b"a", b"b")]


def test_a_virtual_service_routes_its_host_even_to_another_service() -> None:
    t = table(vs("""
  - route: [{destination: {host: ratings}}]
"""))
    cluster = routes_for(t).rules[0].pick(0.0).cluster
    assert cluster is not None and cluster.host == "ratings.default.svc.cluster.local"


def test_a_caller_in_another_namespace_needs_the_namespace_in_the_host() -> None:
    t = table(namespace="shop")
    assert t.resolve("reviews") is None and t.resolve("reviews.default") is not None
