"""Rules for HTTPRoute and Gateway that a schema cannot express, with full field paths.

Most are the Gateway API's own validation (its CRD's CEL rules: a filter type
at most once per rule, unique header names in a modifier, ReplacePrefixMatch
only with PathPrefix matches, backendRequest within request); the rest say
where meshkit stops: what its VirtualService cannot express is refused with
"... is not supported in meshkit: <why>", the same style as Istio's kinds.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshkit.config.checks import header_name_problem, header_value_problem
from meshkit.config.gateway import gateway_reference_problem, wildcard_host_problem
from meshkit.config.gateway_api import (
    GATEWAY_CLASSES,
    GATEWAY_GROUP,
    GatewayAPIGateway,
    GatewayHTTPRoute,
    HTTPHeaderFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    Listener,
)
from meshkit.config.gateway_translation import (
    SERVICE_GROUPS,
    is_gateway_parent,
    is_service_parent,
    parent_group_kind,
    parse_gateway_duration,
    path_of,
    rule_matches,
)
from meshkit.config.problems import Path, Problem
from meshkit.config.regexes import regex_problem
from meshkit.config.schema import unsupported_reason
from meshkit.names import dns_label_problem, dns_subdomain_problem

FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "URLRewrite": "urlRewrite",
}
CROSS_NAMESPACE = (
    "a Gateway API reference to another namespace needs a ReferenceGrant, which meshkit does not have; "
    "name a Service in the route's namespace"
)
CONSUMER_ROUTE = (
    "a route in another namespace than its Service (a GAMMA consumer route) applies only to callers in the "
    "route's namespace, and meshkit's routes apply to every caller; put the route in the Service's namespace"
)


def http_route_problems(route: GatewayHTTPRoute) -> Iterator[Problem]:
    yield from _parent_problems(route)
    spec = route.spec
    if spec.parent_refs and not any(is_service_parent(ref) for ref in spec.parent_refs):
        for i, hostname in enumerate(spec.hostnames):
            if problem := _hostname_problem(hostname):
                yield Problem(("spec", "hostnames", i), problem)
    if not spec.rules:
        yield Problem(
            ("spec", "rules"),
            "an HTTPRoute needs at least one rule with backendRefs: without one the Gateway API answers "
            "every request with an error, and meshkit's proxy does not answer for a service",
        )
    for i, rule in enumerate(spec.rules):
        yield from _rule_problems(rule, route.namespace, ("spec", "rules", i))


def http_route_warnings(route: GatewayHTTPRoute) -> Iterator[Problem]:
    if route.spec.hostnames and any(is_service_parent(ref) for ref in route.spec.parent_refs):
        yield Problem(
            ("spec", "hostnames"),
            "accepted and ignored: a route attached to a Service applies to the calls to that Service",
        )


def _parent_problems(route: GatewayHTTPRoute) -> Iterator[Problem]:
    refs = route.spec.parent_refs
    if not refs:
        yield Problem(
            ("spec", "parentRefs"),
            "an HTTPRoute needs a parentRef: the Service whose calls it routes (group: \"\", kind: Service) "
            "or a Gateway",
        )
    ports: set[int | None] = set()
    services = gateways = 0
    for i, ref in enumerate(refs):
        at: Path = ("spec", "parentRefs", i)
        group, kind = parent_group_kind(ref)
        if problem := dns_label_problem(ref.name):
            yield Problem(at + ("name",), problem)
        if ref.namespace is not None and (problem := dns_label_problem(ref.namespace)):
            yield Problem(at + ("namespace",), problem)
        if is_service_parent(ref):
            services += 1
            ports.add(ref.port)
            if ref.namespace not in (None, route.namespace):
                yield Problem(at + ("namespace",), unsupported_reason("a parentRef to another namespace", CONSUMER_ROUTE))
            if len(ports) > 1:
                yield Problem(
                    at + ("port",),
                    "every Service parentRef of one HTTPRoute must name the same port (or none): "
                    "meshkit gives them one set of rules; write one HTTPRoute per port",
                )
        elif is_gateway_parent(ref):
            gateways += 1
            if ref.port is not None:
                yield Problem(
                    at + ("port",),
                    unsupported_reason("port on a Gateway parentRef", "a route binds to every listener of its Gateway"),
                )
            if problem := gateway_reference_problem(f"{ref.namespace or route.namespace}/{ref.name}"):
                yield Problem(at, problem)
        elif kind == "Service":
            yield Problem(
                at + ("group",),
                f"kind Service is in group \"\" (or core); the group defaults to {GATEWAY_GROUP}, "
                "so write group: \"\"",
            )
        else:
            yield Problem(
                at + ("kind",),
                unsupported_reason(
                    f"{kind} ({group or 'core'})", "a route attaches to a Service (group \"\") or a Gateway"
                ),
            )
        if services and gateways:
            yield Problem(
                at,
                unsupported_reason(
                    "a route attached to both Services and Gateways",
                    "meshkit reads it as one VirtualService; write one HTTPRoute for the Services and one for "
                    "the Gateways",
                ),
            )


def _hostname_problem(hostname: str) -> str | None:
    name = hostname[2:] if hostname.startswith("*.") else hostname
    if dns_subdomain_problem(name):
        return f"{hostname!r} is not a hostname: write a DNS name such as bookinfo.example.com, or *.example.com"
    return None


def _rule_problems(rule: HTTPRouteRule, namespace: str, at: Path) -> Iterator[Problem]:
    for i, match in enumerate(rule.matches):
        yield from _match_problems(match, at + ("matches", i))
    seen: dict[str, int] = {}
    for i, item in enumerate(rule.filters):
        where = at + ("filters", i)
        if item.type in seen:
            yield Problem(where + ("type",), f"{item.type} appears twice in this rule (filters[{seen[item.type]}]); "
                          "the Gateway API allows each once")
        seen.setdefault(item.type, i)
        given = {
            "requestHeaderModifier": item.request_header_modifier,
            "responseHeaderModifier": item.response_header_modifier,
            "urlRewrite": item.url_rewrite,
        }
        wanted = FILTER_FIELDS[item.type]
        if given[wanted] is None:
            yield Problem(where + (wanted,), f"a filter of type {item.type} needs {wanted}")
        for field, value in given.items():
            if field != wanted and value is not None:
                yield Problem(where + (field,), f"a filter of type {item.type} sets only {wanted}")
        for field in ("requestHeaderModifier", "responseHeaderModifier"):
            modifier = given[field]
            if isinstance(modifier, HTTPHeaderFilter):
                yield from _modifier_problems(modifier, where + (field,))
        rewrite = item.url_rewrite
        if rewrite is not None and rewrite.path is not None:
            path_at = where + ("urlRewrite", "path", "replacePrefixMatch")
            value = rewrite.path.replace_prefix_match
            if value is None:
                yield Problem(path_at, "type ReplacePrefixMatch needs replacePrefixMatch, such as /")
            elif not value.startswith("/"):
                yield Problem(path_at, f"{value!r} must start with /")
            for j, match in enumerate(rule_matches(rule)):
                kind, _ = path_of(match)
                if kind != "PathPrefix":
                    yield Problem(
                        path_at,
                        f"ReplacePrefixMatch needs every match of its rule to match a PathPrefix; "
                        f"matches[{j}] matches {kind}",
                    )
    yield from _backend_problems(rule, namespace, at)
    timeouts = rule.timeouts
    if timeouts is not None and timeouts.request is not None and timeouts.backend_request is not None:
        request = parse_gateway_duration(timeouts.request)
        backend = parse_gateway_duration(timeouts.backend_request)
        if request > 0 and backend > request:
            yield Problem(
                at + ("timeouts", "backendRequest"),
                f"backendRequest {timeouts.backend_request} must not be longer than request {timeouts.request}",
            )


def _match_problems(match: HTTPRouteMatch, at: Path) -> Iterator[Problem]:
    kind, value = path_of(match)
    if kind == "RegularExpression":
        if problem := regex_problem(value):
            yield Problem(at + ("path", "value"), problem)
    elif not value.startswith("/"):
        yield Problem(at + ("path", "value"), f"{value!r} must start with /")
    for i, header in enumerate(match.headers):
        if problem := header_name_problem(header.name):
            yield Problem(at + ("headers", i, "name"), problem)
        if header.type == "RegularExpression" and (problem := regex_problem(header.value)):
            yield Problem(at + ("headers", i, "value"), problem)
    for i, param in enumerate(match.query_params):
        if not param.name:
            yield Problem(at + ("queryParams", i, "name"), "must not be empty")
        if param.type == "RegularExpression" and (problem := regex_problem(param.value)):
            yield Problem(at + ("queryParams", i, "value"), problem)


def _modifier_problems(modifier: HTTPHeaderFilter, at: Path) -> Iterator[Problem]:
    for field, headers in (("set", modifier.set), ("add", modifier.add)):
        seen: set[str] = set()
        for i, header in enumerate(headers):
            if problem := header_name_problem(header.name) or header_value_problem(header.value):
                yield Problem(at + (field, i), problem)
            if header.name.lower() in seen:
                yield Problem(at + (field, i, "name"), f"header {header.name!r} is named twice in {field}")
            seen.add(header.name.lower())
    for i, name in enumerate(modifier.remove):
        if problem := header_name_problem(name):
            yield Problem(at + ("remove", i), problem)


def _backend_problems(rule: HTTPRouteRule, namespace: str, at: Path) -> Iterator[Problem]:
    for i, ref in enumerate(rule.backend_refs):
        where = at + ("backendRefs", i)
        group = "" if ref.group is None else ref.group
        kind = ref.kind or "Service"
        if kind != "Service" or group not in SERVICE_GROUPS:
            yield Problem(
                where + ("kind",),
                unsupported_reason(f"backendRef {kind} ({group or 'core'})", "a backendRef names a Service"),
            )
        if problem := dns_label_problem(ref.name):
            yield Problem(where + ("name",), problem)
        if ref.namespace not in (None, namespace):
            yield Problem(where + ("namespace",), unsupported_reason("a backendRef to another namespace", CROSS_NAMESPACE))
        if ref.port is None:
            yield Problem(where + ("port",), "required field is missing: a backendRef to a Service names its port")
    weights = [1 if ref.weight is None else ref.weight for ref in rule.backend_refs]
    if sum(weights) == 0:
        yield Problem(
            at + ("backendRefs",),
            "a rule needs a backendRef with a weight above 0: the Gateway API answers every request it matches "
            "with 500, and meshkit's proxy does not answer for a service",
        )


def gateway_api_gateway_problems(gateway: GatewayAPIGateway) -> Iterator[Problem]:
    """A class the lab's ingress gateway serves, listeners it can open, routes it can admit."""
    spec = gateway.spec
    if spec.gateway_class_name not in GATEWAY_CLASSES:
        yield Problem(
            ("spec", "gatewayClassName"),
            unsupported_reason(
                f"gatewayClassName {spec.gateway_class_name!r}",
                "the lab's ingress gateway (istio-ingressgateway) serves class istio or meshkit, and there is no "
                "other gateway",
            ),
        )
    if not spec.listeners:
        yield Problem(("spec", "listeners"), "a Gateway needs at least one listener: a port, protocol HTTP and a name")
    seen: dict[str, int] = {}
    for i, listener in enumerate(spec.listeners):
        at: Path = ("spec", "listeners", i)
        if listener.name in seen:
            yield Problem(at + ("name",), f"listener name {listener.name!r} is already used by listeners[{seen[listener.name]}]")
        seen.setdefault(listener.name, i)
        if problem := dns_subdomain_problem(listener.name):
            yield Problem(at + ("name",), problem)
        yield from _listener_problems(listener, at)


def _listener_problems(listener: Listener, at: Path) -> Iterator[Problem]:
    hostname = listener.hostname
    if hostname is not None:
        if hostname == "*":
            yield Problem(at + ("hostname",), "leave hostname out to answer for every host; '*' alone is not a hostname")
        elif problem := wildcard_host_problem(hostname):
            yield Problem(at + ("hostname",), problem)
    allowed = listener.allowed_routes
    for j, kind in enumerate(allowed.kinds if allowed is not None else []):
        group = GATEWAY_GROUP if kind.group is None else kind.group
        if (group, kind.kind) != (GATEWAY_GROUP, "HTTPRoute"):
            yield Problem(
                at + ("allowedRoutes", "kinds", j),
                unsupported_reason(f"{kind.kind} ({group or 'core'})", "an HTTP listener in meshkit admits HTTPRoutes only"),
            )
