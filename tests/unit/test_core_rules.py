"""The traffic keys of a snapshot are checked field by field; a bad one is NACKed with its path (meshkit.core.rules)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from meshkit.config import canonical, load
from meshkit.core.snapshot import parse_snapshot
from meshkit.errors import ConfigError

NODE = "default/client-0"
RESOURCES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}, uri: {regex: '/r/.*'}}]
    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,409"}
    mirror: {host: reviews, subset: v3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: meshkit.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: reviews}
spec:
  selector: {matchLabels: {app: reviews}}
  tokenBucket: {maxTokens: 10, tokensPerFill: 2, fillInterval: 1s}
  paths: ["/api/*"]
"""
KEYS = {"VirtualService": "virtual_services", "DestinationRule": "destination_rules", "LocalRateLimit": "rate_limits"}


def good() -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 3, "node": NODE, "services": {}, **{key: [] for key in KEYS.values()}}
    for resource in load(RESOURCES):
        form = canonical(resource)
        doc[KEYS[form["kind"]]].append(form)
    return doc


def test_the_canonical_forms_of_every_feature_parse() -> None:
    snap = parse_snapshot(good(), NODE)
    vs = snap.virtual_services[0]
    assert vs.hosts == ("reviews.default.svc.cluster.local",)
    first, second = vs.http
    assert first.fault is not None and first.fault.delay is not None and first.fault.delay.fixed_delay == 7.0
    assert first.match[0].headers[0][0] == "end-user" and first.match[0].uri is not None and first.match[0].uri.kind == "regex"
    assert [t.weight for t in second.route] == [90, 10] and second.timeout == 2.0
    assert second.retries.attempts == 3 and second.retries.retriable_status_codes == (409,) and second.mirror_percentage == 100.0
    dr = snap.destination_rules[0]
    assert dr.policy.max_connections == 1 and dr.policy.outlier is not None and dr.policy.outlier.base_ejection_time == 180.0
    assert dr.subsets[1].policy.hash_header == "x-user" and dr.subsets[1].policy.load_balancer is None
    assert dr.subsets[0].policy.max_pending_requests == 1  # the service's connection pool, merged in
    rl = snap.rate_limits[0]
    assert (rl.max_tokens, rl.tokens_per_fill, rl.fill_interval, rl.paths) == (10, 2, 1.0, ("/api/*",))


def test_a_snapshot_without_traffic_keys_has_none() -> None:
    snap = parse_snapshot({"version": 1, "node": NODE, "services": {}}, NODE)
    assert snap.virtual_services == () and snap.destination_rules == () and snap.rate_limits == ()


Change = Callable[[dict[str, Any]], None]


def vs_rule(doc: dict[str, Any], index: int = 1) -> dict[str, Any]:
    return doc["virtual_services"][0]["spec"]["http"][index]


def dr_policy(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["destination_rules"][0]["spec"]["traffic_policy"]


BAD: list[tuple[str, Change, str]] = [
    ("virtual_services is not a list", lambda d: d.update(virtual_services={}), "virtual_services"),
    ("wrong kind", lambda d: d["virtual_services"][0].update(kind="DestinationRule"), "virtual_services[0].kind"),
    ("host not a name", lambda d: d["virtual_services"][0]["spec"]["hosts"].append("Bad Host"), "virtual_services[0].spec.hosts[1]"),
    ("timeout negative", lambda d: vs_rule(d).update(timeout=-1), "virtual_services[0].spec.http[1].timeout"),
    ("timeout text", lambda d: vs_rule(d).update(timeout="2s"), "virtual_services[0].spec.http[1].timeout"),
    ("weight over 100", lambda d: vs_rule(d)["route"][0].update(weight=101), "virtual_services[0].spec.http[1].route[0].weight"),
    ("all weights zero", lambda d: [t.update(weight=0) for t in vs_rule(d)["route"]], "virtual_services[0].spec.http[1].route"),
    ("no destinations", lambda d: vs_rule(d).update(route=[]), "virtual_services[0].spec.http[1].route"),
    ("unknown retry condition", lambda d: vs_rule(d)["retries"]["retry_on"].append("sometimes"), "virtual_services[0].spec.http[1].retries.retry_on[2]"),
    ("retries missing", lambda d: vs_rule(d).pop("retries"), "virtual_services[0].spec.http[1].retries"),
    ("bad regex", lambda d: vs_rule(d, 0)["match"][0]["uri"].update(value="(unclosed"), "virtual_services[0].spec.http[0].match[0].uri.value"),
    ("unknown match type", lambda d: vs_rule(d, 0)["match"][0]["uri"].update(type="glob"), "virtual_services[0].spec.http[0].match[0].uri.type"),
    ("upper-case header", lambda d: vs_rule(d, 0)["match"][0].update(headers={"End-User": {"type": "exact", "value": "x"}}), "virtual_services[0].spec.http[0].match[0].headers"),
    ("abort status", lambda d: vs_rule(d, 0).update(fault={"delay": None, "abort": {"http_status": 99, "percentage": 1.0}}), "virtual_services[0].spec.http[0].fault.abort.http_status"),
    ("empty fault", lambda d: vs_rule(d, 0).update(fault={"delay": None, "abort": None}), "virtual_services[0].spec.http[0].fault"),
    ("percentage over 100", lambda d: vs_rule(d).update(mirror_percentage=100.5), "virtual_services[0].spec.http[1].mirror_percentage"),
    ("header value with newline", lambda d: vs_rule(d)["headers"]["request"]["set"].update({"x-a": "1\r\nx-b: 2"}), "virtual_services[0].spec.http[1].headers.request.set.x-a"),
    ("rewrite not a path", lambda d: vs_rule(d).update(rewrite={"uri": "relative"}), "virtual_services[0].spec.http[1].rewrite.uri"),
    ("unknown load balancer", lambda d: dr_policy(d)["load_balancer"].update(simple="FASTEST"), "destination_rules[0].spec.traffic_policy.load_balancer.simple"),
    ("max connections zero", lambda d: dr_policy(d)["connection_pool"]["tcp"].update(max_connections=0), "destination_rules[0].spec.traffic_policy.connection_pool.tcp.max_connections"),
    ("ejection percent", lambda d: dr_policy(d)["outlier_detection"].update(max_ejection_percent=101), "destination_rules[0].spec.traffic_policy.outlier_detection.max_ejection_percent"),
    ("duplicate subset", lambda d: d["destination_rules"][0]["spec"]["subsets"].append(copy.deepcopy(d["destination_rules"][0]["spec"]["subsets"][0])), "destination_rules[0].spec.subsets[3].name"),
    ("fill interval too short", lambda d: d["rate_limits"][0]["spec"]["token_bucket"].update(fill_interval=0.01), "rate_limits[0].spec.token_bucket.fill_interval"),
    ("no bucket", lambda d: d["rate_limits"][0]["spec"].pop("token_bucket"), "rate_limits[0].spec.token_bucket"),
]


@pytest.mark.parametrize(("change", "path"), [pytest.param(c, p, id=i) for i, c, p in BAD])
def test_a_malformed_resource_is_refused_with_its_path(change: Change, path: str) -> None:
    doc = good()
    change(doc)
    with pytest.raises(ConfigError) as info:
        parse_snapshot(doc, NODE)
    assert info.value.path == path, info.value
