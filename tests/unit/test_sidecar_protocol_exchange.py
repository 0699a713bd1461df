"""The exchange's explicit state: its transition table walked whole, and a request's real path through it."""

from __future__ import annotations

import itertools

import pytest

from meshkit.core.framing import RequestHead, parse_request_head
from meshkit.sidecar.downstream import DownstreamProtocol
from meshkit.sidecar.exchange import DISPATCHED, DONE, ENTERED_FROM, QUEUED, RESPONDING, TRANSITIONS, Exchange, ExchangeStateError, Phase
from tests.unit.sidecar_memory import Upstreams, connect, endpoint, run, settle, sidecar, snapshot

ECHO = b"echo.default.svc.cluster.local"


def a_head() -> RequestHead:
    head = parse_request_head(b"GET", "1.1", b"/", [(b"host", ECHO)])
    assert isinstance(head, RequestHead)
    return head


def test_the_table_names_every_phase_and_only_done_is_final() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert [phase for phase, following in TRANSITIONS.items() if not following] == [DONE]


# Every move an exchange may make; the table must say exactly these.
ALLOWED = {(QUEUED, DISPATCHED), (DISPATCHED, RESPONDING), (DISPATCHED, DONE), (RESPONDING, DONE)}


@pytest.mark.parametrize(("before", "after"), list(itertools.product(Phase, Phase)), ids=lambda p: p.name)
def test_the_table_allows_exactly_the_listed_moves_read_both_ways(before: Phase, after: Phase) -> None:
    allowed = (before, after) in ALLOWED
    assert (after in TRANSITIONS[before]) is allowed
    assert (before in ENTERED_FROM[after]) is allowed


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
