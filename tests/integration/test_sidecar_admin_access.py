"""Who may read a sidecar's admin pages: loopback only, and a token for all but health and metrics.

Istio keeps Envoy's admin on 127.0.0.1:15000 inside the pod and opens only
health (15021) and metrics (15090) to others. Every workload here shares the
machine's loopback, so the admin token keeps other local processes out of
the pages that show config, certificates and requests, or change state.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sidecar_fixtures import (
    ADMIN_TOKEN,
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
)

NODE = "default/client-0"
PROTECTED = [("GET", "/config_dump"), ("GET", "/certs"), ("GET", "/requests"), ("GET", "/clusters"), ("GET", "/telemetry"),
             ("POST", "/telemetry/flush")]  # fmt: skip


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with echo_server("echo") as server:
        yield server


@pytest.fixture
def sidecar(echo: EchoServer, tmp_path: Path) -> Iterator[SidecarProcess]:
    services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]
    with running_sidecar(bootstrap(node=NODE, static=snapshot(NODE, services)), tmp_path) as proc:
        with Client(proc.outbound) as client:  # something in /requests, /clusters and the metrics
            assert client.request("GET", "http://echo/seen").status == 200
        yield proc


def ask(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    with Client(port) as client:
        response = client.request(method, path, headers)
    return response.status, response.body


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_protected_page_without_the_token_is_401_with_a_reason_and_no_data(sidecar: SidecarProcess, method: str, path: str) -> None:
    status, body = ask(sidecar.admin, method, path, {"host": "admin"})
    assert status == 401
    assert b"admin token" in body and b"Authorization: Bearer" in body
    for secret in (b"BEGIN CERTIFICATE", b"snapshot", b"echo", b"recorded", b"/seen"):
        assert secret not in body


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_protected_page_with_a_wrong_token_is_401(sidecar: SidecarProcess, method: str, path: str) -> None:
    for value in (f"Bearer {ADMIN_TOKEN}x", f"Bearer {ADMIN_TOKEN[:-1]}", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN, "Bearer"):
        status, body = ask(sidecar.admin, method, path, {"host": "admin", "authorization": value})
        assert status == 401 and b"BEGIN CERTIFICATE" not in body and b"/seen" not in body, value


def test_two_authorization_fields_are_refused_even_if_one_is_right(sidecar: SidecarProcess) -> None:
    with socket.create_connection(("127.0.0.1", sidecar.admin), timeout=5) as sock:
        sock.sendall(
            b"GET /config_dump HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer wrong-token-0123456789\r\n"
            b"authorization: Bearer %s\r\nconnection: close\r\n\r\n" % ADMIN_TOKEN.encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 ") and b"snapshot" not in answer


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_protected_page_with_the_token_answers(sidecar: SidecarProcess, method: str, path: str) -> None:
    status, body = ask(sidecar.admin, method, path, admin_headers())
    assert status == 200
    json.loads(body)


def test_the_token_is_not_shown_by_config_dump(sidecar: SidecarProcess) -> None:
    _, body = ask(sidecar.admin, "GET", "/config_dump", admin_headers())
    assert ADMIN_TOKEN.encode() not in body
    assert json.loads(body)["bootstrap"]["admin"] == {"port": 0}


def test_health_and_metrics_are_open_as_istios_15021_and_15090(sidecar: SidecarProcess) -> None:
    status, body = ask(sidecar.admin, "GET", "/ready", {"host": "admin"})
    assert status == 200 and body.startswith(b"ready")
    status, body = ask(sidecar.admin, "GET", "/stats/prometheus", {"host": "admin"})
    assert status == 200 and b'meshkit_requests_total{reporter="source",source_workload="client"' in body


def test_the_admin_listener_is_bound_to_loopback(sidecar: SidecarProcess) -> None:
    _, body = ask(sidecar.admin, "GET", "/config_dump", admin_headers())
    assert json.loads(body)["listeners"]["admin"] == f"127.0.0.1:{sidecar.admin}"


def test_without_a_token_in_the_bootstrap_the_protected_pages_stay_closed(echo: EchoServer, tmp_path: Path) -> None:
    boot = bootstrap(node=NODE, static=snapshot(NODE, [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]))
    boot["admin"] = {"port": 0}
    with running_sidecar(boot, tmp_path) as proc:
        closed = [ask(proc.admin, method, path, admin_headers()) for method, path in PROTECTED]
        ready, _ = ask(proc.admin, "GET", "/ready", {"host": "admin"})
    assert ready == 200
    for status, body in closed:
        assert status == 403 and b"started without one" in body
