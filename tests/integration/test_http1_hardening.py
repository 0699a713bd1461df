"""HARDENING.md, "HTTP/1.1 framing": every case as raw bytes on a real socket.

Each bad request is followed, on the same connection, by a good one. The
sidecar must answer the bad one with the expected status and
`connection: close`, close the connection, and never forward either
request: a sentinel request on a fresh connection afterwards must be the only
thing the upstream has seen, over the upstream connection that was already
pooled (no new connection was opened for the rejected request).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.http1 import keep_failure
from tests.integration.sidecar_fixtures import (
    Client,
    EchoServer,
    SidecarProcess,
    bootstrap,
    connect,
    echo_server,
    endpoint,
    exchange_raw,
    parse_responses,
    read_until_close,
    running_sidecar,
    service,
    snapshot,
)

NODE = "default/echo-v1-0"
GOOD = b"GET /after-the-bad-one HTTP/1.1\r\nHost: echo\r\n\r\n"
SENTINEL = b"GET /sentinel HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n"


def post(headers: bytes, body: bytes = b"", line: bytes = b"POST / HTTP/1.1") -> bytes:
    return line + b"\r\nHost: echo\r\n" + headers + b"\r\n" + body


def chunked(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n", body)


BIG_VALUE = b"a" * (61 * 1024)

# (case, raw request, acceptable statuses)
CASES: list[tuple[str, bytes, set[int]]] = [
    ("cl-and-te", post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), {400}),
    ("te-and-cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), {400}),
    ("two-content-lengths", post(b"Content-Length: 3\r\nContent-Length: 2\r\n", b"abc"), {400}),
    ("content-length-list", post(b"Content-Length: 3,2\r\n", b"abc"), {400}),
    ("content-length-negative", post(b"Content-Length: -1\r\n", b"abc"), {400}),
    ("content-length-plus", post(b"Content-Length: +5\r\n", b"abcde"), {400}),
    ("content-length-underscore", post(b"Content-Length: 1_0\r\n", b"abcde"), {400}),
    ("content-length-hex", post(b"Content-Length: 0x10\r\n", b"abcde"), {400}),
    ("content-length-two-numbers", post(b"Content-Length: 5 5\r\n", b"abcde"), {400}),
    ("content-length-empty", post(b"Content-Length: \r\n", b"abcde"), {400}),
    ("content-length-fullwidth-digit", post("Content-Length: \uff15\r\n".encode(), b"abcde"), {400}),
    ("te-xchunked", post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-chunked-identity", post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-identity-chunked", post(b"Transfer-Encoding: identity, chunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-folded-chunked", post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-line-starts-with-space", post(b" Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-vertical-tab", post(b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-twice", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-split-over-two", post(b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), {400, 501}),
    ("te-on-http10", post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n", line=b"POST / HTTP/1.0"), {400, 501}),
    ("te-kelvin-sign", post("Transfer-Encoding: chun\u212aed\r\n".encode(), b"0\r\n\r\n"), {400, 501}),
    ("chunk-data-without-crlf", chunked(b"3\r\nabcX0\r\n\r\n"), {400}),
    ("chunk-size-hex-prefix", chunked(b"0x5\r\nabcde\r\n0\r\n\r\n"), {400}),
    ("chunk-size-plus", chunked(b"+5\r\nabcde\r\n0\r\n\r\n"), {400}),
    ("chunk-size-negative", chunked(b"-1\r\nabcde\r\n0\r\n\r\n"), {400}),
    ("chunk-size-bare-lf", chunked(b"5\nabcde\r\n0\r\n\r\n"), {400}),
    ("chunk-data-bare-lf", chunked(b"5\r\nabcde\n0\r\n\r\n"), {400}),
    ("chunk-extension-cr", chunked(b"5;a=\rb\r\nabcde\r\n0\r\n\r\n"), {400}),
    ("chunk-extension-lf", chunked(b"5;a=\nb\r\nabcde\r\n0\r\n\r\n"), {400}),
    ("chunk-extension-nul", chunked(b"5;a=\x00b\r\nabcde\r\n0\r\n\r\n"), {400}),
    ("header-name-cr", post(b"X-A\rb: 1\r\n"), {400}),
    ("header-name-nul", post(b"X-A\x00b: 1\r\n"), {400}),
    ("header-value-cr", post(b"X-A: 1\r2\r\n"), {400}),
    ("header-value-lf", post(b"X-A: 1\n2: 3\r\n"), {400}),
    ("header-value-nul", post(b"X-A: 1\x002\r\n"), {400}),
    ("header-value-control", post(b"X-A: 1\x012\r\n"), {400}),
    ("empty-header-name", post(b": 1\r\n"), {400}),
    ("header-without-colon", post(b"X-A 1\r\n"), {400}),
    ("space-before-colon", post(b"X-A : 1\r\n"), {400}),
    ("obs-fold", post(b"X-A: 1\r\n 2\r\n"), {400}),
    ("request-line-hello", b"hello\r\n\r\n", {400}),
    ("request-line-bad-method", b"GE(T / HTTP/1.1\r\nHost: echo\r\n\r\n", {400}),
    ("request-line-http08", b"GET / HTTP/0.8\r\nHost: echo\r\n\r\n", {400}),
    ("request-line-http132", b"GET / HTTP/1.32\r\nHost: echo\r\n\r\n", {400}),
    ("request-line-http09", b"GET /\r\n\r\n", {400}),
    ("request-line-http2", b"GET / HTTP/2.0\r\nHost: echo\r\n\r\n", {400, 505}),
    ("request-line-space-in-target", b"GET /a b HTTP/1.1\r\nHost: echo\r\n\r\n", {400}),
    ("request-target-junk", b"GET junk HTTP/1.1\r\nHost: echo\r\n\r\n", {400}),
    ("http11-without-host", b"GET / HTTP/1.1\r\n\r\n", {400}),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: echo\r\nHost: other\r\n\r\n", {400}),
    ("host-with-userinfo", b"GET / HTTP/1.1\r\nHost: user@echo\r\n\r\n", {400}),
    ("underscore-header-name", post(b"X_Forwarded_For: 1.2.3.4\r\n"), {400}),
    ("header-over-60-kib", post(b"X-Big: " + BIG_VALUE + b"\r\n"), {431}),
    ("headers-over-60-kib-total", post(b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(62))), {431}),
    ("more-than-100-headers", post(b"".join(b"X-H%d: 1\r\n" % i for i in range(101))), {431}),
    ("connect-method", b"CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\n", {400, 405, 501}),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505}),
]


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server("app") as server:
        yield server


@pytest.fixture(scope="module")
def sidecar(echo: EchoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]
    limits = {"request_headers_timeout_s": 1, "idle_timeout_s": 2, "upstream_idle_timeout_s": 60}
    boot = bootstrap(node=NODE, name="echo-v1", app_port=echo.port, static=snapshot(NODE, services), limits=limits)
    with running_sidecar(boot, tmp_path_factory.mktemp("hardening")) as proc:
        yield proc


@pytest.fixture(params=["inbound", "outbound"])
def port(request: pytest.FixtureRequest, sidecar: SidecarProcess, echo: EchoServer) -> int:
    """Each listener's port, with the upstream pool warm and the echo's record empty."""
    listener_port: int = getattr(sidecar, request.param)
    with Client(listener_port) as client:
        assert client.request("GET", "/warm").status == 200
    echo.clear()
    return listener_port


def assert_upstream_saw_only_the_sentinel(port: int, echo: EchoServer, connections_before: int) -> None:
    responses, _, _ = exchange_raw(port, SENTINEL)
    assert [r.status for r in responses] == [200], "the sidecar must still serve after a bad request"
    assert [r.path for r in echo.snapshot()] == ["/sentinel"]
    assert echo.connections == connections_before, "no upstream connection may be opened for a rejected request"


@pytest.mark.parametrize(("case", "raw", "statuses"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_refused_closed_and_never_forwarded(port: int, echo: EchoServer, case: str, raw: bytes, statuses: set[int]) -> None:
    before = echo.connections
    responses, closed, data = exchange_raw(port, raw + GOOD)
    assert len(responses) == 1, data[:500]
    assert responses[0].status in statuses, responses[0].body
    assert responses[0].header("connection") == "close"
    assert responses[0].header("x-meshkit-response-flags") == "DPE"
    assert closed
    assert_upstream_saw_only_the_sentinel(port, echo, before)


def test_bad_chunk_arriving_after_the_head_was_forwarded_aborts_the_upstream_request(port: int, echo: EchoServer) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /streamed HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.2)  # the head and first chunk are on their way upstream
        sock.sendall(b"zz\r\nbad\r\n0\r\n\r\n" + GOOD)
        raw, closed = read_until_close(sock)
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [400]
    assert closed
    responses, _, _ = exchange_raw(port, SENTINEL)
    assert [r.path for r in echo.snapshot()] == ["/sentinel"], "the upstream must not see a complete request"


def test_two_pipelined_good_requests_get_two_responses_in_order(port: int, echo: EchoServer) -> None:
    data = b"GET /one HTTP/1.1\r\nHost: echo\r\n\r\nGET /two HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n"
    responses, closed, _ = exchange_raw(port, data)
    assert [r.json()["path"] for r in responses] == ["/one", "/two"]
    assert closed


def test_good_request_then_bad_one_answers_the_good_then_400(port: int, echo: EchoServer) -> None:
    data = b"GET /first HTTP/1.1\r\nHost: echo\r\n\r\n" + post(b"Content-Length: 1\r\nContent-Length: 2\r\n", b"ab") + GOOD
    responses, closed, _ = exchange_raw(port, data)
    assert [r.status for r in responses] == [200, 400]
    assert closed
    assert [r.path for r in echo.snapshot()] == ["/first"]


def test_slowloris_head_is_cut_off_at_the_request_headers_timeout(port: int, echo: EchoServer) -> None:
    before = echo.connections
    started = time.monotonic()
    with connect(port, timeout=10) as sock:
        closed_at = None
        for byte in b"GET /slow HTTP/1.1\r\nHost: echo\r\nX-Slow: " + b"z" * 100:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if time.monotonic() - started > 6:
                break
        raw, closed = read_until_close(sock, timeout=5)
        closed_at = time.monotonic() - started
    assert closed
    # The timeout is 1 s: allow generous slack, but not the 10 s it would take to send it all.
    assert closed_at < 6
    responses = parse_responses(raw)
    assert [r.status for r in responses] in ([408], [])
    assert_upstream_saw_only_the_sentinel(port, echo, before)


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(port: int) -> None:
    with connect(port, timeout=10) as sock:
        started = time.monotonic()
        raw, closed = read_until_close(sock, timeout=8)
    assert closed and raw == b""
    assert 1.5 < time.monotonic() - started < 8


# --- fuzzing: random byte streams never crash or hang the sidecar ---

SEEDS = [raw for _, raw, _ in CASES] + [GOOD, SENTINEL, b"GET http://echo/x HTTP/1.1\r\nHost: echo\r\n\r\n"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed request with a few bytes replaced, inserted or cut, or plain random bytes."""
    kind = draw(st.sampled_from(["seed", "mutate", "splice", "random"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=400))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "seed":
        return bytes(data)
    if kind == "splice":
        other = draw(st.sampled_from(SEEDS))
        cut = draw(st.integers(0, len(data)))
        return bytes(data[:cut]) + other[draw(st.integers(0, len(other))) :]
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 44, 58, 59, 95, 127, 255, ord("0"), ord("a")]))
        if action == "replace" and data:
            data[position] = byte
        elif action == "insert":
            data.insert(position, byte)
        elif data:
            del data[position]
    return bytes(data)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutated())
def test_random_byte_streams_never_crash_or_hang_the_sidecar(sidecar: SidecarProcess, data: bytes) -> None:
    """A failing stream joins the corpus (tests/fuzz), which replays it on every listener from then on."""
    with connect(sidecar.outbound, timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, closed = read_until_close(sock, timeout=5)
    alive = sidecar.proc is not None and sidecar.proc.poll() is None
    statuses = [r.status for r in exchange_raw(sidecar.outbound, SENTINEL)[0]] if alive else []
    if not (closed and alive and statuses == [200]):
        keep_failure(data)
    assert closed, "the sidecar must close a connection whose client has finished sending"
    assert alive, "the sidecar exited"
    assert statuses == [200]
