"""Who called: the metadata exchange between sidecars.

Istio's sidecars tell each other who they are in `x-envoy-peer-metadata`
(base64 protobuf). meshkit does the same with one readable header that the
outbound sidecar adds and the inbound sidecar reads (to label its telemetry
with the source) and removes before the app sees the request:

    x-meshkit-peer: w=reviews-v2;n=default;v=v2;sa=bookinfo-reviews

Keys: w workload, n namespace, v version, sa service account. Values are
percent-encoded UTF-8 (RFC 3986, everything but unreserved characters
escaped), pairs are separated by `;`. Unknown keys are ignored so the
encoding can grow. A value that decodes to control characters makes the
whole header invalid: an identity with CR, LF or NUL is never copied into a
label or a header (HARDENING: headers the mesh owns).

The header is a claim, not a proof: anyone who can open a socket can send
it. The outbound sidecar replaces any copy its app sends, and the inbound
side believes it only beside an mTLS certificate that proves the same
namespace and service account (`verified_caller`); a plaintext caller is
`unknown`, as Istio shows a caller whose identity it could not verify.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import quote, unquote_to_bytes

MAX_PEER_HEADER_BYTES = 1024
UNKNOWN = "unknown"

_FIELDS = (("w", "workload"), ("n", "namespace"), ("v", "version"), ("sa", "service_account"))
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,253}")
_ENCODED = re.compile(rb"[A-Za-z0-9\-._~%]*")


class Peer(NamedTuple):
    """The caller's workload as its sidecar described it."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    version: str = UNKNOWN
    service_account: str = UNKNOWN


def encode_peer(peer: Peer) -> bytes:
    """The header value describing `peer`."""
    parts = []
    for key, attr in _FIELDS:
        parts.append(f"{key}={quote(getattr(peer, attr), safe='')}")
    return ";".join(parts).encode("ascii")


def decode_peer(value: bytes | None) -> Peer | None:
    """The peer a header value describes, or None when absent or invalid."""
    if value is None or len(value) > MAX_PEER_HEADER_BYTES:
        return None
    found: dict[str, str] = {}
    for pair in value.strip(b" \t").split(b";"):
        key, sep, raw = pair.partition(b"=")
        if not sep or not _ENCODED.fullmatch(raw):
            return None
        try:
            text = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not _PRINTABLE.fullmatch(text):
            return None
        found[key.decode("ascii", "replace")] = text
    return Peer(**{attr: found.get(key, UNKNOWN) for key, attr in _FIELDS})


def verified_caller(claimed: Peer | None, namespace: str | None, service_account: str | None) -> Peer:
    """Who called, as far as the inbound side can tell: never more than the certificate proves.

    `namespace` and `service_account` come from the verified mTLS peer
    certificate, None for a plaintext caller, whose claim is then worth
    nothing (it would let any local process pose as any workload in logs,
    metrics and the security report). The claimed workload and version are
    kept only when the claim names the identity the certificate proves:
    those are what the caller's own sidecar wrote, and a certificate holder
    could only mislabel itself within its own service account.
    """
    if namespace is None or service_account is None:
        return Peer()
    if claimed is not None and (claimed.namespace, claimed.service_account) == (namespace, service_account):
        return claimed
    return Peer(namespace=namespace, service_account=service_account)
