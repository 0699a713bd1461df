"""The traffic resources of a snapshot, typed and checked.

The control plane sends VirtualServices, DestinationRules, LocalRateLimits
and (to a gateway) Gateways in their canonical form (meshkit/config/canonical.py's
docstring is the shape; Istio's defaults are already filled in). It has
validated them before storing them, but a sidecar still checks every field
it will act on: a snapshot that does not have the documented shape is NACKed
with the field path (`virtual_services[0].spec.http[1].timeout: ...`) and
changes nothing, as docs/internals.md requires.

Parsing is separate from compiling (routes.py): these classes say what the
resources are; the compiled route table says what a request does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshkit.core.checks import HEADER_NAME, HEADER_VALUE, RESOURCE_NAME, Checker, resource_envelope

NO_LIMIT = 2**32 - 1
MAX_DURATION_S = 315_576_000_000.0  # protobuf Duration's limit (10,000 years)
RETRY_CONDITIONS = (
    "5xx",
    "gateway-error",
    "connect-failure",
    "reset",
    "retriable-status-codes",
    "retriable-4xx",
    "refused-stream",
    "unavailable",
    "cancelled",
)
STRING_MATCH_TYPES = ("exact", "prefix", "regex", "present")
LOAD_BALANCERS = ("LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", None)
TLS_MODES = ("DISABLE", "ISTIO_MUTUAL", None)
_FQDN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A host a gateway matches: a name, a wildcard prefix (*.example.com) or *.
_GATEWAY_HOST = re.compile(r"\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# `mesh`, or a Gateway as namespace/name.
_GATEWAY_REF = re.compile(r"mesh|[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_NAMESPACE_OR_ANY = re.compile(r"\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MESH = "mesh"


@dataclass(frozen=True, slots=True)
class StringMatch:
    """Istio's StringMatch; `present` only means "the header exists"."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class MatchSpec:
    """One HTTPMatchRequest: every condition given must hold."""

    name: str | None
    uri: StringMatch | None
    method: StringMatch | None
    headers: tuple[tuple[str, StringMatch], ...]
    without_headers: tuple[tuple[str, StringMatch], ...]
    query_params: tuple[tuple[str, StringMatch], ...]
    ignore_uri_case: bool
    port: int | None
    source_labels: Mapping[str, str]
    # Where this match applies (mesh, namespace/name); () means the VirtualService's gateways.
    gateways: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    host: str
    subset: str | None
    port: int | None


@dataclass(frozen=True, slots=True)
class HeaderOps:
    """Header edits: remove these names, set these (replacing), add these (appending)."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.set or self.add or self.remove)


NO_HEADER_OPS = HeaderOps()


@dataclass(frozen=True, slots=True)
class HeadersSpec:
    request: HeaderOps
    response: HeaderOps


@dataclass(frozen=True, slots=True)
class WeightedDestination:
    destination: DestinationSpec
    weight: int
    headers: HeadersSpec


@dataclass(frozen=True, slots=True)
class RetrySpec:
    attempts: int
    per_try_timeout: float | None
    retry_on: tuple[str, ...]
    retriable_status_codes: tuple[int, ...]


DEFAULT_RETRY = RetrySpec(
    attempts=2,
    per_try_timeout=None,
    retry_on=("connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"),
    retriable_status_codes=(),
)
"""Istio's retry policy for a route that sets none, and for the default route
of a service with no VirtualService (canonical.py's default_retries)."""


@dataclass(frozen=True, slots=True)
class DelaySpec:
    fixed_delay: float
    percentage: float


@dataclass(frozen=True, slots=True)
class AbortSpec:
    http_status: int
    percentage: float


@dataclass(frozen=True, slots=True)
class FaultSpec:
    delay: DelaySpec | None
    abort: AbortSpec | None


@dataclass(frozen=True, slots=True)
class HttpRouteSpec:
    """One VirtualService http rule."""

    name: str | None
    match: tuple[MatchSpec, ...]
    route: tuple[WeightedDestination, ...]
    rewrite_uri: str | None
    timeout: float | None
    retries: RetrySpec
    fault: FaultSpec | None
    mirror: DestinationSpec | None
    mirror_percentage: float
    headers: HeadersSpec


@dataclass(frozen=True, slots=True)
class VirtualServiceSpec:
    namespace: str
    name: str
    hosts: tuple[str, ...]
    http: tuple[HttpRouteSpec, ...]
    # mesh (the sidecars) and Gateways as namespace/name; a snapshot without them means mesh.
    gateways: tuple[str, ...] = (MESH,)

    @property
    def for_mesh(self) -> bool:
        return MESH in self.gateways


@dataclass(frozen=True, slots=True)
class ServerHost:
    """A Gateway server host: whose VirtualServices may bind (`*` or a namespace) and the host matched."""

    namespace: str
    host: str


@dataclass(frozen=True, slots=True)
class ServerSpec:
    port: int
    name: str
    hosts: tuple[ServerHost, ...]


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """An Istio Gateway that selects this node: the ports and hosts it opens."""

    namespace: str
    name: str
    servers: tuple[ServerSpec, ...]

    @property
    def reference(self) -> str:
        """How VirtualServices name it in canonical form: namespace/name."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class OutlierSpec:
    consecutive_5xx_errors: int
    consecutive_gateway_errors: int
    interval: float
    base_ejection_time: float
    max_ejection_percent: int


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A DestinationRule traffic policy, flattened to what the sidecar uses."""

    load_balancer: str | None  # None: consistent hash on hash_header
    hash_header: str | None
    max_connections: int
    connect_timeout: float
    max_pending_requests: int
    max_requests: int
    max_requests_per_connection: int
    max_retries: int
    outlier: OutlierSpec | None
    tls_mode: str | None


DEFAULT_POLICY = PolicySpec(
    load_balancer="LEAST_REQUEST",
    hash_header=None,
    max_connections=NO_LIMIT,
    connect_timeout=10.0,
    max_pending_requests=NO_LIMIT,
    max_requests=NO_LIMIT,
    max_requests_per_connection=0,
    max_retries=NO_LIMIT,
    outlier=None,
    tls_mode=None,
)
"""A service no DestinationRule mentions: the defaults canonical.py documents
(LEAST_REQUEST since Istio 1.14, no connection limits, 10 s connect timeout)."""


@dataclass(frozen=True, slots=True)
class SubsetSpec:
    name: str
    labels: Mapping[str, str]
    policy: PolicySpec


@dataclass(frozen=True, slots=True)
class DestinationRuleSpec:
    namespace: str
    name: str
    host: str
    policy: PolicySpec
    subsets: tuple[SubsetSpec, ...]


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """A LocalRateLimit (meshkit.dev/v1alpha1): Envoy's local token bucket."""

    namespace: str
    name: str
    max_tokens: int
    tokens_per_fill: int
    fill_interval: float
    paths: tuple[str, ...]


def _duration(check: Checker, value: Any, path: str) -> float:
    return check.number(value, path, 0.001, MAX_DURATION_S)


def _percent(check: Checker, value: Any, path: str) -> float:
    return check.number(value, path, 0.0, 100.0)


def _string_match(check: Checker, raw: Any, path: str) -> StringMatch:
    obj = check.mapping(raw, path)
    kind = check.choice(check.get(obj, "type", path), f"{path}.type", STRING_MATCH_TYPES)
    value = check.get(obj, "value", path)
    if not isinstance(value, str):
        raise check.fail(f"{path}.value", f"expected a string, got {value!r}")
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise check.fail(f"{path}.value", f"regex does not compile: {exc}") from exc
    return StringMatch(kind, value)


def _named_matches(check: Checker, raw: Any, path: str) -> tuple[tuple[str, StringMatch], ...]:
    obj = check.mapping(raw, path)
    return tuple((check.text(name, path, HEADER_NAME), _string_match(check, value, f"{path}.{name}")) for name, value in obj.items())


def _match(check: Checker, raw: Any, path: str) -> MatchSpec:
    obj = check.mapping(raw, path)
    port = obj.get("port")
    return MatchSpec(
        name=check.optional_text(obj.get("name"), f"{path}.name"),
        uri=None if obj.get("uri") is None else _string_match(check, obj["uri"], f"{path}.uri"),
        method=None if obj.get("method") is None else _string_match(check, obj["method"], f"{path}.method"),
        headers=_named_matches(check, obj.get("headers", {}), f"{path}.headers"),
        without_headers=_named_matches(check, obj.get("without_headers", {}), f"{path}.without_headers"),
        query_params=tuple(
            (check.text(name, f"{path}.query_params"), _string_match(check, value, f"{path}.query_params.{name}"))
            for name, value in check.mapping(obj.get("query_params", {}), f"{path}.query_params").items()
        ),
        ignore_uri_case=check.boolean(obj.get("ignore_uri_case", False), f"{path}.ignore_uri_case"),
        port=None if port is None else check.integer(port, f"{path}.port", 1, 65535),
        source_labels=check.labels(obj.get("source_labels", {}), f"{path}.source_labels"),
        gateways=_gateway_refs(check, obj.get("gateways", []), f"{path}.gateways"),
    )


def _gateway_refs(check: Checker, raw: Any, path: str) -> tuple[str, ...]:
    return tuple(check.text(g, f"{path}[{i}]", _GATEWAY_REF) for i, g in enumerate(check.items(raw, path)))


def _destination(check: Checker, raw: Any, path: str) -> DestinationSpec:
    obj = check.mapping(raw, path)
    port = obj.get("port")
    return DestinationSpec(
        host=check.text(check.get(obj, "host", path), f"{path}.host", _FQDN),
        subset=check.optional_text(obj.get("subset"), f"{path}.subset", RESOURCE_NAME),
        port=None if port is None else check.integer(port, f"{path}.port", 1, 65535),
    )


def _header_ops(check: Checker, raw: Any, path: str) -> HeaderOps:
    if raw is None:
        return NO_HEADER_OPS
    obj = check.mapping(raw, path)

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        where = f"{path}.{key}"
        table = check.mapping(obj.get(key, {}), where)
        return tuple((check.text(n.lower(), where, HEADER_NAME), check.text(v, f"{where}.{n}", HEADER_VALUE)) for n, v in table.items())

    remove = tuple(check.text(n.lower(), f"{path}.remove[{i}]", HEADER_NAME) for i, n in enumerate(check.items(obj.get("remove", []), f"{path}.remove")))
    ops = HeaderOps(set=pairs("set"), add=pairs("add"), remove=remove)
    return NO_HEADER_OPS if ops.empty else ops


def _headers(check: Checker, raw: Any, path: str) -> HeadersSpec:
    obj = check.mapping(raw if raw is not None else {}, path)
    return HeadersSpec(_header_ops(check, obj.get("request"), f"{path}.request"), _header_ops(check, obj.get("response"), f"{path}.response"))


def _retries(check: Checker, raw: Any, path: str) -> RetrySpec:
    obj = check.mapping(raw, path)
    conditions = check.items(check.get(obj, "retry_on", path), f"{path}.retry_on")
    codes = check.items(obj.get("retriable_status_codes", []), f"{path}.retriable_status_codes")
    return RetrySpec(
        attempts=check.integer(check.get(obj, "attempts", path), f"{path}.attempts", 0, 1000),
        per_try_timeout=None if obj.get("per_try_timeout") is None else _duration(check, obj["per_try_timeout"], f"{path}.per_try_timeout"),
        retry_on=tuple(check.choice(c, f"{path}.retry_on[{i}]", RETRY_CONDITIONS) for i, c in enumerate(conditions)),
        retriable_status_codes=tuple(check.integer(c, f"{path}.retriable_status_codes[{i}]", 100, 599) for i, c in enumerate(codes)),
    )


def _fault(check: Checker, raw: Any, path: str) -> FaultSpec | None:
    if raw is None:
        return None
    obj = check.mapping(raw, path)
    delay = abort = None
    if obj.get("delay") is not None:
        d = check.mapping(obj["delay"], f"{path}.delay")
        delay = DelaySpec(
            _duration(check, check.get(d, "fixed_delay", f"{path}.delay"), f"{path}.delay.fixed_delay"),
            _percent(check, d.get("percentage", 0.0), f"{path}.delay.percentage"),
        )
    if obj.get("abort") is not None:
        a = check.mapping(obj["abort"], f"{path}.abort")
        abort = AbortSpec(
            check.integer(check.get(a, "http_status", f"{path}.abort"), f"{path}.abort.http_status", 200, 599),
            _percent(check, a.get("percentage", 0.0), f"{path}.abort.percentage"),
        )
    if delay is None and abort is None:
        raise check.fail(path, "a fault needs a delay, an abort or both")
    return FaultSpec(delay, abort)


def _http_route(check: Checker, raw: Any, path: str) -> HttpRouteSpec:
    obj = check.mapping(raw, path)
    targets = check.items(check.get(obj, "route", path), f"{path}.route")
    if not targets:
        raise check.fail(f"{path}.route", "a rule needs at least one destination")
    route = []
    for i, target in enumerate(targets):
        where = f"{path}.route[{i}]"
        t = check.mapping(target, where)
        route.append(
            WeightedDestination(
                _destination(check, check.get(t, "destination", where), f"{where}.destination"),
                check.integer(t.get("weight", 100), f"{where}.weight", 0, 100),
                _headers(check, t.get("headers"), f"{where}.headers"),
            )
        )
    if sum(t.weight for t in route) == 0:
        raise check.fail(f"{path}.route", "weights add up to 0: no destination would get a request")
    rewrite = obj.get("rewrite")
    rewrite_uri = None
    if rewrite is not None:
        uri = check.mapping(rewrite, f"{path}.rewrite").get("uri")
        rewrite_uri = check.optional_text(uri, f"{path}.rewrite.uri")
        if rewrite_uri is not None and not rewrite_uri.startswith("/"):
            raise check.fail(f"{path}.rewrite.uri", f"a path must start with '/', got {rewrite_uri!r}")
    mirror = obj.get("mirror")
    return HttpRouteSpec(
        name=check.optional_text(obj.get("name"), f"{path}.name"),
        match=tuple(_match(check, m, f"{path}.match[{i}]") for i, m in enumerate(check.items(obj.get("match", []), f"{path}.match"))),
        route=tuple(route),
        rewrite_uri=rewrite_uri,
        timeout=None if obj.get("timeout") is None else _duration(check, obj["timeout"], f"{path}.timeout"),
        retries=_retries(check, check.get(obj, "retries", path), f"{path}.retries"),
        fault=_fault(check, obj.get("fault"), f"{path}.fault"),
        mirror=None if mirror is None else _destination(check, mirror, f"{path}.mirror"),
        mirror_percentage=_percent(check, obj.get("mirror_percentage", 0.0), f"{path}.mirror_percentage"),
        headers=_headers(check, obj.get("headers"), f"{path}.headers"),
    )


def parse_virtual_service(check: Checker, raw: Any, path: str) -> VirtualServiceSpec:
    namespace, name, spec = resource_envelope(check, raw, path, "VirtualService")
    hosts = check.items(check.get(spec, "hosts", f"{path}.spec"), f"{path}.spec.hosts")
    rules = check.items(check.get(spec, "http", f"{path}.spec"), f"{path}.spec.http")
    gateways = _gateway_refs(check, spec.get("gateways", [MESH]), f"{path}.spec.gateways")
    if not gateways:
        raise check.fail(f"{path}.spec.gateways", "expected mesh or Gateways (namespace/name), got none")
    host_pattern = _FQDN if MESH in gateways else _GATEWAY_HOST
    return VirtualServiceSpec(
        namespace=namespace,
        name=name,
        hosts=tuple(check.text(h, f"{path}.spec.hosts[{i}]", host_pattern) for i, h in enumerate(hosts)),
        http=tuple(_http_route(check, r, f"{path}.spec.http[{i}]") for i, r in enumerate(rules)),
        gateways=gateways,
    )


def parse_gateway(check: Checker, raw: Any, path: str) -> GatewaySpec:
    """A Gateway in canonical form (meshkit.config.gateway.canonical_gateway); only HTTP servers exist."""
    namespace, name, spec = resource_envelope(check, raw, path, "Gateway")
    check.labels(spec.get("selector", {}), f"{path}.spec.selector")
    servers = []
    for i, raw_server in enumerate(check.items(check.get(spec, "servers", f"{path}.spec"), f"{path}.spec.servers")):
        where = f"{path}.spec.servers[{i}]"
        server = check.mapping(raw_server, where)
        check.choice(check.get(server, "protocol", where), f"{where}.protocol", ("HTTP",))
        hosts = []
        for j, raw_host in enumerate(check.items(check.get(server, "hosts", where), f"{where}.hosts")):
            at = f"{where}.hosts[{j}]"
            host = check.mapping(raw_host, at)
            hosts.append(
                ServerHost(
                    check.text(check.get(host, "namespace", at), f"{at}.namespace", _NAMESPACE_OR_ANY),
                    check.text(check.get(host, "host", at), f"{at}.host", _GATEWAY_HOST),
                )
            )
        servers.append(
            ServerSpec(
                port=check.integer(check.get(server, "port", where), f"{where}.port", 1, 65535),
                name=check.text(check.get(server, "name", where), f"{where}.name"),
                hosts=tuple(hosts),
            )
        )
    return GatewaySpec(namespace=namespace, name=name, servers=tuple(servers))


def _policy(check: Checker, raw: Any, path: str) -> PolicySpec:
    obj = check.mapping(raw, path)
    lb = check.mapping(check.get(obj, "load_balancer", path), f"{path}.load_balancer")
    simple = check.choice(lb.get("simple"), f"{path}.load_balancer.simple", LOAD_BALANCERS)
    hashing = lb.get("consistent_hash")
    hash_header = None
    if hashing is not None:
        where = f"{path}.load_balancer.consistent_hash"
        hash_header = check.text(check.get(check.mapping(hashing, where), "http_header_name", where), f"{where}.http_header_name", HEADER_NAME)
    elif simple is None:
        raise check.fail(f"{path}.load_balancer", "set simple or consistent_hash")
    pool = check.mapping(check.get(obj, "connection_pool", path), f"{path}.connection_pool")
    tcp = check.mapping(check.get(pool, "tcp", f"{path}.connection_pool"), f"{path}.connection_pool.tcp")
    http = check.mapping(check.get(pool, "http", f"{path}.connection_pool"), f"{path}.connection_pool.http")

    def limit(section: Mapping[str, Any], key: str, where: str, low: int = 1) -> int:
        return check.integer(check.get(section, key, where), f"{where}.{key}", low, NO_LIMIT)

    outlier_raw = obj.get("outlier_detection")
    outlier = None
    if outlier_raw is not None:
        where = f"{path}.outlier_detection"
        o = check.mapping(outlier_raw, where)
        outlier = OutlierSpec(
            consecutive_5xx_errors=check.integer(check.get(o, "consecutive_5xx_errors", where), f"{where}.consecutive_5xx_errors", 0, NO_LIMIT),
            consecutive_gateway_errors=check.integer(check.get(o, "consecutive_gateway_errors", where), f"{where}.consecutive_gateway_errors", 0, NO_LIMIT),
            interval=_duration(check, check.get(o, "interval", where), f"{where}.interval"),
            base_ejection_time=_duration(check, check.get(o, "base_ejection_time", where), f"{where}.base_ejection_time"),
            max_ejection_percent=check.integer(check.get(o, "max_ejection_percent", where), f"{where}.max_ejection_percent", 0, 100),
        )
    tls = check.mapping(obj.get("tls", {"mode": None}), f"{path}.tls")
    return PolicySpec(
        load_balancer=None if hash_header is not None else simple,
        hash_header=hash_header,
        max_connections=limit(tcp, "max_connections", f"{path}.connection_pool.tcp"),
        connect_timeout=_duration(check, check.get(tcp, "connect_timeout", f"{path}.connection_pool.tcp"), f"{path}.connection_pool.tcp.connect_timeout"),
        max_pending_requests=limit(http, "http1_max_pending_requests", f"{path}.connection_pool.http"),
        max_requests=limit(http, "http2_max_requests", f"{path}.connection_pool.http"),
        max_requests_per_connection=limit(http, "max_requests_per_connection", f"{path}.connection_pool.http", low=0),
        max_retries=limit(http, "max_retries", f"{path}.connection_pool.http"),
        outlier=outlier,
        tls_mode=check.choice(tls.get("mode"), f"{path}.tls.mode", TLS_MODES),
    )


def parse_destination_rule(check: Checker, raw: Any, path: str) -> DestinationRuleSpec:
    namespace, name, spec = resource_envelope(check, raw, path, "DestinationRule")
    subsets = []
    seen: set[str] = set()
    for i, raw_subset in enumerate(check.items(spec.get("subsets", []), f"{path}.spec.subsets")):
        where = f"{path}.spec.subsets[{i}]"
        s = check.mapping(raw_subset, where)
        subset_name = check.text(check.get(s, "name", where), f"{where}.name", RESOURCE_NAME)
        if subset_name in seen:
            raise check.fail(f"{where}.name", f"subset {subset_name!r} is defined twice")
        seen.add(subset_name)
        subsets.append(SubsetSpec(subset_name, check.labels(s.get("labels", {}), f"{where}.labels"), _policy(check, check.get(s, "traffic_policy", where), f"{where}.traffic_policy")))
    return DestinationRuleSpec(
        namespace=namespace,
        name=name,
        host=check.text(check.get(spec, "host", f"{path}.spec"), f"{path}.spec.host", _FQDN),
        policy=_policy(check, check.get(spec, "traffic_policy", f"{path}.spec"), f"{path}.spec.traffic_policy"),
        subsets=tuple(subsets),
    )


def parse_rate_limit(check: Checker, raw: Any, path: str) -> RateLimitSpec:
    namespace, name, spec = resource_envelope(check, raw, path, "LocalRateLimit")
    where = f"{path}.spec.token_bucket"
    bucket = check.mapping(check.get(spec, "token_bucket", f"{path}.spec"), where)
    paths = check.items(spec.get("paths", []), f"{path}.spec.paths")
    return RateLimitSpec(
        namespace=namespace,
        name=name,
        max_tokens=check.integer(check.get(bucket, "max_tokens", where), f"{where}.max_tokens", 1, NO_LIMIT),
        tokens_per_fill=check.integer(check.get(bucket, "tokens_per_fill", where), f"{where}.tokens_per_fill", 1, NO_LIMIT),
        fill_interval=check.number(check.get(bucket, "fill_interval", where), f"{where}.fill_interval", 0.05, MAX_DURATION_S),
        paths=tuple(check.text(p, f"{path}.spec.paths[{i}]") for i, p in enumerate(paths)),
    )
