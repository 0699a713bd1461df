"""Rules for VirtualService and DestinationRule that a schema cannot express.

Each function walks a model and yields Problems with full field paths; the
first one rejects the resource. Warnings are for config Istio accepts but
that probably does not do what the learner meant.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshkit.config.checks import header_name_problem, header_value_problem
from meshkit.config.destination_rule import DestinationRule, TrafficPolicy
from meshkit.config.gateway import MESH, gateway_reference_problem, wildcard_host_problem
from meshkit.config.hosts import host_problem
from meshkit.config.problems import Path, Problem
from meshkit.config.regexes import regex_problem
from meshkit.config.virtual_service import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    StringMatch,
    VirtualService,
)
from meshkit.names import dns_label_problem

# Envoy's HTTP retry conditions that mean something for HTTP/1.1
# (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on).
RETRY_ON = (
    "5xx",
    "gateway-error",
    "connect-failure",
    "reset",
    "retriable-status-codes",
    "refused-stream",
    "retriable-4xx",
)
# Envoy's gRPC retry conditions (x-envoy-retry-grpc-on): they read the grpc-status header.
GRPC_RETRY_ON = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
MATCH_KINDS = ("exact", "prefix", "regex")


def virtual_service_problems(vs: VirtualService) -> Iterator[Problem]:
    spec = vs.spec
    if not spec.hosts:
        yield Problem(("spec", "hosts"), "a VirtualService needs at least one host: the service it routes")
    for i, gateway in enumerate(spec.gateways):
        if problem := gateway_reference_problem(gateway):
            yield Problem(("spec", "gateways", i), problem)
    for i, host in enumerate(spec.hosts):
        if problem := _vs_host_problem(host, binds_mesh(vs)):
            yield Problem(("spec", "hosts", i), problem)
    if not spec.http:
        yield Problem(("spec", "http"), "a VirtualService needs at least one http route")
    for i, route in enumerate(spec.http):
        yield from _http_route_problems(route, ("spec", "http", i))


def binds_mesh(vs: VirtualService) -> bool:
    """The VirtualService applies to sidecars: no `gateways` (Istio's default), or `mesh` among them."""
    return not vs.spec.gateways or MESH in vs.spec.gateways


def _vs_host_problem(host: str, mesh: bool) -> str | None:
    """A host the sidecars route must be a service; one only gateways route may be any host or a wildcard.

    Istio refuses `*` for sidecars and lets a gateway catch every host with it
    (Bookinfo's bookinfo-gateway.yaml does).
    """
    if not mesh:
        return wildcard_host_problem(host)
    if "*" in host:
        return (
            f"wildcard host {host!r} is allowed only in a VirtualService bound to gateways alone "
            "(gateways: [bookinfo-gateway]); for the sidecars (mesh) name a service, such as reviews"
        )
    return host_problem(host)


def _http_route_problems(route: HTTPRoute, at: Path) -> Iterator[Problem]:
    for i, match in enumerate(route.match):
        yield from _match_problems(match, at + ("match", i))
    if not route.route:
        yield Problem(at + ("route",), "a route needs at least one destination")
    for i, target in enumerate(route.route):
        yield from _destination_problems(target.destination, at + ("route", i, "destination"))
        yield from _headers_problems(target.headers, at + ("route", i, "headers"))
    if len(route.route) > 1:
        total = sum(target.weight or 0 for target in route.route)
        if total != 100:
            yield Problem(
                at + ("route",),
                f"weights add up to {total}; with more than one destination they must add up to 100",
            )
    if route.retries is not None:
        yield from _retry_problems(route.retries, at + ("retries",))
    if route.fault is not None and route.fault.delay is None and route.fault.abort is None:
        yield Problem(at + ("fault",), "a fault needs a delay, an abort or both")
    if route.mirror is not None:
        yield from _destination_problems(route.mirror, at + ("mirror",))
    elif route.mirror_percentage is not None:
        yield Problem(at + ("mirrorPercentage",), "mirrorPercentage needs a mirror to send the copies to")
    yield from _headers_problems(route.headers, at + ("headers",))


def _match_problems(match: HTTPMatchRequest, at: Path) -> Iterator[Problem]:
    for i, gateway in enumerate(match.gateways):
        if problem := gateway_reference_problem(gateway):
            yield Problem(at + ("gateways", i), problem)
    if match.uri is not None:
        yield from _string_match_problems(match.uri, at + ("uri",), presence_allowed=False)
    if match.method is not None:
        yield from _string_match_problems(match.method, at + ("method",), presence_allowed=False)
    for field, matches in (("headers", match.headers), ("withoutHeaders", match.without_headers)):
        for name, string_match in matches.items():
            if problem := header_name_problem(name, lowercase=True):
                yield Problem(at + (field, name), problem)
            yield from _string_match_problems(string_match, at + (field, name), presence_allowed=True)
    for name, string_match in match.query_params.items():
        yield from _string_match_problems(string_match, at + ("queryParams", name), presence_allowed=False)


def _string_match_problems(match: StringMatch, at: Path, presence_allowed: bool) -> Iterator[Problem]:
    given = [kind for kind in MATCH_KINDS if getattr(match, kind) is not None]
    if len(given) > 1:
        yield Problem(at, f"set only one of exact, prefix or regex; found {' and '.join(given)}")
    elif not given and not presence_allowed:
        yield Problem(at, "set one of exact, prefix or regex")
    if match.regex is not None and (problem := regex_problem(match.regex)):
        yield Problem(at + ("regex",), problem)


def _destination_problems(destination: Destination, at: Path) -> Iterator[Problem]:
    if problem := host_problem(destination.host):
        yield Problem(at + ("host",), problem)


def _headers_problems(headers: Headers | None, at: Path) -> Iterator[Problem]:
    if headers is None:
        return
    for side, operations in (("request", headers.request), ("response", headers.response)):
        if operations is not None:
            yield from _header_operation_problems(operations, at + (side,))


def _header_operation_problems(operations: HeaderOperations, at: Path) -> Iterator[Problem]:
    for field, values in (("set", operations.set), ("add", operations.add)):
        for name, value in values.items():
            if problem := header_name_problem(name) or header_value_problem(value):
                yield Problem(at + (field, name), problem)
    for i, name in enumerate(operations.remove):
        if problem := header_name_problem(name):
            yield Problem(at + ("remove", i), problem)


def _retry_problems(retries: HTTPRetry, at: Path) -> Iterator[Problem]:
    if retries.retry_on is None:
        return
    for condition in retries.retry_on.split(","):
        if problem := _retry_condition_problem(condition.strip()):
            yield Problem(at + ("retryOn",), problem)


def _retry_condition_problem(condition: str) -> str | None:
    if condition in RETRY_ON:
        return None
    if condition.isascii() and condition.isdigit():
        if 100 <= int(condition) <= 599:
            return None
        return f"{condition} is not an HTTP status code (100 to 599)"
    if condition in GRPC_RETRY_ON:
        return f"{condition!r} is a gRPC retry condition; meshkit speaks HTTP/1.1: use {', '.join(RETRY_ON)}"
    if not condition:
        return "empty condition: write conditions separated by single commas, such as 5xx,connect-failure"
    return f"unknown retry condition {condition!r}; use {', '.join(RETRY_ON)} or a status code such as 503"


def virtual_service_warnings(vs: VirtualService) -> Iterator[Problem]:
    if vs.spec.export_to:
        yield Problem(("spec", "exportTo"), "accepted and ignored: every resource is visible to the whole lab")
    for i, route in enumerate(vs.spec.http):
        at: Path = ("spec", "http", i)
        if len(route.route) == 1 and route.route[0].weight not in (None, 100):
            yield Problem(
                at + ("route", 0, "weight"),
                f"a single destination gets every request; its weight {route.route[0].weight} is ignored",
            )
        if route.retries is not None and route.retries.retry_remote_localities is not None:
            yield Problem(at + ("retries", "retryRemoteLocalities"), "accepted and ignored: meshkit has one locality")
        fault = route.fault
        for name, part in (("delay", fault and fault.delay), ("abort", fault and fault.abort)):
            if part and part.percentage is None:
                yield Problem(
                    at + ("fault", name),
                    f"no percentage: Istio injects this {name} into no requests (istio/istio#36303); "
                    "add percentage: {value: 100} to affect every matching request",
                )


def destination_rule_problems(rule: DestinationRule) -> Iterator[Problem]:
    spec = rule.spec
    if problem := host_problem(spec.host):
        yield Problem(("spec", "host"), problem)
    yield from _traffic_policy_problems(spec.traffic_policy, ("spec", "trafficPolicy"))
    seen: set[str] = set()
    for i, subset in enumerate(spec.subsets):
        at: Path = ("spec", "subsets", i)
        if problem := dns_label_problem(subset.name):
            yield Problem(at + ("name",), problem)
        if subset.name in seen:
            yield Problem(at + ("name",), f"subset {subset.name!r} is defined twice")
        seen.add(subset.name)
        yield from _traffic_policy_problems(subset.traffic_policy, at + ("trafficPolicy",))


def _traffic_policy_problems(policy: TrafficPolicy | None, at: Path) -> Iterator[Problem]:
    balancer = policy.load_balancer if policy else None
    if balancer is None:
        return
    if balancer.simple is not None and balancer.consistent_hash is not None:
        yield Problem(at + ("loadBalancer",), "set either simple or consistentHash, not both")
    if balancer.consistent_hash is not None and (
        problem := header_name_problem(balancer.consistent_hash.http_header_name)
    ):
        yield Problem(at + ("loadBalancer", "consistentHash", "httpHeaderName"), problem)


def destination_rule_warnings(rule: DestinationRule) -> Iterator[Problem]:
    if rule.spec.export_to:
        yield Problem(("spec", "exportTo"), "accepted and ignored: every resource is visible to the whole lab")

