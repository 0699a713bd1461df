"""Widget values to Istio resources: each builder edits only its own part, and the result loads as Istio config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshkit import config
from meshkit.notebook import istio

ISTIO = Path(__file__).resolve().parent / "fixtures" / "istio"


def sample(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ISTIO / name).read_text()) if d]


def loads(resource: dict[str, Any]) -> None:
    """The resource passes meshkit's (and Istio's) schema and rules."""
    assert len(config.load(resource)) == 1


RULES = sample("destination-rule-all.yaml")
for _rule in RULES:
    _rule["metadata"]["namespace"] = "default"


def test_the_destination_rule_is_found_by_any_spelling_of_its_host() -> None:
    spelled = {**RULES[1], "spec": {**RULES[1]["spec"], "host": "reviews.default.svc.cluster.local"}}
    for rules in (RULES, [spelled]):
        found = istio.find_destination_rule(rules, "reviews", "default")
        assert found is not None and istio.subsets(found) == ["v1", "v2", "v3"]
    assert istio.find_destination_rule(RULES, "reviews", "other") is None
    assert istio.subset_versions(RULES[1]) == {"v1": "v1", "v2": "v2", "v3": "v3"}


def test_a_split_becomes_the_default_rule_and_zero_weights_are_left_out() -> None:
    vs = istio.with_split(None, "reviews", "default", {"v1": 80, "v2": 20, "v3": 0})
    loads(vs)
    assert vs["metadata"] == {"name": "reviews", "namespace": "default"}
    assert vs["spec"]["http"] == [{"route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 80},
        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 20},
    ]}]
    assert istio.split_of(vs) == {"v1": 80, "v2": 20}


def test_a_split_keeps_match_rules_and_route_policies() -> None:
    jason = sample("virtual-service-reviews-test-v2.yaml")[0]
    jason["spec"]["http"][1]["timeout"] = "2s"
    vs = istio.with_split(jason, "reviews", "default", {"v1": 50, "v3": 50})
    loads(vs)
    assert vs["spec"]["http"][0] == jason["spec"]["http"][0]
    assert vs["spec"]["http"][1]["timeout"] == "2s"
    assert istio.split_of(vs) == {"v1": 50, "v3": 50}
    assert jason["spec"]["http"][1]["route"] == [{"destination": {"host": "reviews", "subset": "v1"}}], "input untouched"


def test_split_of_reads_istio_samples() -> None:
    assert istio.split_of(sample("virtual-service-reviews-80-20.yaml")[0]) == {"v1": 80, "v2": 20}
    assert istio.split_of(sample("virtual-service-all-v1.yaml")[1]) == {"v1": 100}
    assert istio.split_of(None) == {}


def test_a_header_rule_goes_first_and_the_default_rule_stays() -> None:
    split = istio.with_split(None, "reviews", "default", {"v1": 90, "v3": 10})
    vs = istio.with_header_route(split, "reviews", "default", "end-user", "exact", "jason", "v2")
    loads(vs)
    first, default = vs["spec"]["http"]
    assert first["match"] == [{"headers": {"end-user": {"exact": "jason"}}}]
    assert first["route"] == [{"destination": {"host": "reviews", "subset": "v2"}}]
    assert istio.split_of(vs) == {"v1": 90, "v3": 10}
    again = istio.with_header_route(vs, "reviews", "default", "x-canary", "prefix", "yes", "v3", default_subset="v1")
    assert len(again["spec"]["http"]) == 2, "the rule is replaced, not added"
    assert again["spec"]["http"][0]["match"] == [{"headers": {"x-canary": {"prefix": "yes"}}}]
    assert istio.split_of(again) == {"v1": 100}
    assert istio.without_match_rules(again, "reviews", "default")["spec"]["http"] == [again["spec"]["http"][1]]


def test_a_replaced_header_rule_keeps_its_fault() -> None:
    vs = istio.with_header_route(None, "ratings", "default", "end-user", "exact", "jason", "v1")
    faulty = istio.with_rule_fields(vs, "ratings", "default", {"fault": istio.fault_block(0, 0, 500, 100)}, rule=0)
    again = istio.with_header_route(faulty, "ratings", "default", "end-user", "exact", "alice", "v1")
    assert again["spec"]["http"][0]["fault"] == {"abort": {"httpStatus": 500, "percentage": {"value": 100.0}}}


def test_route_fields_go_on_one_rule_or_every_rule_and_none_removes() -> None:
    vs = istio.with_header_route(None, "ratings", "default", "end-user", "exact", "jason", "v1")
    fault = istio.fault_block(7000, 100, 500, 0)
    one = istio.with_rule_fields(vs, "ratings", "default", {"fault": fault}, rule=0)
    loads(one)
    assert one["spec"]["http"][0]["fault"] == {"delay": {"fixedDelay": "7s", "percentage": {"value": 100.0}}}
    assert "fault" not in one["spec"]["http"][1]
    every = istio.with_rule_fields(one, "ratings", "default", {"retries": istio.retries_block(3, 250, "5xx"), "timeout": "1s"})
    loads(every)
    assert all(r["retries"] == {"attempts": 3, "perTryTimeout": "250ms", "retryOn": "5xx"} for r in every["spec"]["http"])
    cleared = istio.with_rule_fields(every, "ratings", "default", {"fault": None, "timeout": None})
    assert all("fault" not in r and "timeout" not in r for r in cleared["spec"]["http"])
    with pytest.raises(IndexError, match="no rule 5"):
        istio.with_rule_fields(vs, "ratings", "default", {"timeout": "1s"}, rule=5)


def test_route_fields_on_a_service_without_routes_get_a_route_to_the_service() -> None:
    vs = istio.with_rule_fields(None, "ratings", "default", {"timeout": istio.duration(1500)})
    loads(vs)
    assert vs["spec"]["http"] == [{"route": [{"destination": {"host": "ratings"}}], "timeout": "1500ms"}]


def test_fault_and_retry_blocks_say_off_by_leaving_things_out() -> None:
    assert istio.fault_block(0, 100, 500, 0) is None
    assert istio.fault_block(0, 0, 503, 25) == {"abort": {"httpStatus": 503, "percentage": {"value": 25.0}}}
    assert istio.retries_block(0, 0, "  ") == {"attempts": 0}
    assert [istio.duration(ms) for ms in (1, 250, 1000, 2500, 60000, 1.5)] == ["1ms", "250ms", "1s", "2500ms", "60s", "1.5ms"]


def test_rules_are_described_for_a_dropdown() -> None:
    vs = istio.with_header_route(istio.with_split(None, "reviews", "default", {"v1": 80, "v2": 20}),
                                 "reviews", "default", "end-user", "exact", "jason", "v2")
    assert [istio.describe_rule(r) for r in vs["spec"]["http"]] == [
        "end-user exact 'jason' -> v2", "default -> v1 80%, v2 20%"]


def test_a_breaker_keeps_the_subsets_and_load_balancer() -> None:
    rule = {**RULES[1], "spec": {**RULES[1]["spec"], "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}}
    pool = istio.connection_pool_block(1, 1, 0, 0)
    outlier = istio.outlier_detection_block(1, 1000, 30000, 100)
    dr = istio.with_traffic_policy(rule, "reviews", "default", pool, outlier)
    loads(dr)
    assert dr["spec"]["subsets"] == RULES[1]["spec"]["subsets"]
    assert dr["spec"]["trafficPolicy"] == {
        "loadBalancer": {"simple": "RANDOM"},
        "connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}},
        "outlierDetection": {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "30s",
                             "maxEjectionPercent": 100},
    }
    off = istio.with_traffic_policy(RULES[1], "reviews", "default", None, None)
    assert "trafficPolicy" not in off["spec"] and off["spec"]["subsets"] == RULES[1]["spec"]["subsets"]
    assert istio.connection_pool_block(0, 0, 0, 0) is None
    assert istio.with_traffic_policy(None, "ratings", "default", pool, None)["spec"]["host"] == "ratings"


def test_peer_authentication_for_a_namespace_or_a_workload() -> None:
    namespace = istio.peer_authentication("default", "STRICT")
    loads(namespace)
    assert namespace["metadata"]["name"] == "default" and namespace["spec"] == {"mtls": {"mode": "STRICT"}}
    workload = istio.peer_authentication("default", "DISABLE", istio.workload_labels("reviews", "v2"), "reviews-v2")
    loads(workload)
    assert workload["spec"]["selector"] == {"matchLabels": {"app": "reviews", "version": "v2"}}


def test_authorization_policy_names_the_caller_as_istio_does() -> None:
    deny = istio.authorization_policy("default", "DENY", service_account="bookinfo-productpage", path="/reviews/*",
                                      selector={"app": "reviews"})
    loads(deny)
    assert deny["metadata"]["name"] == "deny-bookinfo-productpage-to-reviews"
    assert deny["spec"]["rules"] == [{
        "from": [{"source": {"principals": ["cluster.local/ns/default/sa/bookinfo-productpage"]}}],
        "to": [{"operation": {"paths": ["/reviews/*"]}}],
    }]
    by_namespace = istio.authorization_policy("default", "ALLOW", caller_namespace="shop")
    loads(by_namespace)
    assert by_namespace["spec"] == {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["shop"]}}]}]}
    assert istio.dns_name("Deny: Bob's *weird* caller!") == "deny-bob-s-weird-caller"
