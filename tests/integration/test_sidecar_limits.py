"""Issue 14's limits on a real sidecar: accepting under EMFILE, and the stream idle timeout on request bodies.

The sidecar under EMFILE is started with a descriptor limit of 256
(RLIMIT_NOFILE, set in the child before exec) and given 400 connections on
its inbound port: it must not spin (its CPU time is read from /proc while
they are open), must say so in its log at most about once a second, and
must serve again as soon as they close.
"""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sidecar_fixtures import (
    START_TIMEOUT_S,
    Client,
    EchoServer,
    SidecarProcess,
    admin_headers,
    bootstrap,
    echo_server,
    endpoint,
    running_sidecar,
    service,
    snapshot,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads CPU time from /proc")

NODE = "default/echo-v1-0"
NOFILE = 256
CONNECTIONS = 400
_ACCEPT_ERROR = "inbound listener cannot accept"


class LimitedSidecar(SidecarProcess):
    """A sidecar process whose descriptor limit is NOFILE."""

    def start(self) -> SidecarProcess:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshkit.sidecar", "--bootstrap", str(self.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._listening.wait(START_TIMEOUT_S):
            self.kill()
            raise RuntimeError("sidecar did not start:\n" + self.log())
        return self


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(sidecar: SidecarProcess, metric: str, listener: str) -> int:
    with Client(sidecar.admin) as client:
        page = client.request("GET", "/stats/prometheus", admin_headers())
    match = re.search(rf'^{metric}{{listener="{listener}"}} (\d+)$', page.body.decode(), re.M)
    assert match, page.body[:2000]
    return int(match.group(1))


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server("app") as server:
        yield server


def test_out_of_descriptors_the_inbound_listener_pauses_instead_of_spinning_and_serves_again(echo: EchoServer, tmp_path: Path) -> None:
    services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]
    boot = bootstrap(node=NODE, name="echo-v1", app_port=echo.port, static=snapshot(NODE, services))
    sidecar = LimitedSidecar(boot, tmp_path)
    sidecar.start()
    try:
        with Client(sidecar.inbound) as client:
            assert client.request("GET", "/before").status == 200
        clients: list[socket.socket] = []
        try:
            for _ in range(CONNECTIONS):
                clients.append(socket.create_connection(("127.0.0.1", sidecar.inbound), timeout=5))
            assert sidecar.wait_log(_ACCEPT_ERROR), sidecar.log()
            start_cpu, start = cpu_seconds(sidecar.pid), time.monotonic()
            time.sleep(4)
            cpu, elapsed = cpu_seconds(sidecar.pid) - start_cpu, time.monotonic() - start
            log_lines = [line for line in sidecar.lines if _ACCEPT_ERROR in line]
        finally:
            for sock in clients:
                sock.close()
        # A loose bound: a spinning loop burns a whole core (1.0 here).
        assert cpu / elapsed < 0.10, f"{cpu:.3f} s of CPU in {elapsed:.1f} s"
        # At most one line a second: the wait for the first line and the 4 s measured, plus one.
        assert 1 <= len(log_lines) <= elapsed + 3 + 1, log_lines
        # Once they are closed, a request is served again within 2 s.
        served = wait_for(lambda: _get_ok(sidecar.inbound), timeout=2.0, interval=0.1)
        assert served, sidecar.log()[-3000:]
        assert scrape(sidecar, "meshkit_listener_downstream_cx_accept_paused", "inbound") >= 1
    finally:
        sidecar.kill()


def _get_ok(port: int) -> bool:
    try:
        with Client(port, timeout=1.0) as client:
            return client.request("GET", "/after").status == 200
    except OSError:
        return False


BREAKER = """
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
"""


def test_a_body_at_one_byte_a_second_gets_408_si_and_frees_the_upstream_connection_and_the_breaker(
    echo: EchoServer, tmp_path: Path
) -> None:
    services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]
    limits = {"stream_idle_timeout_s": 0.5, "upstream_idle_timeout_s": 60}
    boot = bootstrap(node="default/client-0", static=snapshot("default/client-0", services, **traffic(BREAKER)), limits=limits)
    with running_sidecar(boot, tmp_path) as sidecar:
        with Client(sidecar.outbound) as warm:
            assert warm.request("GET", "/warm").status == 200
        echo.clear()
        before = echo.connections
        with Client(sidecar.outbound) as slow:
            slow.send(b"POST /upload HTTP/1.1\r\nHost: echo\r\nContent-Length: 100\r\n\r\n")
            sent = 0
            slow.sock.settimeout(0.05)
            response = None
            deadline = time.monotonic() + 10
            while response is None and time.monotonic() < deadline:
                try:
                    slow.send(b"x")
                    sent += 1
                except OSError:
                    break
                try:
                    response = slow.read_response()
                except (TimeoutError, socket.timeout):
                    time.sleep(0.95)
            slow.sock.settimeout(5)
            if response is None:
                response = slow.read_response()
        assert response.status == 408, response
        assert response.header("x-meshkit-response-flags") == "SI"
        assert response.header("connection") == "close"
        assert b"stream timeout" in response.body
        assert sent < 100
        # The upstream never got a complete request, and the connection that carried
        # the partial one was closed: with maxConnections 1 the next request could
        # not open a new one otherwise, and a new one it is.
        with Client(sidecar.outbound) as after:
            again = after.request("POST", "/next", body=b"hello")
        assert again.status == 200, again
        assert again.header("x-meshkit-response-flags") is None
        assert [r.path for r in echo.snapshot()] == ["/next"]
        assert echo.connections == before + 1
        assert scrape(sidecar, "meshkit_http_downstream_rq_idle_timeout", "outbound") == 1
        recent = _recent(sidecar)
        timed_out = [r for r in recent if r.get("path") == "/upload"]
        assert timed_out and timed_out[-1]["flags"] == "SI" and timed_out[-1]["code"] == 408, timed_out
        assert timed_out[-1].get("response_code_details") == "stream_idle_timeout", timed_out


def _recent(sidecar: SidecarProcess) -> list[dict[str, object]]:
    with Client(sidecar.admin) as client:
        page = client.request("GET", "/requests", admin_headers())
    doc = page.json()
    rows = doc["requests"] if isinstance(doc, dict) else doc
    assert isinstance(rows, list)
    return rows
