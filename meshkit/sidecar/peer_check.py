"""Who called over an mTLS connection: read once, after the handshake, before any HTTP byte.

The handshake verified the chain against the trust bundle; `PeerCheck`
reads the peer's identity (meshkit.security.tls.verified_peer: one URI SAN,
this trust domain) and refuses the connection when it is not a workload of
this mesh. What it finds (`PeerInfo`) labels every request on the
connection, and becomes the x-forwarded-client-cert line the app receives
(Envoy's By/Hash/URI fields).
"""

from __future__ import annotations

import logging
from typing import Any

from meshkit.security.errors import PeerRefused
from meshkit.security.tls import verified_peer
from meshkit.sidecar.identity import WorkloadIdentity, certificate_hash

log = logging.getLogger("meshkit.sidecar")

XFCC = b"x-forwarded-client-cert"


class PeerInfo:
    """The verified caller on one mTLS connection."""

    __slots__ = ("uri", "principal", "namespace", "service_account", "xfcc")

    def __init__(self, uri: str, principal: str, namespace: str, service_account: str, xfcc: bytes) -> None:
        self.uri = uri
        self.principal = principal
        self.namespace = namespace
        self.service_account = service_account
        self.xfcc = xfcc  # the whole header line the app receives


class PeerCheck:
    """After a TLS handshake: who the peer is, or a refusal when it is no workload of this mesh."""

    def __init__(self, identity: WorkloadIdentity) -> None:
        self.identity = identity
        self.by = identity.uri.encode("ascii")

    def __call__(self, transport: Any) -> tuple[bool, PeerInfo | None]:
        """(accepted, peer): peer is None for a plaintext connection."""
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is None:
            return True, None
        stats = self.identity.stats
        try:
            peer = verified_peer(sslobj, self.identity.trust_domain)
            der = sslobj.getpeercert(binary_form=True) or b""
        except (PeerRefused, ValueError) as exc:
            stats.inbound_identity_refused += 1
            log.info("inbound mTLS connection refused after the handshake: %s", exc)
            return False, None
        uri = peer.uri.encode("ascii")
        line = b"%s: By=%s;Hash=%s;URI=%s\r\n" % (XFCC, self.by, certificate_hash(der).encode("ascii"), uri)
        return True, PeerInfo(peer.uri, peer.principal, peer.namespace, peer.service_account, line)
