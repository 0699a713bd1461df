"""The mesh CA: root and leaf certificates, refusals, lifetimes and root rotation (meshkit.security.ca)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from meshkit.security.ca import (
    CLOCK_SKEW,
    CertificateAuthority,
    create_authority,
    drop_previous_roots,
    issue,
    rotate,
)
from meshkit.security.csr import build_csr, load_csr, new_private_key, requested_identity
from meshkit.security.errors import RequestRefused
from meshkit.security.identity import Identity
from tests.unit.test_security_samples import NOW, PRODUCTPAGE, REVIEWS, issue_for


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return create_authority(NOW)


E = TypeVar("E", bound=x509.ExtensionType)


def extension(certificate: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return certificate.extensions.get_extension_for_class(kind)


def test_the_root_is_a_critical_ca_that_may_only_sign_certificates_and_crls(ca: CertificateAuthority) -> None:
    constraints = extension(ca.root, x509.BasicConstraints)
    usage = extension(ca.root, x509.KeyUsage)
    assert constraints.critical and constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature


def test_the_root_is_self_signed_with_a_p256_key_and_a_subject_key_identifier(ca: CertificateAuthority) -> None:
    ca.root.verify_directly_issued_by(ca.root)
    public_key = ca.root.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1)
    assert extension(ca.root, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        ca.key.public_key()
    )


def test_the_root_lives_ten_years_from_a_minute_before_it_was_made(ca: CertificateAuthority) -> None:
    assert ca.root.not_valid_before_utc == NOW - CLOCK_SKEW
    assert ca.root.not_valid_after_utc == NOW + timedelta(days=3650)


def test_a_leaf_carries_exactly_the_extensions_a_workload_certificate_needs(ca: CertificateAuthority) -> None:
    key, leaf = issue_for(ca, REVIEWS)
    oids = {ext.oid for ext in leaf.extensions}
    assert oids == {
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    }
    san = extension(leaf, x509.SubjectAlternativeName)
    assert san.critical and list(san.value) == [x509.UniformResourceIdentifier(REVIEWS.uri)]
    constraints = extension(leaf, x509.BasicConstraints)
    assert constraints.critical and constraints.value == x509.BasicConstraints(ca=False, path_length=None)
    usage = extension(leaf, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    eku = extension(leaf, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    root_ski = extension(ca.root, x509.SubjectKeyIdentifier).value.digest
    assert extension(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert extension(leaf, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()
    )


def test_a_leaf_has_an_empty_subject_the_sidecars_key_and_the_roots_signature(ca: CertificateAuthority) -> None:
    key, leaf = issue_for(ca, REVIEWS)
    assert len(leaf.subject) == 0
    assert leaf.issuer == ca.root.subject
    assert leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(ca.root)
    assert leaf.signature_hash_algorithm is not None and leaf.signature_hash_algorithm.name == "sha256"


def test_a_leaf_lives_a_day_by_default_from_a_minute_before_issue(ca: CertificateAuthority) -> None:
    _, leaf = issue_for(ca, REVIEWS)
    assert leaf.not_valid_before_utc == NOW - CLOCK_SKEW
    assert leaf.not_valid_after_utc == NOW + timedelta(hours=24)


def test_a_lab_can_set_the_leaf_lifetime_in_minutes() -> None:
    ca = create_authority(NOW, leaf_lifetime=timedelta(minutes=2))
    _, leaf = issue_for(ca, REVIEWS)
    assert leaf.not_valid_after_utc == NOW + timedelta(minutes=2)


def test_a_leaf_never_outlives_its_root(ca: CertificateAuthority) -> None:
    late = ca.root.not_valid_after_utc - timedelta(hours=1)
    _, leaf = issue_for(ca, REVIEWS, now=late)
    assert leaf.not_valid_after_utc == ca.root.not_valid_after_utc


@pytest.mark.parametrize(
    "lifetime",
    [timedelta(seconds=59), timedelta(days=91), timedelta(0)],
    ids=["under_a_minute", "over_ninety_days", "zero"],
)
def test_a_leaf_lifetime_outside_a_minute_to_ninety_days_is_refused(lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match="between 1 minute and 90 days"):
        create_authority(NOW, leaf_lifetime=lifetime)


def test_a_naive_time_is_refused_because_certificate_times_are_absolute() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        create_authority(datetime(2025, 1, 1))


def test_every_leaf_gets_its_own_positive_serial(ca: CertificateAuthority) -> None:
    serials = {issue_for(ca, REVIEWS)[1].serial_number for _ in range(20)}
    assert len(serials) == 20 and min(serials) > 0


def _csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    names: list[x509.GeneralName] | None,
    subject: x509.Name = x509.Name([]),
    extra: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    for value, critical in extra:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(key, hashes.SHA256())


URI = x509.UniformResourceIdentifier
REFUSALS = {
    "another_identity_in_the_same_trust_domain": (lambda k: _csr(k, [URI(PRODUCTPAGE.uri)]), "may only be"),
    "another_trust_domain": (lambda k: _csr(k, [URI("spiffe://evil.example/ns/default/sa/bookinfo-reviews")]), "trust domain"),
    "two_uris": (lambda k: _csr(k, [URI(REVIEWS.uri), URI(PRODUCTPAGE.uri)]), "2 URI SANs"),
    "the_right_uri_plus_a_dns_name": (lambda k: _csr(k, [URI(REVIEWS.uri), x509.DNSName("reviews")]), "not a URI"),
    "only_a_dns_name": (lambda k: _csr(k, [x509.DNSName("reviews.default.svc.cluster.local")]), "not a URI"),
    "no_san_at_all": (lambda k: _csr(k, None), "names no identity"),
    "a_uri_with_another_scheme": (lambda k: _csr(k, [URI("https://cluster.local/ns/default/sa/bookinfo-reviews")]), "not a workload identity"),
    "a_uri_with_a_nul_byte": (lambda k: _csr(k, [URI("spiffe://cluster.local/ns/default/sa/bookinfo-reviews\x00x")]), "not a workload identity"),
    "ca_rights": (
        lambda k: _csr(k, [URI(REVIEWS.uri)], extra=((x509.BasicConstraints(ca=True, path_length=None), True),)),
        "asks to be a CA",
    ),
    "another_extension": (
        lambda k: _csr(k, [URI(REVIEWS.uri)], extra=((x509.OCSPNoCheck(), False),)),
        "only the SAN may be requested",
    ),
    "a_subject": (
        lambda k: _csr(k, [URI(REVIEWS.uri)], subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")])),
        "subject",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_the_ca_refuses_a_csr_that_asks_for_anything_but_the_callers_identity(ca: CertificateAuthority, case: str) -> None:
    make, reason = REFUSALS[case]
    csr = make(new_private_key())
    with pytest.raises(RequestRefused, match=reason):
        issue(ca, csr, REVIEWS, NOW)


def test_the_ca_refuses_a_csr_with_an_rsa_key(ca: CertificateAuthority) -> None:
    csr = _csr(rsa.generate_private_key(public_exponent=65537, key_size=2048), [URI(REVIEWS.uri)])
    with pytest.raises(RequestRefused, match="P-256"):
        issue(ca, csr, REVIEWS, NOW)


def test_the_ca_refuses_a_csr_with_a_p384_key(ca: CertificateAuthority) -> None:
    csr = _csr(ec.generate_private_key(ec.SECP384R1()), [URI(REVIEWS.uri)])
    with pytest.raises(RequestRefused, match="P-256"):
        issue(ca, csr, REVIEWS, NOW)


def test_the_ca_refuses_a_csr_whose_signature_does_not_verify(ca: CertificateAuthority) -> None:
    good = build_csr(REVIEWS, new_private_key())
    der = bytearray(load_csr(good).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # flip a bit inside the signature
    with pytest.raises(RequestRefused, match="signature"):
        issue(ca, x509.load_der_x509_csr(bytes(der)), REVIEWS, NOW)


def test_the_ca_refuses_to_sign_for_a_trust_domain_that_is_not_its_own(ca: CertificateAuthority) -> None:
    other = Identity("evil.example", "default", "bookinfo-reviews")
    with pytest.raises(RequestRefused, match="trust domain"):
        issue(ca, load_csr(build_csr(other, new_private_key())), other, NOW)


@pytest.mark.parametrize(
    "pem",
    ["", "not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "x" * 20000],
    ids=["empty", "plain_text", "a_broken_pem_body", "too_large"],
)
def test_text_that_is_not_one_pem_csr_is_refused(pem: str) -> None:
    with pytest.raises(RequestRefused):
        load_csr(pem)


def test_the_identity_a_sidecar_builds_into_its_csr_reads_back_unchanged() -> None:
    assert requested_identity(load_csr(build_csr(REVIEWS, new_private_key()))) == REVIEWS


def test_rotation_signs_under_a_new_root_while_the_old_root_stays_trusted(ca: CertificateAuthority) -> None:
    _, old_leaf = issue_for(ca, REVIEWS)
    rotated = rotate(ca, NOW + timedelta(days=1))
    _, new_leaf = issue_for(rotated, REVIEWS, now=NOW + timedelta(days=1))
    assert rotated.root != ca.root and rotated.key != ca.key
    assert rotated.trusted_roots == (rotated.root, ca.root)
    new_leaf.verify_directly_issued_by(rotated.root)
    old_leaf.verify_directly_issued_by(rotated.trusted_roots[1])
    bundle = x509.load_pem_x509_certificates(rotated.trust_bundle_pem())
    assert bundle == [rotated.root, ca.root]


def test_dropping_previous_roots_leaves_only_the_signing_root_trusted(ca: CertificateAuthority) -> None:
    rotated = drop_previous_roots(rotate(rotate(ca, NOW), NOW))
    assert rotated.trusted_roots == (rotated.root,)
    assert x509.load_pem_x509_certificates(rotated.trust_bundle_pem()) == [rotated.root]


def test_a_rotated_root_has_a_name_distinct_from_the_one_it_replaces(ca: CertificateAuthority) -> None:
    rotated = rotate(ca, NOW)
    assert rotated.root.subject != ca.root.subject
    assert rotated.trust_domain == ca.trust_domain and rotated.leaf_lifetime == ca.leaf_lifetime


def test_the_ca_defaults_to_istios_trust_domain_and_a_day_of_leaf_life() -> None:
    ca = create_authority(datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert ca.trust_domain == "cluster.local"
    assert ca.leaf_lifetime == timedelta(hours=24)
