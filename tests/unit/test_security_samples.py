"""Shared samples for the security tests: a fixed clock, mesh identities, and forged certificates.

`forge_leaf` signs whatever it is told to with a CA's key, bypassing the CA's
rules, so tests can show that the TLS layer and `peer_identity` refuse what
the CA would never issue (a CA-flagged leaf, two URIs, another trust domain).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshkit.security.ca import CertificateAuthority, certificates_pem, issue
from meshkit.security.csr import build_csr, load_csr, new_private_key, private_key_pem
from meshkit.security.identity import Identity

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
REVIEWS = Identity("cluster.local", "default", "bookinfo-reviews")
PRODUCTPAGE = Identity("cluster.local", "default", "bookinfo-productpage")


def issue_for(ca: CertificateAuthority, identity: Identity, now: datetime = NOW) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and the certificate the CA issues for it, the way a sidecar gets one."""
    key = new_private_key()
    return key, issue(ca, load_csr(build_csr(identity, key)), identity, now)


def credentials(ca: CertificateAuthority, identity: Identity, now: datetime = NOW) -> tuple[bytes, bytes, bytes]:
    """(chain PEM, key PEM, trust bundle PEM) for a workload, what the TLS contexts take."""
    key, certificate = issue_for(ca, identity, now)
    return pems(ca, key, certificate)


def forge_leaf(
    ca: CertificateAuthority,
    uris: tuple[str, ...] = (REVIEWS.uri,),
    is_ca: bool = False,
    not_before: datetime = NOW - timedelta(minutes=1),
    not_after: datetime = NOW + timedelta(hours=1),
    dns_names: tuple[str, ...] = (),
    authority_key_id: bool = True,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate signed by `ca`'s key with the given defects, and its key."""
    key = new_private_key()
    public_key = key.public_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri) for uri in uris]
    names += [x509.DNSName(name) for name in dns_names]
    issuer_ski = ca.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    usage = x509.KeyUsage(True, False, False, False, False, is_ca, is_ca, False, False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if authority_key_id:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
    return key, builder.sign(ca.key, hashes.SHA256())


def pems(ca: CertificateAuthority, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> tuple[bytes, bytes, bytes]:
    """(chain PEM, key PEM, trust bundle PEM) of a leaf and its key under `ca`."""
    return certificates_pem([certificate]), private_key_pem(key), ca.trust_bundle_pem()
