"""Per inbound request: may it reach the app? mTLS mode, path normalisation, authorization.

Called by the inbound handler (meshkit.sidecar.inbound) with the inbound
policy of the current snapshot (meshkit.sidecar.inbound_policy). The mode
is checked again per request (a kept-alive plaintext connection is closed
when the mode turns STRICT, as a listener drains on a config change), the
path is normalised (meshkit.core.paths: what the policy judges is what the
app receives), and the AuthorizationPolicies that select the workload
decide (meshkit.core.authz). Callers without mTLS have no principal, so
identity rules never match them. Dry-run policies are judged beside them
(meshkit.core.dry_run) and their verdicts go on the exchange for its
telemetry record, whatever the enforced decision.
"""

from __future__ import annotations

from meshkit.core.authz import Decision, Request, authorize, policy_headers
from meshkit.core.dry_run import shadow_verdicts
from meshkit.core.framing import Rejection, RequestHead
from meshkit.core.paths import normalize_target
from meshkit.core.peer_auth import accepts
from meshkit.sidecar import handling
from meshkit.sidecar.inbound_policy import InboundSecurity


def admit(exchange: handling.Request, head: RequestHead, security: InboundSecurity) -> bytes | None:
    """Check one inbound request; the header lines the app gets (XFCC), or None when it was answered or refused."""
    down = exchange.down
    peer = down.peer
    if not accepts(security.mode.mode, peer is not None):
        # The mode changed under a kept-alive connection: close it without a word.
        exchange.route = None
        down.refuse()
        return None
    normalized = normalize_target(head.path)
    if isinstance(normalized, Rejection):
        exchange.respond_local("DPE", normalized.reason, status=normalized.status)
        return None
    head.path = normalized.target
    policies = security.policies
    dry_run = security.dry_run
    if policies or dry_run:
        request = Request(
            normalized.path,
            head.method.decode("latin-1"),
            head.authority.decode("latin-1"),
            security.port,
            policy_headers(head.headers),
            None if peer is None else peer.principal,
            None if peer is None else peer.namespace,
        )
        decision = authorize(policies, request) if policies else None
        if dry_run:
            exchange.dry_run = shadow_verdicts(dry_run, request, decision)
        if decision is not None and not decision.allowed:
            exchange.respond_denied(describe_denial(decision))
            return None
    return b"" if peer is None else peer.xfcc


def describe_denial(decision: Decision) -> str:
    """Which policy denied, in Envoy's response code details: the DENY policy that matched, or
    `none` when ALLOW policies exist and none matched."""
    return f"rbac_access_denied_matched_policy[{decision.policy or 'none'}]"
