"""meshkit.security.cert_fields reads what `cryptography` reads, from the same certificates, and refuses what is not DER."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from meshkit.security.ca import CertificateAuthority, certificates_pem, create_authority, rotate
from meshkit.security.cert_fields import CertificateFields, pem_certificates, read_certificate, read_tbs
from meshkit.security.csr import new_private_key
from tests.unit.test_security_samples import NOW, PRODUCTPAGE, REVIEWS, forge_leaf, issue_for


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return create_authority(NOW)


def expected(certificate: x509.Certificate) -> CertificateFields:
    """The same fields as `cryptography` reads them."""
    extensions = certificate.extensions

    def value(kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
        try:
            return extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    constraints, names = value(x509.BasicConstraints), value(x509.SubjectAlternativeName)
    ski, aki = value(x509.SubjectKeyIdentifier), value(x509.AuthorityKeyIdentifier)
    assert constraints is None or isinstance(constraints, x509.BasicConstraints)
    assert names is None or isinstance(names, x509.SubjectAlternativeName)
    assert ski is None or isinstance(ski, x509.SubjectKeyIdentifier)
    assert aki is None or isinstance(aki, x509.AuthorityKeyIdentifier)
    return CertificateFields(
        serial=certificate.serial_number,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=None if constraints is None else constraints.ca,
        alt_names=None if names is None else len(names),
        uris=() if names is None else tuple(names.get_values_for_type(x509.UniformResourceIdentifier)),
        subject_key_id=None if ski is None else ski.digest.hex(),
        authority_key_id=None if aki is None or aki.key_identifier is None else aki.key_identifier.hex(),
    )


def bare(serial: int, not_before: datetime, not_after: datetime, extensions: list[x509.ExtensionType]) -> x509.Certificate:
    """A certificate with only the extensions given (none at all, if so), self-signed."""
    key = new_private_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bare")]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256())


def samples(ca: CertificateAuthority) -> dict[str, x509.Certificate]:
    rotated = rotate(ca, NOW)
    return {
        "root": ca.root,
        "rotated_root": rotated.root,
        "leaf": issue_for(ca, REVIEWS)[1],
        "leaf_of_the_rotated_root": issue_for(rotated, PRODUCTPAGE)[1],
        "ca_flagged_leaf": forge_leaf(ca, is_ca=True)[1],
        "two_uris_and_dns_names": forge_leaf(ca, uris=(REVIEWS.uri, PRODUCTPAGE.uri), dns_names=("a", "b"))[1],
        "only_dns_names": forge_leaf(ca, uris=(), dns_names=("reviews",))[1],
        "no_authority_key_id": forge_leaf(ca, authority_key_id=False)[1],
        # Up to 2049 a time is a UTCTime (two-digit year: 50 is 1950, 49 is 2049), from 2050 a GeneralizedTime.
        "utc_times_either_side_of_2000": forge_leaf(ca, not_before=datetime(1950, 1, 1, tzinfo=timezone.utc), not_after=datetime(2049, 12, 31, 23, 59, 59, tzinfo=timezone.utc))[1],
        "a_generalized_time": forge_leaf(ca, not_before=datetime(2049, 12, 31, tzinfo=timezone.utc), not_after=datetime(2050, 1, 1, 0, 0, 1, tzinfo=timezone.utc))[1],
        "no_extensions_small_serial": bare(1, NOW, NOW + timedelta(days=1), []),
        "serial_with_top_bit_set": bare(0x80, NOW, NOW + timedelta(days=1), []),
        "basic_constraints_default_false": bare(2**158 + 7, NOW, NOW + timedelta(days=1), [x509.BasicConstraints(ca=False, path_length=None)]),
        "ca_with_path_length": bare(3, NOW, NOW + timedelta(days=1), [x509.BasicConstraints(ca=True, path_length=2)]),
    }


def test_every_sample_reads_as_cryptography_reads_it(ca: CertificateAuthority) -> None:
    for name, certificate in samples(ca).items():
        got = read_certificate(certificate.public_bytes(serialization.Encoding.DER))
        assert got == expected(certificate), name
        assert read_tbs(certificate.tbs_certificate_bytes) == got, name


def test_a_pem_chain_gives_each_certificate_in_order(ca: CertificateAuthority) -> None:
    leaf = issue_for(ca, REVIEWS)[1]
    chain = certificates_pem([leaf, ca.root])
    assert pem_certificates(chain) == [c.public_bytes(serialization.Encoding.DER) for c in (leaf, ca.root)]
    with pytest.raises(ValueError, match="no PEM certificate"):
        pem_certificates(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x03\x02\x01\x01",  # a SEQUENCE, but not of three parts
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x81\x03\x02\x01\x01",  # a long form where the short one fits
        b"\x30\x05\x02\x01\x01",  # runs past the end
        b"\x1f\x01\x00",  # a multi-byte tag
    ],
)
def test_bytes_that_are_not_der_certificates_are_refused(der: bytes) -> None:
    with pytest.raises(ValueError):
        read_certificate(der)


def test_trailing_bytes_and_damage_anywhere_are_refused(ca: CertificateAuthority) -> None:
    der = issue_for(ca, REVIEWS)[1].public_bytes(serialization.Encoding.DER)
    with pytest.raises(ValueError):
        read_certificate(der + b"\x00")
    with pytest.raises(ValueError):
        read_certificate(der[:-1])


def test_a_repeated_extension_is_refused(ca: CertificateAuthority) -> None:
    der = issue_for(ca, REVIEWS)[1].public_bytes(serialization.Encoding.DER)
    ski = b"\x06\x03\x55\x1d\x0e"
    aki = b"\x06\x03\x55\x1d\x23"
    assert der.count(ski) == 1 and der.count(aki) == 1
    # Same length, so every enclosing length still holds: the authority key id now claims to be a second subject key id.
    with pytest.raises(ValueError, match="twice"):
        read_certificate(der.replace(aki, ski))
