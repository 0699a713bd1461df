"""Invalid resources are refused with the kind, the name, the exact field path and a plain reason."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.config import load, parse
from meshkit.errors import ConfigError
from tests.unit.test_config_samples import DELETE, REVIEWS, edited

DR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews"},
    "spec": {
        "host": "reviews",
        "trafficPolicy": {"loadBalancer": {"simple": "LEAST_CONN"}, "tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
    },
}
AUTHZ = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "viewer", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "reviews"}},
        "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/productpage"]}}],
                "to": [{"operation": {"methods": ["GET"], "ports": ["9080"]}}],
                "when": [{"key": "request.headers[x-user]", "values": ["jason"]}],
            }
        ],
    },
}
PEER = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "default"},
    "spec": {"mtls": {"mode": "STRICT"}},
}
LIMIT = {
    "apiVersion": "meshkit.dev/v1alpha1",
    "kind": "LocalRateLimit",
    "metadata": {"name": "slow-down"},
    "spec": {"tokenBucket": {"maxTokens": 10, "fillInterval": "1s"}, "paths": ["/api/*"]},
}
HTTP0 = "spec.http[0]"
VS_CASES: list[tuple[str, Any, str, str]] = [
    # (field edited in REVIEWS, new value, expected path, words in the reason)
    (f"{HTTP0}.route[1].weight", 20, f"{HTTP0}.route", "weights add up to 110"),
    (f"{HTTP0}.route[1].weight", DELETE, f"{HTTP0}.route", "weights add up to 90"),
    (f"{HTTP0}.route[0].weight", 120, f"{HTTP0}.route[0].weight", "must be at most 100, got 120"),
    (f"{HTTP0}.route[0].weight", -5, f"{HTTP0}.route[0].weight", "must be at least 0"),
    (f"{HTTP0}.route[0].weight", "ten", f"{HTTP0}.route[0].weight", "must be a whole number, got string 'ten'"),
    (f"{HTTP0}.route[0].weight", "50", f"{HTTP0}.route[0].weight", "must be a whole number"),
    (f"{HTTP0}.match[0].uri", {"regex": "([a-"}, f"{HTTP0}.match[0].uri.regex", "does not compile"),
    (f"{HTTP0}.match[0].uri", {"regex": r"/(a)\1"}, f"{HTTP0}.match[0].uri.regex", "backreferences"),
    (f"{HTTP0}.match[0].uri", {"regex": "/(?!admin).*"}, f"{HTTP0}.match[0].uri.regex", "RE2 does not have"),
    (f"{HTTP0}.match[0].uri", {"exact": "/a", "prefix": "/b"}, f"{HTTP0}.match[0].uri", "only one of"),
    (f"{HTTP0}.match[0].uri", {}, f"{HTTP0}.match[0].uri", "set one of exact, prefix or regex"),
    (f"{HTTP0}.match[0].uri", {"suffix": "/a"}, f"{HTTP0}.match[0].uri.suffix", "unknown field 'suffix'"),
    (f"{HTTP0}.match[0].headers", {"End-User": {"exact": "j"}}, f"{HTTP0}.match[0].headers.End-User",
     "must be lowercase"),
    (f"{HTTP0}.match[0].headers", {"end-user": "jason"}, f"{HTTP0}.match[0].headers.end-user",
     "must be a mapping, got string"),
    (f"{HTTP0}.match[0].queryParams", {"q": {}}, f"{HTTP0}.match[0].queryParams.q", "set one of"),
    (f"{HTTP0}.match[0].sourceLabels", {"app": "a b"}, f"{HTTP0}.match[0].sourceLabels.app", "label value"),
    (f"{HTTP0}.match[0].gateways", ["mesh", "Bookinfo_Gateway"], f"{HTTP0}.match[0].gateways[1]", "names no Gateway"),
    (f"{HTTP0}.timeout", "-1s", f"{HTTP0}.timeout", "'-1s' is negative"),
    (f"{HTTP0}.timeout", "1x", f"{HTTP0}.timeout", "'1x' is not a duration"),
    (f"{HTTP0}.timeout", "0s", f"{HTTP0}.timeout", "at least 1ms"),
    (f"{HTTP0}.timeout", 5, f"{HTTP0}.timeout", "must be a duration string"),
    (f"{HTTP0}.rouet", [], f"{HTTP0}.rouet", "unknown field 'rouet'; did you mean 'route'?"),
    (f"{HTTP0}.route", [], f"{HTTP0}.route", "at least one destination"),
    (f"{HTTP0}.route[0].destination", {"subset": "v1"}, f"{HTTP0}.route[0].destination.host",
     "required field is missing"),
    (f"{HTTP0}.route[0].destination.host", "*.example.com", f"{HTTP0}.route[0].destination.host", "wildcard"),
    (f"{HTTP0}.route[0].destination.host", "reviews:9080", f"{HTTP0}.route[0].destination.host",
     "not a host name"),
    (f"{HTTP0}.route[0].destination.port", {"number": 0}, f"{HTTP0}.route[0].destination.port.number",
     "at least 1"),
    (f"{HTTP0}.fault.abort.percentage.value", 120, f"{HTTP0}.fault.abort.percentage.value",
     "must be at most 100, got 120"),
    (f"{HTTP0}.fault.abort.httpStatus", 99, f"{HTTP0}.fault.abort.httpStatus", "must be at least 200, got 99"),
    (f"{HTTP0}.fault.abort.httpStatus", 600, f"{HTTP0}.fault.abort.httpStatus", "must be at most 599"),
    (f"{HTTP0}.fault.abort.percent", 50, f"{HTTP0}.fault.abort.percent", "write percentage: {value: N}"),
    (f"{HTTP0}.fault.abort.grpcStatus", "UNAVAILABLE", f"{HTTP0}.fault.abort.grpcStatus", "use httpStatus"),
    (f"{HTTP0}.fault", {}, f"{HTTP0}.fault", "a delay, an abort or both"),
    (f"{HTTP0}.fault", {"delay": {"fixedDelay": "1.0005s"}}, f"{HTTP0}.fault.delay.fixedDelay", "millisecond"),
    (f"{HTTP0}.fault", {"delay": {"percentage": {"value": 5}}}, f"{HTTP0}.fault.delay.fixedDelay",
     "required field is missing"),
    (f"{HTTP0}.retries", {"attempts": -1}, f"{HTTP0}.retries.attempts", "must be at least 0"),
    (f"{HTTP0}.retries", {"attempts": 3, "retryOn": "5xx,bogus"}, f"{HTTP0}.retries.retryOn",
     "unknown retry condition 'bogus'"),
    (f"{HTTP0}.retries", {"attempts": 3, "retryOn": "unavailable"}, f"{HTTP0}.retries.retryOn", "gRPC"),
    (f"{HTTP0}.retries", {"attempts": 3, "retryOn": "5xx,,reset"}, f"{HTTP0}.retries.retryOn", "empty condition"),
    (f"{HTTP0}.retries", {"attempts": 3, "retryOn": "999"}, f"{HTTP0}.retries.retryOn", "not an HTTP status"),
    (f"{HTTP0}.retries", {"attempts": 3, "perTryTimeout": "2"}, f"{HTTP0}.retries.perTryTimeout",
     "not a duration"),
    (f"{HTTP0}.retries", {"backoff": "1s"}, f"{HTTP0}.retries.backoff", "backoff is not supported in meshkit"),
    (f"{HTTP0}.redirect", {"uri": "/v2"}, f"{HTTP0}.redirect", "redirect is not supported in meshkit"),
    (f"{HTTP0}.corsPolicy", {}, f"{HTTP0}.corsPolicy", "CORS"),
    (f"{HTTP0}.rewrite", {"authority": "x"}, f"{HTTP0}.rewrite.authority", "not supported in meshkit"),
    (f"{HTTP0}.mirrorPercentage", {"value": 5}, f"{HTTP0}.mirrorPercentage", "needs a mirror"),
    (f"{HTTP0}.headers", {"request": {"set": {"x-a": "1\r\nx-b: 2"}}}, f"{HTTP0}.headers.request.set.x-a",
     "control characters"),
    (f"{HTTP0}.headers", {"response": {"remove": ["bad name"]}}, f"{HTTP0}.headers.response.remove[0]",
     "not a header name"),
    (f"{HTTP0}.headers", {"request": {"set": {"x-version": 2}}}, f"{HTTP0}.headers.request.set.x-version",
     "put quotes around"),
    ("spec.tcp", [{"route": []}], "spec.tcp", "tcp is not supported in meshkit"),
    ("spec.tls", [], "spec.tls", "tls is not supported in meshkit"),
    ("spec.gateways", ["istio-system/"], "spec.gateways[0]", "'istio-system/' names no Gateway"),
    ("spec.hosts", ["*"], "spec.hosts[0]", "allowed only in a VirtualService bound to gateways alone"),
    ("spec.hosts", [], "spec.hosts", "at least one host"),
    ("spec.hosts", "reviews", "spec.hosts", "must be a list, got string"),
    ("spec.http", [], "spec.http", "at least one http route"),
    ("spec", DELETE, "spec", "required field is missing"),
    ("apiVersion", "networking.istio.io/v2", "apiVersion", "networking.istio.io/v1, networking.istio.io/v1beta1"),
    ("apiVersion", "security.istio.io/v1", "apiVersion", "not 'security.istio.io/v1'"),
    ("apiVersion", DELETE, "apiVersion", "required field is missing"),
    ("status", {}, "status", "unknown field"),
    ("metadata.uid", "1", "metadata.uid", "unknown field 'uid'"),
    ("metadata.namespace", "Shop", "metadata.namespace", "not a valid name"),
]


@pytest.mark.parametrize("field, value, path, words", VS_CASES)
def test_virtual_service_errors(field: str, value: Any, path: str, words: str) -> None:
    assert_refused(edited(REVIEWS, field, value), "VirtualService", "reviews", path, words)


OTHER_CASES: list[tuple[dict[str, Any], str, Any, str, str, str, str]] = [
    # (resource, field, value, kind, name, path, words)
    (DR, "spec.trafficPolicy.tls.mode", "SIMPLE", "DestinationRule", "reviews", "spec.trafficPolicy.tls.mode",
     "SIMPLE is not supported in meshkit"),
    (DR, "spec.trafficPolicy.tls.mode", "MUTUAL", "DestinationRule", "reviews", "spec.trafficPolicy.tls.mode",
     "ISTIO_MUTUAL"),
    (DR, "spec.trafficPolicy.tls.sni", "x", "DestinationRule", "reviews", "spec.trafficPolicy.tls.sni",
     "sni is not supported"),
    (DR, "spec.trafficPolicy.loadBalancer.simple", "FASTEST", "DestinationRule", "reviews",
     "spec.trafficPolicy.loadBalancer.simple", "must be one of UNSPECIFIED, ROUND_ROBIN"),
    (DR, "spec.trafficPolicy.loadBalancer.consistentHash", {"httpHeaderName": "x-user"}, "DestinationRule",
     "reviews", "spec.trafficPolicy.loadBalancer", "either simple or consistentHash"),
    (DR, "spec.trafficPolicy.loadBalancer", {"consistentHash": {"useSourceIp": True}}, "DestinationRule", "reviews",
     "spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp", "httpHeaderName"),
    (DR, "spec.trafficPolicy.portLevelSettings", [], "DestinationRule", "reviews",
     "spec.trafficPolicy.portLevelSettings", "one port"),
    (DR, "spec.trafficPolicy.outlierDetection", {"maxEjectionPercent": 101}, "DestinationRule", "reviews",
     "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "at most 100"),
    (DR, "spec.trafficPolicy.outlierDetection", {"interval": "-1s"}, "DestinationRule", "reviews",
     "spec.trafficPolicy.outlierDetection.interval", "negative"),
    (DR, "spec.trafficPolicy.connectionPool", {"tcp": {"maxConnections": -1}}, "DestinationRule", "reviews",
     "spec.trafficPolicy.connectionPool.tcp.maxConnections", "at least 0"),
    (DR, "spec.subsets", [{"name": "v1"}, {"name": "v1"}], "DestinationRule", "reviews", "spec.subsets[1].name",
     "defined twice"),
    (DR, "spec.subsets", [{"name": "V1"}], "DestinationRule", "reviews", "spec.subsets[0].name", "not a valid name"),
    (DR, "spec.host", "*", "DestinationRule", "reviews", "spec.host", "wildcard"),
    (DR, "spec.workloadSelector", {}, "DestinationRule", "reviews", "spec.workloadSelector", "every caller"),
    (AUTHZ, "spec.action", "CUSTOM", "AuthorizationPolicy", "viewer", "spec.action", "CUSTOM is not supported"),
    (AUTHZ, "spec.action", "deny", "AuthorizationPolicy", "viewer", "spec.action", "must be one of ALLOW, DENY"),
    (AUTHZ, "spec.rules[0].from[0].source.ipBlocks", ["10.0.0.0/8"], "AuthorizationPolicy", "viewer",
     "spec.rules[0].from[0].source.ipBlocks", "ipBlocks is not supported in meshkit"),
    (AUTHZ, "spec.rules[0].from[0].source.requestPrincipals", ["*"], "AuthorizationPolicy", "viewer",
     "spec.rules[0].from[0].source.requestPrincipals", "JWT"),
    (AUTHZ, "spec.rules[0].from[0].source", {}, "AuthorizationPolicy", "viewer", "spec.rules[0].from[0].source",
     "an empty source would match everything"),
    (AUTHZ, "spec.rules[0].from[0]", {}, "AuthorizationPolicy", "viewer", "spec.rules[0].from[0].source",
     "required field is missing"),
    (AUTHZ, "spec.rules[0].from[0].source.principals", ["cluster.local/*/sa/x"], "AuthorizationPolicy", "viewer",
     "spec.rules[0].from[0].source.principals[0]", "'*' may stand alone"),
    (AUTHZ, "spec.rules[0].from[0].source.principals", ["a\x00b"], "AuthorizationPolicy", "viewer",
     "spec.rules[0].from[0].source.principals[0]", "control characters"),
    (AUTHZ, "spec.rules[0].to[0].operation", {}, "AuthorizationPolicy", "viewer", "spec.rules[0].to[0].operation",
     "an empty operation"),
    (AUTHZ, "spec.rules[0].to[0].operation.ports", ["http"], "AuthorizationPolicy", "viewer",
     "spec.rules[0].to[0].operation.ports[0]", "not a port"),
    (AUTHZ, "spec.rules[0].to[0].operation.ports", [9080], "AuthorizationPolicy", "viewer",
     "spec.rules[0].to[0].operation.ports[0]", "must be a string"),
    (AUTHZ, "spec.rules[0].when[0].key", "source.ip", "AuthorizationPolicy", "viewer", "spec.rules[0].when[0].key",
     "key 'source.ip' is not supported in meshkit"),
    (AUTHZ, "spec.rules[0].when[0].key", "request.headers[bad name]", "AuthorizationPolicy", "viewer",
     "spec.rules[0].when[0].key", "not a header name"),
    (AUTHZ, "spec.rules[0].when[0].values", [], "AuthorizationPolicy", "viewer", "spec.rules[0].when[0]",
     "set values, notValues or both"),
    (AUTHZ, "spec.rules[0].when[0]", {"key": "destination.port", "values": ["x"]}, "AuthorizationPolicy", "viewer",
     "spec.rules[0].when[0].values[0]", "not a port"),
    (AUTHZ, "spec.provider", {"name": "ext"}, "AuthorizationPolicy", "viewer", "spec.provider", "not supported"),
    (AUTHZ, "spec.selector.matchLabels", {"app": "a/b"}, "AuthorizationPolicy", "viewer",
     "spec.selector.matchLabels.app", "label value"),
    (PEER, "spec.mtls.mode", "STRICTER", "PeerAuthentication", "default", "spec.mtls.mode",
     "must be one of UNSET, DISABLE, PERMISSIVE, STRICT"),
    (PEER, "spec.portLevelMtls", {"8080": {"mode": "DISABLE"}}, "PeerAuthentication", "default",
     "spec.portLevelMtls", "set mtls for the whole workload"),
    (PEER, "apiVersion", "networking.istio.io/v1", "PeerAuthentication", "default", "apiVersion",
     "security.istio.io/v1, security.istio.io/v1beta1 or meshkit.dev/v1alpha1, not"),
    (LIMIT, "spec.tokenBucket.fillInterval", "10ms", "LocalRateLimit", "slow-down", "spec.tokenBucket.fillInterval",
     "at least 50ms"),
    (LIMIT, "spec.tokenBucket.maxTokens", 0, "LocalRateLimit", "slow-down", "spec.tokenBucket.maxTokens",
     "at least 1"),
    (LIMIT, "spec.paths", ["/a*b"], "LocalRateLimit", "slow-down", "spec.paths[0]", "'*' may stand alone"),
    (LIMIT, "apiVersion", "networking.istio.io/v1", "LocalRateLimit", "slow-down", "apiVersion",
     "meshkit.dev/v1alpha1"),
    (LIMIT, "kind", "ServiceEntry", "ServiceEntry", "slow-down", "kind", "ServiceEntry is not supported in meshkit"),
    (LIMIT, "kind", "EnvoyFilter", "EnvoyFilter", "slow-down", "kind", "use kind LocalRateLimit"),
    (LIMIT, "kind", "Frobnicator", "Frobnicator", "slow-down", "kind", "unknown kind 'Frobnicator'"),
    (LIMIT, "kind", DELETE, "resource", "slow-down", "kind", "required field is missing"),
]


@pytest.mark.parametrize("resource, field, value, kind, name, path, words", OTHER_CASES)
def test_other_kinds_errors(
    resource: dict[str, Any], field: str, value: Any, kind: str, name: str, path: str, words: str
) -> None:
    assert_refused(edited(resource, field, value), kind, name, path, words)


def test_the_unedited_documents_are_valid() -> None:
    assert len(load([REVIEWS, DR, AUTHZ, PEER, LIMIT])) == 5


def test_a_non_mapping_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(["not", "a", "resource"])
    assert (caught.value.kind, caught.value.name, caught.value.path) == ("resource", "?", "")
    assert caught.value.reason == "must be a mapping, got list"


def test_the_message_reads_kind_name_path_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        load(edited(REVIEWS, f"{HTTP0}.route[1].weight", 20))
    assert str(caught.value).startswith("VirtualService 'reviews' at spec.http[0].route: weights add up to 110")


def assert_refused(obj: dict[str, Any], kind: str, name: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(obj)
    error = caught.value
    assert (error.kind, error.name, error.path) == (kind, name, path)
    assert words in error.reason
