"""The Gateway API's Gateway on the lab's ingress gateway: its Istio Gateway, refusals by field, routes, export.

Istio's samples/bookinfo/gateway-api/bookinfo-gateway.yaml (vendored in
tests/unit/fixtures/gateway-api with its source) goes through the canonical
form, the control plane's snapshot builder and the gateway's route compiler,
as the running gateway receives it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshkit.config import canonical, load, parse, to_istio_yaml
from meshkit.config.gateway_api import GatewayAPIGateway
from meshkit.config.gateway_translation import to_istio_gateway
from meshkit.config.kinds import KINDS, resource_class
from meshkit.control.store import State
from meshkit.control.validation import other_api_problem, validate_resource
from meshkit.control.snapshot import build_snapshot
from meshkit.core.routes import compile_routes
from meshkit.core.snapshot import parse_snapshot
from meshkit.errors import ConfigError
from tests.unit.test_gateway_routes import (
    GATEWAY_NODE,
    INSTANCES,
    ISTIO_GATEWAY,
    PRODUCTPAGE,
    SIDECAR_NODE,
    gateway_table,
    routed,
    state,
)

FIXTURE = Path(__file__).parent / "fixtures" / "gateway-api" / "istio-bookinfo-gateway.yaml"
BOOKINFO_GATEWAY_API = FIXTURE.read_text()
GATEWAY_DOC, ROUTE_DOC = yaml.safe_load_all(BOOKINFO_GATEWAY_API)


def gateway(**spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GATEWAY_DOC)
    doc["spec"].update(spec)
    return doc


def listener(**fields: Any) -> dict[str, Any]:
    return {"name": "http", "port": 80, "protocol": "HTTP", **fields}


def istio_spec(doc: dict[str, Any]) -> dict[str, Any]:
    resource = parse(doc)
    assert isinstance(resource, GatewayAPIGateway)
    spec: dict[str, Any] = to_istio_gateway(resource).model_dump(mode="json", by_alias=True)["spec"]
    return spec


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            GATEWAY_DOC,
            {"selector": {"istio": "ingressgateway"},
             "servers": [{"port": {"number": 80, "protocol": "HTTP", "name": "http"}, "hosts": ["./*"], "name": "http"}]},
            id="Istio's bookinfo-gateway: port 80, every host, routes of its own namespace",
        ),
        pytest.param(
            gateway(listeners=[listener(hostname="bookinfo.example.com", allowedRoutes={"namespaces": {"from": "All"}}),
                               listener(name="alt", port=8080, hostname="*.example.com")]),
            {"selector": {"istio": "ingressgateway"},
             "servers": [{"port": {"number": 80, "protocol": "HTTP", "name": "http"}, "hosts": ["*/bookinfo.example.com"],
                          "name": "http"},
                         {"port": {"number": 8080, "protocol": "HTTP", "name": "alt"}, "hosts": ["./*.example.com"],
                          "name": "alt"}]},
            id="hostname -> host; from All -> any namespace; no allowedRoutes -> Same",
        ),
    ],
)
def test_a_gateway_becomes_the_istio_gateway_of_the_ingress_gateway(doc: dict[str, Any], expected: dict[str, Any]) -> None:
    assert istio_spec(doc) == expected


def test_the_canonical_form_is_the_istio_gateways() -> None:
    resource = parse(GATEWAY_DOC)
    assert isinstance(resource, GatewayAPIGateway)
    form = canonical(resource)
    assert form == canonical(to_istio_gateway(resource))
    assert form["spec"]["servers"][0]["hosts"] == [{"namespace": "default", "host": "*"}]


def test_the_kind_is_read_by_api_group() -> None:
    assert resource_class("Gateway", "gateway.networking.k8s.io/v1") is GatewayAPIGateway
    assert resource_class("Gateway", "gateway.networking.k8s.io/v1beta1") is GatewayAPIGateway
    assert resource_class("Gateway", "networking.istio.io/v1") is not GatewayAPIGateway
    assert KINDS["Gateway"] is not GatewayAPIGateway  # a bare name means Istio's, as lab.get("gw") does
    refused = resource_class("Gateway", "gateway.networking.k8s.io/v1alpha2")
    assert not isinstance(refused, type) and refused.path == ("apiVersion",)
    assert "gateway.networking.k8s.io/v1beta1" in refused.reason


def test_istios_files_export_as_written() -> None:
    resources = load(BOOKINFO_GATEWAY_API)
    exported = [doc for doc in yaml.safe_load_all(to_istio_yaml(resources)) if doc]
    written = [doc for doc in yaml.safe_load_all(BOOKINFO_GATEWAY_API) if doc]
    assert [(doc["apiVersion"], doc["kind"], doc["spec"]) for doc in exported] == [
        (doc["apiVersion"], doc["kind"], doc["spec"]) for doc in written
    ]
    assert load(to_istio_yaml(resources)) == resources


REFUSALS = [
    (gateway(gatewayClassName="gke-l7-global-external-managed"), "spec.gatewayClassName",
     "gatewayClassName 'gke-l7-global-external-managed' is not supported in meshkit: the lab's ingress gateway"),
    (gateway(listeners=[listener(protocol="HTTPS")]), "spec.listeners[0].protocol",
     "HTTPS is not supported in meshkit: the lab's ingress gateway serves plain HTTP only"),
    (gateway(listeners=[listener(protocol="TCP")]), "spec.listeners[0].protocol", "TCP is not supported in meshkit"),
    (gateway(listeners=[listener(tls={"mode": "Terminate"})]), "spec.listeners[0].tls", "tls is not supported in meshkit"),
    (gateway(listeners=[listener(allowedRoutes={"namespaces": {"from": "Selector"}})]),
     "spec.listeners[0].allowedRoutes.namespaces.from", "Selector is not supported in meshkit"),
    (gateway(listeners=[listener(allowedRoutes={"namespaces": {"selector": {}}})]),
     "spec.listeners[0].allowedRoutes.namespaces.selector", "selector is not supported in meshkit"),
    (gateway(listeners=[listener(allowedRoutes={"kinds": [{"kind": "GRPCRoute"}]})]),
     "spec.listeners[0].allowedRoutes.kinds[0]", "GRPCRoute (gateway.networking.k8s.io) is not supported in meshkit"),
    (gateway(listeners=[listener(hostname="*")]), "spec.listeners[0].hostname", "leave hostname out"),
    (gateway(listeners=[listener(hostname="http://bookinfo")]), "spec.listeners[0].hostname", "is not a host"),
    (gateway(listeners=[listener(), listener(port=8080)]), "spec.listeners[1].name", "already used by listeners[0]"),
    (gateway(listeners=[]), "spec.listeners", "a Gateway needs at least one listener"),
    (gateway(listeners=[listener(name="Web_1")]), "spec.listeners[0].name", "'Web_1' is not a valid name"),
    (gateway(addresses=[{"value": "10.0.0.1"}]), "spec.addresses", "addresses is not supported in meshkit"),
    (gateway(infrastructure={}), "spec.infrastructure", "infrastructure is not supported in meshkit"),
    (gateway(listeners=[listener(port=0)]), "spec.listeners[0].port", "at least 1"),
]


@pytest.mark.parametrize(("doc", "path", "reason"), REFUSALS, ids=[path + " " + reason[:30] for _, path, reason in REFUSALS])
def test_each_refusal_names_its_field(doc: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_resource(State(), doc)
    assert caught.value.path == path
    assert reason in caught.value.reason


def test_istios_gateway_api_bookinfo_routes_its_five_paths_at_the_ingress_gateway() -> None:
    table = gateway_table(BOOKINFO_GATEWAY_API)
    for host in ("127.0.0.1:41234", "bookinfo.example.com"):
        for path in ("/productpage", "/static/css/style.css", "/login", "/logout", "/api/v1/products/0"):
            assert routed(table, host, path) == PRODUCTPAGE, (host, path)
        assert routed(table, host, "/reviews/0") is None
        assert routed(table, host, "/productpage/extra") is None
        assert routed(table, host, "/staticfiles") is None  # PathPrefix matches whole segments


def test_a_gateway_admits_only_routes_of_its_namespace_unless_it_says_all() -> None:
    elsewhere = {**ROUTE_DOC, "metadata": {"name": "bookinfo", "namespace": "shop"},
                 "spec": {**ROUTE_DOC["spec"], "parentRefs": [{"name": "bookinfo-gateway", "namespace": "default"}]}}
    route_text = yaml.safe_dump(elsewhere)
    same = yaml.safe_dump(GATEWAY_DOC)
    assert routed(gateway_table(same, route_text), "bookinfo.example.com", "/productpage") is None
    everyone = yaml.safe_dump(gateway(listeners=[listener(allowedRoutes={"namespaces": {"from": "All"}})]))
    assert routed(gateway_table(everyone, route_text), "bookinfo.example.com", "/productpage") == (
        "productpage.shop.svc.cluster.local"
    )


def test_a_listener_hostname_limits_the_hosts_served() -> None:
    named = yaml.safe_dump(gateway(listeners=[listener(hostname="bookinfo.example.com")]))
    route_text = yaml.safe_dump(ROUTE_DOC)
    table = gateway_table(named, route_text)
    assert routed(table, "bookinfo.example.com", "/productpage") == PRODUCTPAGE
    assert routed(table, "other.example.com", "/productpage") is None


def test_the_gateway_bound_route_is_no_sidecar_route() -> None:
    snapshot = parse_snapshot(build_snapshot(state(BOOKINFO_GATEWAY_API), SIDECAR_NODE), SIDECAR_NODE)
    table = compile_routes(snapshot, "default", INSTANCES[SIDECAR_NODE]["labels"], lambda spec: spec)
    assert table.resolve("bookinfo.example.com") is None
    productpage = table.resolve("productpage")
    assert productpage is not None and productpage.source.startswith("no VirtualService"), productpage
    assert len(build_snapshot(state(BOOKINFO_GATEWAY_API), GATEWAY_NODE)["gateways"]) == 1


def test_an_istio_gateway_of_the_same_name_is_not_silently_replaced() -> None:
    (istio,) = [doc for doc in yaml.safe_load_all(ISTIO_GATEWAY) if doc["kind"] == "Gateway"]
    assert other_api_problem(istio, GATEWAY_DOC) is not None
    assert other_api_problem(GATEWAY_DOC, istio) is not None
    assert other_api_problem(GATEWAY_DOC, GATEWAY_DOC) is None
    assert other_api_problem(None, GATEWAY_DOC) is None
    stored = State(resources={"Gateway/default/bookinfo-gateway": {**istio, "metadata": {**istio["metadata"], "namespace": "default"}}})
    with pytest.raises(ConfigError) as caught:
        validate_resource(stored, copy.deepcopy(GATEWAY_DOC))
    assert caught.value.path == "apiVersion"
    assert "lab.delete('Gateway', 'bookinfo-gateway')" in caught.value.reason
