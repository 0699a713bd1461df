"""Circuit breakers and timeouts carried out by the exchange, over in-memory transports.

The verdicts are meshkit.core.limits' (tests/unit/test_core_limits.py); these
tests check that the exchange does what they say: a refused request gets
its 503 UO at once and was never sent, a timed-out attempt is abandoned and
answered 504 UT (or retried), a response cut short by the route timeout
closes the client's connection. Real-process versions:
tests/integration/test_traffic_resilience.py and test_sidecar_traffic.py.
"""

from __future__ import annotations


from meshkit.sidecar.downstream import DownstreamProtocol
from meshkit.sidecar.runtime import Sidecar
from tests.unit.sidecar_memory import ECHO, GET, until, Upstreams, connect, endpoint, run, settle, sidecar, snapshot

FLAGS = b"x-meshkit-response-flags: "



def route(extra: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
  - route: [{{destination: {{host: echo}}}}]
    {extra}
"""


def pool(connection_pool: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
    connectionPool: {connection_pool}
"""


def test_requests_over_http2_max_requests_get_503_uo_at_once_and_are_never_sent() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], pool("{http: {http2MaxRequests: 1}}")))
        first, first_wire = connect(car, "outbound")
        second, second_wire = connect(car, "outbound")
        first.data_received(GET)
        await settle()
        second.data_received(GET)
        answer = second_wire.take()
        assert answer.startswith(b"HTTP/1.1 503 ") and FLAGS + b"UO\r\n" in answer
        assert b"1 requests are already in flight, the DestinationRule's http2MaxRequests allows 1." in answer
        assert len(up.conns) == 1  # only the first request went upstream
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert first_wire.take().startswith(b"HTTP/1.1 200 OK")
        # Answered, the first request no longer counts: the next one is admitted.
        second.data_received(GET)
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert second_wire.take().startswith(b"HTTP/1.1 200 OK")

    run(test)


def test_a_request_beyond_http1_max_pending_requests_gets_503_uo() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], pool("{tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}")))
        clients = [connect(car, "outbound") for _ in range(3)]
        clients[0][0].data_received(GET)
        await settle()  # the one connection, busy with the first request
        clients[1][0].data_received(GET)  # waits for it
        clients[2][0].data_received(GET)  # one waiting already: refused
        answer = clients[2][1].take()
        assert answer.startswith(b"HTTP/1.1 503 ") and FLAGS + b"UO\r\n" in answer
        assert b"1 requests already wait for a connection (http1MaxPendingRequests 1, maxConnections 1)." in answer
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # the waiting one got the same connection
        assert [wire.take()[:15] for _, wire in clients[:2]] == [b"HTTP/1.1 200 OK"] * 2
        assert len(up.conns) == 1

    run(test)


def test_the_route_timeout_answers_504_ut_and_abandons_the_attempt() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], route("timeout: 50ms")))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await until(lambda: bool(wire.written))
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 504 ") and FLAGS + b"UT\r\n" in answer
        assert b"within the route timeout of 0.05 s." in answer
        assert up.conns[0][2].aborted
        assert car.telemetry.recent(1)[0]["flags"] == "UT"

    run(test)


def test_the_route_timeout_after_the_head_closes_the_clients_connection() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], route("timeout: 200ms")))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart")
        assert wire.take().startswith(b"HTTP/1.1 200 OK")
        await until(lambda: wire.closing)
        assert up.conns[0][2].aborted and not wire.eof_written  # cut short, not a clean end
        assert car.telemetry.recent(1)[0]["flags"] == "UT"

    run(test)


def test_the_route_timeout_starts_at_the_end_of_the_request_body() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], route("timeout: 200ms")))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        client.data_received(b"POST / HTTP/1.1\r\nhost: %s\r\ncontent-length: 4\r\n\r\nab" % ECHO)
        (exchange,) = client.queue
        await settle()
        assert exchange.route_timer is None  # the body is still arriving
        client.data_received(b"cd")
        assert exchange.route_timer is not None
        await until(lambda: bool(wire.written))
        assert wire.take().startswith(b"HTTP/1.1 504 ")

    run(test)


def test_a_per_try_timeout_is_retried_on_another_endpoint() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(
            snapshot([endpoint(9001), endpoint(9002)], route("retries: {attempts: 1, perTryTimeout: 150ms, retryOn: 5xx}"), pool("{}"))
        )
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await until(lambda: len(up.conns) == 2)
        assert up.conns[0][2].aborted  # the first attempt was abandoned
        assert {up.conns[0][0][1], up.conns[1][0][1]} == {9001, 9002}
        up.answer(1, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert wire.take().startswith(b"HTTP/1.1 200 OK")
        record = car.telemetry.recent(1)[0]
        assert (record["code"], record["retries"], record["flags"]) == (200, 1, "-")

    run(test)


def test_a_per_try_timeout_on_the_last_attempt_answers_504_ut_urx() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001), endpoint(9002)], route("retries: {attempts: 1, perTryTimeout: 30ms, retryOn: 5xx}")))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await until(lambda: bool(wire.written))
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 504 ") and FLAGS + b"UT,URX\r\n" in answer
        assert b"did not answer within the per-try timeout of 0.03 s." in answer
        assert len(up.conns) == 2 and all(conn[2].aborted for conn in up.conns)

    run(test)


# --- the listener's connection limit and the stream idle timeout on request bodies ---


def test_a_connection_over_the_listener_limit_is_closed_at_once_and_counted() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        listener = car.listeners["outbound"]
        listener.max_connections = 2
        kept = [connect(car, "outbound") for _ in range(2)]
        _, refused = connect(car, "outbound")
        assert refused.aborted and refused.data() == b""
        assert listener.stats.cx_overflow == 1
        assert 'meshkit_listener_downstream_cx_overflow{listener="outbound"} 1' in car.telemetry.prometheus(None)
        assert all(not wire.closing for _, wire in kept)
        # One closes: the next connection is kept.
        kept[0][0].connection_lost(None)
        _, again = connect(car, "outbound")
        assert not again.aborted and listener.stats.cx_overflow == 1

    run(test)


def _silent_for(car: Sidecar, listener_name: str, ticks: int) -> None:
    """Let the coarse clock run `ticks` ticks with nothing arriving."""
    for _ in range(ticks):
        car.clock.tick += 1
        car.listeners[listener_name].sweep(car.clock.tick)


POST_HEAD = b"POST /upload HTTP/1.1\r\nhost: %s\r\ncontent-length: 10\r\n\r\n" % ECHO


def test_a_body_that_stops_arriving_gets_408_si_and_its_upstream_connection_and_breaker_slot_are_freed() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], pool("{tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}")))
        listener = car.listeners["outbound"]
        idle = listener.body_idle_ticks
        assert idle is not None
        client, wire = connect(car, "outbound")
        client.data_received(POST_HEAD + b"ab")
        await settle()
        assert len(up.conns) == 1 and up.sent(0).endswith(b"ab")
        _silent_for(car, "outbound", idle)  # silent for exactly the timeout: not yet
        assert wire.data() == b""
        client.data_received(b"cd")  # a byte resets it
        _silent_for(car, "outbound", idle)
        assert wire.data() == b""
        _silent_for(car, "outbound", 1)
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 408 ") and FLAGS + b"SI\r\n" in answer and b"connection: close" in answer
        assert b"stream timeout" in answer
        assert up.conns[0][2].aborted, "the upstream connection with a partial request is dropped, never pooled"
        assert listener.stats.rq_idle_timeout == 1
        (record,) = list(car.telemetry.ring)
        assert (record.code, record.flags, record.response_code_details) == (408, "SI", "stream_idle_timeout")
        assert [c.active_requests for c in car.clusters.clusters.values()] == [0], "the breaker slot is given back"
        # The breaker's one connection and its slot are free: the next request goes at once.
        other, other_wire = connect(car, "outbound")
        other.data_received(GET)
        await settle()
        assert len(up.conns) == 2
        up.answer(1, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert other_wire.take().startswith(b"HTTP/1.1 200 OK")

    run(test)


def test_a_body_is_not_idle_while_the_sidecar_itself_holds_reading() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], pool("{tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}")))
        idle = car.listeners["outbound"].body_idle_ticks
        assert idle is not None
        first, first_wire = connect(car, "outbound")
        first.data_received(GET)
        await settle()  # the one connection is busy
        waiting, wire = connect(car, "outbound")
        waiting.data_received(POST_HEAD + b"ab")  # waits for the connection: reading held
        await settle()
        _silent_for(car, "outbound", idle * 3)
        assert wire.data() == b"", "waiting for a connection is the sidecar's doing, not the client's"
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await settle()
        assert first_wire.take().startswith(b"HTTP/1.1 200 OK")
        waiting.data_received(b"cdefghij")
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert wire.take().startswith(b"HTTP/1.1 200 OK")

    run(test)
