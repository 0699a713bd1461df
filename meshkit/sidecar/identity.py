"""The sidecar's workload identity: its key, its certificate, the TLS contexts made from them.

At start the sidecar gets a new ECDSA P-256 key and a CSR for its one
identity (spiffe://<trust domain>/ns/<namespace>/sa/<service account>, from
the bootstrap) and sends the CSR with its node token to `POST /v1/certificates`
(docs/security.md). The key and the CSR are made by a short-lived child,
`python -m meshkit.security.keygen`, and handed over a pipe: only
`cryptography` makes them, and it would cost every sidecar about 10 MB of
resident memory for its whole life. The key then stays in this process's
memory; only the ssl module's loader sees it, for the instant
`meshkit.security.tls` needs a file.

Renewal follows Istio's agent (meshkit.security.renewal): at half the
lifetime counted from receipt, ±1% jitter, with a fresh key each time. A
failed request is retried with exponential backoff and full jitter
(meshkit.core.backoff), so a crowd of sidecars that lost the control plane
together do not return together.

A new certificate is swapped in by replacing one attribute, `credentials`:
the inbound listener reads it for every TLS connection it accepts and the
outbound pools for every connection they open, so new connections present
the new certificate while connections already open (and pooled) go on
with the one they were made with, until they close. The trust bundle the
snapshot carries replaces the one that came with the certificate (that is
how a root rotation reaches every sidecar); the contexts are then rebuilt
around the same key and certificate.

Until the first certificate arrives `credentials` is None: the sidecar is
not ready, refuses TLS connections, and never dials plaintext where mTLS is
required (fail closed, HARDENING: control plane).

Certificates are read with the standard library (meshkit.security.cert_fields)
and loaded by Python's ssl, so no sidecar imports `cryptography`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import ssl
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from meshkit.core.backoff import full_jitter
from meshkit.errors import ConfigError, ControlPlaneError
from meshkit.security.cert_fields import CertificateFields, pem_certificates, read_certificate
from meshkit.security.errors import PeerRefused, SecurityError
from meshkit.security.identity import Identity
from meshkit.security.peer_cert import peer_identity
from meshkit.security.renewal import predates_signing_root, renewal_time
from meshkit.security.tls import client_context, server_context
from meshkit.sidecar.bootstrap import ControlPlane, StaticIdentity
from meshkit.sidecar.control_call import call, error_text

log = logging.getLogger("meshkit.sidecar")

CERTIFICATE_TIMEOUT_S = 10.0
# Wake at least this often while waiting to renew, so a wall-clock jump
# (a suspended laptop) does not leave an expired certificate in place.
MAX_SLEEP_S = 30.0
# Backoff after a failed certificate request: from 0.1 s doubling to this cap.
RETRY_CAP_S = 10.0
# Making a key and a CSR takes the child about 0.2 s; this much means it is stuck.
KEYGEN_TIMEOUT_S = 30.0
KEYGEN = "meshkit.security.keygen"


@dataclass(frozen=True, slots=True)
class Credentials:
    """One certificate with its key, and the TLS contexts built from them."""

    identity: Identity
    chain_pem: bytes
    key_pem: bytes
    bundle_pem: bytes
    serial: str
    not_before: datetime
    not_after: datetime
    received_at: datetime
    renew_at: datetime | None  # None: a static certificate, never renewed
    server: ssl.SSLContext
    client: ssl.SSLContext


class TlsStats:
    """Counters of what the TLS layer did; steady traffic must not grow the handshake counts."""

    __slots__ = (
        "inbound_handshakes",
        "inbound_handshake_failures",
        "inbound_identity_refused",
        "inbound_plaintext",
        "inbound_plaintext_refused",
        "inbound_tls_refused",
        "outbound_handshakes",
        "outbound_handshake_failures",
        "outbound_identity_refused",
        "outbound_no_certificate",
    )
    inbound_handshakes: int
    inbound_handshake_failures: int
    inbound_identity_refused: int
    inbound_plaintext: int
    inbound_plaintext_refused: int
    inbound_tls_refused: int
    outbound_handshakes: int
    outbound_handshake_failures: int
    outbound_identity_refused: int
    outbound_no_certificate: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class WorkloadIdentity:
    """Who this sidecar is, and the certificate that proves it (once it has one)."""

    def __init__(self, identity: Identity, required: bool) -> None:
        self.identity = identity
        self.uri = identity.uri
        self.principal = identity.principal
        self.trust_domain = identity.trust_domain
        # required: a certificate source exists (control plane or static);
        # without one the sidecar serves plaintext only and is ready without it.
        self.required = required
        self.credentials: Credentials | None = None
        self.snapshot_bundle: bytes | None = None
        self.certificates = 0  # certificates installed so far; rotations = certificates - 1
        self.stats = TlsStats()
        self.last_error: str | None = None
        self.next_attempt: datetime | None = None
        # Set when the snapshot's bundle shows a root rotation this certificate predates.
        self.reissue = asyncio.Event()

    # --- what the listeners and pools read ---

    @property
    def server_context(self) -> ssl.SSLContext | None:
        credentials = self.credentials
        return None if credentials is None else credentials.server

    @property
    def client_context(self) -> ssl.SSLContext | None:
        credentials = self.credentials
        return None if credentials is None else credentials.client

    # --- installing certificates and bundles ---

    def install(self, chain_pem: bytes, key_pem: bytes, bundle_pem: bytes, received_at: datetime, renew_at: datetime | None) -> Credentials:
        """Check a certificate is ours and make it current; raises SecurityError or ValueError when it is not usable."""
        leaf_der = pem_certificates(chain_pem)[0]
        got = peer_identity(leaf_der, self.trust_domain)
        if got != self.identity:
            raise PeerRefused(f"the CA issued a certificate for {got.uri}, but this sidecar is {self.uri}")
        leaf = read_certificate(leaf_der)
        bundle = self.snapshot_bundle or bundle_pem
        server, client = contexts(chain_pem, key_pem, bundle)
        credentials = Credentials(
            identity=self.identity,
            chain_pem=chain_pem,
            key_pem=key_pem,
            bundle_pem=bundle,
            serial=format(leaf.serial, "x"),
            not_before=leaf.not_before,
            not_after=leaf.not_after,
            received_at=received_at,
            renew_at=renew_at,
            server=server,
            client=client,
        )
        self.credentials = credentials
        self.certificates += 1
        self.last_error = None
        return credentials

    def install_static(self, static: StaticIdentity) -> None:
        """A certificate given in the bootstrap (benchmarks, tests): used as is, never renewed."""
        self.install(
            static.certificate_chain.encode("ascii"),
            static.private_key.encode("ascii"),
            static.trust_bundle.encode("ascii"),
            datetime.now(timezone.utc),
            None,
        )

    @staticmethod
    def check_bundle(bundle_pem: str | None) -> None:
        """Raise ConfigError when a snapshot's trust bundle holds no readable certificate."""
        if bundle_pem is None:
            return
        try:
            roots = [read_certificate(der) for der in pem_certificates(bundle_pem.encode("ascii"))]
        except ValueError as exc:
            raise ConfigError("snapshot", "trust_bundle", "trust_bundle", f"not a PEM certificate list: {exc}") from None
        if not roots:
            raise ConfigError("snapshot", "trust_bundle", "trust_bundle", "holds no certificate")

    def use_bundle(self, bundle_pem: str | None) -> None:
        """Verify peers against the snapshot's roots from now on (checked by `check_bundle` first)."""
        if bundle_pem is None:
            return
        bundle = bundle_pem.encode("ascii")
        if bundle == self.snapshot_bundle:
            return
        self.snapshot_bundle = bundle
        credentials = self.credentials
        if credentials is not None and credentials.bundle_pem != bundle:
            server, client = contexts(credentials.chain_pem, credentials.key_pem, bundle)
            self.credentials = Credentials(
                identity=credentials.identity,
                chain_pem=credentials.chain_pem,
                key_pem=credentials.key_pem,
                bundle_pem=bundle,
                serial=credentials.serial,
                not_before=credentials.not_before,
                not_after=credentials.not_after,
                received_at=credentials.received_at,
                renew_at=credentials.renew_at,
                server=server,
                client=client,
            )
            log.info("trust bundle from the snapshot installed (%d roots)", bundle.count(b"BEGIN CERTIFICATE"))
        if credentials is not None and predates_signing_root(leaf_of(credentials.chain_pem).authority_key_id, root_ids(bundle)):
            log.info("the mesh signs under a new root: requesting a certificate from it now (serial %s predates it)", credentials.serial)
            self.reissue.set()

    # --- what /certs shows ---

    def describe(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        credentials = self.credentials
        certificate = None
        if credentials is not None:
            certificate = {
                "serial": credentials.serial,
                "not_before": credentials.not_before.timestamp(),
                "not_after": credentials.not_after.timestamp(),
                "received_at": credentials.received_at.timestamp(),
                "renew_at": None if credentials.renew_at is None else credentials.renew_at.timestamp(),
                "seconds_to_renewal": None if credentials.renew_at is None else round((credentials.renew_at - now).total_seconds(), 3),
                "seconds_to_expiry": round((credentials.not_after - now).total_seconds(), 3),
                "expired": credentials.not_after <= now,
                "trusted_roots": credentials.bundle_pem.count(b"BEGIN CERTIFICATE"),
                "root": leaf_of(credentials.chain_pem).authority_key_id,
                "trusted_root_ids": root_ids(credentials.bundle_pem),
                "chain_pem": credentials.chain_pem.decode("ascii"),
            }
        return {
            "identity": self.uri,
            "required": self.required,
            "certificate": certificate,
            "certificates_received": self.certificates,
            "rotations": max(0, self.certificates - 1),
            "last_error": self.last_error,
            "next_attempt": None if self.next_attempt is None else self.next_attempt.timestamp(),
            "tls": self.stats.as_dict(),
        }


class CertificateClient:
    """Gets the first certificate from the control plane's CA, then renews it, for as long as the task runs."""

    def __init__(self, cp: ControlPlane, node: str, holder: WorkloadIdentity, rng: random.Random) -> None:
        self.cp = cp
        self.node = node
        self.holder = holder
        self.rng = rng
        self.failures = 0
        self.first = asyncio.Event()

    async def run(self) -> None:
        while True:
            credentials = self.holder.credentials
            if credentials is not None and credentials.renew_at is not None:
                wait = (credentials.renew_at - datetime.now(timezone.utc)).total_seconds()
                if wait > 0 and not self.holder.reissue.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.holder.reissue.wait(), min(wait, MAX_SLEEP_S))
                    continue
            try:
                await self.renew()
            except (ControlPlaneError, SecurityError, ValueError, ssl.SSLError) as exc:
                reason = str(exc)
                if reason != self.holder.last_error:
                    kept = self.holder.credentials
                    keeping = f"; keeping serial {kept.serial} until {kept.not_after:%H:%M:%S}" if kept else "; not ready until one arrives"
                    log.warning("could not get a workload certificate (%s)%s; retrying with backoff", reason, keeping)
                self.holder.last_error = reason
                delay = full_jitter(self.failures, self.rng.uniform, cap=RETRY_CAP_S)
                self.failures += 1
                self.holder.next_attempt = datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + delay, timezone.utc)
                await asyncio.sleep(delay)

    async def renew(self) -> Credentials:
        """One certificate request with a fresh key; the result is made current."""
        self.holder.reissue.clear()  # a rotation announced from here on sets it again
        key_pem, csr = await new_key_and_csr(self.holder.identity)
        body = json.dumps({"node": self.node, "csr": csr}).encode("utf-8")
        status, answer = await call(self.cp, "POST", "/v1/certificates", body, CERTIFICATE_TIMEOUT_S)
        if status != 200:
            raise ControlPlaneError(f"the control plane refused the certificate request ({error_text(status, answer)})")
        try:
            doc = json.loads(answer)
            chain = doc["certificate_chain"].encode("ascii")
            bundle = doc["trust_bundle"].encode("ascii")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ControlPlaneError(f"the certificate answer is not the documented shape: {exc!r}") from None
        received = datetime.now(timezone.utc)
        renew_at = renewal_time(received, leaf_of(chain).not_after, self.rng)
        previous = self.holder.credentials
        credentials = self.holder.install(chain, key_pem, bundle, received, renew_at)
        self.failures = 0
        self.holder.next_attempt = None
        self.first.set()
        lifetime = (credentials.not_after - received).total_seconds()
        log.info(
            "workload certificate %s for %s: serial %s, valid %.0f s, renewal at %s%s",
            "renewed" if previous is not None else "received",
            self.holder.uri,
            credentials.serial,
            lifetime,
            renew_at.strftime("%H:%M:%S"),
            f" (was serial {previous.serial})" if previous is not None else "",
        )
        return credentials


async def new_key_and_csr(identity: Identity) -> tuple[bytes, str]:
    """(key PEM, CSR PEM) from a `python -m meshkit.security.keygen` child; SecurityError when it makes none."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", KEYGEN, identity.uri,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(child.communicate(), KEYGEN_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise SecurityError(f"{KEYGEN} made no key in {KEYGEN_TIMEOUT_S:g} s") from None
    finally:
        if child.returncode is None:  # timed out, or the sidecar is stopping
            child.kill()
    if child.returncode != 0:
        raise SecurityError(f"{KEYGEN} failed (exit {child.returncode}): {err.decode('utf-8', 'replace').strip()[-300:]}")
    try:
        made = json.loads(out)
        key_pem, csr = made["private_key"], made["csr"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SecurityError(f"{KEYGEN} wrote something other than a key and a CSR: {exc!r}") from None
    if not isinstance(key_pem, str) or not isinstance(csr, str):
        raise SecurityError(f"{KEYGEN} wrote something other than a key and a CSR")
    return key_pem.encode("ascii"), csr


def contexts(chain_pem: bytes, key_pem: bytes, bundle_pem: bytes) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts; PeerRefused when the key is not the certificate's (OpenSSL compares them on loading)."""
    try:
        return server_context(chain_pem, key_pem, bundle_pem), client_context(chain_pem, key_pem, bundle_pem)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise PeerRefused("the certificate does not hold this sidecar's public key") from None
        raise


def leaf_of(chain_pem: bytes) -> CertificateFields:
    """The first certificate of a PEM chain: the workload's own."""
    return read_certificate(pem_certificates(chain_pem)[0])


def root_ids(bundle_pem: bytes) -> list[str | None]:
    """The key identifiers of a trust bundle's roots, the signing root first."""
    return [read_certificate(der).subject_key_id for der in pem_certificates(bundle_pem)]


def certificate_hash(der: bytes) -> str:
    """Envoy's XFCC Hash: the SHA-256 of the peer's DER certificate, in hex."""
    return hashlib.sha256(der).hexdigest()
