"""Istio's Gateway kind and the VirtualService `gateways` binding, as meshkit reads them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from meshkit.config import ConfigContext, canonical, load, parse, validate
from meshkit.config.gateway import Gateway, gateway_host_problem, qualified_gateways
from meshkit.config.gateway_api import GatewayAPIGateway
from meshkit.config.kinds import KINDS_BY_GROUP, resource_class
from meshkit.config.problems import Problem
from meshkit.errors import ConfigError

ISTIO_GATEWAY = Path(__file__).parents[1] / "data" / "istio" / "bookinfo-gateway.yaml"

GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
    },
}
BOUND_VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "VirtualService",
    "metadata": {"name": "web"},
    "spec": {
        "hosts": ["*"],
        "gateways": ["web"],
        "http": [{"route": [{"destination": {"host": "productpage"}}]}],
    },
}


def edited(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


def refusal(doc: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(doc)
    return caught.value


def test_istios_bookinfo_gateway_file_loads_unchanged() -> None:
    gateway, vs = load(ISTIO_GATEWAY)
    assert isinstance(gateway, Gateway)
    form = canonical(gateway)
    assert form["spec"] == {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": 8080, "name": "http", "protocol": "HTTP", "hosts": [{"namespace": "*", "host": "*"}]}],
    }
    vs_form = canonical(vs)
    assert vs_form["spec"]["hosts"] == ["*"]
    assert vs_form["spec"]["gateways"] == ["default/bookinfo-gateway"]
    assert [m["uri"] for m in vs_form["spec"]["http"][0]["match"]] == [
        {"type": "exact", "value": "/productpage"},
        {"type": "prefix", "value": "/static"},
        {"type": "exact", "value": "/login"},
        {"type": "exact", "value": "/logout"},
        {"type": "prefix", "value": "/api/v1/products"},
    ]


def test_a_gateway_bound_virtual_service_needs_no_service_named_by_its_hosts() -> None:
    context = ConfigContext(services={"productpage.default.svc.cluster.local": [{"app": "productpage"}]})
    assert validate(BOUND_VS, context).resource.spec.hosts == ["*"]
    with pytest.raises(ConfigError) as caught:
        validate(edited(BOUND_VS, ("spec", "gateways"), ["web", "mesh"]), context)
    assert caught.value.path == "spec.hosts[0]"
    assert "bound to gateways alone" in caught.value.reason


@pytest.mark.parametrize(
    "path, value, where, words",
    [
        (("spec", "servers", 0, "port", "protocol"), "HTTPS", "spec.servers[0].port.protocol",
         "HTTPS is not supported in meshkit: meshkit's gateway serves plain HTTP only"),
        (("spec", "servers", 0, "port", "protocol"), "TCP", "spec.servers[0].port.protocol", "TCP is not supported in meshkit"),
        (("spec", "servers", 0, "port", "protocol"), "http", "spec.servers[0].port.protocol", "must be one of HTTP"),
        (("spec", "servers", 0, "tls"), {"mode": "SIMPLE"}, "spec.servers[0].tls", "tls is not supported in meshkit"),
        (("spec", "servers", 0, "bind"), "0.0.0.0", "spec.servers[0].bind", "bind is not supported in meshkit"),
        (("spec", "servers", 0, "defaultEndpoint"), "127.0.0.1:80", "spec.servers[0].defaultEndpoint",
         "defaultEndpoint is not supported in meshkit"),
        (("spec", "servers", 0, "hosts"), [], "spec.servers[0].hosts", "at least one host"),
        (("spec", "servers", 0, "hosts"), ["*", "web:80"], "spec.servers[0].hosts[1]", "not a host a gateway can match"),
        (("spec", "servers", 0, "hosts"), ["Bad_NS/*"], "spec.servers[0].hosts[0]", "namespace part of 'Bad_NS/*'"),
        (("spec", "servers", 0, "port", "number"), 0, "spec.servers[0].port.number", "at least 1"),
        (("spec", "servers", 0, "port", "name"), 7, "spec.servers[0].port.name", "must be a string"),
        (("spec", "servers"), [], "spec.servers", "at least one server"),
        (("spec", "selector"), {"istio": "a b"}, "spec.selector.istio", "label value"),
        (("spec", "serverz"), [], "spec.serverz", "did you mean 'servers'"),
    ],
)
def test_each_refused_gateway_names_its_field(path: tuple[str | int, ...], value: Any, where: str, words: str) -> None:
    error = refusal(edited(GATEWAY, path, value))
    assert (error.kind, error.path) == ("Gateway", where)
    assert words in error.reason


@pytest.mark.parametrize(
    "path, value, where, words",
    [
        (("spec", "gateways"), ["web", "ns/"], "spec.gateways[1]", "names no Gateway"),
        (("spec", "gateways"), ["Web"], "spec.gateways[0]", "names no Gateway"),
        (("spec", "hosts"), ["*.example.com", "a b"], "spec.hosts[1]", "not a host a gateway can match"),
        (("spec", "http", 0, "match"), [{"gateways": ["mesh", "x/Y"]}], "spec.http[0].match[0].gateways[1]",
         "names no Gateway"),
    ],
)
def test_each_refused_binding_names_its_field(path: tuple[str | int, ...], value: Any, where: str, words: str) -> None:
    error = refusal(edited(BOUND_VS, path, value))
    assert (error.kind, error.path) == ("VirtualService", where)
    assert words in error.reason


def test_server_hosts_read_their_namespace_part() -> None:
    doc = edited(GATEWAY, ("spec", "servers", 0, "hosts"), ["./a.example.com", "shop/*.shop.example", "*"])
    hosts = canonical(parse(doc))["spec"]["servers"][0]["hosts"]
    assert hosts == [
        {"namespace": "default", "host": "a.example.com"},
        {"namespace": "shop", "host": "*.shop.example"},
        {"namespace": "*", "host": "*"},
    ]
    assert gateway_host_problem("*/bookinfo.example.com") is None
    assert gateway_host_problem("*.*.example.com") is not None


def test_gateways_are_qualified_by_the_virtual_services_namespace_and_default_to_mesh() -> None:
    assert qualified_gateways([], "default") == ["mesh"]
    assert qualified_gateways(["web", "istio-system/main", "mesh"], "shop") == ["shop/web", "istio-system/main", "mesh"]


def test_the_kind_table_is_keyed_by_api_group() -> None:
    assert KINDS_BY_GROUP[("networking.istio.io", "Gateway")] is Gateway
    assert resource_class("Gateway", "networking.istio.io/v1alpha3") is Gateway
    assert resource_class("Gateway", "gateway.networking.k8s.io/v1") is GatewayAPIGateway
    refused = resource_class("Gateway", "networking.istio.io/v2")
    assert isinstance(refused, Problem) and refused.path == ("apiVersion",)
