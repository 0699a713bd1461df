"""The CA on disk: load it, or create it once, in a directory the caller chooses.

Two files, both written atomically with mode 0600 in a 0700 directory:

    ca.pem            the signing key (PKCS#8) and the signing root certificate
    trust-bundle.pem  every trusted root, the signing one first

Key and root share one file so that no crash can leave a key beside the
wrong certificate. A rotation writes the new bundle (old and new roots)
before the new key, so a crash between the two leaves a CA that still signs
with the old root and trusts one root more, never one that signs under a
root nobody trusts. A key file that group or others can read is refused, as
ssh refuses such a key: a readable CA key lets anyone mint identities.

The trust domain and leaf lifetime are the lab's settings, passed in on every
load: the root does not depend on them.
"""

from __future__ import annotations

import stat
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from meshkit.files import write_atomic
from meshkit.security.ca import (
    DEFAULT_LEAF_LIFETIME,
    CertificateAuthority,
    certificates_pem,
    create_authority,
)
from meshkit.security.csr import private_key_pem
from meshkit.security.errors import CAStoreError
from meshkit.security.identity import DEFAULT_TRUST_DOMAIN

CA_FILE = "ca.pem"
BUNDLE_FILE = "trust-bundle.pem"


def load_or_create(
    directory: Path,
    now: datetime,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    leaf_lifetime: timedelta = DEFAULT_LEAF_LIFETIME,
) -> CertificateAuthority:
    """The CA kept in `directory`, or a new one saved there when the directory holds none."""
    ca = load(directory, trust_domain, leaf_lifetime)
    if ca is None:
        ca = create_authority(now, trust_domain, leaf_lifetime)
        save(directory, ca)
    return ca


def load(
    directory: Path, trust_domain: str = DEFAULT_TRUST_DOMAIN, leaf_lifetime: timedelta = DEFAULT_LEAF_LIFETIME
) -> CertificateAuthority | None:
    """The CA in `directory`; None when it has no CA file yet; CAStoreError when what is there is unusable."""
    ca_path = directory / CA_FILE
    try:
        mode = ca_path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CAStoreError(f"cannot read {ca_path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CAStoreError(f"{ca_path} holds the CA key but others can read it (mode {mode & 0o777:o}); chmod 600 it")
    key, root = _read_key_and_root(ca_path)
    bundle = _read_certificates(directory / BUNDLE_FILE)
    if root not in bundle:
        raise CAStoreError(f"{directory / BUNDLE_FILE} does not hold the signing root in {ca_path}")
    previous = tuple(cert for cert in bundle if cert != root)
    return CertificateAuthority(key, root, previous, trust_domain, leaf_lifetime)


def save(directory: Path, ca: CertificateAuthority) -> None:
    """Write `ca` to `directory` (created 0700): the trust bundle first, then key and root."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(directory / BUNDLE_FILE, ca.trust_bundle_pem(), mode=0o600)
        write_atomic(directory / CA_FILE, private_key_pem(ca.key) + certificates_pem([ca.root]), mode=0o600)
    except OSError as exc:
        raise CAStoreError(f"cannot write the CA to {directory}: {exc.strerror or exc}") from exc


def _read_key_and_root(path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CAStoreError(f"{path} holds no readable private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CAStoreError(f"{path} holds a key that is not ECDSA P-256")
    certificates = _parse_certificates(path, data)
    if len(certificates) != 1:
        raise CAStoreError(f"{path} must hold exactly one certificate (the signing root), found {len(certificates)}")
    root = certificates[0]
    if root.public_key() != key.public_key():
        raise CAStoreError(f"the key and the certificate in {path} do not belong together")
    return key, root


def _read_certificates(path: Path) -> list[x509.Certificate]:
    return _parse_certificates(path, _read(path))


def _parse_certificates(path: Path, data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CAStoreError(f"{path} holds no readable certificate: {exc}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CAStoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
