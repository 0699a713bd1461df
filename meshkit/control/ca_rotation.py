"""Rotating the mesh's root without a failed request: what the control plane decides.

A rotation has two steps, each one snapshot pushed to every sidecar
(Lab.rotate_root drives them; `POST /v1/ca/rotate`, `POST /v1/ca/retire`):

1. **rotate**: a new root signs from now on; the old one stays in the trust
   bundle (signing root first). Every sidecar verifies peers against both,
   sees that its certificate predates the signing root
   (meshkit.security.renewal.needs_reissue) and asks for a new one at once.
2. **retire**: once every sidecar's latest certificate comes from the new
   root, the old root leaves the bundle. Retiring earlier would cut off a
   sidecar still presenting an old-root certificate, so it is refused (409)
   with the names of the sidecars still pending.

The control plane knows which root signed each node's latest certificate
because it issued it (`issued`, node -> root key id). That knowledge lives in
memory: after a control-plane restart a node counts as pending until it
renews, which keeps the safe state (both roots trusted) rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509

from meshkit.control.store import State
from meshkit.security.ca import CertificateAuthority
from meshkit.security.renewal import key_id


def root_summary(root: x509.Certificate) -> dict[str, Any]:
    return {
        "key_id": key_id(root),
        "subject": root.subject.rfc4514_string(),
        "serial": format(root.serial_number, "x"),
        "not_before": root.not_valid_before_utc.timestamp(),
        "not_after": root.not_valid_after_utc.timestamp(),
    }


def sidecar_nodes(state: State) -> list[str]:
    """Registered nodes that run a sidecar, and so hold a workload certificate."""
    return sorted(node for node, record in state.instances.items() if record.get("sidecar"))


def pending_nodes(state: State, issued: Mapping[str, str | None], ca: CertificateAuthority) -> list[str]:
    """Sidecar nodes whose latest certificate (as far as this control plane knows) is not from the signing root."""
    signing = key_id(ca.root)
    return [node for node in sidecar_nodes(state) if issued.get(node) != signing]


def ca_status(state: State, issued: Mapping[str, str | None], ca: CertificateAuthority) -> dict[str, Any]:
    """GET /v1/ca: the signing root, the roots kept from rotations, and which nodes still wait for a new certificate."""
    return {
        "trust_domain": ca.trust_domain,
        "signing_root": root_summary(ca.root),
        "previous_roots": [root_summary(root) for root in ca.previous_roots],
        "nodes": {node: issued.get(node) for node in sidecar_nodes(state)},
        "pending": pending_nodes(state, issued, ca),
    }


def retire_refusal(state: State, issued: Mapping[str, str | None], ca: CertificateAuthority) -> str | None:
    """Why the previous roots cannot be dropped yet, or None when they can."""
    pending = pending_nodes(state, issued, ca)
    if not pending:
        return None
    shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
    return (
        f"cannot retire the previous root yet: {len(pending)} sidecar(s) still hold a certificate this control plane "
        f"has not issued under the signing root ({shown}); they renew on their own once the rotation reaches them"
    )
