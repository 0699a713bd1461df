"""Test helpers for mTLS through real sidecars: a mesh CA, static identities, TLS clients.

Sidecars here run with a static snapshot and a `static_identity` (a
certificate the test's CA issued), so a test controls the mode, the policies
and every certificate without a control plane. Clients are Python's ssl (the
strict contexts of meshkit.security.tls), `openssl s_client` and `curl`.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from meshkit.config import canonical, load
from meshkit.security.ca import CertificateAuthority, create_authority
from meshkit.security.identity import Identity
from meshkit.security.tls import client_context
from tests.integration.sidecar_fixtures import HOST, Response, bootstrap, parse_responses, snapshot
from tests.unit.test_security_samples import credentials

TRUST_DOMAIN = "cluster.local"
ECHO_NODE = "default/echo-v1-0"
ECHO_SA = "echo"
CLIENT_SA = "sa-client"


class MeshCA:
    """A CA made an hour ago (so certificates can be issued in the past), and files of what it issues."""

    def __init__(self, workdir: Path, name: str = "mesh", trust_domain: str = TRUST_DOMAIN, ca: CertificateAuthority | None = None) -> None:
        self.now = datetime.now(timezone.utc)
        self.ca: CertificateAuthority = ca or create_authority(self.now - timedelta(hours=1), trust_domain)
        self.workdir = workdir
        self.name = name
        self.trust_domain = trust_domain

    @property
    def bundle_pem(self) -> bytes:
        return self.ca.trust_bundle_pem()

    def identity(self, namespace: str, sa: str) -> Identity:
        return Identity(self.trust_domain, namespace, sa)

    def issue(self, namespace: str, sa: str, at: datetime | None = None, lifetime: timedelta | None = None) -> tuple[bytes, bytes, bytes]:
        """(chain PEM, key PEM, bundle PEM) for `namespace`/`sa`, issued `at` (default now)."""
        ca = self.ca if lifetime is None else dataclasses.replace(self.ca, leaf_lifetime=lifetime)
        return credentials(ca, self.identity(namespace, sa), at or datetime.now(timezone.utc))

    def static_identity(self, namespace: str, sa: str) -> dict[str, str]:
        chain, key, bundle = self.issue(namespace, sa)
        return {"certificate_chain": chain.decode(), "private_key": key.decode(), "trust_bundle": bundle.decode()}

    def files(self, label: str, namespace: str, sa: str, at: datetime | None = None, lifetime: timedelta | None = None) -> tuple[Path, Path]:
        """A certificate and key written to files (mode 0600), for openssl and curl."""
        chain, key, _ = self.issue(namespace, sa, at, lifetime)
        cert_path, key_path = self.workdir / f"{self.name}-{label}.crt", self.workdir / f"{self.name}-{label}.key"
        cert_path.write_bytes(chain)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        return cert_path, key_path

    def bundle_file(self) -> Path:
        path = self.workdir / f"{self.name}-bundle.pem"
        path.write_bytes(self.bundle_pem)
        return path

    def context(self, namespace: str, sa: str, at: datetime | None = None, lifetime: timedelta | None = None) -> ssl.SSLContext:
        """A strict mTLS client context holding a certificate for `namespace`/`sa`."""
        chain, key, bundle = self.issue(namespace, sa, at, lifetime)
        return client_context(chain, key, bundle)


def security_keys(*docs: str) -> dict[str, list[dict[str, Any]]]:
    """Snapshot keys for PeerAuthentications, AuthorizationPolicies and DestinationRules
    (YAML text), in the canonical form the control plane sends."""
    keys = {"PeerAuthentication": "peer_authentications", "AuthorizationPolicy": "authorization_policies", "DestinationRule": "destination_rules"}
    found: dict[str, list[dict[str, Any]]] = {key: [] for key in keys.values()}
    for doc in docs:
        for resource in load(doc):
            form = canonical(resource)
            found[keys[form["kind"]]].append(form)
    return found


def mode_policy(mode: str, namespace: str = "default") -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: {namespace}}}
spec: {{mtls: {{mode: {mode}}}}}
"""


def echo_sidecar_boot(mesh: MeshCA | None, app_port: int, *policies: str, services: list[Any] | None = None) -> dict[str, Any]:
    """The sidecar in front of the echo app (service `echo`, SA `echo`), with `policies` in its static snapshot."""
    static = snapshot(ECHO_NODE, services or [], **security_keys(*policies))
    boot = bootstrap(node=ECHO_NODE, name="echo-v1", app_port=app_port, static=static)
    boot["workload"].update(service="echo", service_account=ECHO_SA, labels={"app": "echo", "version": "v1"})
    if mesh is not None:
        boot["static_identity"] = mesh.static_identity("default", ECHO_SA)
    return boot


def tls_exchange(port: int, context: ssl.SSLContext, data: bytes, timeout: float = 5.0) -> tuple[list[Response], bytes, bytes | None, Exception | None]:
    """Send `data` over mTLS and read until the server closes: (responses, raw bytes, server certificate DER, error)."""
    raw = b""
    peer: bytes | None = None
    sock = socket.create_connection((HOST, port), timeout=timeout)
    tls: ssl.SSLSocket | None = None
    try:
        tls = context.wrap_socket(sock, server_hostname=None)
        peer = tls.getpeercert(binary_form=True)
        tls.sendall(data)
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            raw += chunk
    except (OSError, ssl.SSLError) as exc:
        return parse_responses(raw) if raw else [], raw, peer, exc
    finally:
        (tls or sock).close()
    return parse_responses(raw), raw, peer, None


def get(path: str, host: str = "echo", headers: dict[str, str] | None = None, method: str = "GET") -> bytes:
    """One HTTP/1.1 request that closes the connection after its response."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def plain_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send plaintext and read until the server closes (or resets): every byte that came back."""
    raw = b""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
        except OSError:
            pass
    return raw
