"""Reading the identity out of a verified peer certificate (meshkit.security.peer_cert)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from meshkit.security.ca import CertificateAuthority, create_authority
from meshkit.security.csr import new_private_key
from meshkit.security.errors import PeerRefused
from meshkit.security.peer_cert import peer_identity
from tests.unit.test_security_samples import NOW, PRODUCTPAGE, REVIEWS, forge_leaf, issue_for


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return create_authority(NOW)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def test_a_mesh_workload_certificate_yields_its_identity(ca: CertificateAuthority) -> None:
    _, leaf = issue_for(ca, REVIEWS)
    assert peer_identity(der(leaf), "cluster.local") == REVIEWS


Forge = Callable[[CertificateAuthority], tuple[object, x509.Certificate]]
FORGERIES: dict[str, tuple[Forge, str]] = {
    "a_ca_flagged_leaf": (lambda ca: forge_leaf(ca, is_ca=True), "CA certificate"),
    "two_uri_sans": (lambda ca: forge_leaf(ca, uris=(REVIEWS.uri, PRODUCTPAGE.uri)), "2 URI SANs"),
    "a_uri_plus_a_dns_name": (lambda ca: forge_leaf(ca, dns_names=("reviews",)), "among 2 SANs"),
    "only_a_dns_name": (lambda ca: forge_leaf(ca, uris=(), dns_names=("reviews",)), "0 URI SANs"),
    "another_scheme": (lambda ca: forge_leaf(ca, uris=("https://cluster.local/ns/default/sa/x",)), "not a workload identity"),
    "another_trust_domain": (lambda ca: forge_leaf(ca, uris=("spiffe://evil.example/ns/default/sa/x",)), "trust domain"),
    "a_nul_inside_the_identity": (
        lambda ca: forge_leaf(ca, uris=("spiffe://cluster.local/ns/victim\x00evil/sa/x",)),
        "not a workload identity",
    ),
    "a_path_that_is_not_ns_and_sa": (
        lambda ca: forge_leaf(ca, uris=("spiffe://cluster.local/workload/reviews",)),
        "not a workload identity",
    ),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_a_certificate_the_ca_would_never_issue_is_refused_even_with_a_valid_signature(
    ca: CertificateAuthority, case: str
) -> None:
    forge, reason = FORGERIES[case]
    _, leaf = forge(ca)
    with pytest.raises(PeerRefused, match=reason):
        peer_identity(der(leaf), "cluster.local")


def test_no_certificate_at_all_is_refused() -> None:
    with pytest.raises(PeerRefused, match="no certificate"):
        peer_identity(None, "cluster.local")
    with pytest.raises(PeerRefused, match="no certificate"):
        peer_identity(b"", "cluster.local")


def test_bytes_that_are_not_a_certificate_are_refused() -> None:
    with pytest.raises(PeerRefused, match="cannot be parsed"):
        peer_identity(b"\x30\x03\x02\x01\x01", "cluster.local")


def test_a_certificate_without_basic_constraints_is_refused(ca: CertificateAuthority) -> None:
    key = new_private_key()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.root.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW.replace(year=2026))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(REVIEWS.uri)]), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    with pytest.raises(PeerRefused, match="basicConstraints"):
        peer_identity(der(leaf), "cluster.local")
