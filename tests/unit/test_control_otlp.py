"""The OTLP span mapping and endpoint rules (meshkit.control.otlp), on hand-made records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from meshkit.control.__main__ import otlp_endpoint_from_env, parse_args
from meshkit.control.otlp import BadEndpoint, OtlpExporter, canonical_service, export_request, span_of, traces_url
from meshkit.control.telemetry import COLUMNS
from meshkit.ports import free_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def record(**fields: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = {
        "start": 1_700_000_000.25, "reporter": "source", "node": "default/productpage-v1-0",
        "source_workload": "productpage-v1", "source_namespace": "default", "source_version": "v1",
        "source_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        "destination_service": "reviews.default.svc.cluster.local", "destination_workload": "reviews-v2",
        "destination_namespace": "default", "destination_version": "v2",
        "destination_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        "connection_security_policy": "mutual_tls", "method": "GET", "path": "/reviews/0",
        "authority": "reviews:9080", "protocol": "HTTP/1.1", "response_code": 200, "response_flags": "-",
        "duration": 12.5, "bytes_received": 0, "bytes_sent": 321, "upstream_host": "127.0.0.1:40001",
        "request_id": "7d3c2f0e-1111-4222-8333-944455556666", "trace_id": TRACE,
        "span_id": "00f067aa0ba902b7", "parent_span_id": "b7ad6b7169203331", "retries": 1, "seq": 3, "dry_run": None,
    }  # fmt: skip
    base.update(fields)
    return tuple(base[c] for c in COLUMNS)


def attributes(span: Span) -> dict[str, Any]:
    found = {}
    for kv in span.attributes:
        found[kv.key] = getattr(kv.value, kv.value.WhichOneof("value"))
    return found


def test_a_client_record_becomes_a_client_span_with_the_propagated_ids_and_envoys_name() -> None:
    span = span_of(record())
    assert span is not None
    assert span.trace_id.hex() == TRACE and span.span_id.hex() == "00f067aa0ba902b7"
    assert span.parent_span_id.hex() == "b7ad6b7169203331"
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.name == "reviews.default.svc.cluster.local:9080/*"
    assert span.start_time_unix_nano == 1_700_000_000_250_000_000
    assert span.end_time_unix_nano - span.start_time_unix_nano == 12_500_000
    attrs = attributes(span)
    assert attrs["http.status_code"] == 200 and attrs["http.method"] == "GET"
    assert attrs["http.url"] == "http://reviews:9080/reviews/0"
    assert attrs["guid:x-request-id"] == "7d3c2f0e-1111-4222-8333-944455556666"
    assert attrs["peer.principal"].endswith("/sa/bookinfo-reviews")
    assert attrs["istio.canonical_service"] == "productpage" and attrs["retries"] == 1
    assert span.status.code == Status.STATUS_CODE_UNSET


def test_a_destination_record_is_a_server_span_and_a_5xx_or_no_response_is_an_error() -> None:
    server = span_of(record(reporter="destination", response_code=503, response_flags="UF", parent_span_id=None))
    assert server is not None and server.kind == Span.SPAN_KIND_SERVER
    assert server.parent_span_id == b"" and server.status.code == Status.STATUS_CODE_ERROR
    assert attributes(server)["istio.canonical_service"] == "reviews"
    assert attributes(server)["peer.principal"].endswith("/sa/bookinfo-productpage")
    reset = span_of(record(response_code=0))
    assert reset is not None and reset.status.code == Status.STATUS_CODE_ERROR
    assert span_of(record(response_code=404)).status.code == Status.STATUS_CODE_UNSET  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        {"trace_id": None}, {"trace_id": "xyz"}, {"trace_id": "0" * 32}, {"trace_id": TRACE.upper()},
        {"span_id": "123"}, {"span_id": "0" * 16}, {"start": "yesterday"}, {"start": float("nan")},
    ],
)  # fmt: skip
def test_a_record_without_a_valid_trace_context_gives_no_span(bad: dict[str, Any]) -> None:
    assert span_of(record(**bad)) is None


def test_junk_in_the_other_fields_still_gives_a_valid_span() -> None:
    span = span_of(record(response_code="200", duration=-5, authority=None, method=None, retries=None, source_workload=None))
    assert span is not None and span.end_time_unix_nano == span.start_time_unix_nano
    request, skipped = export_request([record(response_code=True, destination_service=None)])
    assert skipped == 0
    _, skipped = export_request([record(start=1e300), record(duration=1e300), record(bytes_sent=-1)])
    assert skipped == 2  # times no uint64 holds are skipped, not a crash; a negative size is just a number
    # It survives the wire: what a collector would decode.
    again = ExportTraceServiceRequest.FromString(request.SerializeToString())
    assert len(again.resource_spans[0].scope_spans[0].spans) == 1


def test_spans_are_grouped_by_the_reporting_workload_with_istios_service_name() -> None:
    rows = [
        record(),
        record(span_id="1111111111111111"),
        record(reporter="destination", span_id="2222222222222222", node="default/reviews-v2-0"),
        record(trace_id="nope"),
    ]
    request, skipped = export_request(rows)
    assert skipped == 1
    services = {}
    for resource_spans in request.resource_spans:
        attrs = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
        services[attrs["service.name"]] = (attrs, [s.span_id.hex() for s in resource_spans.scope_spans[0].spans])
        assert resource_spans.scope_spans[0].scope.name == "meshkit.sidecar"
    assert set(services) == {"productpage.default", "reviews.default"}
    assert services["productpage.default"][1] == ["00f067aa0ba902b7", "1111111111111111"]
    assert services["reviews.default"][0]["service.version"] == "v2"
    assert services["reviews.default"][0]["k8s.deployment.name"] == "reviews-v2"


@pytest.mark.parametrize(
    ("workload", "version", "service"),
    [("reviews-v2", "v2", "reviews"), ("curl", None, "curl"), ("v1", "v1", "v1"), ("shop-canary", "v2", "shop-canary")],
)
def test_the_canonical_service_is_the_workload_without_its_version_suffix(workload: str, version: str | None, service: str) -> None:
    assert canonical_service(workload, version) == service


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://otel.example/otlp", "https://otel.example/otlp/v1/traces"),
        ("http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"),
    ],
)
def test_the_traces_path_is_appended_to_a_base_endpoint_as_opentelemetry_does(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [("127.0.0.1:4318", "http:// or https://"), ("grpc://x:4317", "http:// or https://"), ("http://", "with a host"),
     ("http://x:99999", "invalid port"), ("http://x:4318/?a=b", "query")],
)  # fmt: skip
def test_a_bad_endpoint_is_refused_with_its_reason(endpoint: str, reason: str) -> None:
    with pytest.raises(BadEndpoint, match=reason):
        traces_url(endpoint)


def test_the_control_plane_takes_the_endpoint_from_opentelemetrys_variables() -> None:
    assert otlp_endpoint_from_env({}) is None
    assert otlp_endpoint_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318"}) == "http://a:4318"
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"}
    assert otlp_endpoint_from_env(both) == "http://b:4318/v1/traces"
    assert parse_args(["--home", "/tmp/h", "--otlp-endpoint", "http://127.0.0.1:4318"]).otlp_endpoint == "http://127.0.0.1:4318"
    with pytest.raises(SystemExit):
        parse_args(["--home", "/tmp/h", "--otlp-endpoint", "localhost:4318"])


def test_a_full_buffer_drops_and_counts_what_it_cannot_hold() -> None:
    async def scenario() -> dict[str, Any]:
        exporter = OtlpExporter(f"http://127.0.0.1:{free_port()}", buffer_spans=10)  # nothing listens there
        exporter.offer([record()] * 6)
        exporter.offer([record()] * 6)
        exporter.offer([record()] * 3)
        status = exporter.status()
        exporter.close()
        return status

    status = asyncio.run(scenario())
    assert (status["pending"], status["dropped"], status["exported"]) == (10, 5, 0)
