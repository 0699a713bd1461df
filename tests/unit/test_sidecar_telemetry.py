"""Counters, histograms and the request ring (meshkit.sidecar.telemetry)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from meshkit.sidecar.telemetry import MAX_ROUTES, OVERFLOW, RequestRecord, Route, Telemetry


def record(route: Route, code: int = 200, flags: str = "-", ms: float = 3.0, path: bytes = b"/") -> RequestRecord:
    return RequestRecord(1.0, b"GET", path, b"reviews", code, flags, ms, "127.0.0.1:1", b"rid", b"t" * 32, route)


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_routes_are_shared_per_label_set() -> None:
    t = Telemetry(10)
    assert t.route("source", "a", "v1", "svc", "b", "v2") is t.route("source", "a", "v1", "svc", "b", "v2")


def test_exposition_parses_and_counts() -> None:
    t = Telemetry(10)
    route = t.route("source", "a", "v1", "reviews.default.svc.cluster.local", "reviews-v2", "v2")
    for ms in (0.2, 3.0, 3.0, 7000.0):
        t.record(record(route, ms=ms))
    t.record(record(route, code=503, flags="UF"))
    parsed = families(t.prometheus(12))
    totals = {(s.labels["response_code"], s.labels["response_flags"]): s.value for s in parsed["meshkit_requests"] if s.name == "meshkit_requests_total"}
    assert totals == {("200", "-"): 4, ("503", "UF"): 1}
    buckets = {s.labels["le"]: s.value for s in parsed["meshkit_request_duration_milliseconds"] if s.name.endswith("_bucket") and s.labels["response_code"] == "200"}
    assert (buckets["0.5"], buckets["5"], buckets["5000"], buckets["10000"], buckets["+Inf"]) == (1, 3, 3, 4, 4)
    total_ms = [s.value for s in parsed["meshkit_request_duration_milliseconds"] if s.name.endswith("_sum") and s.labels["response_code"] == "200"]
    assert total_ms == [7006.2]
    assert [s.value for s in parsed["meshkit_sidecar_config_version"]] == [12]


def test_label_values_are_escaped() -> None:
    t = Telemetry(10)
    route = t.route("destination", 'we"ird\\name\n', "v1", "svc", "b", "v2")
    t.record(record(route))
    sample = next(s for s in families(t.prometheus(None))["meshkit_requests"] if s.name == "meshkit_requests_total")
    assert sample.labels["source_workload"] == 'we"ird\\name\n'


def test_config_version_before_any_snapshot_is_minus_one() -> None:
    assert "meshkit_sidecar_config_version -1" in Telemetry(1).prometheus(None)


def test_ring_keeps_the_newest_and_limit_applies() -> None:
    t = Telemetry(3)
    route = t.route("source", "a", "v1", "svc", "b", "v2")
    for i in range(5):
        t.record(record(route, path=b"/%d" % i))
    assert [r["path"] for r in t.recent(10)] == ["/2", "/3", "/4"]
    assert [r["path"] for r in t.recent(2)] == ["/3", "/4"]
    first = t.recent(1)[0]
    assert first["method"] == "GET" and first["destination_workload"] == "b" and first["request_id"] == "rid"


def test_label_sets_are_capped() -> None:
    t = Telemetry(1)
    for i in range(MAX_ROUTES + 5):
        t.route("destination", f"caller-{i}", "v1", "svc", "b", "v2")
    late = t.route("destination", "one-too-many", "v1", "svc", "b", "v2")
    assert late.as_dict()["source_workload"] == OVERFLOW
