"""The telemetry's own cost per request, in process: what the request path pays
(`Telemetry.record`: counters, three histograms, the ring and the export
buffer) and what the exporter pays later, off the request's path (the
access-log line and its JSON, and appending the lines to a log file), each
in nanoseconds of the thread's CPU per request, best of a few rounds: on a
machine shared with other work, wall-clock time would count their share too.
The records are 1 ms apart, as at 1000 requests per second, so lines share
their second as a busy sidecar's do.

    python benchmarks/telemetry_micro.py

`overhead.py --telemetry` runs it too and puts the numbers beside the
end-to-end comparison of a sidecar pair with and without telemetry.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshkit.sidecar import accesslog
from meshkit.sidecar.telemetry import RequestRecord, Telemetry

N = 200_000
ROUNDS = 5
# Lines per write, as the exporter drains (telemetry_push.DRAIN_SLICE).
SLICE = 500


def _records(t: Telemetry, n: int) -> list[RequestRecord]:
    routes = [t.route("source", "productpage-v1", "v1", f"svc{i}.default.svc.cluster.local", f"svc{i}-v1", "v1") for i in range(4)]
    return [
        RequestRecord(1700000000.0 + i / 1000, b"GET", b"/reviews/0", b"reviews:9080", 200 if i % 10 else 503, "-" if i % 10 else "UF",
                      float(i % 300) / 7.0, "127.0.0.1:9080", b"2f1c6e4a-1f4e-4a53-9d7e-1c7a0c1c8a11", b"a" * 32, routes[i % 4], 0,
                      b"b" * 16, b"c" * 16, "mutual_tls", "spiffe://cluster.local/ns/default/sa/productpage",
                      "spiffe://cluster.local/ns/default/sa/reviews", 0, 400 + i % 50)  # fmt: skip
        for i in range(n)
    ]


def _best_ns(run: Callable[[], None], count: int, rounds: int = ROUNDS) -> float:
    """Thread CPU nanoseconds per item of the fastest of `rounds` runs over `count` items."""
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best / count * 1e9


def measure(n: int = N) -> dict[str, Any]:
    """ns per request: record() with and without the export buffer, the exporter's line, and its write."""
    out: dict[str, Any] = {"requests": n}
    per_round = max(1, n // ROUNDS)
    for name, buffer in (("record_ns", per_round), ("record_no_export_ns", None)):
        t = Telemetry(1024, buffer)
        records = _records(t, per_round)
        record = t.record

        def run_record() -> None:
            for r in records:
                record(r)

        out[name] = _best_ns(run_record, per_round)
    t = Telemetry(1024, per_round)
    records = _records(t, per_round)
    line = accesslog.line
    lines: list[str] = []

    def run_lines() -> None:
        lines[:] = [line(r, i, "default/productpage-v1-0") for i, r in enumerate(records)]

    out["log_line_ns"] = _best_ns(run_lines, per_round)
    out["log_line_bytes"] = sum(len(x) + 1 for x in lines) / len(lines)
    with tempfile.TemporaryDirectory(prefix="meshkit-telemetry-micro-") as tmp:
        log = accesslog.RotatingLog(Path(tmp) / "access.log", max_bytes=2**40, backups=0)

        def run_writes() -> None:
            for offset in range(0, len(lines), SLICE):
                log.write(lines[offset : offset + SLICE])

        out["log_write_ns"] = _best_ns(run_writes, len(lines))
        log.close()
    return out


if __name__ == "__main__":
    result = measure()
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}, indent=2))
    sys.exit(0)
