"""Dry-run AuthorizationPolicies: what a policy would decide, reported and never enforced.

An AuthorizationPolicy annotated `istio.io/dry-run: "true"` is evaluated on
every request and changes nothing (Istio's authz-dry-run task). Istio turns
the dry-run policies of each action into the *shadow rules* of that
action's Envoy RBAC filter, so there are two shadow engines, each with its
own verdict (https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/,
"Limitations"):

- DENY dry-run policies: *shadow denied* when one of them matches, naming
  the matched rule; *shadow allowed* otherwise.
- ALLOW dry-run policies: *shadow allowed* when one matches, naming it;
  *shadow denied* when none does (as an ALLOW policy denies what it does
  not match).

Envoy runs the DENY filter before the ALLOW filter, so a request that an
enforced DENY policy refuses never reaches the ALLOW filter and gets no
ALLOW shadow verdict; everything else gets a verdict from each engine that
has dry-run policies. The enforced decision is `meshkit.core.authz.authorize`
over the enforced policies alone: a dry-run policy cannot change it.

A matched rule is named as Istio names the policies it hands Envoy,
`ns[NAMESPACE]-policy[NAME]-rule[N]`. `describe` renders the verdicts as
Envoy's RBAC filter logs them ("shadow denied, matched policy
ns[foo]-policy[deny-path-headers]-rule[0]"), each after its engine
("deny: ..."), which is the access log's `dry_run` field; `parse` reads
that text back for reports. The metric is Istio's
`envoy_http_inbound_..._rbac{authz_dry_run_action, authz_dry_run_result}`
(Envoy's `rbac.istio_dry_run_{allow,deny}_shadow_{allowed,denied}`); its
labels come from `metric_labels`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from meshkit.core.authz import Caller, Decision, Policy, Request, caller_of, matching_rule

ENGINES = ("DENY", "ALLOW")  # in the order Envoy's filters run
NO_POLICY = "none"  # what Envoy logs when no policy matched
NONE_MATCHED = "{action} dry-run policies, none matching"  # who decided when no rule of an engine matched
_PART = re.compile(r"(allow|deny): shadow (allowed|denied), matched policy (\S+)")
_ID = re.compile(r"ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[[0-9]+\]")


class ShadowVerdict(NamedTuple):
    """One engine's verdict: `action` is the engine (the dry-run policies' action), `allowed`
    the shadow result, `policy` the matched rule's id (None when no rule matched)."""

    action: str
    allowed: bool
    policy: str | None


def is_dry_run(policy: Mapping[str, Any]) -> bool:
    """A canonical AuthorizationPolicy's dry-run flag (canonical.py sets `spec.dry_run`)."""
    return bool(policy["spec"].get("dry_run", False))


def policy_id(policy_name: str, rule: int) -> str:
    """Istio's name for rule `rule` of the policy "namespace/name": ns[NAMESPACE]-policy[NAME]-rule[N]."""
    namespace, _, name = policy_name.partition("/")
    return f"ns[{namespace}]-policy[{name}]-rule[{rule}]"


def shadow_verdicts(dry_run: Sequence[Policy], request: Request, enforced: Decision | None = None) -> tuple[ShadowVerdict, ...]:
    """The shadow verdicts of the compiled dry-run policies `dry_run` for `request`.

    `enforced` is the decision of the enforced policies (None: there are none,
    so everything is allowed); an enforced DENY means the ALLOW engine never ran.
    """
    if not dry_run:
        return ()
    caller = caller_of(request)
    verdicts = []
    for engine in ENGINES:
        if engine == "ALLOW" and enforced is not None and enforced.action == "DENY" and not enforced.allowed:
            continue
        policies = [policy for policy in dry_run if policy.action == engine]
        if not policies:
            continue
        matched = _first_match(policies, request, caller)
        allowed = (matched is not None) if engine == "ALLOW" else (matched is None)
        verdicts.append(ShadowVerdict(engine, allowed, matched))
    return tuple(verdicts)


def _first_match(policies: Iterable[Policy], request: Request, caller: Caller) -> str | None:
    for policy in policies:
        rule = matching_rule(policy, request, caller)
        if rule is not None:
            return policy_id(policy.name, rule)
    return None


def describe(verdicts: Sequence[ShadowVerdict]) -> str | None:
    """The verdicts as the access log's `dry_run` field; None when no dry-run policy applied."""
    if not verdicts:
        return None
    return "; ".join(
        f"{v.action.lower()}: shadow {'allowed' if v.allowed else 'denied'}, matched policy {v.policy or NO_POLICY}"
        for v in verdicts
    )


def parse(text: object) -> tuple[ShadowVerdict, ...]:
    """`describe`'s text read back (anything else, such as None or NaN from a table, reads as no verdicts)."""
    if not isinstance(text, str):
        return ()
    verdicts = []
    for part in text.split("; "):
        match = _PART.fullmatch(part)
        if match is not None:
            policy = match.group(3)
            verdicts.append(ShadowVerdict(match.group(1).upper(), match.group(2) == "allowed", None if policy == NO_POLICY else policy))
    return tuple(verdicts)


def would_deny(verdicts: Iterable[ShadowVerdict]) -> bool:
    """Whether enforcing the dry-run policies would have refused the request."""
    return any(not verdict.allowed for verdict in verdicts)


def deciding_policy(verdict: ShadowVerdict) -> str:
    """The dry-run policy ("namespace/name") a verdict is owed to: the matched rule's policy, or,
    when no rule matched, NONE_MATCHED for the engine ("ALLOW dry-run policies, none matching":
    no single policy decided, so none is named)."""
    match = _ID.fullmatch(verdict.policy) if verdict.policy is not None else None
    return f"{match.group(1)}/{match.group(2)}" if match is not None else NONE_MATCHED.format(action=verdict.action)


def metric_labels(verdict: ShadowVerdict) -> tuple[str, str]:
    """(authz_dry_run_action, authz_dry_run_result) as Istio labels Envoy's shadow stats: ("deny", "denied")."""
    return verdict.action.lower(), "allowed" if verdict.allowed else "denied"
