"""Gateway API resources as the Istio resources that do the same.

A Gateway of class istio or meshkit becomes the Istio Gateway that opens the
same ports on the lab's ingress gateway (`to_istio_gateway`): selector
`istio: ingressgateway`, one HTTP server per listener, the listener's
hostname as the server's host ("*" when it has none), and allowedRoutes as
the host's namespace part (Same: the Gateway's namespace, the Gateway API's
default; All: "*"), so an HTTPRoute binds to it exactly as a VirtualService
binds to an Istio Gateway.

An HTTPRoute becomes the VirtualService that routes the same way.

Sidecars know only VirtualServices (docs/internals.md, the snapshot format),
so an HTTPRoute reaches them as its equivalent one: `to_virtual_service` is a
pure function, and canonical() of an HTTPRoute is canonical() of its result.
It follows what istiod does with an HTTPRoute (its gateway conversion), with
the differences meshkit's VirtualService needs spelled out here:

- Parents. Service parents (GAMMA) give the hosts, bound to `mesh` only; a
  parentRef port becomes a match on that port. Gateway parents give the
  `gateways` binding (namespace/name), without `mesh`, so the route is not
  also a sidecar route, and the route's hostnames as hosts ("*" when it has
  none). One route has one kind of parent (the rules check).
- Order. The Gateway API does not try rules in the order written: the most
  specific match wins (Exact path, then the longest PathPrefix, then a
  method, then the most headers, then the most query parameters; ties keep
  the written order). Each match becomes its own VirtualService route and
  the routes are sorted that way, as istiod sorts them; RegularExpression
  ranks below PathPrefix, as in istiod.
- PathPrefix matches whole path segments: /foo matches /foo and /foo/bar, not
  /foobar. A VirtualService prefix is a string prefix, so /foo becomes two
  routes, exact /foo and prefix /foo/ (a trailing / in the value is ignored,
  as the Gateway API says). ReplacePrefixMatch becomes the rewrite of each.
- Defaults: a rule without matches matches PathPrefix "/"; a match without
  path, the same path; a backendRef without weight has weight 1.
- Weights are relative in the Gateway API (0 to 1,000,000) and percentages in
  a VirtualService: they become percentages adding up to 100 (largest
  remainder), and a backend with a weight above 0 keeps at least 1.
- Timeouts: `request` is the route timeout; `backendRequest`, when set, takes
  its place, as istiod does for a rule without a retry stanza; "0s" is none.
- Header names in matches are case-insensitive in the Gateway API and
  lowercase in a VirtualService; the first match for a name counts, later
  ones are ignored, as the Gateway API says.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from meshkit.config.durations import parse_duration
from meshkit.config.gateway import MESH, Gateway
from meshkit.config.gateway_api import (
    GATEWAY_GROUP,
    GatewayAPIGateway,
    GatewayHTTPRoute,
    HTTPHeaderFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    ParentReference,
)
from meshkit.config.hosts import fqdn
from meshkit.config.virtual_service import VirtualService

SERVICE_GROUPS = ("", "core")
INGRESS_SELECTOR = {"istio": "ingressgateway"}
"""The labels of the lab's ingress gateway, which serves every Gateway API Gateway."""
DEFAULT_PATH = "/"
PATH_RANKS = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}


def parent_group_kind(ref: ParentReference) -> tuple[str, str]:
    """(group, kind) with the Gateway API's defaults: a parentRef names a Gateway unless it says otherwise."""
    return (GATEWAY_GROUP if ref.group is None else ref.group, ref.kind or "Gateway")


def is_service_parent(ref: ParentReference) -> bool:
    group, kind = parent_group_kind(ref)
    return kind == "Service" and group in SERVICE_GROUPS


def is_gateway_parent(ref: ParentReference) -> bool:
    return parent_group_kind(ref) == (GATEWAY_GROUP, "Gateway")


def path_of(match: HTTPRouteMatch) -> tuple[str, str]:
    """(type, value) of a match's path, with the Gateway API's defaults."""
    path = match.path
    kind = path.type if path is not None and path.type is not None else "PathPrefix"
    value = path.value if path is not None and path.value is not None else DEFAULT_PATH
    return kind, value


def rule_matches(rule: HTTPRouteRule) -> list[HTTPRouteMatch]:
    """A rule's matches; none written means every request (PathPrefix "/")."""
    return list(rule.matches) or [HTTPRouteMatch()]


def precedence(match: HTTPRouteMatch) -> tuple[int, int, int, int, int]:
    """Sort key putting the Gateway API's most specific match first."""
    kind, value = path_of(match)
    length = len(_prefix(value)) if kind == "PathPrefix" else len(value)
    return (-PATH_RANKS[kind], -length, -(match.method is not None), -len(match.headers), -len(match.query_params))


def percentages(weights: Sequence[int]) -> list[int]:
    """Relative weights as whole percentages adding up to 100.

    Largest remainder (ties to the earlier backend); a weight above 0 never
    becomes 0, so a 1-in-1000 canary still gets requests, at 1%.
    """
    total = sum(weights)
    if total == 0:
        return [0 for _ in weights]
    exact = [Fraction(weight * 100, total) for weight in weights]
    shares = [int(share) for share in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: 100 - sum(shares)]:
        shares[i] += 1
    for i, weight in enumerate(weights):
        if weight > 0 and shares[i] == 0:
            largest = max(range(len(shares)), key=lambda j: (shares[j], -j))
            shares[largest] -= 1
            shares[i] = 1
    return shares


def timeout_text(route_rule: HTTPRouteRule) -> str | None:
    """The route timeout as a duration string, or None for none."""
    timeouts = route_rule.timeouts
    if timeouts is None:
        return None
    chosen = None
    for value in (timeouts.request, timeouts.backend_request):
        if value is not None and parse_gateway_duration(value) > 0:
            chosen = value
    return chosen


def parse_gateway_duration(value: str) -> float:
    """Seconds in a checked Gateway API duration; 0.0 for "0s" (no timeout)."""
    if value.strip("0hms") == "":
        return 0.0
    return parse_duration(value)


def to_istio_gateway(gateway: GatewayAPIGateway) -> Gateway:
    """The Istio Gateway that serves what `gateway` asks for (see the module docstring)."""
    servers = []
    for listener in gateway.spec.listeners:
        namespaces = listener.allowed_routes.namespaces if listener.allowed_routes is not None else None
        allowed = "*" if namespaces is not None and namespaces.from_ == "All" else "."
        servers.append({
            "port": {"number": listener.port, "protocol": "HTTP", "name": listener.name},
            "hosts": [f"{allowed}/{listener.hostname or '*'}"],
            "name": listener.name,
        })
    metadata = {"name": gateway.name, "namespace": gateway.namespace}
    return Gateway.model_validate({"metadata": metadata, "spec": {"selector": INGRESS_SELECTOR, "servers": servers}})


def to_virtual_service(route: GatewayHTTPRoute) -> VirtualService:
    """The VirtualService that routes as `route` does (see the module docstring)."""
    namespace = route.namespace
    parents = route.spec.parent_refs
    services = [ref for ref in parents if is_service_parent(ref)]
    hosts: list[str] = []
    gateways: list[str] = []
    if services:
        for ref in services:
            host = fqdn(ref.name, ref.namespace or namespace)
            if host not in hosts:
                hosts.append(host)
    else:
        hosts = list(route.spec.hostnames) or ["*"]
        for ref in parents:
            if is_gateway_parent(ref):
                gateways.append(f"{ref.namespace or namespace}/{ref.name}")
    port = next((ref.port for ref in services if ref.port is not None), None)
    entries: list[tuple[tuple[int, int, int, int, int], list[dict[str, Any]]]] = []
    for index, rule in enumerate(route.spec.rules):
        name = rule.name or f"{namespace}.{route.name}.{index}"
        for match in rule_matches(rule):
            entries.append((precedence(match), _routes(rule, match, name, namespace, port)))
    entries.sort(key=lambda entry: entry[0])
    spec: dict[str, Any] = {
        "hosts": hosts,
        "gateways": gateways or [MESH],
        "http": [item for _, routes in entries for item in routes],
    }
    metadata = {"name": route.name, "namespace": namespace}
    return VirtualService.model_validate({"metadata": metadata, "spec": spec})


def _routes(rule: HTTPRouteRule, match: HTTPRouteMatch, name: str, namespace: str, port: int | None) -> list[dict[str, Any]]:
    """The VirtualService routes for one match of a rule: two for a PathPrefix other than "/"."""
    base = _base_match(match, port)
    kind, value = path_of(match)
    replacement = _prefix_replacement(rule)
    if kind == "Exact":
        paths: list[tuple[dict[str, str], str | None]] = [({"exact": value}, None)]
    elif kind == "RegularExpression":
        paths = [({"regex": value}, None)]
    elif _prefix(value) == "/":
        paths = [({"prefix": "/"}, _slashed(replacement))]
    else:
        prefix = _prefix(value)
        paths = [({"exact": prefix}, replacement), ({"prefix": prefix + "/"}, _slashed(replacement))]
    routes = []
    for uri, rewrite in paths:
        route: dict[str, Any] = {"name": name, "match": [{**base, "uri": uri}], "route": _destinations(rule, namespace)}
        if rewrite is not None:
            route["rewrite"] = {"uri": rewrite}
        headers = _headers(rule)
        if headers:
            route["headers"] = headers
        timeout = timeout_text(rule)
        if timeout is not None:
            route["timeout"] = timeout
        routes.append(route)
    return routes


def _prefix(value: str) -> str:
    """A PathPrefix value without its trailing / ("When specified, a trailing `/` is ignored")."""
    return value.rstrip("/") or "/"


def _slashed(replacement: str | None) -> str | None:
    """The rewrite for a matched "prefix/": the replacement with exactly one trailing /."""
    return None if replacement is None else replacement.rstrip("/") + "/"


def _prefix_replacement(rule: HTTPRouteRule) -> str | None:
    for item in rule.filters:
        if item.url_rewrite is not None and item.url_rewrite.path is not None:
            return item.url_rewrite.path.replace_prefix_match
    return None


def _base_match(match: HTTPRouteMatch, port: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    headers: dict[str, dict[str, str]] = {}
    for header in match.headers:
        headers.setdefault(header.name.lower(), _string_match(header.type, header.value))
    params: dict[str, dict[str, str]] = {}
    for param in match.query_params:
        params.setdefault(param.name, _string_match(param.type, param.value))
    if headers:
        found["headers"] = headers
    if params:
        found["queryParams"] = params
    if match.method is not None:
        found["method"] = {"exact": match.method}
    if port is not None:
        found["port"] = port
    return found


def _string_match(kind: str | None, value: str) -> dict[str, str]:
    return {"regex": value} if kind == "RegularExpression" else {"exact": value}


def _destinations(rule: HTTPRouteRule, namespace: str) -> list[dict[str, Any]]:
    refs = rule.backend_refs
    shares = percentages([1 if ref.weight is None else ref.weight for ref in refs])
    destinations = []
    for ref, share in zip(refs, shares, strict=True):
        destination: dict[str, Any] = {"host": fqdn(ref.name, ref.namespace or namespace)}
        if ref.port is not None:
            destination["port"] = {"number": ref.port}
        target: dict[str, Any] = {"destination": destination}
        if len(refs) > 1:
            target["weight"] = share
        destinations.append(target)
    return destinations


def _headers(rule: HTTPRouteRule) -> dict[str, Any]:
    edits: dict[str, Any] = {}
    for item in rule.filters:
        for side, modifier in (("request", item.request_header_modifier), ("response", item.response_header_modifier)):
            if modifier is not None:
                edits[side] = _operations(modifier)
    return edits


def _operations(modifier: HTTPHeaderFilter) -> dict[str, Any]:
    return {
        "set": {header.name: header.value for header in modifier.set},
        "add": {header.name: header.value for header in modifier.add},
        "remove": list(modifier.remove),
    }
