"""The telemetry's own cost per request, in process: what the request path pays
(`Telemetry.record`: counters, three histograms, the ring and the export
buffer) and what the exporter pays later, off the request's path (the
access-log line and its JSON), each in nanoseconds per request.

    python benchmarks/telemetry_micro.py

`overhead.py --telemetry` runs it too and puts the numbers beside the
end-to-end comparison of a sidecar pair with and without telemetry.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from meshkit.sidecar import accesslog
from meshkit.sidecar.telemetry import RequestRecord, Telemetry

N = 200_000


def _records(t: Telemetry, n: int) -> list[RequestRecord]:
    routes = [t.route("source", "productpage-v1", "v1", f"svc{i}.default.svc.cluster.local", f"svc{i}-v1", "v1") for i in range(4)]
    return [
        RequestRecord(1700000000.0 + i, b"GET", b"/reviews/0", b"reviews:9080", 200 if i % 10 else 503, "-" if i % 10 else "UF",
                      float(i % 300) / 7.0, "127.0.0.1:9080", b"2f1c6e4a-1f4e-4a53-9d7e-1c7a0c1c8a11", b"a" * 32, routes[i % 4], 0,
                      b"b" * 16, b"c" * 16, "mutual_tls", "spiffe://cluster.local/ns/default/sa/productpage",
                      "spiffe://cluster.local/ns/default/sa/reviews", 0, 400 + i % 50)  # fmt: skip
        for i in range(n)
    ]


def measure(n: int = N) -> dict[str, Any]:
    """ns per request: record() with and without the export buffer, and the exporter's line."""
    out: dict[str, Any] = {"requests": n}
    for name, buffer in (("record_ns", n), ("record_no_export_ns", None)):
        t = Telemetry(1024, buffer)
        records = _records(t, n)
        record = t.record
        started = time.perf_counter()
        for r in records:
            record(r)
        out[name] = (time.perf_counter() - started) / n * 1e9
    t = Telemetry(1024, n)
    records = _records(t, n // 4)
    line = accesslog.line
    started = time.perf_counter()
    lines = [line(r, i, "default/productpage-v1-0") for i, r in enumerate(records)]
    out["log_line_ns"] = (time.perf_counter() - started) / len(records) * 1e9
    out["log_line_bytes"] = sum(len(x) + 1 for x in lines) / len(lines)
    return out


if __name__ == "__main__":
    result = measure()
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}, indent=2))
    sys.exit(0)
