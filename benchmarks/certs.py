"""Certificates for the benchmark's TLS pairs: one throwaway CA, a leaf per proxy.

The meshkit pair gets them as `static_identity` in its bootstrap (a sidecar
with a static snapshot has no control plane to ask); the HAProxy pair as PEM
files (certificate and key in one file, as HAProxy's `crt` takes it) with the
CA as `ca-file`. Both pairs therefore run mutual TLS 1.3 with the same ECDSA
P-256 keys and the same chain, so their costs compare.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from meshkit.security.ca import CertificateAuthority, certificates_pem, create_authority, issue
from meshkit.security.csr import build_csr, load_csr, new_private_key, private_key_pem
from meshkit.security.identity import Identity


class BenchCA:
    """A CA made for one run."""

    def __init__(self) -> None:
        self.ca: CertificateAuthority = create_authority(datetime.now(timezone.utc))

    @property
    def bundle_pem(self) -> bytes:
        return self.ca.trust_bundle_pem()

    def leaf(self, service_account: str, namespace: str = "default") -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for spiffe://cluster.local/ns/<namespace>/sa/<service_account>."""
        identity = Identity(self.ca.trust_domain, namespace, service_account)
        key = new_private_key()
        certificate = issue(self.ca, load_csr(build_csr(identity, key)), identity, datetime.now(timezone.utc))
        return certificates_pem([certificate]), private_key_pem(key)

    def static_identity(self, service_account: str) -> dict[str, str]:
        chain, key = self.leaf(service_account)
        return {"certificate_chain": chain.decode(), "private_key": key.decode(), "trust_bundle": self.bundle_pem.decode()}

    def haproxy_files(self, workdir: Path, role: str) -> tuple[Path, Path]:
        """(crt file with certificate and key, ca-file) for one HAProxy."""
        chain, key = self.leaf(role)
        crt = workdir / f"{role}.pem"
        crt.write_bytes(chain + key)
        crt.chmod(0o600)
        ca_file = workdir / "bench-ca.pem"
        ca_file.write_bytes(self.bundle_pem)
        return crt, ca_file
