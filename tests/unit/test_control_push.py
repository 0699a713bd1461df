"""Push timing: the debounce rule as a table, the Publisher on a real event loop, the ACK book."""

from __future__ import annotations

import asyncio
import math

import pytest

from meshkit.control.acks import CONNECTED_WINDOW_S, AckBook
from meshkit.control.push import Publisher, next_wake_at
from meshkit.control.store import State


@pytest.mark.parametrize(
    "first, last, debounce, max_delay, expected",
    [
        pytest.param(10.0, 10.0, 0.005, 0.05, 10.005, id="a lone change is published one debounce later"),
        pytest.param(10.0, 10.003, 0.005, 0.05, 10.008, id="a change inside the window extends it"),
        pytest.param(10.0, 10.048, 0.005, 0.05, 10.05, id="a long burst is cut at max_delay after its first change"),
        pytest.param(10.0, 10.0, 0.0, 0.0, 10.0, id="no debounce publishes at once"),
    ],
)
def test_next_wake_at(first: float, last: float, debounce: float, max_delay: float, expected: float) -> None:
    assert math.isclose(next_wake_at(first, last, debounce, max_delay), expected)


async def never() -> None:
    await asyncio.Event().wait()


def versioned(version: int) -> State:
    return State(version=version)


def test_a_burst_of_commits_is_published_once_as_the_last_state() -> None:
    async def scenario() -> tuple[list[int], bool]:
        publisher = Publisher(versioned(0), debounce=0.05)
        seen: list[int] = []

        async def sidecar() -> None:
            if await publisher.wait_for_change(0, 5.0, never()):
                seen.append(publisher.published.version)

        task = asyncio.ensure_future(sidecar())
        await asyncio.sleep(0)
        for version in range(1, 11):
            publisher.committed(versioned(version))
        published_early = publisher.published.version != 0
        await asyncio.wait_for(task, 5.0)
        return seen, published_early

    seen, published_early = asyncio.run(scenario())
    assert published_early is False, "commits inside the debounce window must not be published yet"
    assert seen == [10]


def test_a_waiter_whose_version_is_already_old_returns_at_once() -> None:
    async def scenario() -> bool:
        publisher = Publisher(versioned(7))
        return await asyncio.wait_for(publisher.wait_for_change(6, 30.0, never()), 1.0)

    assert asyncio.run(scenario()) is True


def test_no_change_times_out_with_false() -> None:
    async def scenario() -> bool:
        return await Publisher(versioned(3)).wait_for_change(3, 0.05, never())

    assert asyncio.run(scenario()) is False


def test_a_disconnected_client_stops_waiting() -> None:
    async def scenario() -> bool:
        gone = asyncio.Event()
        publisher = Publisher(versioned(3))
        waiter = asyncio.ensure_future(publisher.wait_for_change(3, 30.0, gone.wait()))
        await asyncio.sleep(0.01)
        gone.set()
        return await asyncio.wait_for(waiter, 2.0)

    assert asyncio.run(scenario()) is False


def test_close_releases_every_waiter() -> None:
    async def scenario() -> list[bool]:
        publisher = Publisher(versioned(3))
        waiters = [asyncio.ensure_future(publisher.wait_for_change(3, 30.0, never())) for _ in range(5)]
        await asyncio.sleep(0.01)
        publisher.close()
        return list(await asyncio.wait_for(asyncio.gather(*waiters), 2.0))

    assert asyncio.run(scenario()) == [False] * 5


def book_with_versions(*versions: tuple[int, float]) -> AckBook:
    book = AckBook()
    for version, mono in versions:
        book.committed(version, at=1000.0 + mono, mono=mono)
    return book


def test_an_ack_records_ms_from_commit_for_every_version_it_covers() -> None:
    book = book_with_versions((1, 0.0), (2, 1.0), (3, 2.0))
    book.ack("ns/a", 1, now=1000.0, mono=0.010)
    book.ack("ns/a", 3, now=1002.0, mono=2.020)
    pushes = book.pushes(limit=10)
    assert [p["acks"] for p in pushes] == [{"ns/a": 10.0}, {"ns/a": 1020.0}, {"ns/a": 20.0}]
    assert pushes[0]["at"] == 1000.0


def test_a_first_ack_counts_only_for_its_own_version() -> None:
    book = book_with_versions((1, 0.0), (2, 1.0))
    book.ack("ns/new", 2, now=1001.0, mono=1.005)
    assert [p["acks"] for p in book.pushes(limit=10)] == [{}, {"ns/new": 5.0}]


def test_a_nack_is_recorded_with_its_reason_and_cleared_by_a_newer_ack() -> None:
    book = book_with_versions((1, 0.0), (2, 1.0), (3, 2.0))
    book.ack("ns/a", 1, now=1000.0, mono=0.0)
    book.nack("ns/a", 2, "unknown key 'routes'", now=1001.0)
    status = book.status(2, ["ns/a"], now=1001.0)["nodes"]["ns/a"]
    assert (status["acked"], status["nacked"], status["reason"]) == (1, 2, "unknown key 'routes'")
    assert book.pushes(limit=10)[1]["nacks"] == {"ns/a": "unknown key 'routes'"}
    book.ack("ns/a", 3, now=1002.0, mono=2.0)
    status = book.status(3, ["ns/a"], now=1002.0)["nodes"]["ns/a"]
    assert (status["acked"], status["nacked"], status["reason"]) == (3, None, None)


def test_connected_means_a_poll_is_open_or_the_node_was_seen_recently() -> None:
    book = AckBook()
    book.poll_opened("ns/a", now=0.0)
    assert book.status(0, ["ns/a"], now=1000.0)["nodes"]["ns/a"]["connected"] is True
    book.poll_closed("ns/a", now=10.0)
    assert book.status(0, ["ns/a"], now=10.0 + CONNECTED_WINDOW_S)["nodes"]["ns/a"]["connected"] is True
    assert book.status(0, ["ns/a"], now=10.1 + CONNECTED_WINDOW_S)["nodes"]["ns/a"]["connected"] is False
    never_seen = book.status(0, ["ns/b"], now=0.0)["nodes"]["ns/b"]
    assert never_seen == {"acked": 0, "nacked": None, "reason": None, "connected": False, "last_seen": None}


def test_history_is_bounded_and_filtered() -> None:
    book = AckBook(history=3)
    for version in range(1, 6):
        book.committed(version, at=float(version), mono=float(version))
    assert [p["version"] for p in book.pushes(limit=10)] == [3, 4, 5]
    assert [p["version"] for p in book.pushes(limit=2)] == [4, 5]
    assert [p["version"] for p in book.pushes(limit=10, since=4)] == [4, 5]


def test_node_reports_survive_a_round_trip_but_not_their_open_polls() -> None:
    book = book_with_versions((1, 0.0), (2, 1.0))
    book.ack("ns/a", 2, now=1001.0, mono=1.0)
    book.nack("ns/b", 2, "bad", now=1002.0)
    book.poll_opened("ns/a", now=1003.0)
    again = AckBook()
    again.load_reports(book.reports_to_json(), version=2)
    assert again.status(2, ["ns/a", "ns/b"], now=1003.0) == {"version": 2, "nodes": {
        "ns/a": {"acked": 2, "nacked": None, "reason": None, "connected": True, "last_seen": 1003.0},
        "ns/b": {"acked": 0, "nacked": 2, "reason": "bad", "connected": True, "last_seen": 1002.0},
    }}
    assert again.nodes["ns/a"].open_polls == 0


def test_reports_of_another_store_or_of_the_wrong_shape_are_dropped() -> None:
    saved = {
        "ns/newer": {"acked": 9, "nacked": None, "reason": None, "last_seen": 1.0},
        "ns/nacked-newer": {"acked": 1, "nacked": 9, "reason": "x", "last_seen": 1.0},
        "ns/broken": {"acked": "lots"},
        "ns/fine": {"acked": 3, "nacked": None, "reason": None, "last_seen": None},
    }
    book = AckBook()
    book.load_reports(saved, version=3)
    assert list(book.nodes) == ["ns/fine"]
    book.load_reports(["not", "a", "mapping"], version=3)
    assert list(book.nodes) == ["ns/fine"]
