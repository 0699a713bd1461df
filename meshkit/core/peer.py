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

Until mutual TLS lands the inbound side cannot verify the claim; the outbound
sidecar strips any copy an app tries to send, which is what keeps it honest
among meshed workloads.
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
