"""Access-log lines (Envoy's field names) and the rotated file."""

from __future__ import annotations

import json
from pathlib import Path

from meshkit.core.dry_run import ShadowVerdict
from meshkit.sidecar import accesslog
from meshkit.sidecar.telemetry import RequestRecord, Telemetry


def record() -> RequestRecord:
    t = Telemetry(1, namespace="default")
    route = t.route("destination", "productpage-v1", "v1", "reviews.default.svc.cluster.local", "reviews-v2", "v2", source_namespace="default")
    return RequestRecord(
        1700000000.25, b"GET", b"/reviews/0", b"reviews:9080", 503, "UF", 12.3456, "127.0.0.1:4000", b"rid-1",
        b"a" * 32, route, 2, b"b" * 16, b"c" * 16, "mutual_tls", "spiffe://cluster.local/ns/default/sa/productpage",
        "spiffe://cluster.local/ns/default/sa/reviews", 10, 91,
    )  # fmt: skip


def test_a_line_carries_envoys_fields_and_the_mesh_view() -> None:
    entry = json.loads(accesslog.line(record(), 41, "default/reviews-v2-0"))
    assert entry["start_time"] == "2023-11-14T22:13:20.250Z"
    assert (entry["method"], entry["path"], entry["protocol"]) == ("GET", "/reviews/0", "HTTP/1.1")
    assert (entry["response_code"], entry["response_flags"], entry["bytes_received"], entry["bytes_sent"]) == (503, "UF", 10, 91)
    assert entry["duration"] == 12.346 and entry["upstream_host"] == "127.0.0.1:4000" and entry["request_id"] == "rid-1"
    assert entry["traceparent"] == f"00-{'a' * 32}-{'b' * 16}-01" and entry["parent_span_id"] == "c" * 16
    assert entry["reporter"] == "destination" and entry["peer_principal"].endswith("/sa/productpage")
    assert (entry["source_workload"], entry["destination_workload"], entry["destination_version"]) == ("productpage-v1", "reviews-v2", "v2")
    assert (entry["connection_security_policy"], entry["retries"], entry["seq"], entry["node"]) == ("mutual_tls", 2, 41, "default/reviews-v2-0")


def test_the_log_rotates_by_size_and_keeps_the_backups_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "x.access.log"
    log = accesslog.RotatingLog(path, max_bytes=100, backups=2)
    for i in range(10):
        log.write([json.dumps({"i": i, "pad": "x" * 30})])
    log.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["x.access.log", "x.access.log.1", "x.access.log.2"]
    lines = [json.loads(x)["i"] for name in ("x.access.log.2", "x.access.log.1", "x.access.log") for x in (path.parent / name).read_text().splitlines()]
    assert lines == sorted(lines) and lines[-1] == 9 and all(p.stat().st_size <= 100 for p in path.parent.iterdir())


def test_a_reopened_log_appends(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    first = accesslog.RotatingLog(path, 10_000, 1)
    first.write(["one"])
    first.close()
    second = accesslog.RotatingLog(path, 10_000, 1)
    second.write(["two", "three"])
    second.close()
    assert path.read_text().splitlines() == ["one", "two", "three"]


def test_the_fast_line_is_exactly_the_entry_even_for_odd_values() -> None:
    t = Telemetry(1)
    route = t.route("source", 'we"ird', "v1", "svc.ns.svc.cluster.local", "unknown", "unknown")
    odd = RequestRecord(1700000000.0004, b"GET", b'/p?q="\\x\x7f\xe9', b"h\tost", 0, "DC", 0.0, None, None, None, route)
    shadow = record()._replace(dry_run=(ShadowVerdict("DENY", False, 'ns[a]-policy[b"c]-rule[0]'), ShadowVerdict("ALLOW", True, None)))
    for rec in (record(), odd, shadow):
        assert json.loads(accesslog.line(rec, 7, "n/x")) == accesslog.entry(rec, 7, "n/x")


def test_a_line_says_what_dry_run_policies_would_have_done_in_envoys_words() -> None:
    assert json.loads(accesslog.line(record(), 1, "n/x"))["dry_run"] is None
    shadow = record()._replace(dry_run=(ShadowVerdict("DENY", False, "ns[foo]-policy[deny-path-headers]-rule[0]"),))
    entry = json.loads(accesslog.line(shadow, 1, "n/x"))
    assert entry["dry_run"] == "deny: shadow denied, matched policy ns[foo]-policy[deny-path-headers]-rule[0]"
