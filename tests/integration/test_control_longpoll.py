"""Long-poll push, ACK/NACK and push timing against a real control plane process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from meshkit.errors import ControlPlaneError
from tests.integration.control_fixtures import (  # noqa: F401
    PROMPT_S,
    VIRTUAL_SERVICE,
    ControlProcess,
    control,
    instance,
    start,
    wait_until_polling,
)


def poll(control: ControlProcess, token: str, node: str, version: int | None, wait: float) -> httpx.Response:
    params = {"node": node, "wait": str(wait)}
    if version is not None:
        params["version"] = str(version)
    with control.http(token, timeout=wait + 10) as http:
        return http.get("/v1/snapshot", params=params)


def ack(control: ControlProcess, token: str, node: str, version: int, status: str = "ACK", reason: str | None = None) -> None:
    with control.http(token) as http:
        answer = http.post("/v1/ack", json={"node": node, "version": version, "status": status, "reason": reason})
    assert answer.status_code == 200, answer.text


def test_a_poll_with_an_old_or_no_version_answers_at_once(control: ControlProcess) -> None:
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
        client.put_resource(VIRTUAL_SERVICE)
    for version in (None, 0, 1, 99):
        started = time.monotonic()
        answer = poll(control, token, "default/reviews-v1-0", version, wait=30)
        assert answer.status_code == 200
        assert time.monotonic() - started < PROMPT_S
        assert answer.json()["version"] == 2
        assert "reviews.default.svc.cluster.local" in answer.json()["services"]


def test_a_poll_at_the_current_version_is_answered_when_it_changes(control: ControlProcess) -> None:
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            waiting = pool.submit(poll, control, token, "default/reviews-v1-0", 1, 30)
            wait_until_polling(control, ["default/reviews-v1-0"])
            assert not waiting.done()
            assert client.status()["nodes"]["default/reviews-v1-0"]["connected"] is True
            client.put_instance(instance("reviews-v2-0", 41001))
            answer = waiting.result(timeout=PROMPT_S)
            assert time.monotonic() - started < PROMPT_S
    assert answer.status_code == 200
    assert answer.json()["version"] == 2
    endpoints = answer.json()["services"]["reviews.default.svc.cluster.local"]["endpoints"]
    assert [e["instance"] for e in endpoints] == ["reviews-v1-0", "reviews-v2-0"]


def test_a_poll_without_change_is_304_after_its_wait(control: ControlProcess) -> None:
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
    started = time.monotonic()
    answer = poll(control, token, "default/reviews-v1-0", 1, wait=0.3)
    assert answer.status_code == 304 and answer.content == b""
    assert time.monotonic() - started >= 0.25


def test_ten_polling_sidecars_all_get_a_change_and_their_acks_are_timed(control: ControlProcess) -> None:
    nodes = [f"default/reviews-v1-{i}" for i in range(10)]
    with control.client() as client:
        tokens = {n: client.put_instance(instance(n.split("/")[1], 41000 + i))["node_token"] for i, n in enumerate(nodes)}
        version = client.healthz()["version"]
        with ThreadPoolExecutor(len(nodes)) as pool:
            waiting = {n: pool.submit(poll, control, tokens[n], n, version, 30) for n in nodes}
            wait_until_polling(control, nodes)
            changed = client.put_resource(VIRTUAL_SERVICE)["version"]
            answers = {n: f.result(timeout=PROMPT_S) for n, f in waiting.items()}
        assert {n: (a.status_code, a.json()["version"]) for n, a in answers.items()} == {n: (200, changed) for n in nodes}
        for n in nodes:
            ack(control, tokens[n], n, changed)
        times = client.wait_acked(changed, timeout=PROMPT_S)
        assert sorted(times) == nodes, "by default every connected node is waited for"
        assert all(math.isfinite(ms) and ms >= 0 for ms in times.values())
        push = client.pushes(limit=1)[0]
        assert push["version"] == changed and push["nacks"] == {}
        assert push["acks"] == times
        assert {n: s["acked"] for n, s in client.status()["nodes"].items()} == {n: changed for n in nodes}


def test_a_nack_is_recorded_with_its_reason_and_changes_nothing(control: ControlProcess) -> None:
    node = "default/reviews-v1-0"
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
        ack(control, token, node, 1)
        version = client.put_resource(VIRTUAL_SERVICE)["version"]
        store_before = (control.home / "store.json").read_bytes()
        ack(control, token, node, version, "NACK", "unknown snapshot key 'routes'")
        status = client.status()
        assert status["version"] == version
        assert status["nodes"][node] | {"last_seen": None, "connected": None} == {
            "acked": 1, "nacked": version, "reason": "unknown snapshot key 'routes'", "last_seen": None, "connected": None}
        assert client.pushes(limit=1)[0]["nacks"] == {node: "unknown snapshot key 'routes'"}
        assert (control.home / "store.json").read_bytes() == store_before
        assert client.resources() == [VIRTUAL_SERVICE]
        with pytest.raises(ControlPlaneError, match=r"default/reviews-v1-0 rejected version 2: unknown snapshot key 'routes'"):
            client.wait_acked(version, nodes=[node], timeout=PROMPT_S)


def test_wait_acked_names_the_nodes_that_did_not_ack(control: ControlProcess) -> None:
    with control.client() as client:
        client.put_instance(instance("reviews-v1-0", 41000))
        version = client.put_resource(VIRTUAL_SERVICE)["version"]
        with pytest.raises(ControlPlaneError, match=r"within 0.2 s: default/reviews-v1-0 is at version 0"):
            client.wait_acked(version, nodes=["default/reviews-v1-0"], timeout=0.2)
        with pytest.raises(ControlPlaneError, match="unknown node.*default/typo-0"):
            client.wait_acked(version, nodes=["default/typo-0"])


def test_bad_ack_and_poll_requests_are_400(control: ControlProcess) -> None:
    node = "default/reviews-v1-0"
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
    with control.http(token) as http:
        for body in ({"node": node, "version": "1", "status": "ACK"}, {"node": node, "version": 1, "status": "OK"},
                     {"node": node, "version": 9, "status": "ACK"}, [node]):
            assert http.post("/v1/ack", json=body).status_code == 400, body
        for params in ({"node": node, "version": "-1"}, {"node": node, "wait": "nan"}, {"version": "1"}):
            answer = http.get("/v1/snapshot", params=params)
            assert answer.status_code == 400, params
            assert answer.json()["error"].startswith("query parameter")


@pytest.fixture
def slow_debounce(tmp_path: Path) -> Iterator[ControlProcess]:
    running = start(tmp_path / "home", "--debounce-ms", "400")
    try:
        yield running
    finally:
        running.stop()


def test_a_burst_of_changes_reaches_a_sidecar_as_one_snapshot(slow_debounce: ControlProcess) -> None:
    control = slow_debounce
    node = "default/reviews-v1-0"
    received: list[int] = []
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
        synced: int | None = None
        while synced != 1:  # catch up with the registration's own (debounced) push first
            synced = poll(control, token, node, synced, wait=10).json()["version"]

        def sidecar() -> None:
            answer = poll(control, token, node, 1, wait=10)
            received.append(answer.json()["version"])

        thread = threading.Thread(target=sidecar)
        thread.start()
        try:
            wait_until_polling(control, [node])
            for i in range(10):
                last = client.put_resource({**VIRTUAL_SERVICE, "metadata": {"name": f"vs-{i}"}})["version"]
        finally:
            thread.join(PROMPT_S + 10)
    assert received == [last] == [11]
