"""Config from a control plane: long poll, validation, ACK/NACK, reconnect with backoff.

The control plane here is the test-only stand-in in sidecar_fixtures, which
speaks the documented protocol; the real one is exercised by the lab tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sidecar_fixtures import (
    Client,
    EchoServer,
    SidecarProcess,
    StandInControlPlane,
    bootstrap,
    echo_server,
    endpoint,
    get_json,
    running_sidecar,
    service,
    snapshot,
    stand_in_control_plane,
    wait_for,
)

NODE = "default/client-0"
TOKEN = "node-token-123"


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with echo_server("echo") as server:
        yield server


@pytest.fixture
def control() -> Iterator[StandInControlPlane]:
    with stand_in_control_plane(TOKEN) as server:
        yield server


@pytest.fixture
def sidecar(control: StandInControlPlane, tmp_path: Path) -> Iterator[SidecarProcess]:
    boot = bootstrap(node=NODE, control_plane={"url": control.url, "token": TOKEN})
    with running_sidecar(boot, tmp_path) as proc:
        yield proc


def good(echo: EchoServer, version: int) -> dict:
    return snapshot(NODE, [service("echo", [endpoint(echo.port, "echo-v1", "v1")])], version=version)


def acks(control: StandInControlPlane) -> list[tuple[int, str]]:
    return [(a["version"], a["status"]) for a in control.acks]


def ready(sidecar: SidecarProcess) -> bool:
    with Client(sidecar.admin) as client:
        return client.request("GET", "/ready", {"host": "admin"}).status == 200


def test_snapshot_is_applied_and_acked_and_traffic_follows(control: StandInControlPlane, sidecar: SidecarProcess, echo: EchoServer) -> None:
    assert not ready(sidecar)
    control.publish(good(echo, 3))
    assert wait_for(lambda: acks(control) == [(3, "ACK")])
    # Ready means config applied *and* a certificate held; the key and CSR come
    # from a short-lived child (meshkit.security.keygen), which may finish after the ACK.
    assert wait_for(lambda: ready(sidecar))
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/x").status == 200
    assert control.acks[0]["node"] == NODE
    assert all(version in ("0", "3") for _, version in control.polls)
    assert sidecar.wait_log(r"config version 3 applied")


def test_unknown_top_level_key_is_nacked_by_name_and_the_last_good_config_keeps_serving(
    control: StandInControlPlane, sidecar: SidecarProcess, echo: EchoServer
) -> None:
    control.publish(good(echo, 1))
    assert wait_for(lambda: acks(control) == [(1, "ACK")])
    control.publish({**snapshot(NODE, [], version=2), "routes": {}})
    assert wait_for(lambda: len(control.acks) == 2)
    nack = control.acks[1]
    assert (nack["version"], nack["status"]) == (2, "NACK")
    assert "routes" in nack["reason"]
    dump = get_json(sidecar.admin, "/config_dump")
    assert dump["version"] == 1 and "routes" in dump["last_nack"]["reason"]
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/still-v1").status == 200
    control.publish(good(echo, 3))
    assert wait_for(lambda: acks(control)[-1:] == [(3, "ACK")])


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda doc: doc["services"]["echo.default.svc.cluster.local"]["endpoints"][0].update(port="80"), "endpoints[0].port"),
        (lambda doc: doc.update(node="default/someone-else"), "someone-else"),
        (lambda doc: doc["services"]["echo.default.svc.cluster.local"].pop("name"), "name"),
    ],
    ids=["port-not-a-number", "wrong-node", "missing-name"],
)
def test_malformed_snapshot_is_nacked_with_the_field(control: StandInControlPlane, sidecar: SidecarProcess, echo: EchoServer, mutation, expected: str) -> None:
    doc = good(echo, 5)
    mutation(doc)
    control.publish(doc)
    assert wait_for(lambda: len(control.acks) == 1)
    assert control.acks[0]["status"] == "NACK" and expected in control.acks[0]["reason"]
    assert not ready(sidecar)
    assert sidecar.wait_log(r"config version 5 rejected")


def test_lost_control_plane_means_backoff_and_the_last_config_keeps_serving(
    control: StandInControlPlane, sidecar: SidecarProcess, echo: EchoServer
) -> None:
    control.publish(good(echo, 1))
    assert wait_for(lambda: acks(control) == [(1, "ACK")])
    control.down = True
    control.publish(good(echo, 2))  # nobody can fetch it while down
    assert sidecar.wait_log(r"control plane lost", timeout=5)
    start = len(control.attempts)
    wait_for(lambda: False, timeout=3.0)
    attempts = len(control.attempts) - start
    # Full jitter from 0.1 s doubling to a 5 s cap: a handful of attempts in 3 s, not hundreds.
    assert 2 <= attempts <= 40, attempts
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/while-down").status == 200
    control.down = False
    assert wait_for(lambda: acks(control)[-1:] == [(2, "ACK")], timeout=10)
    assert sidecar.wait_log(r"control plane regained")


def test_wrong_token_is_reported_once_and_the_sidecar_stays_not_ready(control: StandInControlPlane, echo: EchoServer, tmp_path: Path) -> None:
    control.publish(good(echo, 1))
    boot = bootstrap(node=NODE, control_plane={"url": control.url, "token": "wrong"})
    with running_sidecar(boot, tmp_path) as proc:
        assert proc.wait_log(r"refused the snapshot request \(401")
        wait_for(lambda: False, timeout=1.0)
        assert proc.log().count("refused the snapshot request") == 1
        assert not ready(proc)


def test_new_snapshot_swaps_in_while_requests_are_in_flight_and_none_fail(control: StandInControlPlane, sidecar: SidecarProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with echo_server("old") as old, echo_server("new") as new, ThreadPoolExecutor(6) as pool:
        control.publish(snapshot(NODE, [service("echo", [endpoint(old.port, "echo-old", "v1")])], version=1))
        assert wait_for(lambda: acks(control) == [(1, "ACK")])

        def one(delay_ms: int) -> tuple[int, str | None]:
            with Client(sidecar.outbound) as client:
                response = client.request("GET", "http://echo/x", {"x-echo-delay-ms": str(delay_ms)})
            return response.status, response.header("x-echo-server")

        def steady() -> list[tuple[int, str | None]]:
            results = []
            with Client(sidecar.outbound) as client:
                for _ in range(40):
                    response = client.request("GET", "http://echo/steady", {"x-echo-delay-ms": "20"})
                    results.append((response.status, response.header("x-echo-server")))
            return results

        slow = [pool.submit(one, 700) for _ in range(4)]
        running = pool.submit(steady)
        assert wait_for(lambda: len([r for r in old.snapshot() if r.path == "/x"]) == 4)
        control.publish(snapshot(NODE, [service("echo", [endpoint(new.port, "echo-new", "v2")])], version=2))
        assert wait_for(lambda: acks(control)[-1:] == [(2, "ACK")])
        in_flight = [f.result(timeout=10) for f in slow]
        stream = running.result(timeout=20)
        after = one(0)
    assert in_flight == [(200, "old")] * 4, "requests in flight keep the snapshot they started with"
    assert all(status == 200 for status, _ in stream)
    assert {server for _, server in stream} <= {"old", "new"}
    assert after == (200, "new")
