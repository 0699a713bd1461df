"""OTLP export: every span of the lab reaches an OpenTelemetry collector, exactly.

The collector here is a real OTLP/HTTP endpoint on a 127.0.0.1 port: it
decodes each POST /v1/traces with opentelemetry-proto's own messages (the
wire format a Jaeger or an OpenTelemetry Collector decodes) and answers as
the specification says. It starts down, so the lab's first spans must wait
in the control plane's buffer and arrive once it is up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from meshkit.demo.apps import Call, Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.ports import free_port
from tests.integration.sidecar_fixtures import wait_for

CHAIN = (
    WorkloadSpec(name="front-v1", service="front", version="v1", service_account="front", latency=Latency(1.0, 2.0),
                 calls=(Call("back", "/back", timeout_s=5.0),), paths=("/front",)),
    WorkloadSpec(name="back-v1", service="back", version="v1", service_account="back", latency=Latency(1.0, 2.0),
                 paths=("/back",)),
)  # fmt: skip


class Collector:
    """An OTLP/HTTP trace receiver: decodes protobuf bodies, keeps every span with its resource."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.spans: list[tuple[dict[str, str], Span]] = []
        self.posts = 0
        self.refuse_next: list[int] = []  # statuses to answer the next POSTs with, then 200
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with collector.lock:
                    collector.posts += 1
                    status = collector.refuse_next.pop(0) if collector.refuse_next else 200
                    if status == 200:
                        assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
                        request = ExportTraceServiceRequest.FromString(body)
                        for resource_spans in request.resource_spans:
                            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
                            for scope_spans in resource_spans.scope_spans:
                                collector.spans += [(resource, span) for span in scope_spans.spans]
                answer = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def ids(self) -> set[tuple[str, str]]:
        with self.lock:
            return {(s.trace_id.hex(), s.span_id.hex()) for _, s in self.spans}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Collector]]:
    collector = Collector(free_port())
    lab = Lab(home=tmp_path_factory.mktemp("otlp"), otlp_endpoint=f"http://127.0.0.1:{collector.port}").up()
    try:
        lab.deploy(CHAIN, inject=True)
        yield lab, collector
    finally:
        lab.down()
        collector.stop()


def lab_spans(lab: Lab) -> set[tuple[str, str]]:
    frame = lab.requests()
    frame = frame[frame.trace_id.notna() & frame.span_id.notna()]
    return set(zip(frame.trace_id, frame.span_id, strict=True))


def test_spans_wait_while_the_collector_is_down_then_every_one_arrives(setup: tuple[Lab, Collector]) -> None:
    lab, collector = setup
    frame = lab.load("front", "/front", rate=50, requests=20)
    assert (frame.code == 200).all()
    assert wait_for(lambda: (lab.telemetry_drops().attrs["otlp"] or {}).get("failures", 0) >= 1, 10.0)
    status = lab.telemetry_drops().attrs["otlp"]
    assert status["pending"] >= 40 and status["exported"] == 0 and "ConnectError" in status["last_error"]
    collector.start()
    expected = lab_spans(lab)
    # curl -> front (server span) -> back (client and server spans): three per request.
    assert len({t for t, _ in expected}) == 20 and len(expected) == 60
    assert wait_for(lambda: collector.ids() >= expected, 20.0), len(expected - collector.ids())
    status = lab.telemetry_drops().attrs["otlp"]
    assert status["exported"] == len(collector.ids()) and status["dropped"] == 0 and status["last_error"] is None


def test_each_trace_arrives_as_the_tree_lab_trace_shows(setup: tuple[Lab, Collector]) -> None:
    lab, collector = setup
    frame = lab.load("front", "/front", rate=50, requests=10)
    assert (frame.code == 200).all()
    expected = lab_spans(lab)
    assert wait_for(lambda: collector.ids() >= expected, 10.0)
    trace_id = lab.traces(limit=1).trace_id.iloc[0]
    tree = lab.trace(trace_id)
    with collector.lock:
        spans = {s.span_id.hex(): (resource, s) for resource, s in collector.spans if s.trace_id.hex() == trace_id}
    assert set(spans) == set(tree.span_id)
    for row in tree.itertuples():
        resource, span = spans[row.span_id]
        assert span.parent_span_id.hex() == (row.parent_span_id if isinstance(row.parent_span_id, str) else "")
        assert span.kind == (Span.SPAN_KIND_CLIENT if row.kind == "client" else Span.SPAN_KIND_SERVER)
        assert resource["service.name"] == f"{row.workload.removesuffix('-v1')}.default"
        attrs = {kv.key: kv.value for kv in span.attributes}
        assert attrs["http.status_code"].int_value == row.code == 200
        assert span.end_time_unix_nano - span.start_time_unix_nano == pytest.approx(row.duration_ms * 1e6, abs=1e3)
    # The client span to back and back's server span share the caller's context: one is the other's parent.
    client = next(s for _, s in spans.values() if s.kind == Span.SPAN_KIND_CLIENT)
    assert client.name == "back.default.svc.cluster.local:9080/*"
    assert any(s.parent_span_id == client.span_id for _, s in spans.values())


def test_a_collector_that_refuses_a_batch_costs_that_batch_only_and_says_so(setup: tuple[Lab, Collector]) -> None:
    lab, collector = setup
    before = lab.telemetry_drops().attrs["otlp"]
    with collector.lock:
        collector.refuse_next = [503, 400]  # retryable once, then refused for good
    frame = lab.load("front", "/front", rate=50, requests=5)
    assert (frame.code == 200).all()
    assert wait_for(lambda: lab.telemetry_drops().attrs["otlp"]["dropped"] > before["dropped"], 15.0)
    status = lab.telemetry_drops().attrs["otlp"]
    # The 503 is retried, the 400 is final: only that one batch (at most these 15 spans) is lost.
    assert status["failures"] >= before["failures"] + 2
    assert 1 <= status["dropped"] - before["dropped"] <= 15
    # Later spans flow again.
    lab.load("front", "/front", rate=50, requests=5)
    exported = status["exported"]
    assert wait_for(lambda: lab.telemetry_drops().attrs["otlp"]["exported"] > exported, 10.0)
