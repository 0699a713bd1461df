"""Certificate signing requests: the sidecar builds one, the CA checks it.

A sidecar generates its own ECDSA P-256 key (the key never leaves it) and
asks for a certificate with a CSR naming its one identity as a URI SAN,
nothing else. The CA refuses any CSR that asks for more or for something
different (HARDENING: mTLS and identity): another identity, a second URI,
another kind of SAN, a subject, CA rights or any extension at all, because
the CA writes every extension of the certificate itself and never copies a
request's. That is Istio's rule too: istiod signs a CSR only for the identity
the caller authenticated as
(https://istio.io/latest/docs/concepts/security/#pki).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from meshkit.security.errors import InvalidIdentity, RequestRefused
from meshkit.security.identity import Identity, parse_spiffe_id

MAX_CSR_PEM_BYTES = 16 * 1024  # a P-256 CSR is under 1 KiB; anything near this is not one
EXTENSION_REQUEST = x509.ObjectIdentifier("1.2.840.113549.1.9.14")  # PKCS#9 extensionRequest (RFC 2985 5.4.2)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, DESIGN.md's choice (Istio's with ECC_SIGNATURE_ALGORITHM=ECDSA)."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the sidecar keeps it in memory or in a 0600 file."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def build_csr(identity: Identity, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The PEM CSR a sidecar sends: empty subject, one URI SAN, signed with `key`."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """The CSR in `pem`, or RequestRefused when it is not one PEM CSR."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_CSR_PEM_BYTES:
        raise RequestRefused(f"the CSR is larger than {MAX_CSR_PEM_BYTES} bytes")
    try:
        return x509.load_pem_x509_csr(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise RequestRefused(f"not a PEM certificate signing request: {exc}") from None


def check_request(csr: x509.CertificateSigningRequest, expected: Identity) -> None:
    """Return when `csr` asks for exactly `expected` and nothing more; RequestRefused says what else it asks."""
    if not csr.is_signature_valid:
        raise RequestRefused("the CSR's signature does not verify: it was not signed by the key it carries")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise RequestRefused("the CSR's key must be ECDSA P-256 (secp256r1)")
    if len(csr.subject) != 0:
        raise RequestRefused(f"the CSR asks for subject {csr.subject.rfc4514_string()!r}; the identity goes in the URI SAN only")
    if any(attribute.oid != EXTENSION_REQUEST for attribute in csr.attributes):
        raise RequestRefused("the CSR carries attributes other than its extension request")
    for extension in csr.extensions:
        if extension.oid == ExtensionOID.BASIC_CONSTRAINTS and getattr(extension.value, "ca", False):
            raise RequestRefused("the CSR asks to be a CA; workload certificates are never CAs")
        if extension.oid != ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            raise RequestRefused(f"the CSR asks for extension {extension.oid.dotted_string}; only the SAN may be requested")
    requested = requested_identity(csr)
    if requested.trust_domain != expected.trust_domain:
        raise RequestRefused(
            f"the CSR asks for trust domain {requested.trust_domain!r}; this CA signs for {expected.trust_domain!r} only"
        )
    if requested != expected:
        raise RequestRefused(f"the CSR asks for {requested.uri}, but this node may only be {expected.uri}")


def requested_identity(csr: x509.CertificateSigningRequest) -> Identity:
    """The one SPIFFE ID the CSR names, or RequestRefused."""
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise RequestRefused("the CSR names no identity: add a URI SAN spiffe://<trust-domain>/ns/<ns>/sa/<sa>") from None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != len(names):
        raise RequestRefused("the CSR asks for a SAN that is not a URI (DNS name, IP address or email)")
    if len(uris) != 1:
        raise RequestRefused(f"the CSR asks for {len(uris)} URI SANs; a workload certificate carries exactly one")
    try:
        return parse_spiffe_id(uris[0])
    except InvalidIdentity as exc:
        raise RequestRefused(f"the CSR's URI SAN is not a workload identity: {exc}") from None
