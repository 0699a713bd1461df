"""HTTP/1.1 framing and pipelining through the sidecar's protocol objects, bytes in and bytes out.

The outbound listener's `DownstreamProtocol` is fed what an app would send;
the test plays the endpoint over an in-memory upstream connection
(tests/unit/sidecar_memory.py). The same behaviours are proven against real
processes in tests/integration/test_sidecar_forwarding.py and
test_http1_hardening.py; here each costs no process and no socket.
"""

from __future__ import annotations


from tests.unit.sidecar_memory import ECHO, Upstreams, connect, endpoint, run, settle, sidecar, snapshot



def test_a_content_length_request_goes_up_and_its_answer_comes_back() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"POST /items HTTP/1.1\r\nhost: %s\r\ncontent-length: 5\r\n\r\nhello" % ECHO)
        await settle()
        assert len(up.conns) == 1 and up.conns[0][0] == ("127.0.0.1", 9001)
        sent = up.sent(0)
        assert sent.startswith(b"POST /items HTTP/1.1\r\n") and sent.endswith(b"\r\n\r\nhello")
        assert b"content-length: 5\r\n" in sent.lower()
        up.answer(0, b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 201 Created\r\n") and answer.endswith(b"\r\n\r\nok")
        assert b"connection: close" not in answer.lower() and not wire.closing
        record = car.telemetry.recent(1)[0]
        assert (record["code"], record["flags"], record["retries"]) == (201, "-", 0), record

    run(test)


def test_a_chunked_request_is_relayed_chunked_and_a_chunked_answer_too() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"POST / HTTP/1.1\r\nhost: %s\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n" % ECHO)
        await settle()
        client.data_received(b"2\r\nde\r\n0\r\n\r\n")
        sent = up.sent(0)
        assert b"transfer-encoding: chunked\r\n" in sent.lower()
        assert sent.endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        up.answer(0, b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nwxyz\r\n")
        up.answer(0, b"0\r\n\r\n")
        answer = wire.take()
        assert b"transfer-encoding: chunked\r\n" in answer.lower()
        assert answer.endswith(b"\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n")

    run(test)


def test_conflicting_framing_is_400_with_close_and_nothing_goes_upstream() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(
            b"POST / HTTP/1.1\r\nhost: %s\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" % ECHO
        )
        await settle()
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 400 ") and b"connection: close\r\n" in answer.lower()
        assert wire.eof_written and up.conns == []

    run(test)


def test_a_malformed_content_length_is_400() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"POST / HTTP/1.1\r\nhost: %s\r\ncontent-length: 1x\r\n\r\n" % ECHO)
        await settle()
        assert wire.take().startswith(b"HTTP/1.1 400 ") and up.conns == []

    run(test)


def test_two_requests_in_one_read_are_answered_in_order_over_one_upstream_connection() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"GET /first HTTP/1.1\r\nhost: %s\r\n\r\nGET /second HTTP/1.1\r\nhost: %s\r\n\r\n" % (ECHO, ECHO))
        await settle()
        # The second waits its turn: reading is paused and only the first went up.
        assert wire.read_calls == ["pause"]
        assert up.sent(0).startswith(b"GET /first ") and b"/second" not in up.sent(0)
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst")
        await settle()
        # The connection went back to the pool and carried the second request.
        assert len(up.conns) == 1 and b"GET /second " in up.sent(0)
        assert wire.read_calls == ["pause", "resume"]
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond")
        answer = wire.take()
        assert answer.index(b"first") < answer.index(b"second") and answer.count(b"HTTP/1.1 200 OK") == 2

    run(test)


def test_a_request_after_a_malformed_one_in_the_same_read_is_never_forwarded() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"GET /ok HTTP/1.1\r\nhost: %s\r\n\r\nGET /bad HTTP/1.1\r\nhost\r\n\r\nGET /never HTTP/1.1\r\nhost: %s\r\n\r\n" % (ECHO, ECHO))
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await settle()
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 400 " in answer
        assert b"/never" not in up.sent(0) and len(up.conns) == 1

    run(test)
