"""What one snapshot says about the inbound side: the mTLS mode and the compiled AuthorizationPolicies.

Compiled when a snapshot is applied (meshkit.sidecar.state), before it
replaces the current one: a policy meshkit cannot enforce completely raises
ConfigError and the snapshot is refused, never enforced halfway.
"""

from __future__ import annotations

from typing import NamedTuple

from meshkit.core.authz import Policy, applicable_policies, compile_policies
from meshkit.core.peer_auth import MtlsMode, effective_mode
from meshkit.core.snapshot import Snapshot
from meshkit.names import service_host
from meshkit.sidecar.bootstrap import Workload


class InboundSecurity(NamedTuple):
    """What one snapshot says about the inbound side: the mode and the compiled policies."""

    mode: MtlsMode
    policies: tuple[Policy, ...]
    port: int  # destination.port for policies: the workload's service port


def inbound_security(snapshot: Snapshot, workload: Workload, inbound_port: int | None) -> InboundSecurity:
    """The inbound side's mode and policies for `snapshot`; raises ConfigError for a policy meshkit cannot enforce."""
    mode = effective_mode(snapshot.peer_authentications, workload.namespace, workload.labels)
    policies = compile_policies(applicable_policies(snapshot.authorization_policies, workload.namespace, workload.labels))
    own = snapshot.services.get(service_host(workload.service, workload.namespace))
    port = own.port if own is not None else (inbound_port or 0)
    return InboundSecurity(mode, policies, port)
