"""The admin listener: readiness, config dump, Prometheus metrics, recent requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.sidecar_fixtures import (
    Client,
    EchoServer,
    SidecarProcess,
    admin_headers,
    bootstrap,
    echo_server,
    endpoint,
    get_json,
    running_sidecar,
    service,
    snapshot,
)

NODE = "default/client-0"


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with echo_server("echo") as server:
        yield server


@pytest.fixture
def sidecar(echo: EchoServer, tmp_path: Path) -> Iterator[SidecarProcess]:
    services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")]), service("empty", [])]
    with running_sidecar(bootstrap(node=NODE, static=snapshot(NODE, services, version=7)), tmp_path) as proc:
        yield proc


def admin_get(sidecar: SidecarProcess, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    with Client(sidecar.admin) as client:
        response = client.request(method, path, admin_headers())
    return response.status, response.header("content-type") or "", response.body


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), sample.value))
    return found


def test_ready_once_the_static_snapshot_is_applied(sidecar: SidecarProcess) -> None:
    status, _, body = admin_get(sidecar, "/ready")
    assert status == 200 and b"version 7" in body


def test_config_dump_shows_node_bootstrap_and_snapshot(sidecar: SidecarProcess) -> None:
    dump = get_json(sidecar.admin, "/config_dump")
    assert dump["node"] == NODE
    assert dump["version"] == 7 and dump["ready"] is True
    assert dump["last_nack"] is None
    assert "echo.default.svc.cluster.local" in dump["snapshot"]["services"]
    assert dump["bootstrap"]["workload"]["name"] == "client"
    assert dump["listeners"]["outbound"] == f"127.0.0.1:{sidecar.outbound}"


def test_prometheus_counters_equal_the_requests_sent(sidecar: SidecarProcess) -> None:
    with Client(sidecar.outbound) as client:
        for _ in range(7):
            assert client.request("GET", "http://echo/ok").status == 200
        for _ in range(2):
            assert client.request("GET", "http://nowhere/x", {"host": "nowhere"}).status == 404
        assert client.request("GET", "http://empty/x", {"host": "empty"}).status == 503
        assert client.request("GET", "http://echo/teapot", {"x-echo-status": "418"}).status == 418
    status, content_type, body = admin_get(sidecar, "/stats/prometheus")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    totals = {(s["destination_service"], s["response_code"], s["response_flags"]): v for s, v in samples(text, "meshkit_requests_total")}
    assert totals == {
        ("echo.default.svc.cluster.local", "200", "-"): 7,
        ("echo.default.svc.cluster.local", "418", "-"): 1,
        ("unknown", "404", "NR"): 2,
        ("empty.default.svc.cluster.local", "503", "UH"): 1,
    }
    labels, _ = next(s for s in samples(text, "meshkit_requests_total") if s[0]["response_code"] == "200")
    assert labels == {
        "reporter": "source",
        "source_workload": "client",
        "source_workload_namespace": "default",
        "source_version": "v1",
        "source_principal": "unknown",
        "destination_service": "echo.default.svc.cluster.local",
        "destination_service_name": "echo",
        "destination_service_namespace": "default",
        "destination_workload": "echo-v1",
        "destination_workload_namespace": "default",
        "destination_version": "v1",
        "destination_principal": "unknown",
        "request_protocol": "http",
        "connection_security_policy": "none",
        "response_code": "200",
        "response_flags": "-",
    }
    counts = {s["response_code"]: v for s, v in samples(text, "meshkit_request_duration_milliseconds_count")}
    assert counts["200"] == 7
    infinite = [v for s, v in samples(text, "meshkit_request_duration_milliseconds_bucket") if s["le"] == "+Inf" and s["response_code"] == "200"]
    assert infinite == [7]
    assert samples(text, "meshkit_sidecar_config_version") == [({}, 7.0)]


def test_requests_lists_the_newest_last_within_the_limit(sidecar: SidecarProcess) -> None:
    with Client(sidecar.outbound) as client:
        for i in range(5):
            client.request("GET", f"http://echo/r{i}", {"x-request-id": f"req-{i}"})
    records = get_json(sidecar.admin, "/requests?limit=3")
    assert [r["path"] for r in records] == ["/r2", "/r3", "/r4"]
    last = records[-1]
    assert last["request_id"] == "req-4" and last["code"] == 200 and last["flags"] == "-"
    assert last["method"] == "GET" and last["authority"] == "echo" and last["reporter"] == "source"
    assert last["upstream_host"].startswith("127.0.0.1:")
    assert len(last["trace_id"]) == 32 and last["duration_ms"] >= 0
    assert last["destination_workload"] == "echo-v1" and last["source_workload"] == "client"


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "99999999999"])
def test_requests_with_a_bad_limit_is_400(sidecar: SidecarProcess, limit: str) -> None:
    status, _, body = admin_get(sidecar, f"/requests?limit={limit}")
    assert status == 400 and b"limit" in body


def test_unknown_admin_page_is_404_and_lists_the_pages(sidecar: SidecarProcess) -> None:
    status, _, body = admin_get(sidecar, "/nope")
    assert status == 404 and b"/stats/prometheus" in body


def test_admin_pages_answer_get_only(sidecar: SidecarProcess) -> None:
    status, _, _ = admin_get(sidecar, "/ready", method="DELETE")
    assert status == 405


def test_without_config_the_sidecar_is_not_ready_and_answers_nc(tmp_path: Path) -> None:
    with echo_server("app") as app:
        boot = bootstrap(node="default/app-0", name="app-v1", app_port=app.port, control_plane={"url": "http://127.0.0.1:9", "token": "secret-token"})
        with running_sidecar(boot, tmp_path) as proc:
            status, _, _ = admin_get(proc, "/ready")
            with Client(proc.outbound) as client:
                outbound = client.request("GET", "http://echo/x")
            with Client(proc.inbound) as client:
                inbound = client.request("GET", "/x")
            with Client(proc.admin) as client:
                dump = client.request("GET", "/config_dump", admin_headers())
        assert app.snapshot() == []
    assert status == 503
    for response in (outbound, inbound):
        assert response.status == 503 and response.header("x-meshkit-response-flags") == "NC"
    assert b"secret-token" not in dump.body
    assert json.loads(dump.body)["bootstrap"]["control_plane"] == {"url": "http://127.0.0.1:9"}
