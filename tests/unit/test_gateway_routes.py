"""A gateway's routes (meshkit.core.routes.compile_gateway_routes): Gateways, bound VirtualServices, Host.

Resources go through meshkit.config's canonical form, the control plane's
snapshot builder and the sidecar's snapshot parser, as a gateway receives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshkit.config import canonical, load
from meshkit.control.snapshot import build_snapshot
from meshkit.control.store import State
from meshkit.core.routes import ClusterSpec, RouteTable, bound_host, compile_gateway_routes, compile_routes, host_covers
from meshkit.core.rules import ServerHost, VirtualServiceSpec
from meshkit.core.snapshot import parse_snapshot

ISTIO_GATEWAY = (Path(__file__).parents[1] / "data" / "istio" / "bookinfo-gateway.yaml").read_text()
GATEWAY_NODE = "istio-system/istio-ingressgateway-0"
SIDECAR_NODE = "default/productpage-v1-0"
GATEWAY_LABELS = {"istio": "ingressgateway", "app": "istio-ingressgateway"}
PORTS = frozenset({8080, 80})


def record(instance: str, namespace: str, service: str | None, labels: dict[str, str], port: int | None) -> dict[str, Any]:
    return {
        "instance": instance, "workload": instance.rsplit("-", 1)[0], "namespace": namespace, "service": service,
        "service_port": 9080 if service else None, "version": labels.get("version", "unknown"),
        "service_account": "sa", "labels": labels, "address": "127.0.0.1" if service else None, "port": port,
        "sidecar": True,
    }


INSTANCES = {
    GATEWAY_NODE: record("istio-ingressgateway-0", "istio-system", None, GATEWAY_LABELS, None),
    SIDECAR_NODE: record("productpage-v1-0", "default", "productpage", {"app": "productpage", "version": "v1"}, 1),
    "default/reviews-v1-0": record("reviews-v1-0", "default", "reviews", {"app": "reviews", "version": "v1"}, 2),
}


def state(*yaml_docs: str) -> State:
    resources: dict[str, dict[str, Any]] = {}
    for text in yaml_docs:
        for resource in load(text):
            doc = {"apiVersion": resource.EXPORT_API_VERSION, "kind": resource.KIND,
                   **resource.model_dump(by_alias=True, exclude_none=True)}
            resources[f"{resource.KIND}/{resource.namespace}/{resource.name}"] = doc
    return State(version=1, resources=resources, instances=INSTANCES)


def gateway_table(*yaml_docs: str, labels: dict[str, str] = GATEWAY_LABELS) -> RouteTable[ClusterSpec]:
    snapshot = parse_snapshot(build_snapshot(state(*yaml_docs), GATEWAY_NODE), GATEWAY_NODE)
    return compile_gateway_routes(snapshot, labels, PORTS, lambda spec: spec)


def routed(table: RouteTable[ClusterSpec], host: str, path: str) -> str | None:
    """The host:subset a request goes to, or None for Envoy's 404 NR."""
    routes = table.resolve(host)
    if routes is None:
        return None
    picked = routes.select(b"GET", path.encode(), [(b"host", host.encode())], host.encode())
    if picked is None:
        return None
    destination = picked[0].pick(0.0)
    return destination.host + (f":{destination.subset}" if destination.subset else "")


PRODUCTPAGE = "productpage.default.svc.cluster.local"


def test_istios_bookinfo_gateway_routes_its_five_paths_for_any_host() -> None:
    table = gateway_table(ISTIO_GATEWAY)
    for host in ("127.0.0.1:41234", "localhost", "bookinfo.example.com"):
        for path in ("/productpage", "/static/css/style.css", "/login", "/logout", "/api/v1/products/0"):
            assert routed(table, host, path) == PRODUCTPAGE, (host, path)
        assert routed(table, host, "/reviews/0") is None
        assert routed(table, host, "/productpage/extra") is None


def test_a_gateway_gets_only_the_gateways_that_select_it() -> None:
    doc = build_snapshot(state(ISTIO_GATEWAY), GATEWAY_NODE)
    assert [g["name"] for g in doc["gateways"]] == ["bookinfo-gateway"]
    assert build_snapshot(state(ISTIO_GATEWAY), SIDECAR_NODE)["gateways"] == []
    other = gateway_table(ISTIO_GATEWAY, labels={"istio": "egressgateway"})
    assert routed(other, "localhost", "/productpage") == PRODUCTPAGE  # the snapshot decides, not the labels
    unselected = ISTIO_GATEWAY.replace("istio: ingressgateway", "istio: egressgateway")
    assert routed(gateway_table(unselected), "localhost", "/productpage") is None


def test_a_virtual_service_bound_to_a_gateway_only_does_not_apply_to_sidecars() -> None:
    snapshot = parse_snapshot(build_snapshot(state(ISTIO_GATEWAY), SIDECAR_NODE), SIDECAR_NODE)
    sidecar = compile_routes(snapshot, "default", {"app": "productpage"}, lambda spec: spec)
    assert sidecar.resolve("*") is None
    assert sidecar.resolve("productpage").source.startswith("no VirtualService")  # type: ignore[union-attr]


BOTH = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["default/reviews.example.com", "*/*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.example.com, reviews]
  gateways: [istio-system/web, mesh]
  http:
  - match:
    - {uri: {prefix: /only-gateway}, gateways: [istio-system/web]}
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild}
spec:
  hosts: ["*.example.com"]
  gateways: [istio-system/web]
  http:
  - route: [{destination: {host: productpage}}]
"""


def test_an_exact_host_beats_a_wildcard_and_match_gateways_pick_their_side() -> None:
    table = gateway_table(BOTH)
    assert routed(table, "reviews.example.com", "/only-gateway") == "ratings.default.svc.cluster.local"
    assert routed(table, "Reviews.Example.com:8080", "/x") == "reviews.default.svc.cluster.local"
    assert routed(table, "shop.example.com", "/x") == PRODUCTPAGE
    assert routed(table, "example.com", "/x") is None
    assert routed(table, "reviews", "/x") is None  # the mesh host is not a server host
    snapshot = parse_snapshot(build_snapshot(state(BOTH), SIDECAR_NODE), SIDECAR_NODE)
    sidecar = compile_routes(snapshot, "default", {"app": "productpage"}, lambda spec: spec)
    routes = sidecar.resolve("reviews")
    assert routes is not None and [rule.name for rule in routes.rules] == ["http[1]"]


def test_a_server_in_another_port_or_namespace_part_binds_nothing() -> None:
    elsewhere = ISTIO_GATEWAY.replace("number: 8080", "number: 9443")
    assert routed(gateway_table(elsewhere), "localhost", "/productpage") is None
    other_namespace = ISTIO_GATEWAY.replace('- "*"\n---', '- "shop/*"\n---')
    assert routed(gateway_table(other_namespace), "localhost", "/productpage") is None


@pytest.mark.parametrize(
    "pattern, host, covered",
    [("*", "a.b", True), ("*.example.com", "a.example.com", True), ("*.example.com", "*.x.example.com", True),
     ("*.example.com", "example.com", False), ("a.example.com", "b.example.com", False), ("a.b", "a.b", True),
     ("*.example.com", "*", False)],
)
def test_host_covers(pattern: str, host: str, covered: bool) -> None:
    assert host_covers(pattern, host) is covered


def test_the_narrower_host_is_the_one_routed() -> None:
    vs = VirtualServiceSpec("default", "vs", ("*",), (), ("default/gw",))
    assert bound_host(ServerHost("*", "shop.example.com"), vs, "*") == "shop.example.com"
    assert bound_host(ServerHost("*", "*"), vs, "shop.example.com") == "shop.example.com"
    assert bound_host(ServerHost("other", "*"), vs, "*") is None


def test_a_gateway_bootstrap_names_its_gateway_ports_and_has_no_app() -> None:
    from meshkit.errors import ConfigError
    from meshkit.sidecar.bootstrap import parse_bootstrap

    doc: dict[str, Any] = {
        "node": GATEWAY_NODE,
        "workload": {"name": "istio-ingressgateway", "namespace": "istio-system", "service": "istio-ingressgateway",
                     "version": "unknown", "service_account": "istio-ingressgateway-service-account",
                     "labels": GATEWAY_LABELS},
        "host": "127.0.0.1", "inbound": None, "outbound": {"port": 0}, "admin": {"port": 0},
        "control_plane": {"url": "http://127.0.0.1:1", "token": "t"}, "static_snapshot": None,
        "gateway": {"ports": [8080, 80]},
    }
    assert parse_bootstrap(doc).workload.gateway_ports == (8080, 80)
    for bad, path in (({"ports": []}, "gateway.ports"), ({"ports": [0]}, "gateway.ports[0]"),
                      ({"port": 8080}, "gateway.port")):
        with pytest.raises(ConfigError) as caught:
            parse_bootstrap({**doc, "gateway": bad})
        assert caught.value.path == path
    with pytest.raises(ConfigError) as caught:
        parse_bootstrap({**doc, "inbound": {"port": 1, "app_port": 2}})
    assert caught.value.path == "inbound"
