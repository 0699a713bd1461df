"""Real TLS handshakes between mesh certificates (meshkit.security.tls), over a socket pair.

Each case runs a server and a client context from meshkit.security.tls, both
with the strict X.509 flags Python 3.13 turns on by default, and reports
whether the connection was accepted: the handshake completed on both sides,
each side's `verified_peer` returned an identity, and the client read the
server's first application bytes. HARDENING (mTLS and identity) lists the
certificates that must be refused.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

from meshkit.security.ca import CertificateAuthority, certificates_pem, create_authority, drop_previous_roots, rotate
from meshkit.security.identity import Identity
from meshkit.security.tls import STRICT_FLAGS, client_context, server_context, verified_peer
from tests.unit.test_security_samples import PRODUCTPAGE, REVIEWS, credentials, forge_leaf, issue_for, pems

TRUST_DOMAIN = "cluster.local"
GREETING = b"mesh-ok"
TIMEOUT_S = 5.0
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass
class Outcome:
    """What each side saw: the peer's identity or the error that ended the connection."""

    server: Identity | Exception | None = None
    client: Identity | Exception | None = None
    received: bytes = b""
    version: str | None = None
    server_certificate: bytes | None = None

    @property
    def accepted(self) -> bool:
        return isinstance(self.server, Identity) and isinstance(self.client, Identity) and self.received == GREETING


def connect(server: ssl.SSLContext, client: ssl.SSLContext) -> Outcome:
    """One connection over a socket pair; the server greets only a peer whose identity it accepts."""
    outcome = Outcome()
    server_end, client_end = socket.socketpair()
    server_end.settimeout(TIMEOUT_S)
    client_end.settimeout(TIMEOUT_S)

    def serve() -> None:
        try:
            with server.wrap_socket(server_end, server_side=True) as tls:
                outcome.server = verified_peer(tls, TRUST_DOMAIN)
                tls.sendall(GREETING)
        except Exception as exc:  # the outcome records any refusal
            outcome.server = exc

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(client_end) as tls:
            outcome.version = tls.version()
            outcome.server_certificate = tls.getpeercert(binary_form=True)
            outcome.client = verified_peer(tls, TRUST_DOMAIN)
            outcome.received = tls.recv(len(GREETING))
    except Exception as exc:
        outcome.client = exc
    finally:
        client_end.close()
        thread.join(TIMEOUT_S)
        server_end.close()
    return outcome


def now() -> datetime:
    """OpenSSL checks validity against the real clock, so these tests issue at the real time."""
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return create_authority(now())


@pytest.fixture(scope="module")
def reviews_server(ca: CertificateAuthority) -> ssl.SSLContext:
    return server_context(*credentials(ca, REVIEWS, now()))


@pytest.fixture(scope="module")
def mesh_client(ca: CertificateAuthority) -> ssl.SSLContext:
    return client_context(*credentials(ca, PRODUCTPAGE, now()))


def test_two_sidecars_with_mesh_certificates_connect_and_each_sees_the_others_identity(
    reviews_server: ssl.SSLContext, mesh_client: ssl.SSLContext
) -> None:
    outcome = connect(reviews_server, mesh_client)
    assert outcome.accepted, outcome
    assert outcome.server == PRODUCTPAGE and outcome.client == REVIEWS
    assert outcome.version == "TLSv1.3"


def test_both_contexts_verify_with_the_strict_x509_flags_and_require_a_peer_certificate(
    reviews_server: ssl.SSLContext, mesh_client: ssl.SSLContext
) -> None:
    for context in (reviews_server, mesh_client):
        assert context.verify_flags & STRICT_FLAGS == STRICT_FLAGS
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_a_client_without_a_certificate_is_refused(ca: CertificateAuthority, reviews_server: ssl.SSLContext) -> None:
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname = False
    anonymous.load_verify_locations(cadata=ca.trust_bundle_pem().decode())
    outcome = connect(reviews_server, anonymous)
    assert not outcome.accepted
    assert isinstance(outcome.server, ssl.SSLError)


def _client_with(chain_key_bundle: tuple[bytes, bytes, bytes], ca: CertificateAuthority) -> ssl.SSLContext:
    """A client presenting the given certificate and trusting the mesh, so only the server's verdict counts."""
    chain, key, _ = chain_key_bundle
    return client_context(chain, key, ca.trust_bundle_pem())


def forged(
    ca: CertificateAuthority,
    uris: tuple[str, ...] = (PRODUCTPAGE.uri,),
    is_ca: bool = False,
    start: timedelta = -MINUTE,
    end: timedelta = HOUR,
    authority_key_id: bool = True,
) -> tuple[bytes, bytes, bytes]:
    """Credentials around a leaf signed by `ca`'s key with one defect, valid from `start` to `end` around now."""
    key, leaf = forge_leaf(
        ca, uris=uris, is_ca=is_ca, not_before=now() + start, not_after=now() + end, authority_key_id=authority_key_id
    )
    return pems(ca, key, leaf)


REFUSED_CLIENTS = {
    "a_certificate_from_a_foreign_ca": lambda ca: credentials(create_authority(now()), PRODUCTPAGE, now()),
    "an_expired_certificate": lambda ca: forged(ca, start=-2 * HOUR, end=-HOUR),
    "a_certificate_not_yet_valid": lambda ca: forged(ca, start=HOUR, end=2 * HOUR),
    "a_leaf_flagged_as_a_ca": lambda ca: forged(ca, is_ca=True),
    "a_leaf_with_two_uri_sans": lambda ca: forged(ca, uris=(PRODUCTPAGE.uri, REVIEWS.uri)),
    "a_leaf_of_another_trust_domain": lambda ca: forged(ca, uris=("spiffe://evil.example/ns/default/sa/x",)),
    "a_leaf_with_another_scheme": lambda ca: forged(ca, uris=("https://cluster.local/ns/default/sa/x",)),
    "a_leaf_without_an_authority_key_identifier": lambda ca: forged(ca, authority_key_id=False),
}


def test_the_forgery_helper_without_a_defect_makes_a_certificate_that_is_accepted(
    ca: CertificateAuthority, reviews_server: ssl.SSLContext
) -> None:
    assert connect(reviews_server, _client_with(forged(ca), ca)).accepted


@pytest.mark.parametrize("case", list(REFUSED_CLIENTS))
def test_the_server_refuses_a_client_presenting(case: str, ca: CertificateAuthority, reviews_server: ssl.SSLContext) -> None:
    client = _client_with(REFUSED_CLIENTS[case](ca), ca)
    outcome = connect(reviews_server, client)
    assert not outcome.accepted
    assert isinstance(outcome.server, Exception), outcome
    assert outcome.received == b""


@pytest.mark.parametrize("case", list(REFUSED_CLIENTS))
def test_a_client_refuses_a_server_presenting(case: str, ca: CertificateAuthority, mesh_client: ssl.SSLContext) -> None:
    chain, key, _ = REFUSED_CLIENTS[case](ca)
    server = server_context(chain, key, ca.trust_bundle_pem())
    outcome = connect(server, mesh_client)
    assert not outcome.accepted
    assert isinstance(outcome.client, Exception), outcome


def test_plaintext_http_to_a_tls_port_gets_no_http_bytes_back(reviews_server: ssl.SSLContext) -> None:
    server_end, client_end = socket.socketpair()
    server_end.settimeout(TIMEOUT_S)
    client_end.settimeout(TIMEOUT_S)
    errors: list[Exception] = []

    def serve() -> None:
        try:
            reviews_server.wrap_socket(server_end, server_side=True).close()
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)
        finally:
            server_end.close()

    thread = threading.Thread(target=serve)
    thread.start()
    client_end.sendall(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
    answer = b""
    try:
        while chunk := client_end.recv(4096):
            answer += chunk
    except ConnectionResetError:
        pass  # the server dropped the connection: no bytes at all is the point
    client_end.close()
    thread.join(TIMEOUT_S)
    assert errors and not answer.startswith(b"HTTP")


def test_after_a_root_rotation_leaves_of_both_roots_are_accepted_until_the_old_root_is_dropped(
    ca: CertificateAuthority,
) -> None:
    rotated = rotate(ca, now())
    old_client = client_context(*pems(rotated, *issue_for(ca, PRODUCTPAGE, now())))
    new_client = client_context(*credentials(rotated, PRODUCTPAGE, now()))
    server = server_context(*credentials(rotated, REVIEWS, now()))
    assert connect(server, old_client).accepted
    assert connect(server, new_client).accepted

    dropped = drop_previous_roots(rotated)
    chain, key, _ = credentials(rotated, REVIEWS, now())
    server_after = server_context(chain, key, dropped.trust_bundle_pem())
    assert connect(server_after, new_client).accepted
    refused = connect(server_after, old_client)
    assert not refused.accepted and isinstance(refused.server, ssl.SSLError)


def test_new_connections_present_the_new_serial_after_a_certificate_is_renewed(
    ca: CertificateAuthority, mesh_client: ssl.SSLContext
) -> None:
    serials = []
    for _ in range(2):
        key, leaf = issue_for(ca, REVIEWS, now())
        outcome = connect(server_context(*pems(ca, key, leaf)), mesh_client)
        assert outcome.accepted and outcome.server_certificate is not None
        serials.append(x509.load_der_x509_certificate(outcome.server_certificate).serial_number)
        assert serials[-1] == leaf.serial_number
    assert serials[0] != serials[1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_verifies_a_mesh_leaf_with_x509_strict_for_server_and_client_use(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    _, leaf = issue_for(ca, REVIEWS, now())
    (tmp_path / "bundle.pem").write_bytes(ca.trust_bundle_pem())
    (tmp_path / "leaf.pem").write_bytes(certificates_pem([leaf]))
    for purpose in ("sslserver", "sslclient"):
        result = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", "bundle.pem", "leaf.pem"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
