"""Istio-shaped resources built from widget values: pure functions, no I/O.

Every widget turns its values into the same dicts a learner would write in
YAML and hands them to `lab.apply`, so a widget can do nothing that YAML
cannot, every value is checked by the same validation, and what a widget did
shows up in `lab.get(...)` and `lab.export_istio()` as ordinary config.

Several widgets edit one VirtualService per service (the split, the header
rule, faults, retries) and one DestinationRule (the subsets the learner
applied, plus the circuit breaker). So the builders here are edits: each
takes the resource as it is now (or None) and returns a copy with only its
own part changed. The split changes the weights of the default rule, the
header builder the rules that match, the route policies one field of a rule,
the breaker one section of trafficPolicy; whatever else the learner wrote is
kept.

Conventions, as in Istio's Bookinfo samples: a VirtualService or
DestinationRule the widgets create is named after the service and lives in
its namespace; its host is the service's short name; the default rule (the
one without `match`) comes last, since rules are tried in order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from meshkit.names import fqdn

Manifest = dict[str, Any]

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"
MATCH_TYPES = ("exact", "prefix", "regex")
MTLS_MODES = ("DISABLE", "PERMISSIVE", "STRICT")
ACTIONS = ("ALLOW", "DENY")
TRUST_DOMAIN = "cluster.local"
"""Istio's default trust domain, as written in AuthorizationPolicy principals."""
HEADER_RULE_NAME = "header-route"


# -- finding what the lab has -------------------------------------------------


def namespace_of(resource: Mapping[str, Any]) -> str:
    return str(resource.get("metadata", {}).get("namespace") or "default")


def host_matches(host: str, resource_namespace: str, service: str, namespace: str) -> bool:
    """Whether `host`, written in a resource of `resource_namespace`, names the service.

    Short hosts are read in the resource's own namespace, as Istio does
    (meshkit.names.fqdn).
    """
    return fqdn(host.lower().rstrip("."), resource_namespace) == fqdn(service, namespace)


def find_destination_rule(resources: Iterable[Mapping[str, Any]], service: str, namespace: str) -> Manifest | None:
    """The DestinationRule for the service, preferring one in its own namespace."""
    found = [
        r for r in resources
        if r.get("kind") == "DestinationRule"
        and host_matches(str(r.get("spec", {}).get("host", "")), namespace_of(r), service, namespace)
    ]
    return _prefer_namespace(found, namespace)


def find_virtual_service(resources: Iterable[Mapping[str, Any]], service: str, namespace: str) -> Manifest | None:
    """The VirtualService whose hosts include the service, preferring its own namespace."""
    found = [
        r for r in resources
        if r.get("kind") == "VirtualService"
        and any(host_matches(str(h), namespace_of(r), service, namespace) for h in r.get("spec", {}).get("hosts", []))
    ]
    return _prefer_namespace(found, namespace)


def _prefer_namespace(found: list[Mapping[str, Any]], namespace: str) -> Manifest | None:
    if not found:
        return None
    found.sort(key=lambda r: (namespace_of(r) != namespace, r.get("metadata", {}).get("name", "")))
    return copy.deepcopy(dict(found[0]))


def subsets(rule: Mapping[str, Any] | None) -> list[str]:
    """The subset names a DestinationRule defines, in its order."""
    if not rule:
        return []
    return [str(s["name"]) for s in rule.get("spec", {}).get("subsets", []) if "name" in s]


def subset_versions(rule: Mapping[str, Any] | None) -> dict[str, str]:
    """Subset name -> the `version` label it selects (the name itself when it has none).

    Load rows and telemetry carry the destination's version, config names
    subsets: this is the bridge for "configured vs observed" charts.
    """
    if not rule:
        return {}
    return {
        str(s["name"]): str(s.get("labels", {}).get("version", s["name"]))
        for s in rule.get("spec", {}).get("subsets", [])
        if "name" in s
    }


# -- VirtualService edits -----------------------------------------------------


def new_virtual_service(service: str, namespace: str) -> Manifest:
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"hosts": [service], "http": []},
    }


def default_rule_index(vs: Mapping[str, Any] | None) -> int | None:
    """Index of the rule every request reaches when no earlier one matched (no `match`)."""
    if not vs:
        return None
    rules = vs.get("spec", {}).get("http", [])
    for i in range(len(rules) - 1, -1, -1):
        if not rules[i].get("match"):
            return i
    return None


def split_of(vs: Mapping[str, Any] | None) -> dict[str, int]:
    """Subset -> weight of the default rule (a single destination without weight gets 100)."""
    index = default_rule_index(vs)
    if vs is None or index is None:
        return {}
    route = vs["spec"]["http"][index].get("route", [])
    weights: dict[str, int] = {}
    for dest in route:
        subset = dest.get("destination", {}).get("subset")
        if subset:
            weight = dest.get("weight", 100 if len(route) == 1 else 0)
            weights[str(subset)] = weights.get(str(subset), 0) + int(weight)
    return weights


def weighted_route(service: str, weights: Mapping[str, int]) -> list[dict[str, Any]]:
    """A route list sending each subset its weight; subsets at 0 are left out."""
    kept = [(s, int(w)) for s, w in weights.items() if int(w) > 0]
    if len(kept) == 1:
        return [{"destination": {"host": service, "subset": kept[0][0]}, "weight": 100}]
    return [{"destination": {"host": service, "subset": s}, "weight": w} for s, w in kept]


def with_split(vs: Mapping[str, Any] | None, service: str, namespace: str, weights: Mapping[str, int]) -> Manifest:
    """The VirtualService with its default rule's route set to `weights` (other rules and fields kept)."""
    out = copy.deepcopy(dict(vs)) if vs else new_virtual_service(service, namespace)
    rules = out["spec"].setdefault("http", [])
    index = default_rule_index(out)
    if index is None:
        rules.append({"route": weighted_route(service, weights)})
    else:
        rules[index]["route"] = weighted_route(service, weights)
    return out


def with_header_route(
    vs: Mapping[str, Any] | None,
    service: str,
    namespace: str,
    header: str,
    match_type: str,
    value: str,
    subset: str,
    default_subset: str | None = None,
) -> Manifest:
    """Requests whose `header` matches go to `subset`; the rest to the default rule.

    The header rule replaces the VirtualService's match rules (this builder
    edits one rule) and keeps the fields (fault, retries) of the one it
    replaces. With `default_subset` the default rule sends everything there;
    without it the default rule is kept as it is (a split stays a split).
    """
    out = copy.deepcopy(dict(vs)) if vs else new_virtual_service(service, namespace)
    rules = out["spec"].setdefault("http", [])
    index = default_rule_index(out)
    default = rules[index] if index is not None else {"route": [{"destination": {"host": service}}]}
    if default_subset:
        default["route"] = weighted_route(service, {default_subset: 100})
    previous: dict[str, Any] = next((r for r in rules if r.get("match")), {})
    rule = {k: v for k, v in previous.items() if k not in ("match", "route", "name")}
    rule = {
        "name": HEADER_RULE_NAME,
        "match": [{"headers": {header: {match_type: value}}}],
        "route": [{"destination": {"host": service, "subset": subset}}],
        **rule,
    }
    out["spec"]["http"] = [rule, default]
    return out


def without_match_rules(vs: Mapping[str, Any], service: str, namespace: str) -> Manifest:
    """The VirtualService with only its default rule (every request takes it)."""
    out = copy.deepcopy(dict(vs))
    index = default_rule_index(out)
    rules = out["spec"].get("http", [])
    out["spec"]["http"] = [rules[index]] if index is not None else [{"route": [{"destination": {"host": service}}]}]
    return out


def with_rule_fields(
    vs: Mapping[str, Any] | None,
    service: str,
    namespace: str,
    fields: Mapping[str, Any],
    rule: int | None = None,
) -> Manifest:
    """Set (or, for None, remove) route-level fields such as fault, retries, timeout.

    `rule` picks one http rule by index; None means every rule. A service
    without a VirtualService gets one whose single rule routes to the service,
    so the policy has a route to sit on.
    """
    out = copy.deepcopy(dict(vs)) if vs else new_virtual_service(service, namespace)
    rules = out["spec"].setdefault("http", [])
    if not rules:
        rules.append({"route": [{"destination": {"host": service}}]})
    if rule is not None and not 0 <= rule < len(rules):
        raise IndexError(f"the VirtualService has {len(rules)} rule(s); there is no rule {rule}")
    for i, target in enumerate(rules):
        if rule is not None and i != rule:
            continue
        for key, value in fields.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(value)
    return out


def describe_rule(rule: Mapping[str, Any]) -> str:
    """One line for a dropdown: what a rule matches and where it sends requests."""
    parts = []
    for match in rule.get("match", []):
        for name, sm in match.get("headers", {}).items():
            kind, value = next(iter(sm.items()), ("present", ""))
            parts.append(f"{name} {kind} {value!r}")
        if "uri" in match:
            kind, value = next(iter(match["uri"].items()))
            parts.append(f"uri {kind} {value!r}")
    where = ", ".join(
        f"{d.get('destination', {}).get('subset') or d.get('destination', {}).get('host', '?')}"
        + (f" {d['weight']}%" if "weight" in d and len(rule.get("route", [])) > 1 else "")
        for d in rule.get("route", [])
    )
    return f"{' and '.join(parts) or 'default'} -> {where or 'nowhere'}"


def duration(ms: float) -> str:
    """Istio's duration string for a number of milliseconds: 250 -> '250ms', 2000 -> '2s'.

    A fraction of a millisecond is written as it is (and refused by
    validation with Istio's reason: whole milliseconds only).
    """
    if float(ms).is_integer():
        whole = int(ms)
        return f"{whole // 1000}s" if whole and whole % 1000 == 0 else f"{whole}ms"
    return f"{ms}ms"


def fault_block(delay_ms: float, delay_percent: float, abort_status: int, abort_percent: float) -> dict[str, Any] | None:
    """Istio's HTTPFaultInjection, or None when it would inject nothing.

    A delay of 0 ms and an abort for 0% are "off": leaving them out is how
    Istio spells that (a fault with neither is refused).
    """
    fault: dict[str, Any] = {}
    if delay_ms > 0:
        fault["delay"] = {"fixedDelay": duration(delay_ms), "percentage": {"value": float(delay_percent)}}
    if abort_percent > 0:
        fault["abort"] = {"httpStatus": int(abort_status), "percentage": {"value": float(abort_percent)}}
    return fault or None


def retries_block(attempts: int, per_try_timeout_ms: float, retry_on: str) -> dict[str, Any]:
    """Istio's HTTPRetry; 0 ms and an empty retryOn mean "not set" (Istio's defaults apply)."""
    retries: dict[str, Any] = {"attempts": int(attempts)}
    if per_try_timeout_ms > 0:
        retries["perTryTimeout"] = duration(per_try_timeout_ms)
    if retry_on.strip():
        retries["retryOn"] = retry_on.strip()
    return retries


# -- DestinationRule edits ----------------------------------------------------


def new_destination_rule(service: str, namespace: str) -> Manifest:
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"host": service},
    }


def with_traffic_policy(
    rule: Mapping[str, Any] | None,
    service: str,
    namespace: str,
    connection_pool: Mapping[str, Any] | None,
    outlier_detection: Mapping[str, Any] | None,
) -> Manifest:
    """The DestinationRule with these two trafficPolicy sections set (None removes one).

    Subsets, load balancing and per-subset policies already there are kept:
    applying a breaker must not drop the subsets a split routes to.
    """
    out = copy.deepcopy(dict(rule)) if rule else new_destination_rule(service, namespace)
    policy = out["spec"].setdefault("trafficPolicy", {})
    for key, value in (("connectionPool", connection_pool), ("outlierDetection", outlier_detection)):
        if value is None:
            policy.pop(key, None)
        else:
            policy[key] = copy.deepcopy(dict(value))
    if not policy:
        out["spec"].pop("trafficPolicy")
    return out


def connection_pool_block(
    max_connections: int, max_pending_requests: int, max_requests_per_connection: int, max_retries: int
) -> dict[str, Any] | None:
    """Istio's ConnectionPoolSettings; a 0 limit is left out (0 means "no limit" in Istio)."""
    tcp = {"maxConnections": max_connections} if max_connections else {}
    http = {
        key: value
        for key, value in (
            ("http1MaxPendingRequests", max_pending_requests),
            ("maxRequestsPerConnection", max_requests_per_connection),
            ("maxRetries", max_retries),
        )
        if value
    }
    block = {k: v for k, v in (("tcp", tcp), ("http", http)) if v}
    return block or None


def outlier_detection_block(
    consecutive_5xx_errors: int, interval_ms: float, base_ejection_ms: float, max_ejection_percent: int
) -> dict[str, Any]:
    """Istio's OutlierDetection with every field written out, so the learner sees them all."""
    return {
        "consecutive5xxErrors": int(consecutive_5xx_errors),
        "interval": duration(interval_ms),
        "baseEjectionTime": duration(base_ejection_ms),
        "maxEjectionPercent": int(max_ejection_percent),
    }


# -- security -----------------------------------------------------------------


def workload_labels(service: str, version: str) -> dict[str, str]:
    """The pod labels a lab workload carries (meshkit.demo.apps.WorkloadSpec.labels)."""
    return {"app": service, "version": version}


def peer_authentication(
    namespace: str, mode: str, selector: Mapping[str, str] | None = None, name: str | None = None
) -> Manifest:
    """A PeerAuthentication for a namespace ("default", no selector, as Istio's docs name it) or for workloads."""
    spec: dict[str, Any] = {"mtls": {"mode": mode}}
    if selector:
        spec = {"selector": {"matchLabels": dict(selector)}, **spec}
    return {
        "apiVersion": SECURITY,
        "kind": "PeerAuthentication",
        "metadata": {"name": name or "default", "namespace": namespace},
        "spec": spec,
    }


def principal(service_account: str, namespace: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """How AuthorizationPolicy names a caller: <trust domain>/ns/<namespace>/sa/<service account>."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def authorization_policy(
    namespace: str,
    action: str,
    *,
    service_account: str = "",
    caller_namespace: str = "",
    path: str = "",
    selector: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Manifest:
    """ALLOW or DENY requests from a caller (a service account in a namespace, or a whole namespace) on a path.

    With `service_account` the caller is that identity (in `caller_namespace`,
    default the policy's namespace); with only `caller_namespace` it is every
    workload of that namespace; with neither, any caller. An empty path means
    every path.
    """
    rule: dict[str, Any] = {}
    if service_account:
        rule["from"] = [{"source": {"principals": [principal(service_account, caller_namespace or namespace)]}}]
    elif caller_namespace:
        rule["from"] = [{"source": {"namespaces": [caller_namespace]}}]
    if path:
        rule["to"] = [{"operation": {"paths": [path]}}]
    spec: dict[str, Any] = {"action": action, "rules": [rule]}
    if selector:
        spec = {"selector": {"matchLabels": dict(selector)}, **spec}
    caller = service_account or caller_namespace or "anyone"
    target = (selector or {}).get("app", "all")
    return {
        "apiVersion": SECURITY,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name or dns_name(f"{action.lower()}-{caller}-to-{target}"), "namespace": namespace},
        "spec": spec,
    }


def dns_name(text: str) -> str:
    """A DNS-1123 name made from free text (lowercase, '-' for anything else, at most 63)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:63].rstrip("-") or "policy"
