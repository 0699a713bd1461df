"""ssl contexts for mutual TLS between sidecars, and the identity check after the handshake.

Both ends present a workload certificate and verify the other's chain against
the trust bundle, with TLS 1.3 only and OpenSSL's strict X.509 checks
(VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN, which Python 3.13 turns on
in create_default_context; meshkit sets them itself so 3.11 and 3.12 behave
the same). Host names are not checked: a workload is named by its SPIFFE ID,
not by DNS, so the identity check is `verified_peer` after the handshake, as
Istio's sidecars match the peer's URI SAN rather than a host name.

Python's ssl loads a certificate chain only from files, so the PEM given here
is written to a private temporary directory, loaded and deleted at once.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from meshkit.security.identity import Identity
from meshkit.security.peer_cert import peer_identity

STRICT_FLAGS = ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN


def server_context(chain_pem: bytes, key_pem: bytes, trust_bundle_pem: bytes) -> ssl.SSLContext:
    """The inbound side: present our certificate, require and verify the caller's."""
    return _context(ssl.PROTOCOL_TLS_SERVER, chain_pem, key_pem, trust_bundle_pem)


def client_context(chain_pem: bytes, key_pem: bytes, trust_bundle_pem: bytes) -> ssl.SSLContext:
    """The outbound side: present our certificate, verify the server's chain (not its host name)."""
    return _context(ssl.PROTOCOL_TLS_CLIENT, chain_pem, key_pem, trust_bundle_pem)


def verified_peer(connection: ssl.SSLObject | ssl.SSLSocket, trust_domain: str) -> Identity:
    """The peer's workload identity once the handshake is done; PeerRefused when it has none."""
    return peer_identity(connection.getpeercert(binary_form=True), trust_domain)


def _context(protocol: int, chain_pem: bytes, key_pem: bytes, trust_bundle_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= STRICT_FLAGS
    context.load_verify_locations(cadata=trust_bundle_pem.decode("ascii"))
    _load_chain(context, chain_pem, key_pem)
    return context


def _load_chain(context: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    # Imported here: tempfile brings shutil, bz2 and lzma (about 1 MB), which
    # a plaintext sidecar, one that never loads a certificate, does not need.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="meshkit-tls-") as folder:
        chain, key = Path(folder) / "chain.pem", Path(folder) / "key.pem"
        for path, data in ((chain, chain_pem), (key, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        context.load_cert_chain(chain, key)
