"""HTTPRoute (Gateway API): the translation to a VirtualService as a table, each refusal with its field path,
export as written, and the per-version Services a backendRef may name."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshkit.config import ConfigContext, canonical, load, parse, to_istio_yaml, validate, validate_all
from meshkit.config.gateway_api import GatewayHTTPRoute
from meshkit.config.gateway_translation import percentages, to_virtual_service
from meshkit.config.hosts import version_service
from meshkit.control.snapshot import build_snapshot
from meshkit.core.routes import compile_routes
from meshkit.core.snapshot import parse_snapshot
from meshkit.errors import ConfigError
from tests.unit.test_config_samples import BOOKINFO_SERVICES
from tests.unit.test_control_snapshot import rec, state_of, with_resources

GATEWAY_API = Path(__file__).parent / "fixtures" / "gateway-api"
ROUTE_FILES = sorted(path.name for path in GATEWAY_API.glob("*.yaml") if path.name != "istio-bookinfo-gateway.yaml")
REVIEWS = "reviews.default.svc.cluster.local"
PORTS = {host: 9080 for host in BOOKINFO_SERVICES}
CONTEXT = ConfigContext(services=BOOKINFO_SERVICES, ports=PORTS)
SERVICE_PARENT = {"group": "", "kind": "Service", "name": "reviews", "port": 9080}


def route(*rules: dict[str, Any], parents: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "reviews"},
        "spec": {"parentRefs": [SERVICE_PARENT] if parents is None else parents, "rules": list(rules), **spec},
    }


def backend(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 9080}
    if weight is not None:
        ref["weight"] = weight
    return ref


V1 = {"backendRefs": [backend("reviews-v1")]}
TO_V1 = [{"destination": {"host": "reviews-v1.default.svc.cluster.local", "port": {"number": 9080}}}]


def vs_spec(obj: dict[str, Any]) -> dict[str, Any]:
    resource = GatewayHTTPRoute.model_validate({"metadata": obj["metadata"], "spec": obj["spec"]})
    spec: dict[str, Any] = to_virtual_service(resource).model_dump(mode="json", by_alias=True)["spec"]
    return spec


def http(name: str, uri: dict[str, str], target: list[dict[str, Any]] = TO_V1, **extra: Any) -> dict[str, Any]:
    match = {**extra.pop("match", {}), "uri": uri, "port": 9080}
    return {"name": name, "match": [match], "route": target, **extra}


TRANSLATIONS = [
    pytest.param(
        route(V1),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"})]},
        id="no matches: PathPrefix / on the parent's port, to the one backend",
    ),
    pytest.param(
        route({"backendRefs": [backend("reviews-v1", 90), backend("reviews-v2", 10)]}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"}, [
            {"destination": {"host": "reviews-v1.default.svc.cluster.local", "port": {"number": 9080}}, "weight": 90},
            {"destination": {"host": "reviews-v2.default.svc.cluster.local", "port": {"number": 9080}}, "weight": 10},
        ])]},
        id="weights 90/10 stay percentages",
    ),
    pytest.param(
        route({"backendRefs": [backend("reviews-v1"), backend("reviews-v3")]}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"}, [
            {"destination": {"host": "reviews-v1.default.svc.cluster.local", "port": {"number": 9080}}, "weight": 50},
            {"destination": {"host": "reviews-v3.default.svc.cluster.local", "port": {"number": 9080}}, "weight": 50},
        ])]},
        id="weight defaults to 1: an even split",
    ),
    pytest.param(
        route({"matches": [{"path": {"type": "PathPrefix", "value": "/reviews/"}}], **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"exact": "/reviews"}),
                                      http("default.reviews.0", {"prefix": "/reviews/"})]},
        id="PathPrefix matches whole segments: exact /reviews and prefix /reviews/ (trailing / ignored)",
    ),
    pytest.param(
        route({"matches": [{"path": {"type": "RegularExpression", "value": "/reviews/[0-9]+"}}], **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"regex": "/reviews/[0-9]+"})]},
        id="RegularExpression path",
    ),
    pytest.param(
        route(
            {"name": "catch-all", **V1},
            {"name": "exact", "matches": [{"path": {"type": "Exact", "value": "/health"}}], **V1},
            {"name": "jason", "matches": [{"headers": [{"name": "End-User", "value": "jason"},
                                                       {"name": "end-user", "value": "ignored"}]}], **V1},
            {"name": "longer", "matches": [{"path": {"value": "/reviews"}}], **V1},
        ),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [
            http("exact", {"exact": "/health"}),
            http("longer", {"exact": "/reviews"}),
            http("longer", {"prefix": "/reviews/"}),
            http("jason", {"prefix": "/"}, match={"headers": {"end-user": {"exact": "jason"}}}),
            http("catch-all", {"prefix": "/"}),
        ]},
        id="most specific first: Exact, longest prefix, then headers; header names lowercased, first one counts",
    ),
    pytest.param(
        route({"name": "regex", "matches": [{"path": {"type": "RegularExpression", "value": "/r/[0-9]+"}}], **V1},
              {"name": "all", **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("all", {"prefix": "/"}), http("regex", {"regex": "/r/[0-9]+"})]},
        id="a RegularExpression path ranks below every PathPrefix, / included, as istiod ranks it",
    ),
    pytest.param(
        route({"matches": [{"method": "POST", "queryParams": [{"name": "v", "value": "2"},
                                                            {"type": "RegularExpression", "name": "q", "value": "a.*"}],
                            "headers": [{"type": "RegularExpression", "name": "x-team", "value": "red|blue"}]}],
               **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"}, match={
            "method": {"exact": "POST"},
            "headers": {"x-team": {"regex": "red|blue"}},
            "queryParams": {"v": {"exact": "2"}, "q": {"regex": "a.*"}},
        })]},
        id="method, header regex and query parameters",
    ),
    pytest.param(
        route({"filters": [
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                "set": [{"name": "x-a", "value": "1"}], "add": [{"name": "x-b", "value": "2"}], "remove": ["x-c"]}},
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["server"]}},
        ], **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"}, headers={
            "request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]},
            "response": {"remove": ["server"]},
        })]},
        id="header modifiers become the route's header edits",
    ),
    pytest.param(
        route({"matches": [{"path": {"value": "/old"}}],
               "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                                                          "replacePrefixMatch": "/new"}}}], **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"exact": "/old"}, rewrite={"uri": "/new"}),
                                      http("default.reviews.0", {"prefix": "/old/"}, rewrite={"uri": "/new/"})]},
        id="ReplacePrefixMatch: /old -> /new and /old/x -> /new/x",
    ),
    pytest.param(
        route({"filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                                                          "replacePrefixMatch": "/v2"}}}], **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"}, rewrite={"uri": "/v2/"})]},
        id="ReplacePrefixMatch of the prefix /: /x -> /v2/x",
    ),
    pytest.param(
        route({"timeouts": {"request": "10s"}, **V1}, {"timeouts": {"request": "10s", "backendRequest": "2s"}, **V1},
              {"timeouts": {"request": "0s"}, **V1}),
        {"hosts": [REVIEWS], "gateways": ["mesh"], "http": [http("default.reviews.0", {"prefix": "/"}, timeout="10s"),
                                      http("default.reviews.1", {"prefix": "/"}, timeout="2s"),
                                      http("default.reviews.2", {"prefix": "/"})]},
        id="timeouts: request; backendRequest replaces it (as istiod does); 0s is none",
    ),
    pytest.param(
        route(V1, parents=[{"name": "bookinfo-gateway"}], hostnames=["bookinfo.example.com"]),
        {"hosts": ["bookinfo.example.com"], "gateways": ["default/bookinfo-gateway"], "http": [{
            "name": "default.reviews.0", "match": [{"uri": {"prefix": "/"}}], "route": TO_V1}]},
        id="a Gateway parent (the default kind) binds the VirtualService to it",
    ),
    pytest.param(
        route(V1, parents=[{"name": "ingress", "namespace": "istio-system", "kind": "Gateway"}]),
        {"hosts": ["*"], "gateways": ["istio-system/ingress"], "http": [{
            "name": "default.reviews.0", "match": [{"uri": {"prefix": "/"}}], "route": TO_V1}]},
        id="a Gateway route without hostnames answers for every host",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), TRANSLATIONS)
def test_translation(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert vs_spec(obj) == expected


@pytest.mark.parametrize(
    ("weights", "shares"),
    [
        ([90, 10], [90, 10]),
        ([1, 1], [50, 50]),
        ([1, 2], [33, 67]),
        ([1, 1, 1], [34, 33, 33]),
        ([1, 999], [1, 99]),
        ([0, 5], [0, 100]),
        ([500_000, 500_000], [50, 50]),
    ],
)
def test_weights_become_percentages(weights: list[int], shares: list[int]) -> None:
    assert percentages(weights) == shares
    assert sum(shares) == 100


def test_the_canonical_form_is_the_equivalent_virtual_services() -> None:
    resource = parse(route({"backendRefs": [backend("reviews-v1", 80), backend("reviews-v2", 20)]}))
    assert isinstance(resource, GatewayHTTPRoute)
    form = canonical(resource)
    assert form == canonical(to_virtual_service(resource))
    assert (form["kind"], form["namespace"], form["name"]) == ("VirtualService", "default", "reviews")


def edit(path: str, value: Any, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    """The route with `value` at a dotted path (list indexes as numbers)."""
    doc = copy.deepcopy(obj or route(V1))
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node: Any = doc
    for part in parents:
        node = node[part]
    node[last] = value
    return doc


REFUSALS = [
    (edit("spec.rules.0.filters", [{"type": "RequestMirror", "requestMirror": {}}]),
     "spec.rules[0].filters[0].requestMirror", "requestMirror is not supported in meshkit: mirroring"),
    (edit("spec.rules.0.filters", [{"type": "RequestRedirect"}]),
     "spec.rules[0].filters[0].type", "RequestRedirect is not supported in meshkit: meshkit's proxy does not answer"),
    (edit("spec.rules.0.filters", [{"type": "CORS"}]), "spec.rules[0].filters[0].type", "CORS is not supported"),
    (edit("spec.rules.0.retry", {"attempts": 3}), "spec.rules[0].retry", "retry is not supported in meshkit: retry is"),
    (edit("spec.rules.0.sessionPersistence", {}), "spec.rules[0].sessionPersistence",
     "sessionPersistence is not supported in meshkit"),
    (edit("spec.parentRefs.0.sectionName", "http"), "spec.parentRefs[0].sectionName",
     "sectionName is not supported in meshkit"),
    (edit("spec.useDefaultGateways", "All"), "spec.useDefaultGateways", "useDefaultGateways is not supported"),
    (edit("spec.rules.0.backendRefs.0.filters", []), "spec.rules[0].backendRefs[0].filters",
     "filters is not supported in meshkit: per-backend filters"),
    (edit("spec.rules.0.filters", [{"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]),
     "spec.rules[0].filters[0].urlRewrite.hostname", "hostname is not supported in meshkit"),
    (edit("spec.rules.0.filters", [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath"}}}]),
     "spec.rules[0].filters[0].urlRewrite.path.type", "ReplaceFullPath is not supported in meshkit"),
    (edit("spec.rules.0.backendRefs.0.kind", "ServiceImport"), "spec.rules[0].backendRefs[0].kind",
     "backendRef ServiceImport (core) is not supported in meshkit: a backendRef names a Service"),
    (edit("spec.rules.0.backendRefs.0.namespace", "shop"), "spec.rules[0].backendRefs[0].namespace",
     "a backendRef to another namespace is not supported in meshkit: a Gateway API reference"),
    (edit("spec.parentRefs.0.namespace", "shop"), "spec.parentRefs[0].namespace",
     "a parentRef to another namespace is not supported in meshkit: a route in another namespace"),
    (edit("spec.parentRefs.0.group", None), "spec.parentRefs[0].group", 'kind Service is in group "" (or core)'),
    (edit("spec.parentRefs.0.kind", "ServiceImport"), "spec.parentRefs[0].kind",
     "ServiceImport (core) is not supported in meshkit"),
    (edit("spec.parentRefs", [SERVICE_PARENT, {"name": "gw", "kind": "Gateway"}]), "spec.parentRefs[1]",
     "a route attached to both Services and Gateways is not supported in meshkit"),
    (edit("spec.parentRefs", [{"name": "gw", "port": 80}]), "spec.parentRefs[0].port",
     "port on a Gateway parentRef is not supported in meshkit"),
    (edit("spec.parentRefs", [SERVICE_PARENT, {**SERVICE_PARENT, "name": "ratings", "port": 9090}]),
     "spec.parentRefs[1].port", "every Service parentRef of one HTTPRoute must name the same port"),
    (edit("spec.parentRefs", []), "spec.parentRefs", "an HTTPRoute needs a parentRef"),
    (edit("spec.rules", []), "spec.rules", "an HTTPRoute needs at least one rule with backendRefs"),
    (edit("spec.rules.0.backendRefs", []), "spec.rules[0].backendRefs", "a rule needs a backendRef with a weight above 0"),
    (edit("spec.rules.0.backendRefs.0.weight", 0), "spec.rules[0].backendRefs", "a rule needs a backendRef"),
    (edit("spec.rules.0.backendRefs.0.port", None), "spec.rules[0].backendRefs[0].port", "names its port"),
    (edit("spec.rules.0.backendRefs.0.weight", 1_000_001), "spec.rules[0].backendRefs[0].weight", "at most 1000000"),
    (edit("spec.rules.0.backendRefs", [backend("reviews-v1")] * 17), "spec.rules[0].backendRefs",
     "must have at most 16 items, got 17"),
    (edit("spec.rules.0.backendRef", []), "spec.rules[0].backendRef", "did you mean 'backendRefs'?"),
    (edit("spec.rules.0.matches", [{"path": {"type": "Prefix", "value": "/"}}]), "spec.rules[0].matches[0].path.type",
     "must be one of Exact, PathPrefix, RegularExpression, got 'Prefix'"),
    (edit("spec.rules.0.matches", [{"path": {"value": "reviews"}}]), "spec.rules[0].matches[0].path.value",
     "must start with /"),
    (edit("spec.rules.0.matches", [{"headers": [{"type": "RegularExpression", "name": "x", "value": "(?=a)"}]}]),
     "spec.rules[0].matches[0].headers[0].value", "which RE2 does not have"),
    (edit("spec.rules.0.matches", [{"headers": [{"name": "bad name", "value": "x"}]}]),
     "spec.rules[0].matches[0].headers[0].name", "is not a header name"),
    (edit("spec.rules.0.matches", [{"method": "get"}]), "spec.rules[0].matches[0].method", "must be one of GET"),
    (edit("spec.rules.0.filters", [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}},
                                   {"type": "RequestHeaderModifier", "requestHeaderModifier": {}}]),
     "spec.rules[0].filters[1].type", "RequestHeaderModifier appears twice in this rule"),
    (edit("spec.rules.0.filters", [{"type": "RequestHeaderModifier"}]),
     "spec.rules[0].filters[0].requestHeaderModifier", "a filter of type RequestHeaderModifier needs"),
    (edit("spec.rules.0.filters", [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]}}]),
     "spec.rules[0].filters[0].requestHeaderModifier.set[1].name", "named twice in set"),
    (edit("spec.rules.0.filters", [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "add": [{"name": "x-a", "value": "a\r\nb"}]}}]),
     "spec.rules[0].filters[0].responseHeaderModifier.add[0]", "control characters"),
    (edit("spec.rules.0", {"matches": [{"path": {"type": "Exact", "value": "/a"}}], **V1, "filters": [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"}}}]}),
     "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch", "matches[0] matches Exact"),
    (edit("spec.rules.0.timeouts", {"request": "1.5s"}), "spec.rules[0].timeouts.request",
     "'1.5s' is not a Gateway API duration"),
    (edit("spec.rules.0.timeouts", {"request": "1s", "backendRequest": "2s"}),
     "spec.rules[0].timeouts.backendRequest", "must not be longer than request 1s"),
]


@pytest.mark.parametrize(("obj", "path", "reason"), REFUSALS, ids=[path + " " + reason[:30] for _, path, reason in REFUSALS])
def test_each_refusal_names_its_field(obj: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(obj, CONTEXT)
    assert caught.value.kind == "HTTPRoute"
    assert caught.value.path == path
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("obj", "path", "reason"),
    [
        (edit("spec.rules.0.backendRefs.0.name", "reviews-v9"), "spec.rules[0].backendRefs[0].name",
         "no service 'reviews-v9' in the lab"),
        (edit("spec.parentRefs.0.name", "catalog"), "spec.parentRefs[0].name", "no service 'catalog' in the lab"),
        (edit("spec.parentRefs.0.port", 8080), "spec.parentRefs[0].port",
         "reviews.default.svc.cluster.local listens on port 9080, not 8080"),
        (edit("spec.rules.0.backendRefs.0.port", 80), "spec.rules[0].backendRefs[0].port",
         "reviews.default.svc.cluster.local listens on port 9080, not 80"),
    ],
)
def test_references_are_checked_against_the_lab(obj: dict[str, Any], path: str, reason: str) -> None:
    parse(obj)  # well-formed on its own
    with pytest.raises(ConfigError) as caught:
        validate(obj, CONTEXT)
    assert (caught.value.path, reason in caught.value.reason) == (path, True), caught.value


def test_hostnames_on_a_service_route_are_accepted_with_a_warning() -> None:
    (warning,) = validate(route(V1, hostnames=["reviews.example.com"]), CONTEXT).warnings
    assert warning.path == "spec.hostnames"
    assert "ignored" in warning.reason


def test_other_gateway_api_kinds_are_refused_by_group_and_kind() -> None:
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"}, "spec": {}}
    with pytest.raises(ConfigError, match="kind: GatewayClass is not supported in meshkit: the lab's ingress gateway"):
        parse({**gateway, "kind": "GatewayClass"})
    with pytest.raises(ConfigError, match="spec.gatewayClassName: required field is missing"):
        parse(gateway)
    with pytest.raises(ConfigError, match="spec.servers: required field is missing"):
        parse({**gateway, "apiVersion": "networking.istio.io/v1"})
    with pytest.raises(ConfigError, match="kind: GRPCRoute is not supported in meshkit"):
        parse({**gateway, "kind": "GRPCRoute"})
    with pytest.raises(ConfigError, match="HTTPRoute is read from apiVersion gateway.networking.k8s.io/v1, "):
        parse({**route(V1), "apiVersion": "networking.istio.io/v1"})


@pytest.mark.parametrize("name", ROUTE_FILES)
def test_the_vendored_routes_load_and_export_as_written(name: str) -> None:
    text = (GATEWAY_API / name).read_text()
    resources = load(text)
    exported = [doc for doc in yaml.safe_load_all(to_istio_yaml(resources)) if doc]
    written = [doc for doc in yaml.safe_load_all(text) if doc]
    assert [doc["spec"] for doc in exported] == [doc["spec"] for doc in written]
    assert [doc["metadata"]["name"] for doc in exported] == [doc["metadata"]["name"] for doc in written]
    assert {doc["apiVersion"] for doc in exported} == {"gateway.networking.k8s.io/v1"}
    assert load(to_istio_yaml(resources)) == resources


@pytest.mark.parametrize("name", [name for name in ROUTE_FILES if name.startswith("istio-")])
def test_istios_bookinfo_routes_are_valid_in_a_bookinfo_lab(name: str) -> None:
    for checked in validate_all(load(GATEWAY_API / name), CONTEXT):
        assert checked.warnings == ()


def test_istios_bookinfo_gateway_route_binds_to_the_gateway_it_names() -> None:
    (_, http_route) = yaml.safe_load_all((GATEWAY_API / "istio-bookinfo-gateway.yaml").read_text())
    assert vs_spec(http_route)["gateways"] == ["default/bookinfo-gateway"]
    (checked,) = validate_all([parse(http_route)], CONTEXT)
    assert checked.warnings == ()


def test_a_gateway_route_routes_no_mesh_traffic_and_a_service_route_only_mesh_traffic() -> None:
    at_gateway = canonical(parse(route(V1, parents=[{"name": "bookinfo-gateway"}])))
    at_service = canonical(parse(route(V1)))
    assert at_gateway["spec"]["gateways"] == ["default/bookinfo-gateway"]
    assert at_service["spec"]["gateways"] == ["mesh"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("reviews-v2.default.svc.cluster.local", (REVIEWS, "v2")),
        ("reviews.default.svc.cluster.local", None),
        ("reviews-v9.default.svc.cluster.local", None),
        ("reviews-v2.shop.svc.cluster.local", None),
        ("ratings-v2.default.svc.cluster.local", None),
    ],
)
def test_service_version_names_the_workloads_of_that_version(host: str, expected: tuple[str, str] | None) -> None:
    assert version_service(host, BOOKINFO_SERVICES) == expected


def test_a_real_service_wins_over_a_version_name_and_dashes_in_service_names_work() -> None:
    services = {"my-shop.default.svc.cluster.local": [{"version": "v1"}],
                "my-shop-v1.default.svc.cluster.local": [{"version": "v7"}]}
    assert version_service("my-shop-v1.default.svc.cluster.local", services) is None
    assert version_service("my-shop-v7.default.svc.cluster.local", services) is None
    assert version_service("my-shop-v1-v7.default.svc.cluster.local", services) == (
        "my-shop-v1.default.svc.cluster.local", "v7")


def reviews_lab() -> Any:
    return state_of(*(rec(f"reviews-{v}-0", "reviews", port=41000 + i, labels={"app": "reviews", "version": v})
                      for i, v in enumerate(("v1", "v2", "v3"))))


def test_the_snapshot_gives_each_version_service_a_route_names_its_own_host() -> None:
    state = with_resources(reviews_lab(), route({"backendRefs": [backend("reviews-v1", 80), backend("reviews-v2", 20)]}))
    snapshot = build_snapshot(state, "default/reviews-v1-0")
    added = {host: [ep["instance"] for ep in entry["endpoints"]] for host, entry in snapshot["services"].items()}
    assert added == {REVIEWS: ["reviews-v1-0", "reviews-v2-0", "reviews-v3-0"],
                     "reviews-v1.default.svc.cluster.local": ["reviews-v1-0"],
                     "reviews-v2.default.svc.cluster.local": ["reviews-v2-0"]}
    assert snapshot["services"]["reviews-v2.default.svc.cluster.local"]["name"] == "reviews-v2"
    assert [form["name"] for form in snapshot["virtual_services"]] == ["reviews"]
    assert list(build_snapshot(reviews_lab(), "default/reviews-v1-0")["services"]) == [REVIEWS]


def test_sidecars_route_an_httproute_to_the_version_it_names() -> None:
    state = with_resources(reviews_lab(), route({"backendRefs": [backend("reviews-v1", 80), backend("reviews-v2", 20)]}))
    snapshot = parse_snapshot(json.loads(json.dumps(build_snapshot(state, "default/client-0"))), "default/client-0")
    table = compile_routes(snapshot, "default", {"app": "client"}, lambda spec: spec)
    host_routes = table.resolve("reviews:9080")
    assert host_routes is not None
    (rule,) = host_routes.rules
    assert [destination.host for destination in rule.destinations] == [
        "reviews-v1.default.svc.cluster.local", "reviews-v2.default.svc.cluster.local"]
    assert rule.cumulative == (80, 100)
    endpoints = {destination.cluster.host: [ep.instance for ep in destination.cluster.endpoints]
                 for destination in rule.destinations}
    assert endpoints == {"reviews-v1.default.svc.cluster.local": ["reviews-v1-0"],
                         "reviews-v2.default.svc.cluster.local": ["reviews-v2-0"]}
