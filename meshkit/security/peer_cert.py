"""Who is on the other end: the identity in a peer certificate that TLS has already verified.

OpenSSL checks the chain, the validity period and the extended key usage
during the handshake; it does not know what a mesh identity is. After the
handshake the sidecar gives the peer's leaf certificate (DER, from
`getpeercert(binary_form=True)`) to `peer_identity`, which accepts only a
workload certificate of this mesh (HARDENING: mTLS and identity):

- not a CA (basicConstraints present with CA:false; X509-SVID 4.1),
- exactly one URI SAN and no other SAN (X509-SVID 2),
- that URI a valid SPIFFE workload ID in this trust domain.

Consul's connect proxy makes the same check by comparing the peer's URI SAN
after verification; a connection that fails it is closed before any HTTP
byte is read or written. The fields are read by meshkit.security.cert_fields,
with the standard library, so a sidecar checks its peers without loading
`cryptography`.
"""

from __future__ import annotations

from meshkit.security.cert_fields import read_certificate
from meshkit.security.errors import InvalidIdentity, PeerRefused
from meshkit.security.identity import Identity, parse_spiffe_id


def peer_identity(der: bytes | None, trust_domain: str) -> Identity:
    """The identity a verified peer certificate asserts, or PeerRefused saying why it is not one."""
    if not der:
        raise PeerRefused("the peer presented no certificate")
    try:
        certificate = read_certificate(der)
    except ValueError as exc:
        raise PeerRefused(f"the peer certificate cannot be parsed: {exc}") from None
    if certificate.is_ca is None:
        raise PeerRefused("the peer certificate has no basicConstraints; it is not a workload certificate")
    if certificate.alt_names is None:
        raise PeerRefused("the peer certificate has no subjectAltName; it is not a workload certificate")
    if certificate.is_ca:
        raise PeerRefused("the peer certificate is a CA certificate, not a workload certificate")
    uris = certificate.uris
    if len(uris) != 1 or certificate.alt_names != 1:
        raise PeerRefused(f"the peer certificate has {len(uris)} URI SANs among {certificate.alt_names} SANs; a workload has one URI")
    try:
        identity = parse_spiffe_id(uris[0])
    except InvalidIdentity as exc:
        raise PeerRefused(f"the peer's URI SAN is not a workload identity: {exc}") from None
    if identity.trust_domain != trust_domain:
        raise PeerRefused(f"the peer {identity.uri} belongs to trust domain {identity.trust_domain!r}, not {trust_domain!r}")
    return identity
