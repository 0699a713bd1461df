"""The few fields meshkit reads from an X.509 certificate, with the standard library only.

A sidecar reads certificates after OpenSSL has verified them (a peer's, in
every mTLS handshake) or before loading them into an ssl context (its own,
its trust bundle's). It needs the serial, the validity period, whether the
certificate is a CA (basicConstraints), its subject alternative names and
the key identifiers that name a root. `cryptography` reads all of that and
much more, but it costs a sidecar about 10 MB of memory; Python's ssl gives
the DER bytes (`getpeercert(binary_form=True)`) but not those fields. So
this module walks the DER itself (RFC 5280 4.1):

    Certificate  ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    TBSCertificate ::= SEQUENCE {
        [0] version OPTIONAL, serialNumber INTEGER, signature, issuer,
        validity SEQUENCE { notBefore Time, notAfter Time }, subject,
        subjectPublicKeyInfo, [1] issuerUID OPTIONAL, [2] subjectUID OPTIONAL,
        [3] extensions SEQUENCE OF Extension OPTIONAL }
    Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }

Every element is a tag byte, a length and that many content bytes (X.690
8.1). Anything that is not well-formed DER of this shape (a long tag, an
indefinite or overlong length, an element running past its parent, a
repeated extension) raises ValueError: nothing here guesses. It checks no
signature: that is OpenSSL's job, done before any of these fields is
trusted. Certificates a CA makes (meshkit.security.ca) are built with
`cryptography`; a unit test reads them both ways and compares.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone

# Universal tags (X.690 8.1.2) and the context tags RFC 5280 uses.
BOOLEAN, INTEGER, OCTET_STRING, OID, UTC_TIME, GENERALIZED_TIME, SEQUENCE = 0x01, 0x02, 0x04, 0x06, 0x17, 0x18, 0x30
VERSION, ISSUER_UID, SUBJECT_UID, EXTENSIONS = 0xA0, 0x81, 0x82, 0xA3
URI_NAME = 0x86  # GeneralName uniformResourceIdentifier [6] IA5String
KEY_IDENTIFIER = 0x80  # AuthorityKeyIdentifier keyIdentifier [0]

# Extension OIDs, as their DER contents (2.5.29.x is 55 1D x).
BASIC_CONSTRAINTS = b"\x55\x1d\x13"
SUBJECT_ALT_NAME = b"\x55\x1d\x11"
SUBJECT_KEY_ID = b"\x55\x1d\x0e"
AUTHORITY_KEY_ID = b"\x55\x1d\x23"

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CertificateFields:
    """What meshkit reads from one certificate; None where the certificate lacks the extension."""

    serial: int
    not_before: datetime
    not_after: datetime
    is_ca: bool | None  # basicConstraints cA; None: no basicConstraints
    alt_names: int | None  # how many subject alternative names of any kind; None: no subjectAltName
    uris: tuple[str, ...]  # the URI SANs
    subject_key_id: str | None  # hex
    authority_key_id: str | None  # hex, the keyIdentifier of the authority key identifier


def pem_certificates(pem: bytes) -> list[bytes]:
    """The DER of each CERTIFICATE block in `pem`, in order; ValueError when there is none."""
    blocks = [base64.b64decode(body, validate=False) for body in _PEM_CERTIFICATE.findall(pem)]
    if not blocks:
        raise ValueError("no PEM certificate found")
    return blocks


def read_certificate(der: bytes) -> CertificateFields:
    """The fields of a DER certificate; ValueError when it is not one."""
    tag, start, end = _element(der, 0, len(der))
    if tag != SEQUENCE or end != len(der):
        raise ValueError("a certificate is one DER SEQUENCE")
    parts = _children(der, start, end)
    if len(parts) != 3 or parts[0][0] != SEQUENCE:
        raise ValueError("a certificate holds tbsCertificate, signatureAlgorithm and signature")
    return read_tbs(der[start : parts[0][2]])  # the first element starts where the outer contents do


def read_tbs(tbs: bytes) -> CertificateFields:
    """The fields of a DER tbsCertificate (what `cryptography`'s tbs_certificate_bytes holds)."""
    tag, start, end = _element(tbs, 0, len(tbs))
    if tag != SEQUENCE or end != len(tbs):
        raise ValueError("a tbsCertificate is one DER SEQUENCE")
    parts = _children(tbs, start, end)
    if parts and parts[0][0] == VERSION:
        parts = parts[1:]
    if len(parts) < 6 or [p[0] for p in parts[:6]] != [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE]:
        raise ValueError("a tbsCertificate starts serial, signature, issuer, validity, subject, public key")
    serial = int.from_bytes(tbs[parts[0][1] : parts[0][2]], "big", signed=True)
    validity = _children(tbs, parts[3][1], parts[3][2])
    if len(validity) != 2:
        raise ValueError("a validity holds notBefore and notAfter")
    not_before, not_after = (_time(tbs, *time) for time in validity)
    rest = parts[6:]
    for optional in (ISSUER_UID, SUBJECT_UID):
        if rest and rest[0][0] == optional:
            rest = rest[1:]
    extensions: dict[bytes, bytes] = {}
    if rest and rest[0][0] == EXTENSIONS:
        extensions = _extensions(tbs, rest[0][1], rest[0][2])
        rest = rest[1:]
    if rest:
        raise ValueError("unexpected elements after the extensions")
    is_ca: bool | None = None
    alt_names: int | None = None
    uris: tuple[str, ...] = ()
    if BASIC_CONSTRAINTS in extensions:
        is_ca = _basic_constraints_ca(extensions[BASIC_CONSTRAINTS])
    if SUBJECT_ALT_NAME in extensions:
        alt_names, uris = _alt_names(extensions[SUBJECT_ALT_NAME])
    subject_key_id = authority_key_id = None
    if SUBJECT_KEY_ID in extensions:
        subject_key_id = _octet_string(extensions[SUBJECT_KEY_ID]).hex()
    if AUTHORITY_KEY_ID in extensions:
        authority_key_id = _authority_key_id(extensions[AUTHORITY_KEY_ID])
    return CertificateFields(serial, not_before, not_after, is_ca, alt_names, uris, subject_key_id, authority_key_id)


def _element(data: bytes, at: int, limit: int) -> tuple[int, int, int]:
    """(tag, start, end) of the contents of the element at `at`, which must end by `limit`."""
    if at + 2 > limit:
        raise ValueError("truncated DER element")
    tag, length = data[at], data[at + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags do not occur in a certificate")
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or at + count > limit:
            raise ValueError("indefinite or overlong DER length")
        length = int.from_bytes(data[at : at + count], "big")
        if length < 0x80 or data[at] == 0:
            raise ValueError("DER lengths use the shortest form")
        at += count
    if at + length > limit:
        raise ValueError("a DER element runs past its parent")
    return tag, at, at + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, start, end) of each element inside the contents data[start:end]."""
    found = []
    while start < end:
        element = _element(data, start, end)
        found.append(element)
        start = element[2]
    return found


def _only(data: bytes, tag: int) -> bytes:
    """The contents of `data`, which must be exactly one element with `tag`."""
    got, start, end = _element(data, 0, len(data))
    if got != tag or end != len(data):
        raise ValueError(f"expected one DER element with tag {tag:#04x}")
    return data[start:end]


def _time(data: bytes, tag: int, start: int, end: int) -> datetime:
    """A UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the forms RFC 5280 4.1.2.5 allows."""
    text = data[start:end].decode("ascii")
    if tag == UTC_TIME and len(text) == 13:
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000  # RFC 5280 4.1.2.5.1
        text = text[2:]
    elif tag == GENERALIZED_TIME and len(text) == 15:
        year = int(text[:4])
        text = text[4:]
    else:
        raise ValueError("a certificate time is UTCTime or GeneralizedTime in seconds, in UTC")
    if not text.endswith("Z") or not text[:-1].isdigit():
        raise ValueError("a certificate time is digits ending in Z")
    month, day, hour, minute, second = (int(text[i : i + 2]) for i in range(0, 10, 2))
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def _extensions(data: bytes, start: int, end: int) -> dict[bytes, bytes]:
    """extnID (the OID's DER contents) -> extnValue's contents; a repeated extension is refused (RFC 5280 4.2)."""
    outer = _children(data, start, end)
    if len(outer) != 1 or outer[0][0] != SEQUENCE:
        raise ValueError("extensions are one SEQUENCE")
    found: dict[bytes, bytes] = {}
    for tag, first, last in _children(data, outer[0][1], outer[0][2]):
        fields = _children(data, first, last) if tag == SEQUENCE else []
        if len(fields) == 3 and fields[1][0] == BOOLEAN:
            fields = [fields[0], fields[2]]
        if len(fields) != 2 or fields[0][0] != OID or fields[1][0] != OCTET_STRING:
            raise ValueError("an extension is an OID, maybe a critical flag, and an OCTET STRING")
        oid = data[fields[0][1] : fields[0][2]]
        if oid in found:
            raise ValueError("an extension appears twice")
        found[oid] = data[fields[1][1] : fields[1][2]]
    return found


def _basic_constraints_ca(value: bytes) -> bool:
    """basicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }."""
    contents = _only(value, SEQUENCE)
    fields = _children(contents, 0, len(contents))
    if fields and fields[0][0] == BOOLEAN:
        flag = contents[fields[0][1] : fields[0][2]]
        if len(flag) != 1:
            raise ValueError("a BOOLEAN is one byte")
        return flag != b"\x00"
    return False


def _alt_names(value: bytes) -> tuple[int, tuple[str, ...]]:
    """(number of GeneralNames, the URIs among them) of a subjectAltName."""
    contents = _only(value, SEQUENCE)
    names = _children(contents, 0, len(contents))
    if not names:
        raise ValueError("a subjectAltName holds at least one name")
    uris = tuple(contents[start:end].decode("ascii") for tag, start, end in names if tag == URI_NAME)
    return len(names), uris


def _octet_string(value: bytes) -> bytes:
    return _only(value, OCTET_STRING)


def _authority_key_id(value: bytes) -> str | None:
    """AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL, ... }: the key identifier in hex."""
    contents = _only(value, SEQUENCE)
    for tag, start, end in _children(contents, 0, len(contents)):
        if tag == KEY_IDENTIFIER:
            return contents[start:end].hex()
    return None
