"""What one snapshot says about the inbound side: the mTLS mode and the compiled AuthorizationPolicies.

Compiled when a snapshot is applied (meshkit.sidecar.state), before it
replaces the current one: a policy meshkit cannot enforce completely raises
ConfigError and the snapshot is refused, never enforced halfway. Dry-run
policies are compiled apart from the enforced ones, so enforcement never
sees them (meshkit.core.dry_run).
"""

from __future__ import annotations

from typing import NamedTuple

from meshkit.core.authz import Policy, applicable_policies, compile_policies
from meshkit.core.dry_run import is_dry_run
from meshkit.core.peer_auth import MtlsMode, effective_mode
from meshkit.core.snapshot import Snapshot
from meshkit.names import service_host
from meshkit.sidecar.bootstrap import Workload


class InboundSecurity(NamedTuple):
    """What one snapshot says about the inbound side: the mode and the compiled policies."""

    mode: MtlsMode
    policies: tuple[Policy, ...]  # enforced
    port: int  # destination.port for policies: the workload's service port
    dry_run: tuple[Policy, ...] = ()  # evaluated and reported, never enforced


def inbound_security(snapshot: Snapshot, workload: Workload, inbound_port: int | None) -> InboundSecurity:
    """The inbound side's mode and policies for `snapshot`; raises ConfigError for a policy meshkit cannot enforce."""
    mode = effective_mode(snapshot.peer_authentications, workload.namespace, workload.labels)
    applicable = applicable_policies(snapshot.authorization_policies, workload.namespace, workload.labels)
    policies = compile_policies(policy for policy in applicable if not is_dry_run(policy))
    dry_run = compile_policies(policy for policy in applicable if is_dry_run(policy))
    own = snapshot.services.get(service_host(workload.service, workload.namespace))
    port = own.port if own is not None else (inbound_port or 0)
    return InboundSecurity(mode, policies, port, dry_run)
