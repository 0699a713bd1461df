"""The export buffer: numbered records, bounded, and every drop counted."""

from __future__ import annotations

from meshkit.core.tracing import hop_ids
from meshkit.sidecar.telemetry import RequestRecord, Telemetry


def record(t: Telemetry, path: bytes) -> RequestRecord:
    route = t.route("source", "a", "v1", "svc.ns.svc.cluster.local", "b", "v1")
    return RequestRecord(1.0, b"GET", path, b"svc", 200, "-", 1.0, None, None, None, route)


def test_take_returns_records_in_order_with_the_first_sequence_number() -> None:
    t = Telemetry(10, export_buffer=100)
    for i in range(3):
        t.record(record(t, b"/%d" % i))
    first, records = t.take()
    assert first == 0 and [r.path for r in records] == [b"/0", b"/1", b"/2"]
    t.record(record(t, b"/3"))
    first, records = t.take()
    assert first == 3 and [r.path for r in records] == [b"/3"]
    assert t.take() == (4, []) and t.dropped == 0


def test_an_overflowing_buffer_drops_the_oldest_and_counts_them() -> None:
    t = Telemetry(10, export_buffer=5)
    for i in range(12):
        t.record(record(t, b"/%d" % i))
    assert t.dropped == 7
    first, records = t.take()
    assert first == 7 and [r.path for r in records] == [b"/%d" % i for i in range(7, 12)]
    assert t.dropped == 7 and "meshkit_sidecar_telemetry_dropped_total 7" in t.prometheus(1)


def test_without_an_exporter_nothing_is_kept_for_export() -> None:
    t = Telemetry(10, export_buffer=None)
    t.record(record(t, b"/"))
    assert t.pending is None and t.take() == (0, []) and len(t.ring) == 1


def test_each_hop_knows_its_span_and_its_parent() -> None:
    values = iter(range(1, 100))
    first = hop_ids(None, None, None, lambda n: next(values))
    assert first.parent_span_id is None and len(first.span_id) == 16
    incoming = b"00-%s-%s-01" % (first.trace_id, first.span_id)
    second = hop_ids(first.request_id, incoming, None, lambda n: next(values))
    assert second.trace_id == first.trace_id and second.parent_span_id == first.span_id
    assert second.span_id != first.span_id and b"traceparent: 00-%s-%s-01" % (first.trace_id, second.span_id) in second.header_lines
