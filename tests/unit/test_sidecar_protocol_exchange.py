"""The exchange's explicit state: its three transition tables walked whole, and a request's real path through them.

Phase is the exchange's life, RequestBody the request side's, Slots what a
routed request holds of its cluster's circuit breakers.
"""

from __future__ import annotations

import asyncio
import itertools
from enum import IntEnum
from typing import Any

import pytest

from meshkit.core.framing import RequestHead, parse_request_head
from meshkit.sidecar.downstream import DownstreamProtocol
from meshkit.sidecar.exchange import (
    ARRIVING,
    BODY_ENTERED_FROM,
    BODY_TRANSITIONS,
    COMPLETE,
    DISPATCHED,
    DONE,
    ENTERED_FROM,
    NO_SLOT,
    QUEUED,
    REQUEST_SLOT,
    RESPONDING,
    RETRY_SLOT,
    SLOT_ENTERED_FROM,
    SLOT_TRANSITIONS,
    STOPPED,
    TRANSITIONS,
    Exchange,
    ExchangeStateError,
    Phase,
    RequestBody,
    Slots,
)
from tests.unit.sidecar_memory import ECHO, Upstreams, connect, endpoint, run, settle, sidecar, snapshot



def a_head() -> RequestHead:
    head = parse_request_head(b"GET", "1.1", b"/", [(b"host", ECHO)])
    assert isinstance(head, RequestHead)
    return head


# Each table, the one state it must end in, and every move it must allow (exactly these).
Table = dict[Any, frozenset[Any]]
TABLES: list[tuple[type[IntEnum], Table, Table, set[IntEnum], set[tuple[IntEnum, IntEnum]]]] = [
    (Phase, TRANSITIONS, ENTERED_FROM, {DONE}, {(QUEUED, DISPATCHED), (DISPATCHED, RESPONDING), (DISPATCHED, DONE), (RESPONDING, DONE)}),
    (RequestBody, BODY_TRANSITIONS, BODY_ENTERED_FROM, {COMPLETE, STOPPED}, {(ARRIVING, COMPLETE), (ARRIVING, STOPPED)}),
    (Slots, SLOT_TRANSITIONS, SLOT_ENTERED_FROM, set(), {(NO_SLOT, REQUEST_SLOT), (REQUEST_SLOT, RETRY_SLOT), (REQUEST_SLOT, NO_SLOT), (RETRY_SLOT, NO_SLOT)}),
]
MOVES = [
    pytest.param(table, backwards, before, after, (before, after) in allowed, id=f"{kind.__name__}:{before.name}->{after.name}")
    for kind, table, backwards, _, allowed in TABLES
    for before, after in itertools.product(kind, kind)
]


@pytest.mark.parametrize(("kind", "table", "final"), [pytest.param(kind, table, final, id=kind.__name__) for kind, table, _, final, _ in TABLES])
def test_each_table_names_every_state_and_only_its_final_ones_lead_nowhere(kind: type[IntEnum], table: Table, final: set[IntEnum]) -> None:
    assert set(table) == set(kind)
    assert {state for state, following in table.items() if not following} == final


@pytest.mark.parametrize(("table", "backwards", "before", "after", "allowed"), MOVES)
def test_each_table_allows_exactly_the_listed_moves_read_both_ways(
    table: Table, backwards: Table, before: IntEnum, after: IntEnum, allowed: bool
) -> None:
    assert (after in table[before]) is allowed
    assert (before in backwards[after]) is allowed


def test_a_second_start_a_second_answer_and_an_answer_after_done_are_refused() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        exchange = Exchange(client, a_head())
        exchange.phase = DISPATCHED
        with pytest.raises(ExchangeStateError, match="from DISPATCHED to DISPATCHED"):
            exchange.start()
        exchange.phase = RESPONDING
        with pytest.raises(ExchangeStateError, match="from RESPONDING to RESPONDING"):
            exchange.respond(200, b"text/plain", b"twice")
        exchange.phase = DONE
        with pytest.raises(ExchangeStateError, match="from DONE to RESPONDING"):
            exchange.respond(200, b"text/plain", b"late")
        assert wire.take() == b""  # a refused move writes nothing

    run(test)


def test_a_relayed_request_goes_queued_dispatched_responding_done_and_the_one_behind_it_waits_queued() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        client.data_received(b"GET /a HTTP/1.1\r\nhost: %s\r\n\r\nGET /b HTTP/1.1\r\nhost: %s\r\n\r\n" % (ECHO, ECHO))
        first, second = list(client.queue)
        assert (first.phase, second.phase) == (DISPATCHED, QUEUED)
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
        assert (first.phase, second.phase) == (RESPONDING, QUEUED)
        up.answer(0, b"cd")
        assert first.phase is DONE and first.finished
        assert second.phase is DISPATCHED and list(client.queue) == [second]

    run(test)


def test_a_request_the_sidecar_answers_itself_ends_done_and_the_next_one_is_served() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        client.data_received(b"GET / HTTP/1.1\r\nhost: nowhere.example\r\n\r\nGET / HTTP/1.1\r\nhost: %s\r\n\r\n" % ECHO)
        assert wire.take().startswith(b"HTTP/1.1 404 ")
        (second,) = client.queue
        assert second.phase is DISPATCHED

    run(test)


def test_a_client_that_leaves_mid_request_ends_its_exchange_done_from_dispatched() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        client.data_received(b"GET / HTTP/1.1\r\nhost: %s\r\n\r\n" % ECHO)
        (exchange,) = client.queue
        await settle()
        wire.lose()
        assert exchange.phase is DONE and exchange.flags == "DC"
        assert up.conns[0][2].aborted  # the upstream work is dropped

    run(test)


def test_the_request_body_ends_once_and_nothing_follows_a_stop() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        ended = Exchange(client, a_head())
        ended.on_request_end()
        with pytest.raises(ExchangeStateError, match="RequestBody cannot go from COMPLETE to COMPLETE"):
            ended.on_request_end()
        refused = Exchange(client, None)  # a head refused: nothing of it is read
        assert refused.request_body is STOPPED
        with pytest.raises(ExchangeStateError, match="RequestBody cannot go from STOPPED to COMPLETE"):
            refused.on_request_end()

    run(test)


def test_a_body_arrives_then_completes_and_a_malformed_one_stops_with_400() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        client.data_received(b"POST / HTTP/1.1\r\nhost: %s\r\ncontent-length: 4\r\n\r\nab" % ECHO)
        (exchange,) = client.queue
        assert exchange.request_body is ARRIVING
        client.data_received(b"cd")
        assert exchange.request_body is COMPLETE
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        assert wire.take().startswith(b"HTTP/1.1 200 OK")
        client.data_received(b"POST / HTTP/1.1\r\nhost: %s\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n" % ECHO)
        (broken,) = client.queue
        assert broken.request_body is ARRIVING
        client.data_received(b"zz\r\n")  # not a chunk size
        assert broken.request_body is STOPPED and broken.phase is DONE
        assert wire.take().startswith(b"HTTP/1.1 400 ")

    run(test)


def test_a_routed_request_holds_a_request_slot_and_after_a_retry_a_retry_slot_until_it_is_answered() -> None:
    retry_on_5xx = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    retries: {attempts: 2, retryOn: 5xx}
"""

    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], retry_on_5xx))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        client.data_received(b"GET / HTTP/1.1\r\nhost: %s\r\n\r\n" % ECHO)
        (exchange,) = client.queue
        cluster = exchange.cluster
        assert cluster is not None
        assert exchange.slots is REQUEST_SLOT and (cluster.active_requests, cluster.active_retries) == (1, 0)
        await settle()
        up.answer(0, b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
        assert exchange.slots is RETRY_SLOT and (cluster.active_requests, cluster.active_retries) == (1, 1)
        with pytest.raises(ExchangeStateError, match="Slots cannot go from RETRY_SLOT to REQUEST_SLOT"):
            exchange._proceed(None, None)
        for _ in range(500):  # the backoff, a real timer of a few ms
            if len(up.conns) == 2:
                break
            await asyncio.sleep(0.002)
        up.answer(1, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert exchange.phase is DONE and exchange.slots is NO_SLOT
        assert (cluster.active_requests, cluster.active_retries) == (0, 0)

    run(test)


def test_a_pooled_connection_found_closed_gets_one_new_connection_not_two() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        client.data_received(b"GET / HTTP/1.1\r\nhost: %s\r\n\r\n" % ECHO)
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        wire.take()
        client.data_received(b"GET / HTTP/1.1\r\nhost: %s\r\n\r\n" % ECHO)  # on the pooled connection
        up.conns[0][2].lose(None)  # the server had closed it
        await settle()
        assert len(up.conns) == 2 and wire.take() == b""
        up.conns[1][2].lose(None)  # the new one closes too: no third
        await settle()
        assert len(up.conns) == 2 and wire.take().startswith(b"HTTP/1.1 503 ")

    run(test)
