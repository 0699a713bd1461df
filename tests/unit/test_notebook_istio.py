"""Istio resources to widget values and back: each writer edits only its own part, and the result loads as Istio config."""

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
    assert istio.without_header_route(again)["spec"]["http"] == [again["spec"]["http"][1]]


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


# -- reading the lab, and keeping what no control owns ------------------------


def test_merged_writes_the_fields_named_and_keeps_the_rest() -> None:
    existing = {"tcp": {"maxConnections": 1, "connectTimeout": "30ms"}, "http": {"maxRetries": 3}}
    changes = {"tcp": {"maxConnections": 5}, "http": {"maxRetries": None}}
    assert istio.merged(existing, changes) == {"tcp": {"maxConnections": 5, "connectTimeout": "30ms"}}
    assert istio.merged({"a": 1}, {"a": None}) is None, "nothing left: the block goes"
    assert istio.merged(None, {"a": {"b": None}}) is None
    assert existing["http"] == {"maxRetries": 3}, "input untouched"


def test_a_refresh_keeps_what_the_learner_is_editing_and_takes_the_rest_from_the_lab() -> None:
    loaded = {"delay_ms": 0, "abort_percent": 0.0, "abort_status": 500}
    shown = {"delay_ms": 0, "abort_percent": 25.0, "abort_status": 500}
    incoming = {"delay_ms": 50, "abort_percent": 10.0, "abort_status": 500}
    assert istio.merge_edits(loaded, shown, incoming) == ({"delay_ms": 50, "abort_percent": 25.0, "abort_status": 500},
                                                          ["abort_percent"])
    assert istio.merge_edits({}, {"a": 1}, {"a": 2}) == ({"a": 2}, []), "never read: the lab's value"
    assert istio.merge_edits({"a": 1}, {"a": 2}, {"a": 2}) == ({"a": 2}, []), "the lab agrees with the edit"


def test_durations_read_back_as_whole_milliseconds() -> None:
    assert [istio.milliseconds(t) for t in ("1.5s", "250ms", "2m", None, "bogus")] == [1500, 250, 120_000, 0, 0]
    assert istio.milliseconds(None, 10_000) == 10_000


def test_a_split_keeps_each_destinations_port_and_host_spelling() -> None:
    fqdn = "reviews.default.svc.cluster.local"
    vs = istio.with_split(None, "reviews", "default", {"v1": 50, "v2": 50})
    vs["spec"]["http"][0]["route"][0]["destination"] = {"host": fqdn, "subset": "v1", "port": {"number": 9080}}
    vs["spec"]["http"][0]["route"][0]["headers"] = {"response": {"set": {"x-split": "yes"}}}
    vs["metadata"]["labels"] = {"team": "reviews"}
    again = istio.with_split(vs, "reviews", "default", {"v1": 20, "v3": 80})
    loads(again)
    first, second = again["spec"]["http"][0]["route"]
    assert first == {**vs["spec"]["http"][0]["route"][0], "weight": 20}
    assert second == {"destination": {"host": fqdn, "subset": "v3"}, "weight": 80}
    assert again["metadata"] == vs["metadata"]


def test_the_header_widget_reads_and_edits_istios_own_header_rule_in_place() -> None:
    jason = sample("virtual-service-reviews-test-v2.yaml")[0]
    jason["metadata"]["namespace"] = "default"
    jason["spec"]["http"][0]["timeout"] = "3s"
    uri_rule = {"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "reviews", "subset": "v3"}}]}
    jason["spec"]["http"].insert(1, uri_rule)
    assert istio.header_rule_index(jason) == 0
    assert istio.header_route_values(jason, ["v1", "v2", "v3"]) == {
        "header": "end-user", "match_type": "exact", "value": "jason", "subset": "v2", "default": istio.KEEP}
    kim = istio.with_header_route(jason, "reviews", "default", "end-user", "exact", "kim", "v3")
    loads(kim)
    assert kim["spec"]["http"][0] == {"match": [{"headers": {"end-user": {"exact": "kim"}}}],
                                      "route": [{"destination": {"host": "reviews", "subset": "v3"}}],
                                      "timeout": "3s"}
    assert kim["spec"]["http"][1:] == jason["spec"]["http"][1:], "the uri rule and the default rule stay"
    removed = istio.without_header_route(kim)
    assert removed["spec"]["http"] == jason["spec"]["http"][1:]
    assert istio.header_route_values(removed, ["v1"]) == {**istio.HEADER_DEFAULTS, "subset": "v1",
                                                          "default": istio.KEEP}


def test_route_policies_start_on_the_rule_that_has_them() -> None:
    vs = istio.with_header_route(None, "ratings", "default", "end-user", "exact", "jason", "v1")
    assert istio.policy_rule(vs, istio.FAULT_KEYS) is None, "no rule has a fault: every rule"
    faulty = istio.with_rule_fields(vs, "ratings", "default", {"fault": istio.fault_block(0, 0, 500, 100)}, rule=1)
    assert istio.policy_rule(faulty, istio.FAULT_KEYS) == 1
    assert istio.fault_values(istio.rule_policy(faulty, None, istio.FAULT_KEYS)) == {
        "delay_ms": 0, "delay_percent": 100.0, "abort_status": 500, "abort_percent": 100.0}
    assert istio.fault_values(istio.rule_policy(faulty, 0, istio.FAULT_KEYS))["abort_percent"] == 0.0
    every = istio.with_rule_fields(faulty, "ratings", "default", {"fault": istio.fault_block(0, 0, 500, 100)})
    assert istio.policy_rule(every, istio.FAULT_KEYS) is None


def test_istios_fault_samples_read_back_into_the_fault_widget() -> None:
    delay = sample("virtual-service-ratings-test-delay.yaml")[0]
    abort = sample("virtual-service-ratings-test-abort.yaml")[0]
    assert istio.fault_values(delay["spec"]["http"][0]) == {
        "delay_ms": 7000, "delay_percent": 100.0, "abort_status": 500, "abort_percent": 0.0}
    assert istio.fault_values(abort["spec"]["http"][0]) == {
        "delay_ms": 0, "delay_percent": 100.0, "abort_status": 500, "abort_percent": 100.0}


def test_fault_changes_keep_fields_no_control_shows() -> None:
    rule = {"route": [], "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 10.0}},
                                   "abort": {"httpStatus": 503, "percentage": {"value": 5.0}}}}
    values = istio.fault_values(rule)
    same = istio.merged(rule, {"fault": istio.fault_changes(**values)})
    assert same == rule, "applying what was read changes nothing"
    off = istio.merged(rule, {"fault": istio.fault_changes(0, 100, 500, 0)})
    assert off == {"route": []}


def test_retries_read_as_istio_runs_them_and_unchanged_defaults_stay_implicit() -> None:
    assert istio.retry_values({}) == {"attempts": 2, "per_try_timeout_ms": 0, "retry_on": "", "timeout_ms": 0}
    assert istio.retry_values({"retries": {"perTryTimeout": "1s"}})["attempts"] == 0, "no attempts: retries off"
    assert istio.retry_changes({}, 2, 0, "", 1500) == {"retries": None, "timeout": "1500ms"}
    rule = {"route": [], "retries": {"attempts": 3, "retryOn": "5xx", "retryRemoteLocalities": True}, "timeout": "2s"}
    values = istio.retry_values(rule)
    assert values == {"attempts": 3, "per_try_timeout_ms": 0, "retry_on": "5xx", "timeout_ms": 2000}
    assert istio.merged(rule, istio.retry_changes(rule, **values)) == rule
    changed = istio.merged(rule, istio.retry_changes(rule, 5, 250, "", 0))
    assert changed == {"route": [], "retries": {"attempts": 5, "perTryTimeout": "250ms", "retryRemoteLocalities": True}}


PICK = {
    "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
    "metadata": {"name": "pick", "namespace": "default", "labels": {"team": "a"}},
    "spec": {"host": "pick", "trafficPolicy": {
        "loadBalancer": {"simple": "ROUND_ROBIN"},
        "outlierDetection": {"consecutive5xxErrors": 3, "interval": "1s", "baseEjectionTime": "10s",
                             "maxEjectionPercent": 100}}},
}


def breaker_apply(rule: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What BreakerWidget writes for these control values."""
    pool = istio.connection_pool_changes(values["max_connections"], values["max_pending"],
                                         values["max_per_connection"], values["max_retries"]) if values["pool_on"] else None
    outlier = istio.outlier_detection_block(values["consecutive_5xx"], values["interval_ms"],
                                            values["base_ejection_ms"], values["max_ejection_percent"]) \
        if values["outlier_on"] else None
    return istio.with_traffic_policy(rule, "pick", "default", pool, outlier)


def test_the_breaker_reads_notebook_07s_pick_rule_and_applying_it_keeps_the_outlier_detection() -> None:
    values = istio.breaker_values(PICK)
    assert values == {"pool_on": False, **istio.POOL_DEFAULTS, "outlier_on": True, "consecutive_5xx": 3,
                      "interval_ms": 1000, "base_ejection_ms": 10_000, "max_ejection_percent": 100}
    assert breaker_apply(PICK, values) == PICK, "pressing Apply without a change changes nothing"
    tripped = breaker_apply(PICK, {**values, "pool_on": True})
    loads(tripped)
    assert tripped["spec"]["trafficPolicy"]["outlierDetection"] == PICK["spec"]["trafficPolicy"]["outlierDetection"]
    assert tripped["spec"]["trafficPolicy"]["connectionPool"] == {"tcp": {"maxConnections": 1},
                                                                  "http": {"http1MaxPendingRequests": 1}}


def test_the_breaker_shows_istios_defaults_for_outlier_fields_not_set_and_keeps_pool_fields_it_has_no_control_for() -> None:
    rule = {"spec": {"host": "pick", "trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnections": 7, "connectTimeout": "30ms"}, "http": {"http2MaxRequests": 9}},
        "outlierDetection": {"consecutive5xxErrors": 1, "minHealthPercent": 50}}}}
    values = istio.breaker_values(rule)
    assert (values["max_connections"], values["max_pending"]) == (7, 0)
    assert (values["interval_ms"], values["base_ejection_ms"], values["max_ejection_percent"]) == (10_000, 30_000, 10)
    written = breaker_apply(rule, {**values, "max_connections": 0})["spec"]["trafficPolicy"]
    assert written["connectionPool"] == {"tcp": {"connectTimeout": "30ms"}, "http": {"http2MaxRequests": 9}}
    assert written["outlierDetection"]["minHealthPercent"] == 50


MESH_STRICT = sample("peer-authentication-mesh-strict.yaml")[0]


def pa(namespace: str, name: str, mode: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return istio.peer_authentication(namespace, mode, labels, name)


@pytest.mark.parametrize(("policies", "labels", "expected"), [
    ([], None, ("PERMISSIVE", "", "default")),
    ([MESH_STRICT], None, ("STRICT", "istio-system/default", "mesh")),
    ([MESH_STRICT], {"app": "reviews", "version": "v2"}, ("STRICT", "istio-system/default", "mesh")),
    ([MESH_STRICT, pa("default", "default", "PERMISSIVE")], None, ("PERMISSIVE", "default/default", "namespace")),
    ([MESH_STRICT, pa("default", "r", "DISABLE", {"app": "reviews"})], {"app": "reviews", "version": "v2"},
     ("DISABLE", "default/r", "workload")),
    ([MESH_STRICT, pa("default", "r", "DISABLE", {"app": "reviews"})], None, ("STRICT", "istio-system/default", "mesh")),
    ([MESH_STRICT, pa("default", "r", "UNSET", {"app": "reviews"})], {"app": "reviews"},
     ("STRICT", "istio-system/default", "mesh")),
    ([pa("other", "default", "DISABLE")], None, ("PERMISSIVE", "", "default")),
])
def test_the_mode_in_force_and_where_it_comes_from(
    policies: list[dict[str, Any]], labels: dict[str, str] | None, expected: tuple[str, str, str]
) -> None:
    assert tuple(istio.mtls_in_force(policies, "default", labels)) == expected


def test_the_mode_is_described_with_its_source() -> None:
    assert istio.mtls_in_force([MESH_STRICT], "default", None).describe() == (
        "STRICT: set mesh-wide by PeerAuthentication istio-system/default")
    assert istio.mtls_in_force([MESH_STRICT], "istio-system", None).describe() == (
        "STRICT: set mesh-wide by PeerAuthentication istio-system/default"), "seen from the root namespace itself too"
    assert "Istio's default" in istio.mtls_in_force([], "default", None).describe()


def test_a_scope_writes_the_policy_that_decides_it_and_keeps_its_other_fields() -> None:
    named = pa("default", "namespace-wide", "PERMISSIVE")
    named["metadata"]["labels"] = {"owner": "platform"}
    shared = pa("default", "all-reviews", "PERMISSIVE", {"app": "reviews"})
    policies = [MESH_STRICT, named, shared]
    namespace = istio.mtls_policy(policies, "default", "STRICT")
    assert namespace == {**named, "spec": {"mtls": {"mode": "STRICT"}}}
    workload = istio.mtls_policy(policies, "default", "DISABLE", "reviews-v2", {"app": "reviews", "version": "v2"})
    assert workload["metadata"]["name"] == "all-reviews" and workload["spec"]["selector"] == shared["spec"]["selector"]
    fresh = istio.mtls_policy(policies, "default", "DISABLE", "ratings-v1", {"app": "ratings", "version": "v1"})
    loads(fresh)
    assert fresh == pa("default", "ratings-v1", "DISABLE", {"app": "ratings", "version": "v1"})
    assert istio.mtls_policy([MESH_STRICT], "default", "STRICT") == pa("default", "default", "STRICT"), \
        "the mesh-wide policy is not the namespace's"
    assert tuple(istio.mtls_in_force([MESH_STRICT, namespace, workload], "default",
                                     {"app": "reviews", "version": "v2"})) == ("DISABLE", "default/all-reviews", "workload")


def test_an_authorization_policy_reads_into_the_form_and_writes_back_only_what_the_form_owns() -> None:
    viewer = sample("authorization-policy-reviews-viewer.yaml")[0]
    viewer["metadata"]["namespace"] = "default"
    values = istio.authorization_values(viewer, "default")
    assert values["target"] == "reviews" and values["action"] == viewer["spec"].get("action", "ALLOW")
    policy = {
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "guard", "namespace": "default", "annotations": {"why": "lab"}},
        "spec": {"selector": {"matchLabels": {"app": "reviews", "version": "v2"}}, "action": "DENY",
                 "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/cart"],
                                                 "notNamespaces": ["x"]}}],
                            "to": [{"operation": {"paths": ["/a"], "methods": ["GET"]}}],
                            "when": [{"key": "request.headers[x]", "values": ["1"]}]},
                           {"to": [{"operation": {"paths": ["/b"]}}]}]},
    }
    values = istio.authorization_values(policy, "default")
    assert values == {"target": "reviews", "action": "DENY", "caller_kind": "service account", "caller": "cart",
                      "caller_namespace": "shop", "path": "/a"}
    def write(v: dict[str, str]) -> dict[str, Any]:
        return istio.with_authorization(
            policy, v["action"], target=v["target"], path=v["path"],
            service_account=v["caller"] if v["caller_kind"] == "service account" else "",
            caller_namespace=v["caller_namespace"] if v["caller_kind"] != "anyone" else "")
    assert write(values) == policy, "applying what was read changes nothing"
    edited = write({**values, "caller_kind": "namespace", "caller_namespace": "legacy", "path": "", "target": ""})
    loads(edited)
    rule = edited["spec"]["rules"][0]
    assert rule["from"] == [{"source": {"namespaces": ["legacy"], "notNamespaces": ["x"]}}]
    assert rule["to"] == [{"operation": {"methods": ["GET"]}}] and rule["when"] == policy["spec"]["rules"][0]["when"]
    assert edited["spec"]["rules"][1] == policy["spec"]["rules"][1]
    assert edited["spec"]["selector"] == {"matchLabels": {"version": "v2"}} and edited["metadata"] == policy["metadata"]
    assert "first rule's first caller" in istio.authorization_note(policy)


def test_allow_nothing_stays_allow_nothing_and_says_so() -> None:
    nothing = sample("authorization-policy-allow-nothing.yaml")[0]
    values = istio.authorization_values(nothing, "default")
    assert (values["caller_kind"], values["path"]) == ("anyone", "")
    assert istio.with_authorization(nothing, values["action"], target=values["target"]) == nothing
    assert "matches no request" in istio.authorization_note(nothing)
    assert istio.authorization_for([nothing], "") == nothing["metadata"]["name"]
    assert istio.authorization_for([nothing], "reviews") == istio.NEW_POLICY
    anyone = istio.authorization_policy("default", "ALLOW")
    loads(anyone)
    assert anyone["spec"] == {"action": "ALLOW", "rules": [{}]}, "a new policy for anyone matches every request"
