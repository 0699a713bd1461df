"""The sidecar's metrics: Istio's names, labels and buckets, parsed by prometheus_client."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from meshkit.sidecar.telemetry import BUCKETS_MS, MAX_SERIES_PER_ROUTE, OVERFLOW, RequestRecord, Route, Telemetry

ISTIO_LABELS = {
    "reporter", "source_workload", "source_workload_namespace", "source_version", "source_principal",
    "destination_service", "destination_service_name", "destination_service_namespace", "destination_workload",
    "destination_workload_namespace", "destination_version", "destination_principal", "request_protocol",
    "response_code", "response_flags", "connection_security_policy",
}  # fmt: skip


def rec(route: Route, code: int = 200, ms: float = 3.0, **fields: Any) -> RequestRecord:
    return RequestRecord(1.0, b"GET", b"/", b"reviews", code, fields.pop("flags", "-"), ms, "127.0.0.1:1", b"rid", b"t" * 32, route, **fields)


def families(text: str) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_every_istio_family_parses_with_the_full_label_set() -> None:
    t = Telemetry(10, namespace="default")
    route = t.route("source", "productpage-v1", "v1", "reviews.default.svc.cluster.local", "reviews-v2", "v2")
    t.record(rec(route, request_bytes=12, response_bytes=3000))
    t.connection_counter(("destination", "unknown", "unknown", "reviews.default.svc.cluster.local", "reviews-v2", "default"), lambda: 0).opened += 2
    parsed = families(t.prometheus(3))
    assert set(parsed) >= {
        "meshkit_requests", "meshkit_request_duration_milliseconds", "meshkit_request_bytes", "meshkit_response_bytes",
        "meshkit_tcp_connections_opened", "meshkit_tcp_connections_closed", "meshkit_sidecar_config_version",
        "meshkit_sidecar_telemetry_dropped",
    }  # fmt: skip
    total = next(s for s in parsed["meshkit_requests"] if s.name == "meshkit_requests_total")
    assert set(total.labels) == ISTIO_LABELS
    assert total.labels["source_workload_namespace"] == "default"
    assert total.labels["destination_service_name"] == "reviews"
    assert total.labels["destination_service_namespace"] == "default"
    assert total.labels["source_principal"] == "unknown" and total.labels["destination_principal"] == "unknown"
    assert total.labels["connection_security_policy"] == "none"
    opened = [s for s in parsed["meshkit_tcp_connections_opened"] if s.name.endswith("_total")]
    closed = [s for s in parsed["meshkit_tcp_connections_closed"] if s.name.endswith("_total")]
    assert [s.value for s in opened] == [2] and [s.value for s in closed] == [2]


def test_byte_histograms_use_envoys_buckets_and_sum_the_sizes() -> None:
    t = Telemetry(10)
    route = t.route("destination", "a", "v1", "svc.ns.svc.cluster.local", "b", "v1")
    for size in (0, 7, 700, 70000):
        t.record(rec(route, response_bytes=size))
    samples = families(t.prometheus(None))["meshkit_response_bytes"]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert len(buckets) == len(BUCKETS_MS) + 1
    assert (buckets["0.5"], buckets["10"], buckets["1000"], buckets["60000"], buckets["300000"], buckets["+Inf"]) == (1, 2, 3, 3, 4, 4)
    assert [s.value for s in samples if s.name.endswith("_sum")] == [70707]


def test_security_and_principals_split_series() -> None:
    t = Telemetry(10)
    route = t.route("destination", "a", "v1", "svc.ns.svc.cluster.local", "b", "v1")
    t.record(rec(route))
    t.record(rec(route, connection_security_policy="mutual_tls", source_principal="spiffe://cluster.local/ns/ns/sa/a",
                 destination_principal="spiffe://cluster.local/ns/ns/sa/b"))
    t.record(rec(route, connection_security_policy="mutual_tls", source_principal="spiffe://cluster.local/ns/ns/sa/a",
                 destination_principal="spiffe://cluster.local/ns/ns/sa/b"))
    totals = {(s.labels["connection_security_policy"], s.labels["source_principal"]): s.value
              for s in families(t.prometheus(None))["meshkit_requests"] if s.name == "meshkit_requests_total"}
    assert totals == {("none", "unknown"): 1, ("mutual_tls", "spiffe://cluster.local/ns/ns/sa/a"): 2}


def test_series_per_route_are_capped() -> None:
    t = Telemetry(1)
    route = t.route("destination", "a", "v1", "svc", "b", "v1")
    for code in range(MAX_SERIES_PER_ROUTE + 10):
        t.record(rec(route, code=100 + code))
    assert len(route.series) == MAX_SERIES_PER_ROUTE + 1
    overflow = [s for s in route.series.values() if s.key[1] == OVERFLOW]
    assert overflow and overflow[0].count == 10


def test_histogram_buckets_are_cumulative_and_end_with_the_count() -> None:
    t = Telemetry(10)
    route = t.route("source", "a", "v1", "svc.ns.svc.cluster.local", "b", "v1")
    for ms in (0.4, 0.5, 0.6, 26.0, 99999999.0):
        t.record(rec(route, ms=ms))
    samples = families(t.prometheus(None))["meshkit_request_duration_milliseconds"]
    buckets = [s.value for s in samples if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == 5
    by_le = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert by_le["0.5"] == 2 and by_le["1"] == 3 and by_le["50"] == 4 and by_le["3600000"] == 4


def test_dry_run_verdicts_are_counted_under_istios_labels_from_the_first_verdict_of_each_action() -> None:
    from meshkit.core.dry_run import ShadowVerdict
    from meshkit.telemetry import parse_dry_run

    t = Telemetry(10, namespace="default")
    route = t.route("destination", "curl", "v1", "productpage.default.svc.cluster.local", "productpage-v1", "v1")
    assert parse_dry_run(t.prometheus(1)) == {}
    deny = ShadowVerdict("DENY", False, "ns[default]-policy[deny-curl]-rule[0]")
    for _ in range(12):
        t.record(rec(route, dry_run=(deny, ShadowVerdict("ALLOW", True, "ns[default]-policy[pp]-rule[0]"))))
    t.record(rec(route))
    assert parse_dry_run(t.prometheus(1)) == {
        ("deny", "denied"): 12, ("deny", "allowed"): 0, ("allow", "allowed"): 12, ("allow", "denied"): 0}
    assert families(t.prometheus(1))["meshkit_requests"][0].value == 13
