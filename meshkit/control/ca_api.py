"""`POST /v1/certificates`: a sidecar proves who it is with its node token and gets a certificate.

The backend hands each sidecar the node token the control plane issued when
its instance was registered (docs/internals.md). That token is the proof of
identity, as a Kubernetes service-account token is for istiod
(https://istio.io/latest/docs/concepts/security/#pki): the CA derives the one
identity the node may have from its registry record,

    spiffe://<trust domain>/ns/<record namespace>/sa/<record service_account>

and signs the CSR only if it asks for exactly that identity. The admin token
does not stand in for a node token here: an identity is proven by the node
that holds it, never granted on someone's behalf.

Request body: {"node": "<namespace>/<instance>", "csr": "<PEM>"}
Answer:       {"certificate_chain": PEM, "trust_bundle": PEM, "not_after": unix_s,
               "serial": hex, "identity": spiffe_id}

401 the token is not this node's; 403 the node has no sidecar; 400 a body
that is not that shape; 422 (ConfigError, kind CertificateSigningRequest,
path "csr") a CSR the CA refuses, with the CA's reason.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meshkit.control.asgi import HttpError
from meshkit.control.store import State
from meshkit.errors import ConfigError
from meshkit.security.ca import CertificateAuthority, certificates_pem, issue
from meshkit.security.csr import load_csr
from meshkit.security.errors import InvalidIdentity, RequestRefused
from meshkit.security.identity import Identity

CSR_KIND = "CertificateSigningRequest"
BODY_FIELDS = ("node", "csr")


def parse_certificate_request(body: Any) -> tuple[str, str]:
    """(node, csr PEM) from the request body, or a 400 naming what is wrong with it."""
    if not isinstance(body, dict):
        raise HttpError(400, 'certificate request body must be a JSON object {"node": ID, "csr": PEM}')
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        raise HttpError(400, f"unknown field {unknown[0]!r} in certificate request; expected only node and csr")
    node, csr = body.get("node"), body.get("csr")
    if not isinstance(node, str) or not node:
        raise HttpError(400, "certificate request field 'node' must be a node id string (namespace/instance)")
    if not isinstance(csr, str) or not csr:
        raise HttpError(400, "certificate request field 'csr' must be a PEM certificate signing request")
    return node, csr


def sign_certificate(
    state: State, node: str, token: str | None, csr_pem: str, ca: CertificateAuthority, now: datetime
) -> dict[str, Any]:
    """The answer to a node's certificate request, or HttpError/ConfigError saying why it is refused."""
    expected = state.node_tokens.get(node)
    record = state.instances.get(node)
    if token is None or expected is None or record is None or not _same(token, expected):
        raise HttpError(401, f"the token is not the node token of {node!r}")
    if not record.get("sidecar"):
        raise HttpError(403, f"node {node!r} is registered without a sidecar, so it has no mesh identity")
    identity = node_identity(record, ca.trust_domain)
    try:
        certificate = issue(ca, load_csr(csr_pem), identity, now)
    except RequestRefused as exc:
        raise ConfigError(CSR_KIND, node, "csr", str(exc)) from exc
    return {
        "certificate_chain": certificates_pem([certificate]).decode("ascii"),
        "trust_bundle": ca.trust_bundle_pem().decode("ascii"),
        "not_after": int(certificate.not_valid_after_utc.timestamp()),
        "serial": format(certificate.serial_number, "x"),
        "identity": identity.uri,
    }


def node_identity(record: Mapping[str, Any], trust_domain: str) -> Identity:
    """The only identity a registered instance may hold: its namespace and service account."""
    try:
        return Identity(trust_domain, record["namespace"], record["service_account"])
    except InvalidIdentity as exc:
        raise HttpError(403, f"the node's registry record names no valid identity: {exc}") from exc


def _same(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing does not leak a token prefix."""
    return hmac.compare_digest(a.encode(), b.encode())
