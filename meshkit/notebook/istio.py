"""Istio-shaped resources read into widget values and written back: pure functions, no I/O.

Every widget turns its values into the same dicts a learner would write in
YAML and hands them to `lab.apply`, so a widget can do nothing that YAML
cannot, every value is checked by the same validation, and what a widget did
shows up in `lab.get(...)` and `lab.export_istio()` as ordinary config.

Widgets are views of the lab, so each has two directions here:

- reading (`split_of`, `header_route_values`, `fault_values`,
  `retry_values`, `breaker_values`, `mtls_in_force`, `authorization_values`):
  what the controls show for the resource as the lab has it now;
- writing (`with_split`, `with_header_route`, `with_rule_fields`,
  `with_traffic_policy`, `with_mtls_mode`, `with_authorization`): the
  resource with only the widget's own fields changed.

Several widgets edit one VirtualService per service (the split, the header
rule, faults, retries) and one DestinationRule (the subsets the learner
applied, plus the circuit breaker), and a learner's YAML may hold more than
any widget shows. So every writer is an edit: it takes the resource as it is
now (or None) and returns a copy in which only the fields its controls own
changed; other rules, subsets, trafficPolicy fields, sub-fields no control
shows (a connectTimeout beside maxConnections, retryRemoteLocalities beside
attempts), labels and annotations are kept. `merged` is how: a widget's
changes name each field it owns, with None for "not set", and everything
they do not name stays.

`merge_edits` is the other half of being a view: when the lab changes while
a form is open, it decides which controls take the lab's new values and which
keep what the learner typed and has not applied yet.

Conventions, as in Istio's Bookinfo samples: a VirtualService or
DestinationRule the widgets create is named after the service and lives in
its namespace; its host is the service's short name; the default rule (the
one without `match`) comes last, since rules are tried in order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from meshkit import config
from meshkit.config.canonical import DEFAULT_OUTLIER
from meshkit.config.durations import DurationError, parse_duration
from meshkit.core.peer_auth import DEFAULT_MODE, ROOT_NAMESPACE, effective_mode, selects
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
"""The name the header widget gives the rule it writes, so it finds that rule again."""
HEADER_DEFAULTS = {"header": "end-user", "match_type": "exact", "value": "jason"}
"""What the header widget offers when the lab has no header rule yet: Istio's Bookinfo example."""
KEEP = "(keep)"
"""The header widget's "everyone else" choice that leaves the default rule as it is."""
ISTIO_RETRY_ATTEMPTS = 2
"""Attempts on a route without `retries` (Istio's default policy, meshkit.config.canonical)."""
POOL_DEFAULTS = {"max_connections": 1, "max_pending": 1, "max_per_connection": 0, "max_retries": 0}
"""Limits the breaker widget offers for a service without a connectionPool: the smallest that trip, so a lab sees it."""
OUTLIER_DEFAULTS = {"consecutive_5xx": 5, "interval_ms": 1000, "base_ejection_ms": 30_000, "max_ejection_percent": 100}
"""Outlier detection the widget offers when the service has none: a 1 s interval, so ejection shows within a lab run."""
NEW_POLICY = ""
"""The authorization widget's choice for "a new policy" rather than one already in the lab."""
ANYONE = "anyone"
CALLER_KINDS = ("service account", "namespace", ANYONE)


# -- widget values and the lab ------------------------------------------------


def merged(existing: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict[str, Any] | None:
    """`existing` with `changes` written in; None when nothing is left.

    A widget names every field it owns in `changes`: None removes it, a dict
    is merged into the dict there (so sub-fields no control shows stay), any
    other value replaces it. Fields `changes` does not name are kept as they
    are; a dict a change leaves empty is dropped, as YAML would leave it out.
    """
    out = copy.deepcopy(dict(existing or {}))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            here = out.get(key)
            inner = merged(here if isinstance(here, Mapping) else None, value)
            if inner is None:
                out.pop(key, None)
            else:
                out[key] = inner
        else:
            out[key] = copy.deepcopy(value)
    return out or None


def merge_edits(
    loaded: Mapping[str, Any], shown: Mapping[str, Any], incoming: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """What a form shows once the lab changed: the lab's values, except where the learner is editing.

    `loaded` is what the controls were last filled with from the lab,
    `shown` what they show now, `incoming` what the lab says now. A control
    whose value differs from what was loaded holds an edit the learner has
    not applied yet: it keeps it. Every other control takes the lab's value.
    Returns the values to show and the names of the edits kept over a
    different lab value (to tell the learner).
    """
    values: dict[str, Any] = {}
    kept: list[str] = []
    for key, new in incoming.items():
        editing = key in loaded and key in shown and shown[key] != loaded[key]
        values[key] = shown[key] if editing else new
        if editing and shown[key] != new:
            kept.append(key)
    return values, kept


def milliseconds(text: Any, absent: int = 0) -> int:
    """Whole milliseconds in an Istio duration string ("1.5s" -> 1500); `absent` for None or an unreadable one."""
    if text is None:
        return absent
    try:
        return round(parse_duration(text) * 1000)
    except DurationError:
        return absent


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


# -- VirtualService: the split ------------------------------------------------


def new_virtual_service(service: str, namespace: str) -> Manifest:
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"hosts": [service], "http": []},
    }


def http_rules(vs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The VirtualService's http rules, in the order they are tried ([] for none)."""
    return list((vs or {}).get("spec", {}).get("http") or [])


def default_rule_index(vs: Mapping[str, Any] | None) -> int | None:
    """Index of the rule every request reaches when no earlier one matched (no `match`)."""
    rules = http_rules(vs)
    for i in range(len(rules) - 1, -1, -1):
        if not rules[i].get("match"):
            return i
    return None


def split_of(vs: Mapping[str, Any] | None) -> dict[str, int]:
    """Subset -> weight of the default rule (a single destination without weight gets 100)."""
    index = default_rule_index(vs)
    if index is None:
        return {}
    route = http_rules(vs)[index].get("route", [])
    weights: dict[str, int] = {}
    for dest in route:
        subset = dest.get("destination", {}).get("subset")
        if subset:
            weight = dest.get("weight", 100 if len(route) == 1 else 0)
            weights[str(subset)] = weights.get(str(subset), 0) + int(weight)
    return weights


def routed(
    route: Iterable[Mapping[str, Any]] | None, service: str, namespace: str, weights: Mapping[str, int]
) -> list[dict[str, Any]]:
    """A route sending each subset its weight; subsets at 0 are left out.

    A subset that already has a destination in `route` keeps it (its port,
    its per-destination header edits, its host as the learner spelled it) and
    only its weight changes, since the weight is all a split owns.
    """
    existing: dict[str, dict[str, Any]] = {}
    for entry in route or []:
        destination = entry.get("destination", {})
        if host_matches(str(destination.get("host", "")), namespace, service, namespace):
            existing.setdefault(str(destination.get("subset", "")), dict(entry))
    host = next((str(e["destination"]["host"]) for e in existing.values()), service)
    kept = [(s, int(w)) for s, w in weights.items() if int(w) > 0]
    out = []
    for subset, weight in kept:
        entry = copy.deepcopy(existing.get(subset) or {"destination": {"host": host, "subset": subset}})
        entry["weight"] = 100 if len(kept) == 1 else weight
        out.append(entry)
    return out


def with_split(vs: Mapping[str, Any] | None, service: str, namespace: str, weights: Mapping[str, int]) -> Manifest:
    """The VirtualService with its default rule's weights set to `weights` (other rules and fields kept)."""
    out = copy.deepcopy(dict(vs)) if vs else new_virtual_service(service, namespace)
    rules = out["spec"].setdefault("http", [])
    index = default_rule_index(out)
    if index is None:
        rules.append({"route": routed(None, service, namespace, weights)})
    else:
        rules[index]["route"] = routed(rules[index].get("route"), service, namespace, weights)
    return out


# -- VirtualService: the header rule ------------------------------------------


def _single_header(rule: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(header, match type, value) when the rule's whole condition is one header match, else None."""
    match = rule.get("match") or []
    if len(match) != 1 or set(match[0]) != {"headers"} or len(match[0]["headers"]) != 1:
        return None
    name, condition = next(iter(match[0]["headers"].items()))
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return None
    kind, value = next(iter(condition.items()))
    return (str(name), str(kind), str(value)) if kind in MATCH_TYPES else None


def header_rule_index(vs: Mapping[str, Any] | None) -> int | None:
    """The rule the header widget edits: the one it named, else the first whose only condition is one header.

    The second case is Istio's own samples (virtual-service-reviews-test-v2:
    end-user exact jason -> v2), so the widget shows the rule a learner
    applied as YAML and edits it in place rather than adding a second one.
    """
    rules = http_rules(vs)
    named = [i for i, r in enumerate(rules) if r.get("name") == HEADER_RULE_NAME and r.get("match")]
    if named:
        return named[0]
    return next((i for i, r in enumerate(rules) if _single_header(r) is not None), None)


def header_route_values(vs: Mapping[str, Any] | None, subset_names: list[str]) -> dict[str, str | None]:
    """What the header widget shows: the header rule's header, match type, value and subset.

    Without a header rule it offers Istio's example (end-user exact jason)
    and the first subset. "everyone else" always starts at "(keep)": the
    default rule stays as it is unless the learner picks a subset for it.
    """
    values: dict[str, str | None] = {**HEADER_DEFAULTS, "subset": subset_names[0] if subset_names else None,
                                     "default": KEEP}
    index = header_rule_index(vs)
    if index is None:
        return values
    rule = http_rules(vs)[index]
    condition = _single_header(rule)
    if condition is None:
        match = (rule.get("match") or [{}])[0]
        name, sm = next(iter(match.get("headers", {}).items()), (HEADER_DEFAULTS["header"], {}))
        kind, value = next(iter(sm.items()), ("exact", ""))
        condition = (str(name), str(kind) if kind in MATCH_TYPES else "exact", str(value))
    subset = next((d.get("destination", {}).get("subset") for d in rule.get("route", [])), None)
    values.update(header=condition[0], match_type=condition[1], value=condition[2])
    if subset in subset_names:
        values["subset"] = str(subset)
    return values


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

    The widget's rule (header_rule_index) is edited in place: its match and
    route change, its other fields (fault, retries, name) stay. Without one,
    a rule named HEADER_RULE_NAME goes first. Other rules are kept. With
    `default_subset` the default rule sends everything there; without it the
    default rule is kept as it is (a split stays a split). A VirtualService
    without a default rule gets one to the service, so everyone else still
    has a route.
    """
    out = copy.deepcopy(dict(vs)) if vs else new_virtual_service(service, namespace)
    rules = out["spec"].setdefault("http", [])
    index = header_rule_index(out)
    if index is None:
        rules.insert(0, {"name": HEADER_RULE_NAME})
        index = 0
    rule = rules[index]
    rule["match"] = [{"headers": {header: {match_type: value}}}]
    rule["route"] = routed(rule.get("route"), service, namespace, {subset: 100})
    rule["route"][0].pop("weight", None)
    default = default_rule_index(out)
    if default is None:
        rules.append({"route": [{"destination": {"host": service}}]})
        default = len(rules) - 1
    if default_subset:
        rules[default]["route"] = routed(rules[default].get("route"), service, namespace, {default_subset: 100})
    return out


def without_header_route(vs: Mapping[str, Any]) -> Manifest:
    """The VirtualService without the header widget's rule (every other rule kept)."""
    out = copy.deepcopy(dict(vs))
    index = header_rule_index(out)
    if index is not None:
        del out["spec"]["http"][index]
    return out


# -- VirtualService: route policies (fault, retries, timeout) ----------------


FAULT_KEYS = ("fault",)
RETRY_KEYS = ("retries", "timeout")


def policy_rule(vs: Mapping[str, Any] | None, keys: Iterable[str]) -> int | None:
    """Which rule a route-policy widget starts on: None ("every rule") when all rules agree, else the first that has one.

    A fault on the header rule only is then shown on that rule, and applying
    it without changing the rule leaves the other rules as they are.
    """
    names = tuple(keys)
    rules = http_rules(vs)
    found = [tuple(rule.get(k) for k in names) for rule in rules]
    if all(values == found[0] for values in found):
        return None
    return next(i for i, values in enumerate(found) if any(v is not None for v in values))


def rule_policy(vs: Mapping[str, Any] | None, rule: int | None, keys: Iterable[str]) -> Mapping[str, Any]:
    """The rule whose values a route-policy widget shows for its choice (`rule`, or None for every rule).

    For every rule that is the first rule that has any of `keys` (they all
    agree unless the learner picked "every rule" over rules that differ,
    and then applying writes that one to all).
    """
    rules = http_rules(vs)
    if rule is not None and 0 <= rule < len(rules):
        return rules[rule]
    names = tuple(keys)
    return next((r for r in rules if any(r.get(k) is not None for k in names)), rules[0] if rules else {})


def with_rule_fields(
    vs: Mapping[str, Any] | None,
    service: str,
    namespace: str,
    fields: Mapping[str, Any],
    rule: int | None = None,
) -> Manifest:
    """Set (or, for None, remove) route-level fields such as fault, retries, timeout.

    Dict values are merged into what the rule has (`merged`), so a field's
    sub-fields no control shows stay. `rule` picks one http rule by index;
    None means every rule. A service without a VirtualService gets one whose
    single rule routes to the service, so the policy has a route to sit on.
    """
    out = copy.deepcopy(dict(vs)) if vs else new_virtual_service(service, namespace)
    rules = out["spec"].setdefault("http", [])
    if not rules:
        rules.append({"route": [{"destination": {"host": service}}]})
    if rule is not None and not 0 <= rule < len(rules):
        raise IndexError(f"the VirtualService has {len(rules)} rule(s); there is no rule {rule}")
    for i, target in enumerate(rules):
        if rule is None or i == rule:
            rules[i] = merged(target, fields) or {}
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


def _percentage(block: Mapping[str, Any]) -> float:
    """A fault's percentage; meshkit reads an absent one as 0 (meshkit.config.canonical)."""
    return float((block.get("percentage") or {}).get("value", 0.0))


def fault_values(rule: Mapping[str, Any]) -> dict[str, float | int]:
    """What the fault widget shows for a rule: delay ms and %, abort status and %.

    No delay shows 0 ms (and 100%, ready to be turned on); no abort shows 0%
    (and status 500).
    """
    fault = rule.get("fault") or {}
    delay = fault.get("delay") or {}
    abort = fault.get("abort") or {}
    return {
        "delay_ms": milliseconds(delay.get("fixedDelay")),
        "delay_percent": _percentage(delay) if delay else 100.0,
        "abort_status": int(abort.get("httpStatus", 500)),
        "abort_percent": _percentage(abort) if abort else 0.0,
    }


def fault_changes(delay_ms: float, delay_percent: float, abort_status: int, abort_percent: float) -> dict[str, Any]:
    """The fault fields the widget owns (None: off), to merge into a rule's fault.

    A delay of 0 ms and an abort for 0% are "off": leaving them out is how
    Istio spells that (a fault with neither is refused, so it goes too).
    """
    return {
        "delay": {"fixedDelay": duration(delay_ms), "percentage": {"value": float(delay_percent)}}
        if delay_ms > 0 else None,
        "abort": {"httpStatus": int(abort_status), "percentage": {"value": float(abort_percent)}}
        if abort_percent > 0 else None,
    }


def fault_block(delay_ms: float, delay_percent: float, abort_status: int, abort_percent: float) -> dict[str, Any] | None:
    """Istio's HTTPFaultInjection written afresh, or None when it would inject nothing."""
    return merged(None, fault_changes(delay_ms, delay_percent, abort_status, abort_percent))


def retry_values(rule: Mapping[str, Any]) -> dict[str, int | str]:
    """What the retry widget shows for a rule: attempts, per-try timeout, retryOn, route timeout.

    A rule without `retries` runs Istio's default policy: 2 attempts on
    Istio's default conditions (an empty retryOn). A `retries` block without
    attempts turns retries off (meshkit.config.canonical). 0 ms: not set.
    """
    retries = rule.get("retries")
    return {
        "attempts": ISTIO_RETRY_ATTEMPTS if retries is None else int(retries.get("attempts", 0)),
        "per_try_timeout_ms": milliseconds((retries or {}).get("perTryTimeout")),
        "retry_on": str((retries or {}).get("retryOn", "")),
        "timeout_ms": milliseconds(rule.get("timeout")),
    }


def retries_fields(attempts: int, per_try_timeout_ms: float, retry_on: str) -> dict[str, Any]:
    """The HTTPRetry fields the widget owns; 0 ms and an empty retryOn are None, "not set" (Istio's defaults)."""
    return {
        "attempts": int(attempts),
        "perTryTimeout": duration(per_try_timeout_ms) if per_try_timeout_ms > 0 else None,
        "retryOn": retry_on.strip() or None,
    }


def retry_changes(
    rule: Mapping[str, Any], attempts: int, per_try_timeout_ms: float, retry_on: str, timeout_ms: float
) -> dict[str, Any]:
    """The route fields the retry widget owns, to merge into `rule` (None removes).

    A rule without `retries` keeps none while the values are Istio's default
    policy, so applying a timeout does not spell out retries nobody changed.
    """
    default = rule.get("retries") is None and (attempts, per_try_timeout_ms, retry_on.strip()) == (
        ISTIO_RETRY_ATTEMPTS, 0, "")
    return {
        "retries": None if default else retries_fields(attempts, per_try_timeout_ms, retry_on),
        "timeout": duration(timeout_ms) if timeout_ms > 0 else None,
    }


def retries_block(attempts: int, per_try_timeout_ms: float, retry_on: str) -> dict[str, Any]:
    """Istio's HTTPRetry written afresh."""
    return merged(None, retries_fields(attempts, per_try_timeout_ms, retry_on)) or {}


# -- DestinationRule: circuit breaker and outlier detection -------------------


def new_destination_rule(service: str, namespace: str) -> Manifest:
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"host": service},
    }


def breaker_values(rule: Mapping[str, Any] | None) -> dict[str, bool | int]:
    """What the breaker widget shows for the service's DestinationRule (its service-wide trafficPolicy).

    A section the rule has is shown ticked with its values (a limit it does
    not set is 0, no limit; an outlier field it does not set is Istio's
    default). A section it lacks is shown unticked, with values that make a
    visible effect once ticked (POOL_DEFAULTS, OUTLIER_DEFAULTS).
    """
    policy = (rule or {}).get("spec", {}).get("trafficPolicy") or {}
    pool = policy.get("connectionPool")
    outlier = policy.get("outlierDetection")
    values: dict[str, bool | int] = {"pool_on": pool is not None, **POOL_DEFAULTS,
                                     "outlier_on": outlier is not None, **OUTLIER_DEFAULTS}
    if pool is not None:
        tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
        values.update(
            max_connections=int(tcp.get("maxConnections", 0)),
            max_pending=int(http.get("http1MaxPendingRequests", 0)),
            max_per_connection=int(http.get("maxRequestsPerConnection", 0)),
            max_retries=int(http.get("maxRetries", 0)),
        )
    if outlier is not None:
        values.update(
            consecutive_5xx=int(outlier.get("consecutive5xxErrors", DEFAULT_OUTLIER["consecutive_5xx_errors"])),
            interval_ms=milliseconds(outlier.get("interval"), round(DEFAULT_OUTLIER["interval"] * 1000)),
            base_ejection_ms=milliseconds(outlier.get("baseEjectionTime"),
                                          round(DEFAULT_OUTLIER["base_ejection_time"] * 1000)),
            max_ejection_percent=int(outlier.get("maxEjectionPercent", DEFAULT_OUTLIER["max_ejection_percent"])),
        )
    return values


def connection_pool_changes(
    max_connections: int, max_pending_requests: int, max_requests_per_connection: int, max_retries: int
) -> dict[str, Any]:
    """The connectionPool limits the widget owns; a 0 limit is left out (0 means "no limit" in Istio)."""
    return {
        "tcp": {"maxConnections": max_connections or None},
        "http": {
            "http1MaxPendingRequests": max_pending_requests or None,
            "maxRequestsPerConnection": max_requests_per_connection or None,
            "maxRetries": max_retries or None,
        },
    }


def connection_pool_block(
    max_connections: int, max_pending_requests: int, max_requests_per_connection: int, max_retries: int
) -> dict[str, Any] | None:
    """Istio's ConnectionPoolSettings written afresh; None when every limit is 0."""
    return merged(None, connection_pool_changes(max_connections, max_pending_requests, max_requests_per_connection,
                                                max_retries))


def outlier_detection_block(
    consecutive_5xx_errors: int, interval_ms: float, base_ejection_ms: float, max_ejection_percent: int
) -> dict[str, Any]:
    """Istio's OutlierDetection fields the widget owns, every one written out, so the learner sees them all."""
    return {
        "consecutive5xxErrors": int(consecutive_5xx_errors),
        "interval": duration(interval_ms),
        "baseEjectionTime": duration(base_ejection_ms),
        "maxEjectionPercent": int(max_ejection_percent),
    }


def with_traffic_policy(
    rule: Mapping[str, Any] | None,
    service: str,
    namespace: str,
    connection_pool: Mapping[str, Any] | None,
    outlier_detection: Mapping[str, Any] | None,
) -> Manifest:
    """The DestinationRule with these two trafficPolicy sections set (None removes one).

    A section given is merged into the one there (`merged`): fields no
    control shows (connectTimeout, http2MaxRequests, minHealthPercent) stay.
    Subsets, load balancing, TLS and per-subset policies are kept: applying
    a breaker must not drop the subsets a split routes to.
    """
    out = copy.deepcopy(dict(rule)) if rule else new_destination_rule(service, namespace)
    policy = merged(out["spec"].get("trafficPolicy"),
                    {"connectionPool": connection_pool or None, "outlierDetection": outlier_detection or None})
    if policy is None:
        out["spec"].pop("trafficPolicy", None)
    else:
        out["spec"]["trafficPolicy"] = policy
    return out


# -- security: PeerAuthentication ---------------------------------------------


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


def _selector(resource: Mapping[str, Any]) -> dict[str, str] | None:
    """A policy's matchLabels, None when it selects the whole namespace (as meshkit.config.canonical reads it)."""
    labels = ((resource.get("spec") or {}).get("selector") or {}).get("matchLabels")
    return dict(labels) if labels else None


class MtlsInForce(NamedTuple):
    """The mTLS mode a workload (or a namespace's workloads) gets, and where it comes from.

    `level` is "workload", "namespace", "mesh" (a policy in istio-system
    without selector) or "default" (no policy: Istio's PERMISSIVE); `policy`
    is the deciding PeerAuthentication as "namespace/name", "" for the default.
    """

    mode: str
    policy: str
    level: str

    def describe(self) -> str:
        """In words, for the line under the buttons."""
        root = self.policy.startswith(f"{ROOT_NAMESPACE}/")  # the root namespace's own policy covers the mesh
        where = {
            "workload": f"set for this workload by PeerAuthentication {self.policy}",
            "namespace": f"set {'mesh-wide' if root else 'for the namespace'} by PeerAuthentication {self.policy}",
            "mesh": f"set mesh-wide by PeerAuthentication {self.policy}",
        }
        return f"{self.mode}: " + where.get(self.level, "no PeerAuthentication applies, so Istio's default")


def mtls_in_force(
    resources: Iterable[Mapping[str, Any]], namespace: str, labels: Mapping[str, str] | None
) -> MtlsInForce:
    """The mode in force for a workload with `labels` in `namespace` (None: one no workload policy selects).

    Decided as the sidecars decide it (meshkit.core.peer_auth.effective_mode:
    workload, then namespace, then mesh, UNSET inheriting), from the lab's
    PeerAuthentications as lab.get gives them.
    """
    found = [dict(r) for r in resources if r.get("kind") == "PeerAuthentication"]
    forms = [config.canonical(r) for r in config.load(found)] if found else []
    decided = effective_mode(forms, namespace, dict(labels or {}))
    if decided.policy is None:
        return MtlsInForce(decided.mode or DEFAULT_MODE, "", "default")
    form = next(f for f in forms if f"{f['namespace']}/{f['name']}" == decided.policy)
    if form["spec"]["selector"] is not None:
        level = "workload"
    else:
        level = "mesh" if form["namespace"] == ROOT_NAMESPACE and namespace != ROOT_NAMESPACE else "namespace"
    return MtlsInForce(decided.mode, decided.policy, level)


def mtls_policy(
    resources: Iterable[Mapping[str, Any]],
    namespace: str,
    mode: str,
    workload: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Manifest:
    """The PeerAuthentication that sets `mode` for a namespace (workload None) or one workload.

    It is the policy that decides the mode at that level now, with only its
    mode changed (selector, labels, annotations kept), so the mode shown
    after applying is the mode applied: for a namespace, its first policy
    without selector; for a workload, the first of its namespace whose
    selector selects it (which may select more workloads than this one).
    Without one, a new policy: "default" for a namespace, one named after
    the workload and selecting its labels for a workload. First means first
    by name, the order meshkit.core.peer_auth decides in.
    """
    own = sorted(
        (r for r in resources if r.get("kind") == "PeerAuthentication" and namespace_of(r) == namespace),
        key=lambda r: str(r["metadata"]["name"]),
    )
    if workload is None:
        current = next((r for r in own if _selector(r) is None), None)
    else:
        current = next((r for r in own if (s := _selector(r)) is not None and selects(s, labels or {})), None)
    if current is None:
        return peer_authentication(namespace, mode, labels if workload is not None else None,
                                   workload if workload is not None else None)
    return with_mtls_mode(current, mode)


def with_mtls_mode(resource: Mapping[str, Any], mode: str) -> Manifest:
    """The PeerAuthentication with its mode set and everything else kept."""
    out = copy.deepcopy(dict(resource))
    out["spec"] = merged(out.get("spec"), {"mtls": {"mode": mode}}) or {}
    return out


# -- security: AuthorizationPolicy --------------------------------------------


def principal(service_account: str, namespace: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """How AuthorizationPolicy names a caller: <trust domain>/ns/<namespace>/sa/<service account>.

    A caller written with a '/' is taken as a whole principal already, so a
    policy's principal the widget cannot split is written back as it was.
    """
    if "/" in service_account:
        return service_account
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def caller_of(principal_text: str) -> tuple[str, str] | None:
    """(service account, namespace) of a principal <trust domain>/ns/<namespace>/sa/<service account>, else None."""
    parts = principal_text.split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa":
        return parts[4], parts[2]
    return None


def authorization_values(policy: Mapping[str, Any] | None, namespace: str, target: str = "") -> dict[str, str]:
    """What the authorization widget shows for a policy: target app, action, caller and path.

    It shows the first rule's first caller and first path, the part it
    edits; the rest of a policy stays as it is when applied
    (with_authorization). Without a policy: DENY, a service account still to
    name, every path, requests to `target`.
    """
    values = {"target": target, "action": "DENY", "caller_kind": CALLER_KINDS[0], "caller": "",
              "caller_namespace": namespace, "path": ""}
    if not policy:
        return values
    spec = policy.get("spec") or {}
    rule = (spec.get("rules") or [{}])[0]
    source = ((rule.get("from") or [{}])[0]).get("source") or {}
    operation = ((rule.get("to") or [{}])[0]).get("operation") or {}
    values.update(target=(_selector(policy) or {}).get("app", ""), action=str(spec.get("action", "ALLOW")),
                  path=str((operation.get("paths") or [""])[0]), caller_kind=ANYONE)
    if source.get("principals"):
        first = str(source["principals"][0])
        account, caller_namespace = caller_of(first) or (first, namespace_of(policy))
        values.update(caller_kind=CALLER_KINDS[0], caller=account, caller_namespace=caller_namespace)
    elif source.get("namespaces"):
        values.update(caller_kind=CALLER_KINDS[1], caller_namespace=str(source["namespaces"][0]))
    return values


def authorization_for(policies: Iterable[Mapping[str, Any]], target: str) -> str:
    """The name of the first policy (by name) for requests to `target` ("" : namespace-wide), else NEW_POLICY."""
    names = sorted(str(p["metadata"]["name"]) for p in policies if (_selector(p) or {}).get("app", "") == target)
    return names[0] if names else NEW_POLICY


def authorization_note(policy: Mapping[str, Any]) -> str:
    """What the form cannot show about a policy, so the learner is not misled by what it does show."""
    spec = policy.get("spec") or {}
    rules = spec.get("rules") or []
    if not rules:
        does = ("denies every request to its workloads (Istio's allow-nothing)" if spec.get("action", "ALLOW") == "ALLOW"
                else "changes nothing")
        return f"this policy has no rules, so it matches no request and {does}"
    first = rules[0]
    sources = first.get("from") or []
    operations = first.get("to") or []
    source = (sources or [{}])[0].get("source") or {}
    operation = (operations or [{}])[0].get("operation") or {}
    more = (
        len(rules) > 1 or len(sources) > 1 or len(operations) > 1 or first.get("when")
        or set(source) - {"principals", "namespaces"} or set(operation) - {"paths"}
        or len(source.get("principals") or []) > 1 or len(source.get("namespaces") or []) > 1
        or (source.get("principals") and source.get("namespaces")) or len(operation.get("paths") or []) > 1
    )
    return ("the form shows the first rule's first caller and path; the rest of this policy stays as it is "
            "when you apply") if more else ""


def _with_first(items: list[dict[str, Any]] | None, key: str, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A from/to list whose first entry's `key` block has `changes` merged in; an entry left empty goes."""
    out = copy.deepcopy(list(items or []))
    first = out[0] if out else {}
    block = merged(first.get(key), changes)
    rest = {k: v for k, v in first.items() if k != key}
    entry = {**rest, key: block} if block else rest
    return ([entry] if entry else []) + out[1:]


def with_authorization(
    policy: Mapping[str, Any],
    action: str,
    *,
    service_account: str = "",
    caller_namespace: str = "",
    path: str = "",
    target: str = "",
) -> Manifest:
    """The AuthorizationPolicy with the widget's fields set: action, target app, first caller, first path.

    Owned: `action`, the selector's app label, the first rule's first
    source's principals or namespaces, its first operation's paths. Kept:
    other selector labels, other rules, other sources and operations,
    methods, notPaths, `when` conditions, metadata.
    """
    out = copy.deepcopy(dict(policy))
    spec = out.setdefault("spec", {})
    if action != spec.get("action", "ALLOW"):
        spec["action"] = action
    selector = merged(spec.get("selector"), {"matchLabels": {"app": target or None}})
    if selector:
        spec["selector"] = selector
    else:
        spec.pop("selector", None)
    caller_ns = caller_namespace or namespace_of(out)
    source = {
        "principals": [principal(service_account, caller_ns)] if service_account else None,
        "namespaces": [caller_namespace] if caller_namespace and not service_account else None,
    }
    if not spec.get("rules") and not (service_account or caller_namespace or path):
        return out  # a policy without rules matches nothing (Istio's allow-nothing); no control can say so
    rules = spec.get("rules") or [{}]
    rule = dict(rules[0])
    for key, block, changes in (("from", "source", source), ("to", "operation", {"paths": [path] if path else None})):
        entries = _with_first(rule.get(key), block, changes)
        if entries:
            rule[key] = entries
        else:
            rule.pop(key, None)
    spec["rules"] = [rule, *rules[1:]]
    return out


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
    caller = service_account or caller_namespace or ANYONE
    target = (selector or {}).get("app", "all")
    skeleton: Manifest = {
        "apiVersion": SECURITY,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name or dns_name(f"{action.lower()}-{caller}-to-{target}"), "namespace": namespace},
        "spec": {**({"selector": {"matchLabels": dict(selector)}} if selector else {}), "action": action, "rules": [{}]},
    }
    return with_authorization(skeleton, action, service_account=service_account, caller_namespace=caller_namespace,
                              path=path, target=(selector or {}).get("app", ""))


def find_named(resources: Iterable[Mapping[str, Any]], kind: str, name: str, namespace: str) -> Manifest | None:
    """One resource by kind, name and namespace, or None."""
    return next(
        (copy.deepcopy(dict(r)) for r in resources
         if r.get("kind") == kind and r.get("metadata", {}).get("name") == name and namespace_of(r) == namespace),
        None,
    )


def dns_name(text: str) -> str:
    """A DNS-1123 name made from free text (lowercase, '-' for anything else, at most 63)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:63].rstrip("-") or "policy"
