"""Request and response head rules (meshkit.core.framing), as a table."""

from __future__ import annotations

import pytest

from meshkit.core.framing import (
    BODY_CHUNKED,
    BODY_NONE,
    BODY_RAW,
    Rejection,
    RequestHead,
    ResponseHead,
    build_request_head,
    build_response_head,
    parse_content_length,
    parse_request_head,
    parse_response_head,
    response_framing,
    upstream_reusable,
)

HOST = [(b"Host", b"reviews:9080")]


def head(*headers: tuple[bytes, bytes], method: bytes = b"GET", version: str = "1.1", target: bytes = b"/x") -> RequestHead | Rejection:
    return parse_request_head(method, version, target, list(headers))


REJECTED = [
    ("CL and TE", [*HOST, (b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")], "1.1", b"/", 400),
    ("two CL", [*HOST, (b"Content-Length", b"5"), (b"Content-Length", b"5")], "1.1", b"/", 400),
    ("CL list", [*HOST, (b"Content-Length", b"3,2")], "1.1", b"/", 400),
    ("CL negative", [*HOST, (b"Content-Length", b"-1")], "1.1", b"/", 400),
    ("CL plus", [*HOST, (b"Content-Length", b"+5")], "1.1", b"/", 400),
    ("CL underscore", [*HOST, (b"Content-Length", b"1_0")], "1.1", b"/", 400),
    ("CL hex", [*HOST, (b"Content-Length", b"0x10")], "1.1", b"/", 400),
    ("CL two numbers", [*HOST, (b"Content-Length", b"5 5")], "1.1", b"/", 400),
    ("CL empty", [*HOST, (b"Content-Length", b"")], "1.1", b"/", 400),
    ("CL fullwidth digit", [*HOST, (b"Content-Length", "\uff15".encode())], "1.1", b"/", 400),
    ("TE xchunked", [*HOST, (b"Transfer-Encoding", b"xchunked")], "1.1", b"/", 501),
    ("TE list ending chunked", [*HOST, (b"Transfer-Encoding", b"identity, chunked")], "1.1", b"/", 501),
    ("TE kelvin sign", [*HOST, (b"Transfer-Encoding", "chun\u212aed".encode())], "1.1", b"/", 501),
    ("TE twice", [*HOST, (b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")], "1.1", b"/", 400),
    ("TE on 1.0", [*HOST, (b"Transfer-Encoding", b"chunked")], "1.0", b"/", 400),
    ("name with CR", [*HOST, (b"X-A\rB", b"1")], "1.1", b"/", 400),
    ("empty name", [*HOST, (b"", b"1")], "1.1", b"/", 400),
    ("name with space", [*HOST, (b"X-A ", b"1")], "1.1", b"/", 400),
    ("value with LF", [*HOST, (b"X-A", b"1\n2")], "1.1", b"/", 400),
    ("value with NUL", [*HOST, (b"X-A", b"1\x002")], "1.1", b"/", 400),
    ("value with DEL", [*HOST, (b"X-A", b"1\x7f")], "1.1", b"/", 400),
    ("underscore name", [*HOST, (b"X_Forwarded_For", b"1.2.3.4")], "1.1", b"/", 400),
    ("no Host on 1.1", [], "1.1", b"/", 400),
    ("two Hosts", [*HOST, (b"host", b"other")], "1.1", b"/", 400),
    ("Host with space", [(b"Host", b"a b")], "1.1", b"/", 400),
    ("Host with userinfo", [(b"Host", b"u@a")], "1.1", b"/", 400),
    ("HTTP/0.9", HOST, "0.9", b"/", 400),
    ("HTTP/2.0", HOST, "2.0", b"/", 505),
    ("target not a path", HOST, "1.1", b"junk", 400),
    ("https target", HOST, "1.1", b"https://reviews/", 400),
    ("absolute with userinfo", HOST, "1.1", b"http://u@reviews/", 400),
    ("absolute without authority", HOST, "1.1", b"http:///x", 400),
    ("asterisk for GET", HOST, "1.1", b"*", 400),
    ("Expect other", [*HOST, (b"Expect", b"something")], "1.1", b"/", 417),
]


@pytest.mark.parametrize(("case", "headers", "version", "target", "status"), REJECTED, ids=[r[0] for r in REJECTED])
def test_head_is_rejected(case: str, headers: list[tuple[bytes, bytes]], version: str, target: bytes, status: int) -> None:
    result = parse_request_head(b"POST", version, target, headers)
    assert isinstance(result, Rejection)
    assert result.status == status
    assert result.reason


def test_connect_is_refused_with_an_explanation() -> None:
    result = head(*HOST, method=b"CONNECT", target=b"reviews:443")
    assert isinstance(result, Rejection) and result.status == 501 and "CONNECT" in result.reason


def test_plain_get_is_summarised() -> None:
    result = head(*HOST, (b"Accept", b"*/*"))
    assert isinstance(result, RequestHead)
    assert (result.method, result.path, result.authority, result.keep_alive) == (b"GET", b"/x", b"reviews:9080", True)
    assert result.content_length is None and not result.chunked and not result.has_body
    assert result.headers == [(b"Accept", b"*/*")]


def test_absolute_form_gives_origin_form_and_the_url_authority_wins() -> None:
    result = head((b"Host", b"ignored"), target=b"HTTP://reviews:9080?q=1")
    assert isinstance(result, RequestHead)
    assert result.path == b"/?q=1" and result.authority == b"reviews:9080"


def test_ows_around_values_is_allowed() -> None:
    result = head((b"Host", b"reviews "), (b"Content-Length", b"5 "), method=b"POST")
    assert isinstance(result, RequestHead)
    assert result.authority == b"reviews" and result.content_length == 5 and result.has_body


def test_chunked_is_case_insensitive_ascii() -> None:
    result = head(*HOST, (b"Transfer-Encoding", b"Chunked"), method=b"POST")
    assert isinstance(result, RequestHead) and result.chunked


def test_hop_by_hop_and_connection_listed_fields_are_dropped() -> None:
    result = head(
        *HOST,
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Connection", b"keep-alive"),
        (b"TE", b"trailers"),
        (b"Upgrade", b"websocket"),
        (b"Proxy-Authorization", b"Basic x"),
        (b"X-Kept", b"yes"),
    )
    assert isinstance(result, RequestHead)
    assert result.headers == [(b"X-Kept", b"yes")]


def test_mesh_owned_fields_are_dropped_and_the_peer_is_captured() -> None:
    result = head(*HOST, (b"X-Meshkit-Peer", b"w=a"), (b"x-meshkit-version", b"v9"), (b"X-Forwarded-Client-Cert", b"By=x"))
    assert isinstance(result, RequestHead)
    assert result.headers == [] and result.peer == b"w=a"


def test_two_peer_headers_count_as_none() -> None:
    result = head(*HOST, (b"x-meshkit-peer", b"w=a"), (b"x-meshkit-peer", b"w=b"))
    assert isinstance(result, RequestHead) and result.peer is None


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [("1.1", None, True), ("1.1", b"close", False), ("1.0", None, False), ("1.0", b"Keep-Alive", True), ("1.1", b"foo, CLOSE", False)],
)
def test_keep_alive_follows_rfc_9112(version: str, connection: bytes | None, keep_alive: bool) -> None:
    headers = [*HOST] + ([(b"Connection", connection)] if connection else [])
    result = parse_request_head(b"GET", version, b"/", headers)
    assert isinstance(result, RequestHead) and result.keep_alive is keep_alive


def test_tracing_fields_are_captured_not_forwarded() -> None:
    result = head(*HOST, (b"x-request-id", b"abc"), (b"traceparent", b"00-x"), (b"tracestate", b"a=1"), (b"tracestate", b"b=2"))
    assert isinstance(result, RequestHead)
    assert (result.request_id, result.traceparent, result.tracestate) == (b"abc", b"00-x", b"a=1,b=2")
    assert result.headers == []


def test_unprintable_request_id_is_replaced_later() -> None:
    result = head(*HOST, (b"x-request-id", b"has space"))
    assert isinstance(result, RequestHead) and result.request_id is None


@pytest.mark.parametrize(("raw", "value"), [(b"0", 0), (b" 42\t", 42), (b"007", 7), (b"1" * 16, None), (b"4 2", None), (b"\xd9\xa5", None)])
def test_content_length_is_ascii_digits_only(raw: bytes, value: int | None) -> None:
    assert parse_content_length(raw) == value


def test_request_head_is_rebuilt_in_origin_form_with_our_framing() -> None:
    result = head((b"Host", b"r"), (b"Transfer-Encoding", b"chunked"), (b"X-A", b"1"), method=b"POST", target=b"http://reviews/p")
    assert isinstance(result, RequestHead)
    wire = build_request_head(result, b"reviews", b"x-extra: 1\r\n")
    assert wire == b"POST /p HTTP/1.1\r\nhost: reviews\r\nX-A: 1\r\ntransfer-encoding: chunked\r\nx-extra: 1\r\n\r\n"


def test_response_head_drops_hop_by_hop_and_mesh_fields_when_asked() -> None:
    headers = [(b"Content-Length", b"3"), (b"Connection", b"close"), (b"x-meshkit-version", b"forged"), (b"X-App", b"1")]
    inbound = parse_response_head("1.1", headers, drop_mesh_headers=True)
    outbound = parse_response_head("1.1", headers, drop_mesh_headers=False)
    assert isinstance(inbound, ResponseHead) and isinstance(outbound, ResponseHead)
    assert inbound.headers == [(b"X-App", b"1")]
    assert outbound.headers == [(b"x-meshkit-version", b"forged"), (b"X-App", b"1")]
    assert inbound.content_length == 3 and not inbound.keep_alive


@pytest.mark.parametrize(
    "headers",
    [[(b"Content-Length", b"3"), (b"Content-Length", b"4")], [(b"Transfer-Encoding", b"gzip")], [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")]],
)
def test_ambiguous_response_framing_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    assert isinstance(parse_response_head("1.1", headers, drop_mesh_headers=False), str)


@pytest.mark.parametrize(
    ("method", "client", "status", "length", "chunked", "expected"),
    [
        (b"GET", "1.1", 200, 5, False, (BODY_RAW, b"content-length: 5\r\n", True)),
        (b"GET", "1.1", 200, None, True, (BODY_CHUNKED, b"transfer-encoding: chunked\r\n", True)),
        (b"GET", "1.0", 200, None, True, (BODY_RAW, b"", False)),
        (b"HEAD", "1.1", 200, 5, False, (BODY_NONE, b"content-length: 5\r\n", True)),
        (b"GET", "1.1", 204, None, False, (BODY_NONE, b"", True)),
        (b"GET", "1.1", 304, 10, False, (BODY_NONE, b"", True)),
    ],
)
def test_response_framing_towards_the_client(method: bytes, client: str, status: int, length: int | None, chunked: bool, expected: tuple) -> None:
    assert response_framing(method, client, status, ResponseHead([], length, chunked, True)) == expected


def test_upstream_connection_is_reused_only_when_the_body_end_is_known() -> None:
    assert upstream_reusable(b"GET", 200, ResponseHead([], 5, False, True))
    assert upstream_reusable(b"GET", 200, ResponseHead([], None, True, True))
    assert not upstream_reusable(b"GET", 200, ResponseHead([], None, False, True))
    assert not upstream_reusable(b"GET", 200, ResponseHead([], 5, False, False))
    assert upstream_reusable(b"HEAD", 200, ResponseHead([], None, False, True))


def test_response_head_is_built_with_framing_and_extra_lines() -> None:
    wire = build_response_head(200, b"OK", [(b"X-App", b"1")], b"content-length: 0\r\n", b"x-meshkit-version: v2\r\n")
    assert wire == b"HTTP/1.1 200 OK\r\nX-App: 1\r\ncontent-length: 0\r\nx-meshkit-version: v2\r\n\r\n"
