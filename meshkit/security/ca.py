"""The mesh's certificate authority: one self-signed root that signs workload certificates.

One root and no intermediate. A lab has one control plane and one CA, and
an intermediate would only add a certificate every handshake carries and
every learner has to read past; Istio's self-signed istiod CA has the same
shape (https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/
describes the intermediate setup for when a company root exists).

Everything here is a pure function of its arguments (and of the new key a
rotation makes): the CA is an immutable value, and `meshkit.security.ca_store`
is the one place that reads and writes it.

Root certificate (RFC 5280 4.2.1; these are what OpenSSL's X509_V_FLAG_X509_STRICT,
on by default in Python 3.13, insists on):
- ECDSA P-256 key, SHA-256 signature;
- basicConstraints CA:true, pathLen 0, critical (4.2.1.9: "MUST appear as a
  critical extension in all CA certificates");
- keyUsage keyCertSign + cRLSign, critical (4.2.1.3);
- subject key identifier (4.2.1.2: MUST appear in CA certificates) and an
  authority key identifier naming itself;
- valid 10 years, Istio's self-signed root lifetime (CITADEL_SELF_SIGNED_CA_CERT_TTL).

Workload (leaf) certificate (SPIFFE X509-SVID,
https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md):
- the CSR's P-256 public key; a random 159-bit serial (RFC 5280 4.1.2.2);
- empty subject, so the SAN is critical (RFC 5280 4.2.1.6), holding exactly
  one URI, the SPIFFE ID (X509-SVID 2);
- basicConstraints CA:false, critical (X509-SVID 4.1);
- keyUsage digitalSignature, critical (X509-SVID 4.3);
- extendedKeyUsage serverAuth + clientAuth: the same certificate serves both
  ends of mutual TLS (X509-SVID 4.4);
- authority key identifier (the root's SKI) and subject key identifier;
- valid `leaf_lifetime` (24 h by default, as Istio's DEFAULT_WORKLOAD_CERT_TTL;
  a lab may set minutes to watch rotation), never past the root, with
  notBefore one minute in the past so a sidecar whose clock is a little
  behind still accepts it.

Root rotation keeps the old root trusted: `rotate` makes a new root that
signs from then on and keeps the old one in `previous_roots`, so the trust
bundle holds both while leaves are reissued; `drop_previous_roots` ends that
once every leaf is new. A SPIFFE trust bundle may hold several roots for
exactly this reason (SPIFFE Trust Domain and Bundle,
https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Trust_Domain_and_Bundle.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshkit.security.csr import check_request, new_private_key
from meshkit.security.errors import RequestRefused
from meshkit.security.identity import DEFAULT_TRUST_DOMAIN, Identity, check_trust_domain

DEFAULT_LEAF_LIFETIME = timedelta(hours=24)
MIN_LEAF_LIFETIME = timedelta(minutes=1)
MAX_LEAF_LIFETIME = timedelta(days=90)  # Istio's MAX_WORKLOAD_CERT_TTL default (2160h)
ROOT_LIFETIME = timedelta(days=3650)
CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True)
class CertificateAuthority:
    """The signing key, its root certificate, the older roots still trusted, and what leaves look like."""

    key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    previous_roots: tuple[x509.Certificate, ...] = ()
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    leaf_lifetime: timedelta = DEFAULT_LEAF_LIFETIME

    def __post_init__(self) -> None:
        check_trust_domain(self.trust_domain)
        check_leaf_lifetime(self.leaf_lifetime)

    @property
    def trusted_roots(self) -> tuple[x509.Certificate, ...]:
        """Every root a sidecar must trust: the signing one first, then those kept through a rotation."""
        return (self.root, *self.previous_roots)

    def trust_bundle_pem(self) -> bytes:
        """The trusted roots as concatenated PEM, what travels to sidecars."""
        return certificates_pem(self.trusted_roots)


def check_time(now: datetime) -> datetime:
    """`now` when it carries a time zone; certificate times are absolute, so a naive time is a bug."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("certificate times need an aware datetime, such as datetime.now(timezone.utc)")
    return now


def check_leaf_lifetime(lifetime: timedelta) -> timedelta:
    """`lifetime` when it lies between a minute and 90 days, else ValueError saying the bounds."""
    if not MIN_LEAF_LIFETIME <= lifetime <= MAX_LEAF_LIFETIME:
        raise ValueError(f"a workload certificate lifetime must be between 1 minute and 90 days, got {lifetime}")
    return lifetime


def create_authority(
    now: datetime,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    leaf_lifetime: timedelta = DEFAULT_LEAF_LIFETIME,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> CertificateAuthority:
    """A new CA with a self-signed root made at `now` (with `key`, or a fresh P-256 key)."""
    key = key or new_private_key()
    return CertificateAuthority(key, _self_signed_root(key, check_time(now)), (), trust_domain, leaf_lifetime)


def issue(ca: CertificateAuthority, csr: x509.CertificateSigningRequest, identity: Identity, now: datetime) -> x509.Certificate:
    """A workload certificate for `identity`, if `csr` asks for exactly that (else RequestRefused)."""
    if identity.trust_domain != ca.trust_domain:
        raise RequestRefused(f"this CA signs for trust domain {ca.trust_domain!r}, not {identity.trust_domain!r}")
    check_request(csr, identity)
    not_after = min(check_time(now) + ca.leaf_lifetime, ca.root.not_valid_after_utc)
    public_key = csr.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # check_request made sure
    issuer_ski = ca.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(ca.key, hashes.SHA256())


def rotate(ca: CertificateAuthority, now: datetime, key: ec.EllipticCurvePrivateKey | None = None) -> CertificateAuthority:
    """A CA that signs under a new root made at `now`, still trusting every root it trusted before."""
    key = key or new_private_key()
    return replace(ca, key=key, root=_self_signed_root(key, check_time(now)), previous_roots=ca.trusted_roots)


def drop_previous_roots(ca: CertificateAuthority) -> CertificateAuthority:
    """The same CA trusting only its signing root: for when every leaf has been reissued under it."""
    return replace(ca, previous_roots=())


def certificates_pem(certificates: tuple[x509.Certificate, ...] | list[x509.Certificate]) -> bytes:
    """Certificates as concatenated PEM blocks, in the order given."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def _self_signed_root(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    public_key = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    # The time and key id in the name tell a rotated root from its predecessor at a glance.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshkit"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"meshkit root CA {now:%Y-%m-%d %H:%M:%S} {ski.digest.hex()[:8]}"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _key_usage(digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
