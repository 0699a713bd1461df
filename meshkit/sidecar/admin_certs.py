"""The admin page /certs: this sidecar's identity, its certificate, and what its TLS layer did.

    GET /certs   {"identity", "required", "certificate": {serial, not_before, not_after,
                  received_at, renew_at, seconds_to_renewal, seconds_to_expiry, expired,
                  trusted_roots, chain_pem} | null, "certificates_received", "rotations",
                  "last_error", "next_attempt", "tls": {handshake and refusal counters},
                  "inbound_mode": {"mode", "policy"} | null, "authorization_policies": N}

Times are unix seconds. `lab.certificates()` reads it from every sidecar,
like `istioctl proxy-config secret`; the `tls` counters let a test check
that steady traffic opens no new handshakes.
"""

from __future__ import annotations

import json
from typing import Any

from meshkit.sidecar.state import MeshState


def certs_body(state: MeshState) -> bytes:
    """The /certs document as JSON bytes."""
    identity = state.identity
    doc: dict[str, Any] = identity.describe() if identity is not None else {"identity": None, "certificate": None}
    security = state.security
    doc["inbound_mode"] = None if security is None else {"mode": security.mode.mode, "policy": security.mode.policy}
    doc["authorization_policies"] = 0 if security is None else len(security.policies)
    doc["ready"] = state.ready
    return json.dumps(doc, indent=2).encode("utf-8") + b"\n"
