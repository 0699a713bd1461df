"""Is this HTTP/1.1 request head safe to forward, and what does it say?

A proxy that disagrees with the server behind it about where a request ends
lets one request hide inside another (request smuggling). So the sidecar
forwards only heads that have one unambiguous reading, and rebuilds the
framing headers itself instead of copying them.

llhttp (through httptools, with its default leniencies: it accepts runs of
spaces in the request line and empty lines before it, which is safe because
the sidecar rebuilds the request line) already rejects, before any callback
reaches us: CL together with TE, duplicate Content-Length, a
Content-Length that is not plain digits, a TE list whose last coding is not
chunked, bad chunk sizes and chunk extensions, CR/LF/NUL and other control
bytes in names and values, empty names, a missing colon, a space before the
colon, obs-fold, bad methods and versions like HTTP/0.8 or HTTP/1.32.

It lets through, and this module rejects: a TE list that merely ends in
chunked (`identity, chunked`), TE on HTTP/1.0, HTTP/0.9 and HTTP/2.0 request
lines, a missing or repeated Host, header names with underscores, and the
size limits. The checks llhttp makes are repeated here where they cost one
regular expression per request, so the module is a complete statement of the
rules on its own and can be tested as a table.

Everything here is pure: bytes and strings in, a `RequestHead` or a
`Rejection` out.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Envoy's defaults (max_request_headers_kb = 60, max_headers_count = 100):
# a learner comparing with Istio sees the same limits.
MAX_HEAD_BYTES = 60 * 1024
MAX_HEADERS = 100
# A Content-Length longer than this is not a body anyone sends to a lab;
# refusing it keeps int() away from absurd inputs.
MAX_CONTENT_LENGTH_DIGITS = 15
# x-request-id values we keep as they are; anything else is replaced.
MAX_REQUEST_ID_LENGTH = 128

# RFC 9110 5.6.2 token characters. `_` is a tchar, but it is refused below
# on purpose: some servers (CGI, nginx) fold `x_a` into `x-a`.
_TCHARS = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(_TCHARS)
# Field values may hold HTAB, SP, visible ASCII and obs-text; no other controls.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# The same rule as a byte set: deleting these from a value leaves only the bad
# bytes (bytes.translate runs in C, three times faster than the search above).
_VALUE_BYTES = bytes(b for b in range(256) if not _BAD_VALUE_BYTE.fullmatch(bytes([b])))
# uri-host [":" port] (RFC 3986): reg-name or IPv4, or an IP literal in [].
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")
# absolute-form: scheme (any case), authority up to the path, query or fragment.
_ABSOLUTE_HTTP = re.compile(rb"[hH][tT][tT][pP]://([^/?#]*)(.*)", re.S)
_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_REQUEST_ID_LENGTH)

# What each request header is, by lower-case name: forwarded as it is
# (_END_TO_END), or special, which the sidecar reads and writes itself.
_END_TO_END = 0
_HOST = 1
_CONTENT_LENGTH = 2
_TRANSFER_ENCODING = 3
_CONNECTION = 4
_HOP_BY_HOP = 5
_EXPECT = 6
_REQUEST_ID_HEADER = 7
_TRACEPARENT = 8
_TRACESTATE = 9
_PEER = 10
_MESH_OWNED = 11

PEER_HEADER = b"x-meshkit-peer"
MESH_HEADER_PREFIX = b"x-meshkit-"

_SPECIAL: dict[bytes, int] = {
    b"host": _HOST,
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    # RFC 9110 7.6.1 hop-by-hop fields, plus the de-facto Proxy-Connection.
    b"keep-alive": _HOP_BY_HOP,
    b"proxy-connection": _HOP_BY_HOP,
    b"te": _HOP_BY_HOP,
    b"upgrade": _HOP_BY_HOP,
    b"proxy-authorization": _HOP_BY_HOP,
    b"expect": _EXPECT,
    b"x-request-id": _REQUEST_ID_HEADER,
    b"traceparent": _TRACEPARENT,
    b"tracestate": _TRACESTATE,
    PEER_HEADER: _PEER,
    # Only the mesh may assert a client certificate (HARDENING: headers the mesh owns).
    b"x-forwarded-client-cert": _MESH_OWNED,
}
# A name that is not a token, or holds `_`: the request is refused.
_BAD_NAME = -1

# Each distinct header name seen, as it was written, and its kind. A client
# sends the same dozen names on every request, so a name is checked and
# lower-cased once, not once per request; after that it costs one dict
# lookup. Bad names are never stored, so they are refused every time. The
# size is bounded, so a client inventing new names cannot grow it: past the
# bound, a new name is classified each time it comes.
MAX_CACHED_NAMES = 1024
_request_kinds: dict[bytes, int] = {}

# Response fields that describe one connection, never the message, by
# lower-case name; the sidecar writes its own framing and connection fields.
_RESPONSE_SPECIAL: dict[bytes, int] = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"keep-alive": _HOP_BY_HOP,
    b"proxy-connection": _HOP_BY_HOP,
    b"te": _HOP_BY_HOP,
    b"upgrade": _HOP_BY_HOP,
    b"proxy-authenticate": _HOP_BY_HOP,
}
# Each distinct response header name seen and its kind, bounded as _request_kinds is.
_response_kinds: dict[bytes, int] = {}

# Authorities (URL authorities and Host values) that passed _AUTHORITY: a
# sidecar sees the same few on every request, so a set lookup replaces the
# regular expression. Only valid ones are kept, so a bad one is judged every time.
_valid_authorities: set[bytes] = set()

Header = tuple[bytes, bytes]


class Rejection(NamedTuple):
    """Why a request is refused before anything is forwarded."""

    status: int
    reason: str


class RequestHead:
    """What the sidecar needs to know about a request it will forward.

    `headers` are the end-to-end fields in their original order and case;
    the framing, hop-by-hop, tracing and mesh-owned fields are taken out and
    summarised in the other attributes, because the sidecar writes those itself.
    """

    __slots__ = (
        "method",
        "path",
        "version",
        "authority",
        "keep_alive",
        "content_length",
        "chunked",
        "expect_continue",
        "headers",
        "request_id",
        "traceparent",
        "tracestate",
        "peer",
    )

    def __init__(
        self,
        method: bytes,
        path: bytes,
        version: str,
        authority: bytes,
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        expect_continue: bool,
        headers: list[Header],
        request_id: bytes | None,
        traceparent: bytes | None,
        tracestate: bytes | None,
        peer: bytes | None,
    ) -> None:
        self.method = method
        self.path = path
        self.version = version
        self.authority = authority
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.headers = headers
        self.request_id = request_id
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.peer = peer

    @property
    def has_body(self) -> bool:
        """True when bytes follow the head; decides whether a retry could lose data."""
        return self.chunked or bool(self.content_length)


def _show(raw: bytes) -> str:
    """A header name or value as a learner can read it in an error message."""
    return raw[:60].decode("latin-1").encode("unicode_escape").decode("ascii")


def check_version(version: str) -> Rejection | None:
    """Only HTTP/1.0 and HTTP/1.1 are spoken on the sidecar's listeners."""
    if version in ("1.1", "1.0"):
        return None
    return reject_version(version)


def reject_version(version: str) -> Rejection:
    """Why a version other than 1.0 and 1.1 is refused: a real but unspoken one, or nonsense."""
    if version in ("2.0", "3.0"):
        return Rejection(505, f"HTTP/{version} is not supported on this port; use HTTP/1.1")
    return Rejection(400, f"malformed request line: HTTP/{version} is not a valid version here")


def split_target(method: bytes, target: bytes) -> tuple[bytes, bytes | None] | Rejection:
    """(origin-form path, authority from an absolute-form URL or None).

    The outbound listener is an HTTP proxy, so `GET http://reviews:9080/x`
    is normal there; it is forwarded as `GET /x` (RFC 9112 3.2.2).
    """
    first = target[:1]
    if first == b"/":
        return target, None
    if target.startswith(b"http://"):
        # What an app behind the proxy sends nearly always: a lower-case
        # scheme, then the authority up to a `/`. One regex on the authority
        # settles it; anything else takes the general route below, which gives
        # the same answer (the authority class holds no `/`, `?`, `#` or `@`).
        slash = target.find(b"/", 7)
        if slash > 7:
            authority = target[7:slash]
            if authority in _valid_authorities or _authority_checked(authority):
                return target[slash:], authority
    return _split_other_target(method, target)


def _authority_checked(authority: bytes) -> bool:
    """_AUTHORITY.fullmatch, remembering a valid authority in `_valid_authorities` (bounded)."""
    if _AUTHORITY.fullmatch(authority) is None:
        return False
    if len(_valid_authorities) < MAX_CACHED_NAMES:
        _valid_authorities.add(authority)
    return True


def _split_other_target(method: bytes, target: bytes) -> tuple[bytes, bytes | None] | Rejection:
    """split_target's general route, for every target: `*`, any absolute form, or junk."""
    if target[:1] == b"/":
        return target, None
    if target == b"*":
        if method != b"OPTIONS":
            return Rejection(400, "request target '*' is only valid for OPTIONS")
        return target, None
    absolute = _ABSOLUTE_HTTP.fullmatch(target)
    if absolute is not None:
        authority, path = absolute.groups()
        if not authority or b"@" in authority or not _AUTHORITY.fullmatch(authority):
            return Rejection(400, f"bad authority in request target {_show(target)!r}")
        if not path.startswith(b"/"):
            path = b"/" + path
        return path, authority
    if target[:8].lower() == b"https://":
        return Rejection(400, "https:// targets need a CONNECT tunnel, which the sidecar does not offer; send http://")
    return Rejection(400, f"malformed request target {_show(target)!r}: expected a path or an http:// URL")


def parse_content_length(raw: bytes) -> int | None:
    """The body length, or None when the value is not plain ASCII digits.

    bytes.isdigit() is ASCII-only, unlike str.isdigit() and int(), which
    accept '+5', '1_0', ' 5' and the full-width digit U+FF15.
    """
    value = raw.strip(b" \t")
    if not value or len(value) > MAX_CONTENT_LENGTH_DIGITS or not value.isdigit():
        return None
    return int(value)


def connection_tokens(values: list[bytes]) -> list[bytes]:
    """The lower-case tokens of every Connection field."""
    tokens = []
    for value in values:
        for token in value.split(b","):
            token = token.strip(b" \t").lower()
            if token:
                tokens.append(token)
    return tokens


def wants_keep_alive(version: str, tokens: list[bytes]) -> bool:
    """RFC 9112 9.3: 1.1 persists unless `close`; 1.0 only with `keep-alive`."""
    if b"close" in tokens:
        return False
    return version == "1.1" or b"keep-alive" in tokens


def _request_header_kind(name: bytes) -> int:
    """What a request header name is: `_BAD_NAME`, `_END_TO_END`, or which special field.

    Names are compared in lower case (field names are case-insensitive), and
    every `x-meshkit-` name other than the peer header is the mesh's own.
    """
    if not _TOKEN.fullmatch(name) or b"_" in name:
        return _BAD_NAME
    lower = name.lower()
    kind = _SPECIAL.get(lower)
    if kind is not None:
        return kind
    if lower.startswith(MESH_HEADER_PREFIX):
        return _MESH_OWNED
    return _END_TO_END


def _bad_name(headers: list[Header]) -> Rejection:
    """Why the names are refused: the first one that is not a token, else the first with `_`."""
    odd = next((n for n, _ in headers if not _TOKEN.fullmatch(n)), None)
    if odd is not None:
        return Rejection(400, f"invalid header name {_show(odd)!r}")
    odd = next(n for n, _ in headers if b"_" in n)
    return Rejection(400, f"header name {_show(odd)!r} contains '_'; use '-' (underscores are refused so they cannot pose as dashes)")


def parse_request_head(method: bytes, version: str, target: bytes, headers: list[Header]) -> RequestHead | Rejection:
    """Validate a parsed request head and summarise it for forwarding.

    Written for speed as well as clarity, since it runs on every request at
    every hop: each header name costs one lookup in `_request_kinds`, the
    values are checked with one regular expression over them all, and only
    the few special fields are looked at one by one.
    """
    if version != "1.1" and version != "1.0":
        return reject_version(version)
    if method == b"CONNECT":
        return Rejection(501, "CONNECT tunnels are not supported by the sidecar; send plain http:// requests")
    url_authority: bytes | None = None
    if target[:1] == b"/":
        path = target
    else:
        split = split_target(method, target)
        if isinstance(split, Rejection):
            return split
        path, url_authority = split

    kinds = _request_kinds
    kept: list[Header] = []
    found: dict[int, list[bytes]] = {}
    for header in headers:
        kind = kinds.get(header[0])
        if kind is None:
            kind = _request_header_kind(header[0])
            if kind == _BAD_NAME:
                return _bad_name(headers)
            if len(kinds) < MAX_CACHED_NAMES:
                kinds[header[0]] = kind
        if kind == _END_TO_END:
            kept.append(header)
            continue
        values = found.get(kind)
        if values is None:
            found[kind] = [header[1]]
        else:
            values.append(header[1])
    if b"\t".join([h[1] for h in headers]).translate(None, _VALUE_BYTES):
        odd = next(n for n, v in headers if _BAD_VALUE_BYTE.search(v))
        return Rejection(400, f"control character in the value of header {_show(odd)!r}")

    hosts = found.get(_HOST)
    if hosts is None:
        if version == "1.1":
            return Rejection(400, "HTTP/1.1 request without a Host header")
        host = b""
    elif len(hosts) > 1:
        return Rejection(400, "more than one Host header")
    else:
        host = hosts[0].strip(b" \t")
        if host not in _valid_authorities and not _authority_checked(host):
            return Rejection(400, f"invalid Host header {_show(host)!r}")

    content_length: int | None = None
    chunked = False
    expect_continue = False
    keep_alive = version == "1.1"
    request_id: bytes | None = None
    traceparent: bytes | None = None
    tracestate: bytes | None = None
    peer: bytes | None = None
    # Anything found besides Host needs a look. (An HTTP/1.0 request may have no Host: then its
    # one field, a Content-Length say, must still be read, or its body would go upstream unframed.)
    if len(found) > (hosts is not None):
        lengths = found.get(_CONTENT_LENGTH)
        codings = found.get(_TRANSFER_ENCODING)
        if lengths is not None:
            if codings is not None:
                return Rejection(400, "both Content-Length and Transfer-Encoding: the body length would be ambiguous")
            if len(lengths) > 1:
                return Rejection(400, "more than one Content-Length header")
            content_length = parse_content_length(lengths[0])
            if content_length is None:
                return Rejection(400, f"Content-Length {_show(lengths[0])!r} is not a plain decimal number")
        elif codings is not None:
            if version != "1.1":
                return Rejection(400, "Transfer-Encoding is not allowed on an HTTP/1.0 request")
            if len(codings) > 1:
                return Rejection(400, "more than one Transfer-Encoding header")
            if codings[0].strip(b" \t").lower() != b"chunked":
                return Rejection(501, f"Transfer-Encoding {_show(codings[0])!r} is not supported; only 'chunked' is")
            chunked = True
        expect = found.get(_EXPECT)
        if expect is not None:
            if len(expect) > 1 or expect[0].strip(b" \t").lower() != b"100-continue":
                return Rejection(417, f"Expect {_show(expect[0])!r} is not supported; only '100-continue' is")
            expect_continue = True
        connection = found.get(_CONNECTION)
        if connection is not None and len(connection) == 1 and connection[0] == b"keep-alive":
            keep_alive = True  # what nearly every client sends: nothing listed, persists on 1.0 and 1.1
        elif connection is not None:
            tokens = connection_tokens(connection)
            keep_alive = wants_keep_alive(version, tokens)
            listed = {t for t in tokens if t != b"close" and t != b"keep-alive"}
            if listed:
                kept = [h for h in kept if h[0].lower() not in listed]
        ids = found.get(_REQUEST_ID_HEADER)
        if ids is not None:
            for value in ids:
                if _REQUEST_ID.fullmatch(value):
                    request_id = value
                    break
        parents = found.get(_TRACEPARENT)
        if parents is not None and len(parents) == 1:
            traceparent = parents[0]
        states = found.get(_TRACESTATE)
        if states is not None:
            tracestate = b",".join(states)
        peers = found.get(_PEER)
        if peers is not None and len(peers) == 1:
            peer = peers[0]

    authority = url_authority if url_authority is not None else host
    return RequestHead(
        method,
        path,
        version,
        authority,
        keep_alive,
        content_length,
        chunked,
        expect_continue,
        kept,
        request_id,
        traceparent,
        tracestate,
        peer,
    )


class ResponseHead(NamedTuple):
    """What the sidecar needs to know about an upstream's response head."""

    headers: list[Header]
    content_length: int | None
    chunked: bool
    keep_alive: bool


def _response_header_kind(name: bytes) -> int:
    """What a response header name is: `_END_TO_END`, `_MESH_OWNED`, or which hop-by-hop field.

    llhttp has already refused names that are not tokens, so none is checked here.
    """
    lower = name.lower()
    kind = _RESPONSE_SPECIAL.get(lower)
    if kind is not None:
        return kind
    if lower.startswith(MESH_HEADER_PREFIX):
        return _MESH_OWNED
    return _END_TO_END


def _response_fields(version: str, headers: list[Header], drop_mesh_headers: bool) -> tuple[list[Header], int | None, bool, bool] | str:
    """(kept headers, content length, chunked, upstream keeps the connection), or why not."""
    kinds = _response_kinds
    kept: list[Header] = []
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection: list[bytes] = []
    for header in headers:
        kind = kinds.get(header[0])
        if kind is None:
            kind = _response_header_kind(header[0])
            if len(kinds) < MAX_CACHED_NAMES:
                kinds[header[0]] = kind
        if kind == _END_TO_END or (kind == _MESH_OWNED and not drop_mesh_headers):
            kept.append(header)
        elif kind == _CONTENT_LENGTH:
            lengths.append(header[1])
        elif kind == _TRANSFER_ENCODING:
            codings.append(header[1])
        elif kind == _CONNECTION:
            connection.append(header[1])
    chunked = False
    if codings:
        if len(codings) > 1 or codings[0].strip(b" \t").lower() != b"chunked" or lengths:
            return "the upstream's Transfer-Encoding is not a single 'chunked'"
        chunked = True
    content_length = None
    if lengths:
        content_length = parse_content_length(lengths[0])
        if content_length is None or (len(lengths) > 1 and len({v.strip(b" \t") for v in lengths}) > 1):
            return "the upstream's Content-Length is not one plain number"
    if not connection:
        return kept, content_length, chunked, version == "1.1"
    tokens = connection_tokens(connection)
    listed = {t for t in tokens if t not in (b"close", b"keep-alive")}
    if listed:
        kept = [h for h in kept if h[0].lower() not in listed]
    return kept, content_length, chunked, wants_keep_alive(version, tokens)


def parse_response_head(version: str, headers: list[Header], drop_mesh_headers: bool) -> ResponseHead | str:
    """Summarise an upstream response head, or say why it cannot be relayed.

    `drop_mesh_headers` is set on the inbound side: an app must not be able
    to claim a version or response flags in the mesh's name.
    """
    fields = _response_fields(version, headers, drop_mesh_headers)
    if isinstance(fields, str):
        return fields
    return ResponseHead(*fields)


def response_has_body(request_method: bytes, status: int) -> bool:
    """RFC 9112 6.3: HEAD responses, 1xx, 204 and 304 never carry a body."""
    return request_method != b"HEAD" and status >= 200 and status != 204 and status != 304


# How the body of a response is written to the client.
BODY_NONE = 0  # no body (HEAD, 1xx, 204, 304)
BODY_RAW = 1  # bytes as they come: Content-Length, or until close for HTTP/1.0
BODY_CHUNKED = 2  # re-chunked, when the length is unknown and the client speaks 1.1


def response_framing(request_method: bytes, client_version: str, status: int, response: ResponseHead) -> tuple[int, bytes, bool]:
    """(body mode, framing header lines, whether the client connection may persist).

    An HTTP/1.0 client cannot read chunked encoding, so a response of unknown
    length is sent to it close-delimited and the connection ends with it.
    """
    length = response.content_length
    if not response_has_body(request_method, status):
        if request_method == b"HEAD" and length is not None:
            return BODY_NONE, b"content-length: %d\r\n" % length, True
        return BODY_NONE, b"", True
    if length is not None:
        return BODY_RAW, b"content-length: %d\r\n" % length, True
    if client_version == "1.1":
        return BODY_CHUNKED, b"transfer-encoding: chunked\r\n", True
    return BODY_RAW, b"", False


def upstream_reusable(request_method: bytes, status: int, response: ResponseHead) -> bool:
    """Can the upstream connection carry another request after this response?

    Only if the server keeps it alive and the body's end is known without
    the server closing the connection.
    """
    if not response.keep_alive:
        return False
    return not response_has_body(request_method, status) or response.content_length is not None or response.chunked


# What relay_response_head returns: (headers to relay, body mode, framing
# header lines, client connection may persist, upstream connection reusable,
# body ends only when the upstream closes).
RelayedHead = tuple[list[Header], int, bytes, bool, bool, bool]


def relay_response_head(
    request_method: bytes, client_version: str, status: int, version: str, headers: list[Header], drop_mesh_headers: bool
) -> RelayedHead | str:
    """Everything the sidecar decides about an upstream response head, in one pass; or why it cannot be relayed.

    The same answers as parse_response_head, then response_framing,
    upstream_reusable and "is it close-delimited", without a ResponseHead in
    between or asking three times whether the response has a body.
    """
    fields = _response_fields(version, headers, drop_mesh_headers)
    if isinstance(fields, str):
        return fields
    kept, length, chunked, keep_alive = fields
    if request_method == b"HEAD" or status < 200 or status == 204 or status == 304:  # no body (response_has_body)
        framing = b"content-length: %d\r\n" % length if request_method == b"HEAD" and length is not None else b""
        return kept, BODY_NONE, framing, True, keep_alive, False
    if length is not None:
        return kept, BODY_RAW, b"content-length: %d\r\n" % length, True, keep_alive, False
    # The upstream says no length: its body ends with its last chunk, or when it closes.
    reusable = keep_alive and chunked
    if client_version == "1.1":
        return kept, BODY_CHUNKED, b"transfer-encoding: chunked\r\n", True, reusable, not chunked
    return kept, BODY_RAW, b"", False, reusable, not chunked


def build_request_head(
    head: RequestHead,
    host: bytes,
    extra: bytes,
    path: bytes | None = None,
    headers: list[Header] | None = None,
) -> bytes:
    """The head sent upstream: origin-form, HTTP/1.1, framing rebuilt.

    `extra` holds ready-made header lines the sidecar adds (tracing, peer
    metadata); the end-to-end headers keep their order and case. `path` and
    `headers` replace the request's own when a route rewrote them.
    """
    parts = [head.method, b" ", head.path if path is None else path, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    for name, value in head.headers if headers is None else headers:
        parts.extend((name, b": ", value, b"\r\n"))
    if head.chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    elif head.content_length is not None:
        parts.append(b"content-length: %d\r\n" % head.content_length)
    parts.append(extra)
    parts.append(b"\r\n")
    return b"".join(parts)


def build_response_head(status: int, reason: bytes, headers: list[Header], framing: bytes, extra: bytes) -> bytes:
    """The head sent to the client: the upstream's fields, our framing and `extra` lines."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in headers:
        parts.extend((name, b": ", value, b"\r\n"))
    parts.append(framing)
    parts.append(extra)
    parts.append(b"\r\n")
    return b"".join(parts)

