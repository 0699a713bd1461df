"""The exchange's explicit state: its transition table walked whole, and a request's real path through it."""

from __future__ import annotations

import itertools

import pytest

from meshkit.core.framing import RequestHead, parse_request_head
from meshkit.sidecar.downstream import DownstreamProtocol
from meshkit.sidecar.exchange import DISPATCHED, DONE, QUEUED, RESPONDING, TRANSITIONS, Exchange, ExchangeStateError, Phase
from tests.unit.sidecar_memory import Upstreams, connect, endpoint, run, settle, sidecar, snapshot

ECHO = b"echo.default.svc.cluster.local"


def a_head() -> RequestHead:
    head = parse_request_head(b"GET", "1.1", b"/", [(b"host", ECHO)])
    assert isinstance(head, RequestHead)
    return head


def test_the_table_names_every_phase_and_only_done_is_final() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert [phase for phase, following in TRANSITIONS.items() if not following] == [DONE]


@pytest.mark.parametrize(("before", "after"), list(itertools.product(Phase, Phase)), ids=lambda p: p.name)
def test_every_move_the_table_allows_is_taken_and_every_other_is_refused(before: Phase, after: Phase) -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, _ = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        exchange = Exchange(client, a_head())
        exchange.phase = before
        if after in TRANSITIONS[before]:
            exchange._enter(after)
            assert exchange.phase is after
        else:
            with pytest.raises(ExchangeStateError, match=f"from {before.name} to {after.name}"):
                exchange._enter(after)
            assert exchange.phase is before

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


def test_a_request_the_sidecar_answers_itself_goes_dispatched_to_done_through_responding() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]))
        client, wire = connect(car, "outbound")
        assert isinstance(client, DownstreamProtocol)
        seen: list[Phase] = []
        enter = Exchange._enter

        def recording(self: Exchange, phase: Phase) -> None:
            seen.append(phase)
            enter(self, phase)

        Exchange._enter = recording  # type: ignore[method-assign]  # observe the moves of this one request
        try:
            client.data_received(b"GET / HTTP/1.1\r\nhost: nowhere.example\r\n\r\n")
        finally:
            Exchange._enter = enter  # type: ignore[method-assign]  # put the real method back
        assert wire.take().startswith(b"HTTP/1.1 404 ")
        assert seen == [DISPATCHED, RESPONDING, DONE]

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
