"""canonical(): the JSON the control plane puts into snapshots, with Istio's defaults filled in."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshkit.config import canonical, default_retries, default_traffic_policy, load
from tests.unit.test_config_samples import (
    EVERYTHING_DR,
    EVERYTHING_VS,
    FIXTURE_FILES,
    FIXTURES,
    RATE_LIMIT,
    REVIEWS,
    edited,
)

NO_HEADERS = {"request": {"set": {}, "add": {}, "remove": []}, "response": {"set": {}, "add": {}, "remove": []}}
NO_LIMIT = 2**32 - 1


def one(source: Any) -> dict[str, Any]:
    (resource,) = load(source)
    return canonical(resource)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_fixture_is_plain_json(name: str) -> None:
    for resource in load(FIXTURES / name):
        form = canonical(resource)
        assert json.loads(json.dumps(form)) == form
        assert (form["kind"], form["namespace"], form["name"]) == (resource.KIND, resource.namespace, resource.name)


def test_the_jason_route_in_full() -> None:
    form = one(FIXTURES / "virtual-service-reviews-test-v2.yaml")
    assert form["spec"]["hosts"] == ["reviews.default.svc.cluster.local"]
    assert form["spec"]["gateways"] == ["mesh"]
    jason, everyone = form["spec"]["http"]
    assert jason == {
        "name": None,
        "match": [{
            "name": None, "uri": None, "method": None,
            "headers": {"end-user": {"type": "exact", "value": "jason"}},
            "without_headers": {}, "query_params": {}, "ignore_uri_case": False, "port": None, "source_labels": {},
            "gateways": [],
        }],
        "route": [{"destination": {"host": "reviews.default.svc.cluster.local", "subset": "v2", "port": None},
                   "weight": 100, "headers": NO_HEADERS}],
        "rewrite": None,
        "timeout": None,
        "retries": {"attempts": 2, "per_try_timeout": None,
                    "retry_on": ["connect-failure", "refused-stream", "unavailable", "cancelled",
                                 "retriable-status-codes"],
                    "retriable_status_codes": []},
        "fault": None,
        "mirror": None,
        "mirror_percentage": 0.0,
        "headers": NO_HEADERS,
    }
    assert everyone["match"] == [] and everyone["route"][0]["destination"]["subset"] == "v1"


def test_split_weights_and_faults() -> None:
    split = one(FIXTURES / "virtual-service-reviews-80-20.yaml")["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in split] == [("v1", 80), ("v2", 20)]
    delay = one(FIXTURES / "virtual-service-ratings-test-delay.yaml")["spec"]["http"][0]["fault"]
    assert delay == {"delay": {"fixed_delay": 7.0, "percentage": 100.0}, "abort": None}
    abort = one(FIXTURES / "virtual-service-ratings-test-abort.yaml")["spec"]["http"][0]["fault"]
    assert abort == {"delay": None, "abort": {"http_status": 500, "percentage": 100.0}}


def test_every_virtual_service_field_in_canonical_form() -> None:
    route = one(EVERYTHING_VS)["spec"]["http"][0]
    match = route["match"][0]
    assert match["uri"] == {"type": "regex", "value": "/reviews/[0-9]+"}
    assert match["headers"]["x-canary"] == {"type": "present", "value": ""}
    assert match["without_headers"] == {"x-skip": {"type": "prefix", "value": "yes"}}
    assert (match["ignore_uri_case"], match["port"], match["source_labels"]) == (True, 9080, {"app": "productpage"})
    assert route["route"][0]["destination"] == {"host": "reviews.shop.svc.cluster.local", "subset": "v2",
                                                "port": 9080}
    assert route["route"][0]["headers"]["request"]["set"] == {"x-version": "v2"}
    assert (route["timeout"], route["rewrite"]) == (1.5, {"uri": "/v2/reviews"})
    assert route["retries"] == {"attempts": 3, "per_try_timeout": 0.3,
                                "retry_on": ["5xx", "connect-failure", "retriable-status-codes"],
                                "retriable_status_codes": [503]}
    assert route["fault"]["delay"] == {"fixed_delay": 120.0, "percentage": 0.5}
    assert (route["mirror"]["subset"], route["mirror_percentage"]) == ("v3", 20.0)
    assert route["headers"]["response"] == {"set": {}, "add": {"x-mesh": "meshkit"}, "remove": ["server"]}


@pytest.mark.parametrize(
    "retries, expected",
    [
        ({"attempts": 0}, {"attempts": 0, "per_try_timeout": None, "retry_on": [], "retriable_status_codes": []}),
        ({"retryOn": "5xx"}, {"attempts": 0, "per_try_timeout": None, "retry_on": [], "retriable_status_codes": []}),
        ({"attempts": 4}, {**default_retries(), "attempts": 4}),
        ({"attempts": 1, "retryOn": "gateway-error"},
         {"attempts": 1, "per_try_timeout": None, "retry_on": ["gateway-error"], "retriable_status_codes": []}),
        ({"attempts": 1, "retryOn": "502, 504"},
         {"attempts": 1, "per_try_timeout": None, "retry_on": ["retriable-status-codes"],
          "retriable_status_codes": [502, 504]}),
    ],
)
def test_retries_start_from_istios_default(retries: dict[str, Any], expected: dict[str, Any]) -> None:
    assert one(edited(REVIEWS, "spec.http[0].retries", retries))["spec"]["http"][0]["retries"] == expected


def test_a_mirror_without_percentage_copies_everything() -> None:
    form = one(edited(REVIEWS, "spec.http[0].mirror", {"host": "reviews", "subset": "v2"}))
    assert form["spec"]["http"][0]["mirror_percentage"] == 100.0


def test_a_destination_rule_gets_istios_defaults() -> None:
    (reviews,) = [r for r in load(FIXTURES / "destination-rule-all.yaml") if r.name == "reviews"]
    spec = canonical(reviews)["spec"]
    assert spec["host"] == "reviews.default.svc.cluster.local"
    assert spec["traffic_policy"] == default_traffic_policy() == {
        "load_balancer": {"simple": "LEAST_REQUEST", "consistent_hash": None},
        "connection_pool": {
            "tcp": {"max_connections": NO_LIMIT, "connect_timeout": 10.0},
            "http": {"http1_max_pending_requests": NO_LIMIT, "http2_max_requests": NO_LIMIT,
                     "max_requests_per_connection": 0, "max_retries": NO_LIMIT},
        },
        "outlier_detection": None,
        "tls": {"mode": None},
    }
    assert [(s["name"], s["labels"]) for s in spec["subsets"]] == [
        ("v1", {"version": "v1"}), ("v2", {"version": "v2"}), ("v3", {"version": "v3"})]


def test_every_destination_rule_field_and_subset_merging() -> None:
    spec = one(EVERYTHING_DR)["spec"]
    policy = spec["traffic_policy"]
    assert policy["load_balancer"] == {"simple": "LEAST_REQUEST", "consistent_hash": None}
    assert policy["connection_pool"] == {
        "tcp": {"max_connections": 10, "connect_timeout": 0.25},
        "http": {"http1_max_pending_requests": 1, "http2_max_requests": 5, "max_requests_per_connection": 1,
                 "max_retries": 3},
    }
    assert policy["outlier_detection"] == {"consecutive_5xx_errors": 3, "consecutive_gateway_errors": 2,
                                           "interval": 5.0, "base_ejection_time": 60.0, "max_ejection_percent": 50}
    assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}
    subset_policy = spec["subsets"][0]["traffic_policy"]
    assert subset_policy["load_balancer"] == {"simple": None, "consistent_hash": {"http_header_name": "x-user"}}
    assert {key: subset_policy[key] for key in ("connection_pool", "outlier_detection", "tls")} == {
        key: policy[key] for key in ("connection_pool", "outlier_detection", "tls")}


def test_outlier_detection_defaults_fill_what_is_not_set() -> None:
    rule = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "r"},
            "spec": {"host": "reviews", "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 0},
                                                          "connectionPool": {"tcp": {"maxConnections": 0}}}}}
    policy = one(rule)["spec"]["traffic_policy"]
    assert policy["outlier_detection"] == {"consecutive_5xx_errors": 0, "consecutive_gateway_errors": 0,
                                           "interval": 10.0, "base_ejection_time": 30.0, "max_ejection_percent": 10}
    assert policy["connection_pool"]["tcp"]["max_connections"] == NO_LIMIT


def test_security_kinds() -> None:
    assert one(FIXTURES / "peer-authentication-mesh-strict.yaml")["spec"] == {
        "selector": None, "mtls": {"mode": "STRICT"}}
    assert one(FIXTURES / "authorization-policy-allow-nothing.yaml")["spec"] == {
        "selector": None, "action": "ALLOW", "rules": [], "dry_run": False}
    viewer = one(FIXTURES / "authorization-policy-reviews-viewer.yaml")["spec"]
    assert viewer["selector"] == {"app": "reviews"}
    (rule,) = viewer["rules"]
    assert rule["from"] == [{"principals": ["cluster.local/ns/default/sa/bookinfo-productpage"],
                             "not_principals": [], "namespaces": [], "not_namespaces": [],
                             "service_accounts": [], "not_service_accounts": []}]
    assert rule["to"][0]["methods"] == ["GET"] and rule["when"] == []


def test_authorization_ports_become_numbers() -> None:
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "p"},
              "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["9080"], "notPaths": ["/a*"]}}],
                                                    "when": [{"key": "source.namespace", "notValues": ["x"]}]}]}}
    (rule,) = one(policy)["spec"]["rules"]
    assert (rule["to"][0]["ports"], rule["to"][0]["not_paths"]) == ([9080], ["/a*"])
    assert rule["when"] == [{"key": "source.namespace", "values": [], "not_values": ["x"]}]


def test_local_rate_limit() -> None:
    assert one(RATE_LIMIT)["spec"] == {
        "selector": {"app": "ratings"},
        "token_bucket": {"max_tokens": 10, "tokens_per_fill": 2, "fill_interval": 1.0},
        "paths": [],
    }
