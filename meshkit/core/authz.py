"""AuthorizationPolicy: is this request allowed to reach the workload?

Istio's algorithm (https://istio.io/latest/docs/reference/config/security/authorization-policy/):

1. CUSTOM policies first (meshkit has no external authorizers; config refuses them);
2. if any DENY policy matches the request, deny;
3. if the workload has no ALLOW policy, allow;
4. if any ALLOW policy matches, allow;
5. otherwise deny.

AUDIT policies never change the decision; a matching one is reported so the
request can be marked for audit. A policy matches when any of its rules does;
a rule matches when any `from` matches (or it has none), any `to` matches (or
it has none) and every `when` matches. Inside a source or operation every
field given must match: a value list matches when the attribute matches one of
its patterns, a not-list when it matches none. An ALLOW policy with no rules
matches nothing, which is Istio's allow-nothing.

Patterns: exact, `prefix*`, `*suffix`, or `*` (any non-empty value), as
Istio's StringMatch conversion does. Hosts compare case-insensitively with
any `:port` and trailing dot dropped from the request's Host (HARDENING:
authorization); a policy host written with a port matches that port only.
Paths are the normalised path from `meshkit.core.paths`, never the raw one.

Service accounts (`serviceAccounts: [NAMESPACE/NAME]`) are read from the
principal, Istio's `<trust domain>/ns/NAMESPACE/sa/NAME`, and compared
exactly; canonical.py has already put a bare NAME in the policy's namespace.

Callers: plaintext callers have no principal and no namespace, so
`principals`, `namespaces`, `serviceAccounts` and their `when` keys never
match them, and the not-lists always do; that is how Istio's "deny
plaintext" policy (DENY with notPrincipals ["*"]) works. A principal or
namespace holding anything but printable ASCII (a NUL, CR, LF, space) is
treated the same way, so `.../ns/victim\\x00evil` never matches a rule about
`victim` (HARDENING: headers the mesh owns).

Policies are compiled once per snapshot (`compile_policies`) and evaluated per
request (`authorize`), which reads the caller once (`caller_of`: the service
account of a principal seen before is remembered) and parses nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from meshkit.core.peer_auth import ROOT_NAMESPACE, policy_name, selects
from meshkit.errors import ConfigError

KIND = "AuthorizationPolicy"
ACTIONS = ("ALLOW", "DENY", "AUDIT")

_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_HEADER_KEY = re.compile(r"request\.headers\[(.+)\]")
_PORT_SUFFIX = re.compile(r"(.*):([0-9]{1,5})")
# Istio's principal form: the trust domain, then /ns/NAMESPACE/sa/NAME.
_PRINCIPAL = re.compile(r"[^/]+/ns/([^/]+)/sa/([^/]+)")


class Decision(NamedTuple):
    """The outcome: `policy` ("namespace/name") and `action` say what decided.

    Denied by a DENY policy: (False, that policy, "DENY"). Allowed by an ALLOW
    policy: (True, that policy, "ALLOW"). ALLOW policies exist but none
    matched: (False, None, "ALLOW"). No ALLOW policy: (True, None, None).
    `audit` is the first AUDIT policy that matched, or None.
    """

    allowed: bool
    policy: str | None
    action: str | None
    audit: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """What a policy can look at, as the inbound sidecar knows it after normalisation and mTLS.

    host:      the Host header as received (case, port and trailing dot are dealt with here)
    port:      the workload port the request arrived for (destination.port, operation.ports)
    headers:   lower-case names; repeated headers joined with "," (see `policy_headers`)
    principal: the verified peer's principal in Istio's form (cluster.local/ns/NS/sa/SA), None for plaintext
    namespace: the verified peer's namespace, None for plaintext
    """

    path: str
    method: str
    host: str
    port: int
    headers: Mapping[str, str]
    principal: str | None
    namespace: str | None


class Pattern(NamedTuple):
    """One policy string: kind is "exact", "prefix", "suffix" or "any"."""

    kind: str
    value: str

    def matches(self, text: str | None) -> bool:
        if text is None:
            return False
        if self.kind == "exact":
            return text == self.value
        if self.kind == "prefix":
            return text.startswith(self.value)
        if self.kind == "suffix":
            return text.endswith(self.value)
        return text != ""


class HostPattern(NamedTuple):
    """A policy host: a pattern for the lower-case name and, when written with one, a port."""

    name: Pattern
    port: int | None

    def matches(self, host: tuple[str, int | None]) -> bool:
        return self.name.matches(host[0]) and (self.port is None or self.port == host[1])


@dataclass(frozen=True, slots=True)
class Source:
    principals: tuple[Pattern, ...]
    not_principals: tuple[Pattern, ...]
    namespaces: tuple[Pattern, ...]
    not_namespaces: tuple[Pattern, ...]
    service_accounts: frozenset[str] = frozenset()  # NAMESPACE/NAME, exact
    not_service_accounts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Operation:
    hosts: tuple[HostPattern, ...]
    not_hosts: tuple[HostPattern, ...]
    ports: tuple[int, ...]
    not_ports: tuple[int, ...]
    methods: tuple[Pattern, ...]
    not_methods: tuple[Pattern, ...]
    paths: tuple[Pattern, ...]
    not_paths: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    """A `when` entry: key is "header", "source.principal", "source.namespace" or "destination.port"."""

    key: str
    header: str
    values: tuple[Pattern, ...]
    not_values: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[Source, ...]
    operations: tuple[Operation, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    action: str
    rules: tuple[Rule, ...]


def applicable_policies(
    policies: Iterable[Mapping[str, Any]],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str = ROOT_NAMESPACE,
) -> list[Mapping[str, Any]]:
    """The canonical policies that apply to a workload: its namespace's and the root namespace's whose
    selector (if any) matches its labels. "If the authorization policy is in the root namespace, the
    selector will additionally match with workloads in all namespaces" (Istio's reference)."""
    return [
        policy
        for policy in policies
        if policy["namespace"] in (namespace, root_namespace) and selects(policy["spec"]["selector"], labels)
    ]


def compile_policies(policies: Iterable[Mapping[str, Any]]) -> tuple[Policy, ...]:
    """Canonical AuthorizationPolicies, ready for `authorize`, in name order so decisions are repeatable.

    Raises ConfigError for an action or `when` key this code does not implement, so a
    snapshot that needs them is NACKed instead of enforced halfway.
    """
    return tuple(_policy(policy) for policy in sorted(policies, key=policy_name))


def authorize(policies: Sequence[Policy], request: Request) -> Decision:
    """Istio's decision for `request` under `policies` (the compiled policies of this workload)."""
    caller = caller_of(request)
    audit = next((p.name for p in policies if p.action == "AUDIT" and _matches(p, request, caller)), None)
    for policy in policies:
        if policy.action == "DENY" and _matches(policy, request, caller):
            return Decision(False, policy.name, "DENY", audit)
    allows = [policy for policy in policies if policy.action == "ALLOW"]
    if not allows:
        return Decision(True, None, None, audit)
    for policy in allows:
        if _matches(policy, request, caller):
            return Decision(True, policy.name, "ALLOW", audit)
    return Decision(False, None, "ALLOW", audit)


class Caller(NamedTuple):
    """What a request says about who sent it, read once per request: the principal and namespace
    as policies may see them (None: plaintext or unprintable), its service account as
    NAMESPACE/NAME (None unless the principal has Istio's form), and the split Host header."""

    principal: str | None
    namespace: str | None
    service_account: str | None
    host: tuple[str, int | None]


def caller_of(request: Request) -> Caller:
    """The Caller of `request`, for `matching_rule` (authorize makes its own)."""
    principal = _identity_text(request.principal)
    namespace = _identity_text(request.namespace) if principal is not None else None
    return Caller(principal, namespace, _service_account(principal), split_host(request.host))


# Service accounts of the principals seen lately: a sidecar's callers are few.
_ACCOUNTS_MAX = 1024
_accounts: dict[str, str | None] = {}


def _service_account(principal: str | None) -> str | None:
    """NAMESPACE/NAME from Istio's principal form, or None (plaintext, or not that form)."""
    if principal is None:
        return None
    if principal in _accounts:
        return _accounts[principal]
    match = _PRINCIPAL.fullmatch(principal)
    account = f"{match.group(1)}/{match.group(2)}" if match is not None else None
    if len(_accounts) >= _ACCOUNTS_MAX:
        _accounts.clear()
    _accounts[principal] = account
    return account


def matching_rule(policy: Policy, request: Request, caller: Caller) -> int | None:
    """The index of the first rule of `policy` that `request` matches, or None: which rule
    Istio names in a matched policy's id (ns[NS]-policy[NAME]-rule[N])."""
    for index, rule in enumerate(policy.rules):
        if _rule_matches(rule, request, caller):
            return index
    return None


def split_host(authority: str) -> tuple[str, int | None]:
    """(lower-case host name without trailing dot, port or None) from a Host header value.

    `Reviews.Default.:9080` -> ("reviews.default", 9080); `[::1]:80` -> ("[::1]", 80).
    """
    text = authority.strip().lower()
    match = _PORT_SUFFIX.fullmatch(text)
    if match is None or (text.startswith("[") and not match.group(1).endswith("]")):
        return text.rstrip("."), None
    return match.group(1).rstrip("."), int(match.group(2))


def policy_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers as policies see them: lower-case names, repeated values joined with ","
    (Istio: "Istio will merge duplicate headers to a single header by concatenating all values
    using comma as a separator", authorization normalization reference)."""
    merged: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged


# -- matching ---------------------------------------------------------------


def _matches(policy: Policy, request: Request, caller: Caller) -> bool:
    return any(_rule_matches(rule, request, caller) for rule in policy.rules)


def _rule_matches(rule: Rule, request: Request, caller: Caller) -> bool:
    return (
        (not rule.sources or any(_source_matches(s, caller) for s in rule.sources))
        and (not rule.operations or any(_operation_matches(o, request, caller.host) for o in rule.operations))
        and all(_field(c.values, c.not_values, _attribute(c, request, caller)) for c in rule.conditions)
    )


def _source_matches(source: Source, caller: Caller) -> bool:
    account = caller.service_account
    return (
        _field(source.principals, source.not_principals, caller.principal)
        and _field(source.namespaces, source.not_namespaces, caller.namespace)
        and (not source.service_accounts or account in source.service_accounts)
        and account not in source.not_service_accounts
    )


def _operation_matches(operation: Operation, request: Request, host: tuple[str, int | None]) -> bool:
    return (
        _field(operation.hosts, operation.not_hosts, host)
        and (not operation.ports or request.port in operation.ports)
        and request.port not in operation.not_ports
        and _field(operation.methods, operation.not_methods, request.method)
        and _field(operation.paths, operation.not_paths, request.path)
    )


def _field(values: Sequence[Any], not_values: Sequence[Any], attribute: Any) -> bool:
    """A value list (if given) must match; a not-list must not."""
    if values and not any(pattern.matches(attribute) for pattern in values):
        return False
    return not any(pattern.matches(attribute) for pattern in not_values)


def _attribute(condition: Condition, request: Request, caller: Caller) -> str | None:
    if condition.key == "header":
        return request.headers.get(condition.header)
    if condition.key == "source.principal":
        return caller.principal
    if condition.key == "source.namespace":
        return caller.namespace
    return str(request.port)


def _identity_text(value: str | None) -> str | None:
    """The principal or namespace as policies may see it; None (like plaintext) unless printable ASCII."""
    if value is None or not _PRINTABLE.fullmatch(value):
        return None
    return value


# -- compiling --------------------------------------------------------------


def _policy(resource: Mapping[str, Any]) -> Policy:
    name = policy_name(resource)
    spec = resource["spec"]
    action = spec["action"]
    if action not in ACTIONS:
        raise ConfigError(KIND, name, "spec.action", f"{action!r} is not implemented; use ALLOW, DENY or AUDIT")
    rules = tuple(_rule(rule, name, f"spec.rules[{i}]") for i, rule in enumerate(spec["rules"]))
    return Policy(name, action, rules)


def _rule(rule: Mapping[str, Any], name: str, at: str) -> Rule:
    sources = tuple(
        Source(
            _patterns(source["principals"]),
            _patterns(source["not_principals"]),
            _patterns(source["namespaces"]),
            _patterns(source["not_namespaces"]),
            frozenset(source["service_accounts"]),
            frozenset(source["not_service_accounts"]),
        )
        for source in rule["from"]
    )
    operations = tuple(
        Operation(
            hosts=tuple(_host_pattern(host) for host in operation["hosts"]),
            not_hosts=tuple(_host_pattern(host) for host in operation["not_hosts"]),
            ports=tuple(int(port) for port in operation["ports"]),
            not_ports=tuple(int(port) for port in operation["not_ports"]),
            methods=_patterns(operation["methods"]),
            not_methods=_patterns(operation["not_methods"]),
            paths=_patterns(operation["paths"]),
            not_paths=_patterns(operation["not_paths"]),
        )
        for operation in rule["to"]
    )
    conditions = tuple(_condition(when, name, f"{at}.when[{i}]") for i, when in enumerate(rule["when"]))
    return Rule(sources, operations, conditions)


def _condition(when: Mapping[str, Any], name: str, at: str) -> Condition:
    key = when["key"]
    values, not_values = _patterns(when["values"]), _patterns(when["not_values"])
    header = _HEADER_KEY.fullmatch(key)
    if header is not None:
        return Condition("header", header.group(1).lower(), values, not_values)
    if key in ("source.principal", "source.namespace", "destination.port"):
        return Condition(key, "", values, not_values)
    raise ConfigError(KIND, name, f"{at}.key", f"condition key {key!r} is not implemented in meshkit")


def _patterns(texts: Iterable[str]) -> tuple[Pattern, ...]:
    return tuple(_pattern(text) for text in texts)


def _pattern(text: str) -> Pattern:
    if text == "*":
        return Pattern("any", "")
    if text.endswith("*"):
        return Pattern("prefix", text[:-1])
    if text.startswith("*"):
        return Pattern("suffix", text[1:])
    return Pattern("exact", text)


def _host_pattern(text: str) -> HostPattern:
    lowered = text.lower()
    match = _PORT_SUFFIX.fullmatch(lowered)
    if match is not None:
        return HostPattern(_pattern(match.group(1).rstrip(".")), int(match.group(2)))
    return HostPattern(_pattern(lowered.rstrip(".")), None)
