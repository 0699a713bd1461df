"""Back-pressure and retries through the sidecar's protocol objects, over in-memory transports.

Flow control: a reader slower than its writer makes asyncio call
pause_writing on the protocol that writes; the sidecar then stops reading
the socket that feeds it (pause_reading) until the buffer drains
(resume_writing -> resume_reading). The retry path: an endpoint that
resets or fails is tried again on another endpoint, as the route's policy
says. Real-process versions: tests/integration/test_sidecar_streaming.py
and test_sidecar_traffic.py.
"""

from __future__ import annotations

import asyncio

from tests.unit.sidecar_memory import ECHO, GET, until, Upstreams, connect, endpoint, run, settle, sidecar, snapshot




def retries(policy: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
  - route: [{{destination: {{host: echo}}}}]
    retries: {policy}
"""


ROUND_ROBIN = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
"""


def test_a_slow_client_pauses_reading_from_the_endpoint_until_it_catches_up() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await settle()
        upstream = up.conns[0][2]
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n" + b"x" * 32768)
        assert upstream.read_calls == []
        up.answer(0, b"x" * 40000)  # the client's buffer passes 64 KiB
        assert wire.writing_paused and upstream.read_calls == ["pause"]
        wire.drain_writes()
        assert upstream.read_calls == ["pause", "resume"]
        up.answer(0, b"x" * (200000 - 72768))
        wire.drain_writes()
        assert wire.take().endswith(b"x" * 1000) and car.telemetry.recent(1)[0]["code"] == 200

    run(test)


def test_a_slow_endpoint_pauses_reading_from_the_client_until_it_catches_up() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"POST / HTTP/1.1\r\nhost: %s\r\ncontent-length: 300000\r\n\r\n" % ECHO)
        await settle()
        upstream = up.conns[0][2]
        assert wire.read_calls == ["pause", "resume"]  # held while the connection was made
        client.data_received(b"y" * 70000)
        assert upstream.writing_paused and wire.read_calls == ["pause", "resume", "pause"]
        upstream.drain_writes()
        assert wire.read_calls == ["pause", "resume", "pause", "resume"]

    run(test)


def test_an_endpoint_that_resets_is_retried_on_another_endpoint() -> None:
    async def test(up: Upstreams) -> None:
        # Round robin: the retry's pick is the other endpoint (with a random
        # balancer Istio's previous-hosts predicate only makes that likely).
        car = sidecar(snapshot([endpoint(9001), endpoint(9002)], retries("{attempts: 2, retryOn: reset}"), ROUND_ROBIN))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await settle()
        first_port = up.conns[0][0][1]
        up.conns[0][2].lose(ConnectionResetError())
        await until(lambda: len(up.conns) == 2)
        assert up.conns[1][0][1] == ({9001, 9002} - {first_port}).pop()
        assert up.sent(1).startswith(b"GET / HTTP/1.1\r\n")
        up.answer(1, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert wire.take().startswith(b"HTTP/1.1 200 OK")
        record = car.telemetry.recent(1)[0]
        assert (record["code"], record["retries"], record["flags"]) == (200, 1, "-")

    run(test)


def test_a_5xx_answer_is_dropped_and_retried_when_the_policy_says_5xx() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001), endpoint(9002)], retries("{attempts: 1, retryOn: 5xx}")))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await settle()
        up.answer(0, b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
        assert wire.take() == b""  # the answer is not relayed: a retry follows
        await until(lambda: len(up.conns) == 2)
        up.answer(1, b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
        # Out of attempts: the last answer goes to the client, flagged URX.
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"x-meshkit-response-flags: URX\r\n" in answer
        record = car.telemetry.recent(1)[0]
        assert (record["code"], record["retries"], record["flags"]) == (503, 1, "URX")

    run(test)


def test_refused_connections_end_in_503_uf_urx_after_the_default_two_retries() -> None:
    async def test(up: Upstreams) -> None:
        up.refuse = {9001}
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(GET)
        await until(lambda: bool(wire.written))
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"UF,URX" in answer
        record = car.telemetry.recent(1)[0]
        assert (record["code"], record["retries"], record["flags"]) == (503, 2, "UF,URX")

    run(test)
