"""The outbound side's mTLS choice per endpoint: DestinationRule tls.mode, else auto mTLS.

Decided per endpoint when a snapshot's clusters are compiled
(meshkit.sidecar.cluster); the decision itself is meshkit.core.peer_auth's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshkit.core.peer_auth import client_uses_mtls, effective_mode
from meshkit.core.snapshot import Endpoint
from meshkit.security.errors import InvalidIdentity
from meshkit.security.identity import Identity
from meshkit.sidecar.identity import WorkloadIdentity
from meshkit.sidecar.upstream import TlsTarget


class MeshTls:
    """The outbound side's mTLS choice per endpoint: DestinationRule tls.mode, else auto mTLS.

    Auto mTLS (Istio's default) dials mTLS to an endpoint that has a sidecar,
    unless its effective PeerAuthentication mode is DISABLE; the
    PeerAuthentications come with each snapshot (`peer_authentications`, set
    before the clusters are compiled). The endpoint must prove the identity
    of its namespace and service account.
    """

    def __init__(self, identity: WorkloadIdentity, idle_ticks: int, max_idle: int = 0) -> None:
        self.identity = identity
        self.idle_ticks = idle_ticks
        self.max_idle = max_idle
        self.peer_authentications: tuple[Mapping[str, Any], ...] = ()

    def target(self, tls_mode: str | None, endpoint: Endpoint, host: str) -> TlsTarget | None:
        """How to dial `endpoint` of service `host`: a TlsTarget for mTLS, None for plaintext."""
        namespace = host.split(".")[1] if host.count(".") >= 1 else ""
        destination_mode = effective_mode(self.peer_authentications, namespace, endpoint.labels).mode if endpoint.sidecar else None
        if not client_uses_mtls(tls_mode, endpoint.sidecar, destination_mode):
            return None
        expected = None
        if endpoint.service_account is not None:
            try:
                expected = Identity(self.identity.trust_domain, namespace, endpoint.service_account)
            except InvalidIdentity:
                expected = None
        return TlsTarget(self.identity, expected, self.idle_ticks, self.max_idle)
