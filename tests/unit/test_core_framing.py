"""Request and response head rules (meshkit.core.framing), as a table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshkit.core import framing
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
    relay_response_head,
    response_framing,
    response_has_body,
    split_target,
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


# --- the request-head fast paths agree with the general route ---------------------------------
#
# parse_request_head classifies each distinct header name once and keeps its kind in a bounded
# cache; split_target reads `http://authority/...` without the full URL regex. Each test below
# runs the same heads through the fast path and the general one and wants the same answer.

# HARDENING.md, "HTTP/1.1 framing", as it reaches parse_request_head (llhttp refuses most of
# these first; the module repeats the checks so it is a complete statement on its own).
HARDENING_HEADS = [
    ("CL and TE", [*HOST, (b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")], 400),
    ("TE and CL", [*HOST, (b"Transfer-Encoding", b"chunked"), (b"content-length", b"3")], 400),
    ("two different CL", [*HOST, (b"Content-Length", b"3"), (b"Content-Length", b"4")], 400),
    ("CL list", [*HOST, (b"Content-Length", b"3,2")], 400),
    ("TE chunked, identity", [*HOST, (b"Transfer-Encoding", b"chunked, identity")], 501),
    ("TE space chunked", [*HOST, (b"Transfer-Encoding", b" chunked")], None),  # OWS is not part of the value
    ("TE vertical tab", [*HOST, (b"Transfer-Encoding", b"\x0bchunked")], 400),
    ("name with CR", [*HOST, (b"X-A\r", b"1")], 400),
    ("name with LF", [*HOST, (b"X-A\nB", b"1")], 400),
    ("name with NUL", [*HOST, (b"X-A\x00B", b"1")], 400),
    ("name with a colon", [*HOST, (b"X-A:B", b"1")], 400),
    ("name with a tab", [*HOST, (b"X-A\t", b"1")], 400),
    ("empty name", [*HOST, (b"", b"1")], 400),
    ("space before the colon", [*HOST, (b"X-A ", b"1")], 400),
    ("obs-fold as a name", [*HOST, (b" X-Folded", b"1")], 400),
    ("obs-fold in a value", [*HOST, (b"X-A", b"1\r\n 2")], 400),
    ("underscore name", [*HOST, (b"X_Real_IP", b"1")], 400),
    ("underscore Host", [(b"Ho_st", b"a"), *HOST], 400),
    ("non-ASCII name", [*HOST, ("X-\u00e4".encode(), b"1")], 400),
    ("no Host", [(b"Accept", b"*/*")], 400),
    ("two Hosts", [(b"Host", b"a"), (b"HOST", b"a")], 400),
    ("XFCC from a client", [*HOST, (b"X-Forwarded-Client-Cert", b"By=spiffe://x")], None),
    ("a meshkit header from a client", [*HOST, (b"X-MESHKIT-Version", b"forged")], None),
]


def summary(result: RequestHead | Rejection) -> tuple[object, ...]:
    """Everything a result says, comparable with ==."""
    if isinstance(result, Rejection):
        return tuple(result)
    return tuple(getattr(result, slot) for slot in RequestHead.__slots__)


@pytest.fixture
def empty_name_cache() -> Iterator[dict[bytes, int]]:
    saved = dict(framing._request_kinds)
    framing._request_kinds.clear()
    yield framing._request_kinds
    framing._request_kinds.clear()
    framing._request_kinds.update(saved)


@pytest.mark.parametrize(("case", "headers", "status"), HARDENING_HEADS, ids=[h[0] for h in HARDENING_HEADS])
def test_hardening_heads_are_judged_alike_with_the_name_cache_cold_warm_and_full(
    case: str, headers: list[tuple[bytes, bytes]], status: int | None, empty_name_cache: dict[bytes, int]
) -> None:
    cold = parse_request_head(b"POST", "1.1", b"/", headers)
    warm = parse_request_head(b"POST", "1.1", b"/", headers)
    empty_name_cache.clear()
    empty_name_cache.update({b"x-filler-%d" % i: 0 for i in range(framing.MAX_CACHED_NAMES)})
    full = parse_request_head(b"POST", "1.1", b"/", headers)
    assert summary(cold) == summary(warm) == summary(full)
    if status is None:
        assert isinstance(cold, RequestHead) and cold.headers == [h for h in headers if h[0] == b"Accept"]
    else:
        assert isinstance(cold, Rejection) and cold.status == status


def test_a_bad_name_is_never_cached_and_the_cache_stays_bounded(empty_name_cache: dict[bytes, int]) -> None:
    for name in (b"X_A", b"X A", b"", b"X\x00A"):
        assert isinstance(parse_request_head(b"GET", "1.1", b"/", [*HOST, (name, b"1")]), Rejection)
        assert name not in empty_name_cache
    for i in range(framing.MAX_CACHED_NAMES + 50):
        assert isinstance(parse_request_head(b"GET", "1.1", b"/", [*HOST, (b"x-n%d" % i, b"1")]), RequestHead)
    assert len(empty_name_cache) == framing.MAX_CACHED_NAMES


def test_the_first_bad_name_is_named_whatever_the_cache_holds(empty_name_cache: dict[bytes, int]) -> None:
    headers = [*HOST, (b"X-Ok", b"1"), (b"X_Under", b"1"), (b"Bad Name", b"1")]
    for _ in range(2):
        result = parse_request_head(b"GET", "1.1", b"/", headers)
        assert isinstance(result, Rejection) and "Bad Name" in result.reason  # not a token beats '_'
    result = parse_request_head(b"GET", "1.1", b"/", [*HOST, (b"X-Ok", b"1\x01"), (b"X_Under", b"1")])
    assert isinstance(result, Rejection) and "X_Under" in result.reason  # names are judged before values


# Names of every kind, in several cases, plus bad ones; values good and bad.
_NAMES = st.sampled_from(
    [b"Host", b"host", b"HOST", b"Content-Length", b"content-length", b"Transfer-Encoding", b"Connection", b"connection",
     b"Keep-Alive", b"TE", b"Upgrade", b"Proxy-Authorization", b"Expect", b"X-Request-Id", b"traceparent", b"tracestate",
     b"X-Meshkit-Peer", b"x-meshkit-other", b"X-Forwarded-Client-Cert", b"Accept", b"X-Private", b"x-private",
     b"X_A", b"X A", b"", b"X:A", b"X\x00A", b"\xe4"]
)  # fmt: skip
_VALUES = st.sampled_from(
    [b"reviews:9080", b"a b", b"u@a", b"5", b"05", b"-1", b"3,2", b"chunked", b"Chunked", b"identity, chunked", b"close",
     b"keep-alive", b"X-Private, close", b"100-continue", b"other", b"abc", b"has space", b"1\r\n 2", b"\x01", b"\t1\t",
     b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", b"a=1", b"w=a", b""]
)  # fmt: skip


@given(
    st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
    st.sampled_from(["1.1", "1.0"]),
    st.sampled_from([b"GET", b"POST", b"OPTIONS"]),
)
def test_random_heads_are_judged_alike_by_the_cached_and_the_uncached_route(
    headers: list[tuple[bytes, bytes]], version: str, method: bytes
) -> None:
    saved = dict(framing._request_kinds)
    try:
        framing._request_kinds.clear()
        cold = summary(parse_request_head(method, version, b"/x", headers))
        warm = summary(parse_request_head(method, version, b"/x", headers))
        framing._request_kinds.clear()
        framing._request_kinds.update({b"x-filler-%d" % i: 0 for i in range(framing.MAX_CACHED_NAMES)})
        full = summary(parse_request_head(method, version, b"/x", headers))
    finally:
        framing._request_kinds.clear()
        framing._request_kinds.update(saved)
    assert cold == warm == full


PROXY_TARGETS = [
    b"http://reviews:9080/reviews/0",
    b"http://reviews/",
    b"http://reviews",
    b"http://reviews?x=1",
    b"http://reviews#f",
    b"http://reviews:9080/a?b=/c#d",
    b"http://u@reviews/",
    b"http://u@reviews",
    b"http:///x",
    b"http://",
    b"http://:80/x",
    b"http://[::1]:9080/x",
    b"http://[::1/x",
    b"http://re views/x",
    b"http://re\nviews/x",
    b"http://a%41/x",
    b"http://a?b/c",
    b"http://a#b/c",
    b"http://a:b:c/x",
    b"HTTP://reviews/x",
    b"Http://reviews",
    b"https://reviews/",
    b"http:/reviews/x",
    b"httpx://reviews/x",
    b"*",
    b"/x",
    b"junk",
    b"",
]


@pytest.mark.parametrize("target", PROXY_TARGETS)
@pytest.mark.parametrize("method", [b"GET", b"OPTIONS"])
def test_split_target_fast_path_agrees_with_the_general_route(method: bytes, target: bytes) -> None:
    assert split_target(method, target) == framing._split_other_target(method, target)


@given(st.binary(max_size=24), st.sampled_from([b"http://", b"HTTP://", b"https://", b""]), st.binary(max_size=12))
def test_split_target_agrees_with_the_general_route_on_random_targets(authority: bytes, scheme: bytes, rest: bytes) -> None:
    for target in (scheme + authority + b"/" + rest, scheme + authority + rest):
        assert split_target(b"GET", target) == framing._split_other_target(b"GET", target)


# --- relay_response_head is parse_response_head, response_framing, upstream_reusable and ---------
# --- "close-delimited" in one pass -------------------------------------------------------------

RESPONSE_HEADER_SETS = [
    [],
    [(b"Content-Length", b"3")],
    [(b"content-length", b"0")],
    [(b"Content-Length", b"3"), (b"Content-Length", b" 3")],
    [(b"Content-Length", b"3"), (b"Content-Length", b"4")],
    [(b"Content-Length", b"+3")],
    [(b"Transfer-Encoding", b"chunked")],
    [(b"Transfer-Encoding", b"Chunked ")],
    [(b"Transfer-Encoding", b"gzip, chunked")],
    [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
    [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")],
    [(b"Connection", b"close"), (b"Content-Length", b"3")],
    [(b"Connection", b"keep-alive")],
    [(b"Connection", b"Keep-Alive, X-Private"), (b"X-Private", b"1"), (b"X-App", b"1")],
    [(b"Keep-Alive", b"timeout=5"), (b"Upgrade", b"h2c"), (b"TE", b"trailers"), (b"Proxy-Authenticate", b"Basic")],
    [(b"x-meshkit-version", b"forged"), (b"X-Meshkit-Flags", b"UF"), (b"X-App", b"1")],
    [(b"date", b"Mon, 06 May 2024 10:00:00 GMT"), (b"server", b"uvicorn"), (b"content-length", b"295"), (b"content-type", b"application/json")],
]


def four_calls(method: bytes, client: str, status: int, version: str, headers: list[tuple[bytes, bytes]], drop: bool) -> object:
    """What the sidecar computed before relay_response_head, step by step."""
    parsed = parse_response_head(version, headers, drop)
    if isinstance(parsed, str):
        return parsed
    mode, lines, persist = response_framing(method, client, status, parsed)
    close_delimited = response_has_body(method, status) and parsed.content_length is None and not parsed.chunked
    return parsed.headers, mode, lines, persist, upstream_reusable(method, status, parsed), close_delimited


@pytest.mark.parametrize("headers", RESPONSE_HEADER_SETS)
def test_relay_response_head_says_what_the_four_steps_said(headers: list[tuple[bytes, bytes]]) -> None:
    for method in (b"GET", b"HEAD", b"POST"):
        for client in ("1.1", "1.0"):
            for status in (100, 200, 204, 301, 304, 404, 503):
                for version in ("1.1", "1.0"):
                    for drop in (True, False):
                        expected = four_calls(method, client, status, version, headers, drop)
                        assert relay_response_head(method, client, status, version, headers, drop) == expected


@given(st.lists(st.tuples(_NAMES | st.sampled_from([b"Content-Length", b"X-Meshkit-Flags", b"Proxy-Authenticate"]), _VALUES), max_size=6))
def test_response_heads_are_read_alike_with_the_name_cache_cold_warm_and_full(headers: list[tuple[bytes, bytes]]) -> None:
    saved = dict(framing._response_kinds)
    try:
        framing._response_kinds.clear()
        cold = parse_response_head("1.1", headers, True)
        warm = parse_response_head("1.1", headers, True)
        framing._response_kinds.clear()
        framing._response_kinds.update({b"x-filler-%d" % i: 0 for i in range(framing.MAX_CACHED_NAMES)})
        full = parse_response_head("1.1", headers, True)
        assert len(framing._response_kinds) == framing.MAX_CACHED_NAMES
    finally:
        framing._response_kinds.clear()
        framing._response_kinds.update(saved)
    assert cold == warm == full
    assert relay_response_head(b"GET", "1.1", 200, "1.1", headers, True) == four_calls(b"GET", "1.1", 200, "1.1", headers, True)
