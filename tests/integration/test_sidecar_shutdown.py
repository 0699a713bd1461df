"""SIGTERM: stop accepting, let requests in flight finish, close, exit 0."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.sidecar_fixtures import (
    Client,
    Response,
    bootstrap,
    connect,
    echo_server,
    endpoint,
    read_until_close,
    running_sidecar,
    service,
    snapshot,
    wait_for,
)

NODE = "default/client-0"


def slow_request(port: int, delay_ms: int) -> Response:
    with Client(port) as client:
        return client.request("GET", "http://echo/slow", {"x-echo-delay-ms": str(delay_ms)})


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_sigterm_lets_requests_in_flight_finish_then_exits_zero(tmp_path: Path) -> None:
    with echo_server() as echo:
        boot = bootstrap(node=NODE, static=snapshot(NODE, [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]))
        with running_sidecar(boot, tmp_path) as proc, ThreadPoolExecutor(3) as pool:
            idle = connect(proc.outbound)
            futures = [pool.submit(slow_request, proc.outbound, 1500) for _ in range(3)]
            assert wait_for(lambda: len(echo.snapshot()) == 3)
            assert proc.proc is not None
            proc.proc.terminate()
            assert wait_for(lambda: refused(proc.outbound), timeout=3), "new connections must be refused once draining"
            _, idle_closed = read_until_close(idle, timeout=3)
            idle.close()
            responses = [f.result(timeout=10) for f in futures]
            status = proc.proc.wait(10)
    assert idle_closed, "an idle keep-alive connection is closed at once"
    assert [r.status for r in responses] == [200, 200, 200]
    assert all(r.header("connection") == "close" for r in responses)
    assert status == 0
    assert "stopped" in proc.log()


@pytest.mark.timeout(30)
def test_requests_longer_than_the_drain_timeout_are_cut_and_the_exit_is_still_clean(tmp_path: Path) -> None:
    with echo_server() as echo:
        services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]
        boot = bootstrap(node=NODE, static=snapshot(NODE, services), limits={"drain_timeout_s": 1})
        with running_sidecar(boot, tmp_path) as proc:
            sock = connect(proc.outbound, timeout=10)
            sock.sendall(b"GET http://echo/forever HTTP/1.1\r\nHost: echo\r\nx-echo-delay-ms: 20000\r\n\r\n")
            assert wait_for(lambda: len(echo.snapshot()) == 1)
            started = time.monotonic()
            assert proc.proc is not None
            proc.proc.terminate()
            status = proc.proc.wait(10)
            elapsed = time.monotonic() - started
            raw, closed = read_until_close(sock, timeout=3)
            sock.close()
    assert status == 0
    assert elapsed < 8
    assert closed and raw == b""
