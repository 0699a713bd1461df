"""The sidecar forwards HTTP/1.1 between real sockets, as docs/internals.md says."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.sidecar_fixtures import (
    Client,
    EchoServer,
    SidecarProcess,
    bootstrap,
    echo_server,
    endpoint,
    exchange_raw,
    get_json,
    parse_responses,
    running_sidecar,
    service,
    snapshot,
    traffic,
)

NODE = "default/client-0"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("forwarding")


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server("echo-1") as server:
        yield server


@pytest.fixture(scope="module")
def sidecar(echo: EchoServer, workdir: Path) -> Iterator[SidecarProcess]:
    services = [
        service("echo", [endpoint(echo.port, "echo-v1", "v1")]),
        service("empty", []),
        service("closed", [endpoint(1, "closed-v1", "v1")]),
        service("other", [endpoint(echo.port, "other-v1", "v1")], namespace="elsewhere"),
    ]
    boot = bootstrap(node=NODE, static=snapshot(NODE, services))
    with running_sidecar(boot, workdir) as proc:
        yield proc


@pytest.fixture(autouse=True)
def fresh_echo(echo: EchoServer) -> None:
    echo.clear()


def test_absolute_form_is_forwarded_in_origin_form_over_one_pooled_connection(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        for i in range(3):
            response = client.request("GET", f"http://echo:80/item/{i}?q=1", {"host": "echo:80"})
            assert response.status == 200
            assert response.json()["path"] == f"/item/{i}?q=1"
    seen = echo.snapshot()
    assert [r.path for r in seen] == ["/item/0?q=1", "/item/1?q=1", "/item/2?q=1"]
    assert all(r.header("host") == "echo:80" for r in seen)
    assert len({r.connection_id for r in seen}) == 1


@pytest.mark.parametrize("host", ["echo", "echo.default", "echo.default.svc", "echo.default.svc.cluster.local", "ECHO.Default.svc.cluster.local.:8080"])
def test_origin_form_host_spellings_resolve_like_kubernetes_dns(sidecar: SidecarProcess, echo: EchoServer, host: str) -> None:
    with Client(sidecar.outbound) as client:
        response = client.request("GET", "/where", {"host": host})
    assert response.status == 200
    assert echo.snapshot()[0].header("host") == host


def test_bare_name_of_a_service_in_another_namespace_is_no_route(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        bare = client.request("GET", "http://other/x", {"host": "other"})
        qualified = client.request("GET", "http://other.elsewhere/x", {"host": "other.elsewhere"})
    assert bare.status == 404 and bare.header("x-meshkit-response-flags") == "NR"
    assert qualified.status == 200


def test_unknown_host_gets_404_nr_with_an_explanation(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        response = client.request("GET", "http://nowhere:9080/x", {"host": "nowhere:9080"})
        after = client.request("GET", "http://echo/x")
    assert response.status == 404
    assert response.header("x-meshkit-response-flags") == "NR"
    assert b"nowhere" in response.body and b"echo.default.svc.cluster.local" in response.body
    assert after.status == 200
    assert [r.path for r in echo.snapshot()] == ["/x"]


def test_service_without_endpoints_gets_503_uh(sidecar: SidecarProcess) -> None:
    with Client(sidecar.outbound) as client:
        response = client.request("GET", "http://empty/x", {"host": "empty"})
    assert response.status == 503
    assert response.header("x-meshkit-response-flags") == "UH"
    assert b"no endpoints" in response.body


def test_refused_connection_gets_503_uf_urx_after_istios_two_default_retries(sidecar: SidecarProcess) -> None:
    with Client(sidecar.outbound) as client:
        response = client.request("GET", "http://closed/x", {"host": "closed"})
    assert response.status == 503
    assert response.header("x-meshkit-response-flags") == "UF,URX"
    assert b"127.0.0.1:1" in response.body
    records = [r for r in get_json(sidecar.admin, "/requests?limit=50") if r["path"] == "/x" and r["flags"] == "UF,URX"]
    assert records and records[-1]["retries"] == 2


def test_refused_connection_without_retries_gets_503_uf(tmp_path: Path) -> None:
    no_retries = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: closed}
spec:
  hosts: [closed]
  http:
  - route: [{destination: {host: closed}}]
    retries: {attempts: 0}
"""
    static = snapshot(NODE, [service("closed", [endpoint(1, "closed-v1", "v1")])], **traffic(no_retries))
    with running_sidecar(bootstrap(node=NODE, static=static), tmp_path) as proc, Client(proc.outbound) as client:
        response = client.request("GET", "http://closed/x", {"host": "closed"})
    assert response.status == 503
    assert response.header("x-meshkit-response-flags") == "UF"


def test_upstream_reset_before_response_gets_503_uc_after_one_retry_for_a_bodiless_request(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/warm").status == 200  # leaves an idle pooled connection
        response = client.request("GET", "http://echo/reset", {"x-echo-reset": "1"})
    assert response.status == 503
    assert response.header("x-meshkit-response-flags") == "UC"
    resets = [r for r in echo.snapshot() if r.path == "/reset"]
    # The pooled connection failed before any response byte: retried once on a fresh one.
    assert len(resets) == 2
    assert resets[0].connection_id != resets[1].connection_id


def test_request_with_body_is_not_retried_on_a_reset(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/warm").status == 200
        response = client.request("POST", "http://echo/reset", {"x-echo-reset": "1"}, body=b"payload")
    assert response.status == 503 and response.header("x-meshkit-response-flags") == "UC"
    assert len([r for r in echo.snapshot() if r.path == "/reset"]) == 1


def test_connection_closed_by_upstream_is_not_reused(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        first = client.request("POST", "http://echo/a", {"x-echo-close": "1"}, body=b"1")
        second = client.request("POST", "http://echo/b", body=b"2")
    assert first.status == 200 and second.status == 200
    a, b = echo.snapshot()
    assert a.connection_id != b.connection_id


def test_pipelined_requests_are_answered_in_order(sidecar: SidecarProcess, echo: EchoServer) -> None:
    requests = b"".join(
        b"GET http://echo/p%d HTTP/1.1\r\nHost: echo\r\nx-echo-delay-ms: %d\r\n\r\n" % (i, delay)
        for i, delay in enumerate([150, 0, 50, 0])
    )
    with Client(sidecar.outbound) as client:
        client.send(requests)
        paths = [client.read_response().json()["path"] for _ in range(4)]
    assert paths == ["/p0", "/p1", "/p2", "/p3"]


def test_content_length_body_arrives_intact(sidecar: SidecarProcess, echo: EchoServer) -> None:
    body = bytes(range(256)) * 4000
    with Client(sidecar.outbound) as client:
        response = client.request("PUT", "http://echo/upload", body=body)
    assert response.status == 200
    seen = echo.snapshot()[0]
    assert seen.body_len == len(body)
    assert seen.header("content-length") == str(len(body))
    import hashlib

    assert seen.body_sha256 == hashlib.sha256(body).hexdigest()


def test_chunked_body_is_forwarded_chunked(sidecar: SidecarProcess, echo: EchoServer) -> None:
    chunks = [b"hello ", b"chunked " * 1000, b"world"]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    head = b"POST http://echo/chunks HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n"
    with Client(sidecar.outbound) as client:
        client.send(head + wire)
        response = client.read_response()
    assert response.status == 200
    seen = echo.snapshot()[0]
    assert seen.header("transfer-encoding") == "chunked"
    assert seen.header("content-length") is None
    assert seen.body_len == sum(len(c) for c in chunks)


@pytest.mark.parametrize("mode", ["x-echo-chunked", "x-echo-no-length"])
def test_response_of_unknown_length_reaches_an_http11_client_chunked(sidecar: SidecarProcess, mode: str) -> None:
    with Client(sidecar.outbound) as client:
        response = client.request("GET", "http://echo/big", {mode: "1", "x-echo-size": "300000"})
        again = client.request("GET", "http://echo/again")
    assert response.status == 200 and response.body == b"x" * 300000
    assert response.header("transfer-encoding") == "chunked"
    assert again.status == 200


def test_http10_client_gets_a_close_delimited_body(sidecar: SidecarProcess) -> None:
    responses, closed, raw = exchange_raw(sidecar.outbound, b"GET http://echo/old HTTP/1.0\r\nx-echo-chunked: 1\r\nx-echo-size: 1000\r\n\r\n")
    assert closed
    assert raw.startswith(b"HTTP/1.1 200")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"x" * 1000


def test_head_response_has_no_body_and_the_connection_goes_on(sidecar: SidecarProcess) -> None:
    with Client(sidecar.outbound) as client:
        head = client.request("HEAD", "http://echo/h", {"x-echo-size": "5000"})
        after = client.request("GET", "http://echo/after")
    assert head.status == 200 and head.body == b"" and head.header("content-length") == "5000"
    assert after.json()["path"] == "/after"


def test_expect_100_continue_is_answered_by_the_sidecar(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        client.send(b"POST http://echo/e HTTP/1.1\r\nHost: echo\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = client.sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        client.parser.feed_data(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :])
        client.send(b"hello")
        response = client.read_response()
    assert response.status == 200
    seen = echo.snapshot()[0]
    assert seen.body_len == 5 and seen.header("expect") is None


def test_hop_by_hop_headers_are_not_forwarded(sidecar: SidecarProcess, echo: EchoServer) -> None:
    headers = {
        "connection": "keep-alive, x-private",
        "x-private": "secret",
        "keep-alive": "timeout=5",
        "proxy-connection": "keep-alive",
        "te": "trailers",
        "upgrade": "websocket",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        "x-end-to-end": "kept",
    }
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/hop", headers).status == 200
    names = {k.lower() for k, _ in echo.snapshot()[0].headers}
    assert names.isdisjoint({"connection", "x-private", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authorization"})
    assert "x-end-to-end" in names


def test_request_id_and_traceparent_are_generated(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        client.request("GET", "http://echo/t1")
        client.request("GET", "http://echo/t2")
    first, second = echo.snapshot()
    for seen in (first, second):
        assert uuid.UUID(seen.header("x-request-id") or "").version == 4
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", seen.header("traceparent") or "")
    assert first.header("x-request-id") != second.header("x-request-id")
    assert (first.header("traceparent") or "")[3:35] != (second.header("traceparent") or "")[3:35]


def test_incoming_trace_context_is_continued_with_a_new_span(sidecar: SidecarProcess, echo: EchoServer) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {"x-request-id": "my-request-1", "traceparent": parent, "tracestate": "vendor=abc"}
    with Client(sidecar.outbound) as client:
        client.request("GET", "http://echo/t", headers)
    seen = echo.snapshot()[0]
    assert seen.header_all("x-request-id") == ["my-request-1"]
    trace = seen.header("traceparent") or ""
    assert trace.startswith("00-0af7651916cd43dd8448eb211c80319c-") and trace.endswith("-01")
    assert trace.split("-")[2] != "b7ad6b7169203331"
    assert seen.header_all("tracestate") == ["vendor=abc"]


def test_outbound_adds_peer_metadata_and_replaces_a_spoofed_copy(sidecar: SidecarProcess, echo: EchoServer) -> None:
    with Client(sidecar.outbound) as client:
        client.request("GET", "http://echo/peer", {"x-meshkit-peer": "w=admin;n=kube-system;v=v9;sa=root"})
    assert echo.snapshot()[0].header_all("x-meshkit-peer") == ["w=client;n=default;v=v1;sa=sa-client"]


def test_upgrade_request_is_served_as_plain_http_and_the_next_request_too(sidecar: SidecarProcess, echo: EchoServer) -> None:
    data = (
        b"GET http://echo/ws HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET http://echo/next HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n"
    )
    responses, closed, _ = exchange_raw(sidecar.outbound, data)
    assert [r.status for r in responses] == [200, 200]
    assert [r.path for r in echo.snapshot()] == ["/ws", "/next"]
    assert closed


def test_round_robin_spreads_requests_evenly_over_three_endpoints(tmp_path: Path) -> None:
    round_robin = {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "echo"},
        "spec": {"host": "echo", "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
    }
    with echo_server("a") as a, echo_server("b") as b, echo_server("c") as c:
        services = [service("echo", [endpoint(s.port, f"echo-{s.name}", s.name) for s in (a, b, c)])]
        boot = bootstrap(node=NODE, static=snapshot(NODE, services, **traffic(round_robin)))
        with running_sidecar(boot, tmp_path) as proc, Client(proc.outbound) as client:
            served = Counter(client.request("GET", "http://echo/rr").header("x-echo-server") for _ in range(30))
    assert served == {"a": 10, "b": 10, "c": 10}


def test_inbound_forwards_to_the_app_hides_mesh_headers_and_ignores_a_plaintext_peer_claim(tmp_path: Path) -> None:
    with echo_server("app") as app:
        node = "default/reviews-v2-0"
        boot = bootstrap(node=node, name="reviews-v2", version="v2", app_port=app.port, static=snapshot(node, []))
        with running_sidecar(boot, tmp_path) as proc, Client(proc.inbound) as client:
            peer = "w=productpage-v1;n=default;v=v1;sa=bookinfo-productpage"
            response = client.request("GET", "/reviews/1", {"host": "reviews:9080", "x-meshkit-peer": peer, "x-meshkit-other": "x"})
            records = get_json(proc.admin, "/requests?limit=5")
        seen = app.snapshot()[0]
    assert response.status == 200
    assert response.header("x-meshkit-version") == "v2"
    assert [v for k, v in response.headers if k.lower() == "x-meshkit-version"] == ["v2"]
    assert seen.path == "/reviews/1" and seen.header("host") == "reviews:9080"
    assert seen.header("x-meshkit-peer") is None and seen.header("x-meshkit-other") is None
    assert seen.header("x-request-id") and seen.header("traceparent")
    assert records[-1]["reporter"] == "destination"
    # Plaintext: the claimed peer is not identity, so the source is unknown (as Istio shows it).
    assert records[-1]["source_workload"] == "unknown"
    assert records[-1]["source_version"] == "unknown" and records[-1]["source_principal"] == ""
    assert records[-1]["destination_workload"] == "reviews-v2"
    assert records[-1]["destination_service"] == "reviews.default.svc.cluster.local"


def test_inbound_with_app_down_gets_503_uf_with_the_version(tmp_path: Path) -> None:
    with echo_server("gone") as app:
        port = app.port
    node = "default/reviews-v2-0"
    boot = bootstrap(node=node, name="reviews-v2", version="v2", app_port=port, static=snapshot(node, []))
    with running_sidecar(boot, tmp_path) as proc:
        responses, _, _ = exchange_raw(proc.inbound, b"GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n")
    assert responses[0].status == 503
    assert responses[0].header("x-meshkit-response-flags") == "UF"
    assert responses[0].header("x-meshkit-version") == "v2"


def test_parse_responses_helper_sees_every_pipelined_response() -> None:
    data = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 404 No\r\ncontent-length: 0\r\n\r\n"
    assert [r.status for r in parse_responses(data)] == [200, 404]


def test_a_flood_of_pipelined_requests_is_answered_in_order(sidecar: SidecarProcess, echo: EchoServer) -> None:
    count = 600  # about 40 KiB in one write: parsed in pieces, the rest kept until the queue drains
    data = b"".join(b"GET http://echo/f%d HTTP/1.1\r\nHost: echo\r\n\r\n" % i for i in range(count))
    with Client(sidecar.outbound) as client:
        client.send(data)
        paths = [client.read_response().json()["path"] for _ in range(count)]
    assert paths == [f"/f{i}" for i in range(count)]


def test_client_leaving_mid_request_is_recorded_dc_and_the_sidecar_carries_on(sidecar: SidecarProcess, echo: EchoServer) -> None:
    from tests.integration.sidecar_fixtures import connect, wait_for

    with connect(sidecar.outbound) as sock:
        sock.sendall(b"GET http://echo/leaving HTTP/1.1\r\nHost: echo\r\nx-echo-delay-ms: 300\r\n\r\n")
        assert wait_for(lambda: any(r.path == "/leaving" for r in echo.snapshot()))

    def last_record() -> dict | None:
        records = [r for r in get_json(sidecar.admin, "/requests?limit=20") if r["path"] == "/leaving"]
        return records[-1] if records else None

    assert wait_for(last_record)
    record = last_record()
    assert record is not None and (record["code"], record["flags"]) == (0, "DC")
    with Client(sidecar.outbound) as client:
        assert client.request("GET", "http://echo/after-dc").status == 200
