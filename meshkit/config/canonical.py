"""The canonical form: what the control plane puts into sidecar snapshots.

`canonical(resource)` turns a checked resource into plain JSON with nothing
left to interpret: durations are float seconds, percentages floats, hosts
fully qualified, Istio's documented defaults filled in, and snake_case keys
(the snapshot's own naming, docs/internals.md). A sidecar reads it without
knowing Istio's spelling rules or defaults.

Every kind has the same envelope:

    {"kind": "VirtualService", "namespace": "default", "name": "reviews", "spec": {...}}

VirtualService spec:

    {"hosts": ["reviews.default.svc.cluster.local"],     # wildcards ("*", "*.example.com") kept as written
     "gateways": ["mesh" | "namespace/name"],            # ["mesh"] when the VirtualService names none
     "http": [{
        "name": str | None,
        "match": [{"name": str | None,
                   "uri": SM | None, "method": SM | None,
                   "headers": {name: SM}, "without_headers": {name: SM},
                   "query_params": {name: SM},
                   "ignore_uri_case": bool, "port": int | None,
                   "source_labels": {label: value},
                   "gateways": ["mesh" | "namespace/name"]}],  # [] the rule's gateways; [] matches every request
        "route": [{"destination": DEST, "weight": int, "headers": HEADERS}],
        "rewrite": {"uri": str} | None,
        "timeout": float | None,                         # None: no timeout (Istio's default)
        "retries": {"attempts": int, "per_try_timeout": float | None,
                    "retry_on": [str], "retriable_status_codes": [int]},
        "fault": {"delay": {"fixed_delay": float, "percentage": float} | None,
                  "abort": {"http_status": int, "percentage": float} | None} | None,
        "mirror": DEST | None, "mirror_percentage": float,
        "headers": HEADERS}]}

    SM      = {"type": "exact" | "prefix" | "regex" | "present", "value": str}
              (regex: RE2 syntax, matched against the whole value, as Envoy does;
               present: the header exists, any value)
    DEST    = {"host": fqdn, "subset": str | None, "port": int | None}
    HEADERS = {"request": OPS, "response": OPS}
    OPS     = {"set": {name: value}, "add": {name: value}, "remove": [name]}

Defaults, as Istio documents or implements them:

- weight: a single destination gets 100 ("If there is only one destination
  in a rule, it will receive all traffic",
  https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRouteDestination).
- retries: a route without `retries` gets Istio's default policy, 2 attempts
  on "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
  ("The default retry behavior for HTTP requests is to retry twice before
  returning the error",
  https://istio.io/latest/docs/concepts/traffic-management/#retries; the
  conditions are what istiod's DefaultPolicy sets). Istio 1.24 took 503 out
  of its retriable status codes, since retrying a 503 can repeat a request
  that was not idempotent (istio/istio#52111), so the list is empty.
  `unavailable` and `cancelled` are gRPC conditions and never fire for
  HTTP/1.1. A
  `retries` block starts from that default and overrides what it sets, as
  istiod does; `attempts: 0` (or no attempts) turns retries off:
  {"attempts": 0, "per_try_timeout": None, "retry_on": [], "retriable_status_codes": []}.
  Status codes in retryOn become retriable_status_codes and add
  "retriable-status-codes" to retry_on, as istiod does.
- fault percentage: absent means 0.0. Istio's docs once said "all requests",
  but Istio has always injected into none (istio/istio#36303, #39969);
  validate() warns about it.
- mirror_percentage: 100.0 when a mirror is set without it ("If this field is
  absent, all the traffic (100%) will be mirrored"), 0.0 without a mirror.

DestinationRule spec:

    {"host": fqdn,
     "traffic_policy": POLICY,
     "subsets": [{"name": str, "labels": {label: value}, "traffic_policy": POLICY}]}

    POLICY = {"load_balancer": {"simple": "LEAST_REQUEST" | "ROUND_ROBIN" | "RANDOM" | None,
                                "consistent_hash": {"http_header_name": str} | None},
              "connection_pool": {"tcp": {"max_connections": int, "connect_timeout": float},
                                  "http": {"http1_max_pending_requests": int, "http2_max_requests": int,
                                           "max_requests_per_connection": int, "max_retries": int}},
              "outlier_detection": {"consecutive_5xx_errors": int, "consecutive_gateway_errors": int,
                                    "interval": float, "base_ejection_time": float,
                                    "max_ejection_percent": int} | None,
              "tls": {"mode": "DISABLE" | "ISTIO_MUTUAL" | None}}

- A subset's traffic_policy is the service's with each section the subset
  sets (load_balancer, connection_pool, outlier_detection, tls) replaced
  whole, as istiod merges them (MergeTrafficPolicy).
- load_balancer.simple: LEAST_REQUEST by default; Istio changed its default
  from ROUND_ROBIN to LEAST_REQUEST in 1.14 (release note
  "new_lb_algorithm_default": "LEAST_REQUEST outperforms ROUND_ROBIN in
  virtually all cases"). LEAST_CONN is Istio's deprecated name for
  LEAST_REQUEST and UNSPECIFIED means the default, so neither appears here.
  With consistent_hash set, simple is None.
- connection_pool: Istio's documented defaults: max_connections,
  http1_max_pending_requests, http2_max_requests and max_retries 2^32-1
  (no limit), max_requests_per_connection 0 (no limit), connect_timeout 10s
  (https://istio.io/latest/docs/reference/config/networking/destination-rule/#ConnectionPoolSettings).
  0 is protobuf's "unset" for those limits, so 0 also means the default.
- outlier_detection: None (off) unless set; when set, Istio's defaults fill
  the rest: consecutive_5xx_errors 5, consecutive_gateway_errors 0 (off),
  interval 10s, base_ejection_time 30s, max_ejection_percent 10
  (https://istio.io/latest/docs/reference/config/networking/destination-rule/#OutlierDetection).
- tls.mode None: automatic, Istio's auto mTLS (mTLS to workloads that have a
  sidecar, plaintext to the rest).

PeerAuthentication spec:

    {"selector": {label: value} | None,      # None: every workload in the namespace
     "mtls": {"mode": "UNSET" | "DISABLE" | "PERMISSIVE" | "STRICT"}}

  UNSET inherits from the namespace's policy, then the mesh's (a policy in
  istio-system without selector); with none at all Istio uses PERMISSIVE.

AuthorizationPolicy spec:

    {"selector": {label: value} | None,
     "action": "ALLOW" | "DENY" | "AUDIT",
     "rules": [{"from": [{"principals": [str], "not_principals": [str],
                          "namespaces": [str], "not_namespaces": [str],
                          "service_accounts": ["namespace/name"], "not_service_accounts": ["namespace/name"]}],
                "to": [{"hosts": [str], "not_hosts": [str], "ports": [int], "not_ports": [int],
                        "methods": [str], "not_methods": [str], "paths": [str], "not_paths": [str]}],
                "when": [{"key": str, "values": [str], "not_values": [str]}]}],
     "dry_run": bool}                          # istio.io/dry-run: "true": evaluated, reported, never enforced

  Strings match exactly, by prefix ("abc*"), suffix ("*abc") or presence
  ("*"). An ALLOW policy with no rules matches nothing, so it denies every
  request to its workloads (Istio's "allow-nothing").

Gateway spec: meshkit.config.gateway.canonical_gateway's docstring. A
Gateway API Gateway (gateway.networking.k8s.io) has the canonical form of the
Istio Gateway that serves it (meshkit/config/gateway_translation.py).

HTTPRoute (gateway.networking.k8s.io): the canonical form of the
VirtualService that routes the same way (kind "VirtualService", the route's
namespace and name; meshkit/config/gateway_translation.py), so sidecars
route it without knowing the Gateway API.

LocalRateLimit spec:

    {"selector": {label: value} | None,
     "token_bucket": {"max_tokens": int, "tokens_per_fill": int, "fill_interval": float},
     "paths": [str]}                           # [] limits every request
"""

from __future__ import annotations

from typing import Any

from meshkit.config.destination_rule import (
    ConnectionPoolSettings,
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    TrafficPolicy,
)
from meshkit.config.gateway import Gateway, canonical_gateway, qualified_gateways
from meshkit.config.gateway_api import GatewayAPIGateway, GatewayHTTPRoute
from meshkit.config.gateway_translation import to_istio_gateway, to_virtual_service
from meshkit.config.hosts import fqdn
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.schema import Percent, Resource, WorkloadSelector
from meshkit.config.security import AuthorizationPolicy, Operation, PeerAuthentication, Rule, Source
from meshkit.config.virtual_service import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    StringMatch,
    VirtualService,
)

NO_LIMIT = 2**32 - 1
DEFAULT_RETRY_ON = ("connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes")
DEFAULT_RETRIABLE_STATUS_CODES: tuple[int, ...] = ()
DEFAULT_LOAD_BALANCER = "LEAST_REQUEST"
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_OUTLIER = {
    "consecutive_5xx_errors": 5,
    "consecutive_gateway_errors": 0,
    "interval": 10.0,
    "base_ejection_time": 30.0,
    "max_ejection_percent": 10,
}
_LOAD_BALANCER_NAMES = {"LEAST_CONN": "LEAST_REQUEST", "UNSPECIFIED": DEFAULT_LOAD_BALANCER}


def canonical(resource: Resource) -> dict[str, Any]:
    """The JSON-ready form of a checked resource (shape in this module's docstring)."""
    if isinstance(resource, GatewayHTTPRoute):
        return canonical(to_virtual_service(resource))
    if isinstance(resource, GatewayAPIGateway):
        return canonical(to_istio_gateway(resource))
    if isinstance(resource, VirtualService):
        spec = _virtual_service(resource)
    elif isinstance(resource, DestinationRule):
        spec = _destination_rule(resource)
    elif isinstance(resource, PeerAuthentication):
        mode = resource.spec.mtls.mode if resource.spec.mtls else "UNSET"
        spec = {"selector": _selector(resource.spec.selector), "mtls": {"mode": mode}}
    elif isinstance(resource, AuthorizationPolicy):
        spec = {
            "selector": _selector(resource.spec.selector),
            "action": resource.spec.action,
            "rules": [_rule(rule, resource.namespace) for rule in resource.spec.rules],
            "dry_run": resource.dry_run,
        }
    elif isinstance(resource, Gateway):
        spec = canonical_gateway(resource)
    elif isinstance(resource, LocalRateLimit):
        bucket = resource.spec.token_bucket
        spec = {
            "selector": _selector(resource.spec.selector),
            "token_bucket": {
                "max_tokens": bucket.max_tokens,
                "tokens_per_fill": bucket.tokens_per_fill,
                "fill_interval": bucket.fill_interval,
            },
            "paths": list(resource.spec.paths),
        }
    else:
        raise TypeError(f"no canonical form for {type(resource).__name__}")
    return {"kind": resource.KIND, "namespace": resource.namespace, "name": resource.name, "spec": spec}


def default_retries() -> dict[str, Any]:
    """Istio's retry policy for a route that sets none (see the module docstring)."""
    return {
        "attempts": 2,
        "per_try_timeout": None,
        "retry_on": list(DEFAULT_RETRY_ON),
        "retriable_status_codes": list(DEFAULT_RETRIABLE_STATUS_CODES),
    }


def default_traffic_policy() -> dict[str, Any]:
    """The policy for a service no DestinationRule mentions."""
    return _traffic_policy(None)


def _virtual_service(vs: VirtualService) -> dict[str, Any]:
    namespace = vs.namespace
    return {
        "hosts": [host if host.startswith("*") else fqdn(host, namespace) for host in vs.spec.hosts],
        "gateways": qualified_gateways(vs.spec.gateways, namespace),
        "http": [_http_route(route, namespace) for route in vs.spec.http],
    }


def _http_route(route: HTTPRoute, namespace: str) -> dict[str, Any]:
    single = len(route.route) == 1
    return {
        "name": route.name,
        "match": [_match(match, namespace) for match in route.match],
        "route": [
            {
                "destination": _destination(target.destination, namespace),
                "weight": 100 if single else (target.weight or 0),
                "headers": _headers(target.headers),
            }
            for target in route.route
        ],
        "rewrite": {"uri": route.rewrite.uri} if route.rewrite else None,
        "timeout": route.timeout,
        "retries": _retries(route.retries),
        "fault": _fault(route.fault),
        "mirror": _destination(route.mirror, namespace) if route.mirror else None,
        "mirror_percentage": _mirror_percentage(route),
        "headers": _headers(route.headers),
    }


def _match(match: HTTPMatchRequest, namespace: str) -> dict[str, Any]:
    return {
        "name": match.name,
        "uri": _string_match(match.uri) if match.uri else None,
        "method": _string_match(match.method) if match.method else None,
        "headers": {name: _string_match(value) for name, value in match.headers.items()},
        "without_headers": {name: _string_match(value) for name, value in match.without_headers.items()},
        "query_params": {name: _string_match(value) for name, value in match.query_params.items()},
        "ignore_uri_case": bool(match.ignore_uri_case),
        "port": match.port,
        "source_labels": dict(match.source_labels),
        "gateways": qualified_gateways(match.gateways, namespace) if match.gateways else [],
    }


def _string_match(match: StringMatch) -> dict[str, str]:
    for kind in ("exact", "prefix", "regex"):
        value = getattr(match, kind)
        if value is not None:
            return {"type": kind, "value": value}
    return {"type": "present", "value": ""}


def _destination(destination: Destination, namespace: str) -> dict[str, Any]:
    return {
        "host": fqdn(destination.host, namespace),
        "subset": destination.subset,
        "port": destination.port.number if destination.port else None,
    }


def _headers(headers: Headers | None) -> dict[str, Any]:
    return {
        "request": _header_operations(headers.request if headers else None),
        "response": _header_operations(headers.response if headers else None),
    }


def _header_operations(operations: HeaderOperations | None) -> dict[str, Any]:
    if operations is None:
        return {"set": {}, "add": {}, "remove": []}
    return {"set": dict(operations.set), "add": dict(operations.add), "remove": list(operations.remove)}


def _retries(retries: HTTPRetry | None) -> dict[str, Any]:
    if retries is None:
        return default_retries()
    if retries.attempts == 0:
        return {"attempts": 0, "per_try_timeout": None, "retry_on": [], "retriable_status_codes": []}
    policy = default_retries()
    policy["attempts"] = retries.attempts
    policy["per_try_timeout"] = retries.per_try_timeout
    if retries.retry_on is not None:
        conditions = [condition.strip() for condition in retries.retry_on.split(",")]
        codes = [int(condition) for condition in conditions if condition.isdigit()]
        named = [condition for condition in conditions if not condition.isdigit()]
        if codes and "retriable-status-codes" not in named:
            named.append("retriable-status-codes")
        policy["retry_on"] = named
        policy["retriable_status_codes"] = codes
    return policy


def _fault(fault: HTTPFaultInjection | None) -> dict[str, Any] | None:
    if fault is None:
        return None
    delay = fault.delay
    abort = fault.abort
    return {
        "delay": {"fixed_delay": delay.fixed_delay, "percentage": _percent(delay.percentage)} if delay else None,
        "abort": {"http_status": abort.http_status, "percentage": _percent(abort.percentage)} if abort else None,
    }


def _percent(percent: Percent | None, absent: float = 0.0) -> float:
    return float(percent.value) if percent is not None else absent


def _mirror_percentage(route: HTTPRoute) -> float:
    if route.mirror is None:
        return 0.0
    return _percent(route.mirror_percentage, absent=100.0)


def _destination_rule(rule: DestinationRule) -> dict[str, Any]:
    service_policy = rule.spec.traffic_policy
    return {
        "host": fqdn(rule.spec.host, rule.namespace),
        "traffic_policy": _traffic_policy(service_policy),
        "subsets": [
            {
                "name": subset.name,
                "labels": dict(subset.labels),
                "traffic_policy": _traffic_policy(_merged(service_policy, subset.traffic_policy)),
            }
            for subset in rule.spec.subsets
        ],
    }


def _merged(service: TrafficPolicy | None, subset: TrafficPolicy | None) -> TrafficPolicy | None:
    """The subset's sections replace the service's whole, as istiod's MergeTrafficPolicy does."""
    if service is None or subset is None:
        return subset or service
    sections = ("load_balancer", "connection_pool", "outlier_detection", "tls")
    overrides = {name: getattr(subset, name) for name in sections if getattr(subset, name) is not None}
    return service.model_copy(update=overrides)


def _traffic_policy(policy: TrafficPolicy | None) -> dict[str, Any]:
    return {
        "load_balancer": _load_balancer(policy.load_balancer if policy else None),
        "connection_pool": _connection_pool(policy.connection_pool if policy else None),
        "outlier_detection": _outlier_detection(policy.outlier_detection if policy else None),
        "tls": {"mode": policy.tls.mode if policy and policy.tls else None},
    }


def _load_balancer(balancer: LoadBalancerSettings | None) -> dict[str, Any]:
    if balancer is not None and balancer.consistent_hash is not None:
        return {"simple": None, "consistent_hash": {"http_header_name": balancer.consistent_hash.http_header_name}}
    simple = balancer.simple if balancer is not None and balancer.simple is not None else DEFAULT_LOAD_BALANCER
    return {"simple": _LOAD_BALANCER_NAMES.get(simple, simple), "consistent_hash": None}


def _connection_pool(pool: ConnectionPoolSettings | None) -> dict[str, Any]:
    tcp = pool.tcp if pool else None
    http = pool.http if pool else None
    return {
        "tcp": {
            "max_connections": _limit(tcp.max_connections if tcp else None),
            "connect_timeout": tcp.connect_timeout if tcp and tcp.connect_timeout else DEFAULT_CONNECT_TIMEOUT_S,
        },
        "http": {
            "http1_max_pending_requests": _limit(http.http1_max_pending_requests if http else None),
            "http2_max_requests": _limit(http.http2_max_requests if http else None),
            "max_requests_per_connection": (http.max_requests_per_connection or 0) if http else 0,
            "max_retries": _limit(http.max_retries if http else None),
        },
    }


def _limit(value: int | None) -> int:
    """Istio reads 0 as unset for these limits, and unset as no limit."""
    return value if value else NO_LIMIT


def _outlier_detection(detection: OutlierDetection | None) -> dict[str, Any] | None:
    if detection is None:
        return None
    given = {
        "consecutive_5xx_errors": detection.consecutive_5xx_errors,
        "consecutive_gateway_errors": detection.consecutive_gateway_errors,
        "interval": detection.interval,
        "base_ejection_time": detection.base_ejection_time,
        "max_ejection_percent": detection.max_ejection_percent,
    }
    return {key: DEFAULT_OUTLIER[key] if value is None else value for key, value in given.items()}


def _selector(selector: WorkloadSelector | None) -> dict[str, str] | None:
    return dict(selector.match_labels) if selector is not None and selector.match_labels else None


def _rule(rule: Rule, namespace: str) -> dict[str, Any]:
    return {
        "from": [_source(item.source, namespace) for item in rule.from_],
        "to": [_operation(item.operation) for item in rule.to],
        "when": [
            {"key": condition.key, "values": list(condition.values), "not_values": list(condition.not_values)}
            for condition in rule.when
        ],
    }


def _source(source: Source, namespace: str) -> dict[str, list[str]]:
    return {
        "principals": list(source.principals),
        "not_principals": list(source.not_principals),
        "namespaces": list(source.namespaces),
        "not_namespaces": list(source.not_namespaces),
        "service_accounts": [_service_account(account, namespace) for account in source.service_accounts],
        "not_service_accounts": [_service_account(account, namespace) for account in source.not_service_accounts],
    }


def _service_account(account: str, namespace: str) -> str:
    """NAMESPACE/NAME; a bare NAME is in the policy's namespace, as istiod reads it."""
    return account if "/" in account else f"{namespace}/{account}"


def _operation(operation: Operation) -> dict[str, list[Any]]:
    return {
        "hosts": list(operation.hosts),
        "not_hosts": list(operation.not_hosts),
        "ports": [int(port) for port in operation.ports],
        "not_ports": [int(port) for port in operation.not_ports],
        "methods": list(operation.methods),
        "not_methods": list(operation.not_methods),
        "paths": list(operation.paths),
        "not_paths": list(operation.not_paths),
    }
