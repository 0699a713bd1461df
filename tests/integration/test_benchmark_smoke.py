"""The overhead benchmark in its quick form, and the arithmetic of its report.

The quick run starts a real upstream and a real sidecar pair and drives them
with the load generator; it needs neither HAProxy nor wrk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
# The benchmark is a folder of scripts, not a package: import two of its
# modules by path for their pure functions, then leave sys.path as it was.
sys.path.insert(0, str(BENCH))
try:
    import measure
    import reporting
finally:
    sys.path.remove(str(BENCH))


def leftover_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A TMPDIR for the benchmark, so any process it leaves behind can be found (and is then killed)."""
    work = tmp_path / "work"
    work.mkdir()
    try:
        yield work
    finally:
        for proc in leftover_processes(str(work)):
            proc.kill()


def test_quick_run_reports_direct_and_sidecar_with_sane_numbers(tmp_path: Path, workdir: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(BENCH / "overhead.py"), "--quick", "--no-haproxy", "--no-wrk", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(workdir)},
    )
    assert done.returncode == 0, done.stderr
    assert leftover_processes(str(workdir)) == []
    doc = json.loads((out / "overhead.json").read_text())
    rows = {row["target"]: row for row in doc["open_loop"]}
    assert set(rows) == {"direct", "sidecar", "sidecar-mtls"}
    for row in rows.values():
        assert row["count"] > 0 and row["rps"] > 0
        assert row["errors"] == 0 and row["success_rate"] == 1.0
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
    assert rows["sidecar"]["cpu_us_per_request"]["pair"] > 0
    # The mTLS pair really talked mTLS: its sidecars counted handshakes (none warmed up in --quick).
    assert rows["sidecar-mtls"]["tls_handshakes"] >= 1 and rows["sidecar"]["tls_handshakes"] == 0
    assert [t["name"] for t in doc["mtls_targets"]][:2] == ["mTLS pair added p50 over direct", "mTLS pair added p99 over direct"]
    assert doc["saturation"] == []
    sidecars = doc["memory"]["sidecar"]
    assert set(sidecars) == {"sidecar-client", "sidecar-server"}
    assert set(doc["memory"]["sidecar-mtls"]) == {"sidecar-mtls-client", "sidecar-mtls-server"}
    assert all(m["rss_mb"] > 0 and m["idle_mb"] > 0 for m in sidecars.values())
    report = (out / "overhead.md").read_text()
    assert "meshkit sidecar pair" in report and "## Machine" in report
    assert "meshkit sidecar pair" in done.stdout


WRK_REPORT = """\
Running 10s test @ http://127.0.0.1:41000/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.70ms  392.11us   8.88ms   81.23%
    Req/Sec     9.43k   612.03    10.51k    70.50%
  Latency Distribution
     50%  640.00us
     75%    1.81ms
     90%    2.10ms
     99%    1.02s
  187654 requests in 10.00s, 15.39MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  18765.12
Transfer/sec:      1.54MB
"""


def test_wrk_report_is_read_with_units_and_errors() -> None:
    assert measure.parse_wrk(WRK_REPORT) == {
        "requests": 187654,
        "rps": 18765.12,
        "errors": 7,
        "p50_ms": pytest.approx(0.64),
        "p90_ms": pytest.approx(2.10),
        "p99_ms": pytest.approx(1020.0),
    }


def test_cpu_per_request_per_process_and_pair() -> None:
    per = measure.cpu_us_per_request(
        {"a-client": (1.0, 0.5), "a-server": (2.0, 1.0)}, {"a-client": (1.5, 0.6), "a-server": (2.25, 1.0)}, 1000
    )
    assert per == pytest.approx(
        {"a-client": 600.0, "a-server": 250.0, "pair": 850.0, "pair_user": 750.0, "pair_system": 100.0}
    )
    assert measure.cpu_us_per_request({}, {}, 1000) == {}


def made_doc(sidecar_cpu: float, haproxy_cpu: float, sidecar_peak_mb: float) -> dict[str, Any]:
    def loop_row(target: str, p50: float, cpu: float | None) -> dict[str, Any]:
        return {"target": target, "rate": 500.0, "count": 5000, "rps": 500.0, "success_rate": 1.0, "errors": 0,
                "p50_ms": p50, "p90_ms": p50 * 2, "p99_ms": p50 * 4,
                "cpu_us_per_request": {} if cpu is None else {"pair": cpu}}  # fmt: skip

    def sat_row(target: str, cpu: float | None) -> dict[str, Any]:
        pair = {} if cpu is None else {f"{target}-client": cpu / 2, f"{target}-server": cpu / 2, "pair": cpu,
                                       "pair_user": cpu * 0.75, "pair_system": cpu * 0.25}  # fmt: skip
        return {"target": target, "requests": 10, "rps": 1.0, "errors": 0, "cpu_us_per_request": pair}

    return {
        "machine": {"cpu": "test"},
        "settings": {
            "rates": [500.0],
            "duration_s": 10.0,
            "wrk": {"threads": 2, "connections": 32, "duration_s": 10.0},
        },
        "upstream": "test",
        "open_loop": [loop_row("direct", 0.5, None), loop_row("sidecar", 1.5, 400.0), loop_row("haproxy", 0.75, 100.0)],
        "saturation": [sat_row("direct", None), sat_row("sidecar", sidecar_cpu), sat_row("haproxy", haproxy_cpu)],
        "memory": {"sidecar": {"sidecar-client": {"idle_mb": 20.0, "rss_mb": 25.0, "peak_rss_mb": sidecar_peak_mb}}},
    }


def test_report_derives_added_latency_and_judges_targets_on_saturation() -> None:
    doc = reporting.derive(made_doc(sidecar_cpu=300.0, haproxy_cpu=100.0, sidecar_peak_mb=50.0))
    added = {a["target"]: a for a in doc["added_latency"]}
    assert added["sidecar"]["added_p50_ms"] == pytest.approx(1.0)
    assert added["haproxy"]["added_p99_ms"] == pytest.approx(1.0)
    targets = {t["name"]: t for t in doc["targets"]}
    plain = targets["CPU per request at saturation vs HAProxy, plaintext"]
    assert plain["value"] == pytest.approx(3.0) and plain["met"] is False and "20% over" in plain["missed"]
    assert plain["before"] is None and plain["met_before"] is None
    loop = targets["CPU per request in open loop at 1000 rps vs HAProxy"]
    assert loop["value"] == pytest.approx(4.0) and "500 rps (1000 not run)" in loop["source"]
    rss = targets["resident memory per sidecar (peak)"]
    assert rss["value"] == 50.0 and rss["met"] is False and "18.00 MB" in rss["missed"]
    assert targets["CPU per request at saturation vs HAProxy, mTLS"]["met"] is None
    assert targets["CPU per request that access logs add"]["met"] is None
    assert "spent 100 µs of CPU per request; meshkit sidecar pair 300 µs (3.0x)" in doc["notes"]
    assert "20.0 MB of it there before the first request" in doc["notes"]
    assert "225 µs per request in their own code" in doc["notes"]
    assert "75% of the difference is user time" in doc["notes"]
    markdown = reporting.markdown_report(doc)
    assert "| meshkit sidecar pair | 500 |" in markdown and "## Targets" in markdown


def test_targets_before_and_after_from_a_baseline_run() -> None:
    doc = made_doc(sidecar_cpu=200.0, haproxy_cpu=100.0, sidecar_peak_mb=30.0)
    doc["settings"]["baseline"] = {"ref": "HEAD~3", "commit": "abc1234"}
    doc["labels"] = {"sidecar-before": "meshkit sidecar pair (before, abc1234)"}
    sat = {row["target"]: row for row in doc["saturation"]}

    def sat_row(target: str, cpu: float, requests: int = 10, lines: int | None = None) -> dict[str, Any]:
        row = {**sat["sidecar"], "target": target, "requests": requests, "cpu_us_per_request": {"pair": cpu}}
        return row if lines is None else {**row, "access_log_lines": lines}

    doc["saturation"] += [sat_row("sidecar-before", 400.0), sat_row("sidecar-logs", 208.0, lines=20),
                          sat_row("sidecar-logs-before", 430.0, lines=20)]  # fmt: skip
    doc["memory"]["sidecar-before"] = {"sidecar-before-client": {"idle_mb": 36.0, "rss_mb": 38.0, "peak_rss_mb": 40.0}}
    doc["memory"]["sidecar-logs"] = {"sidecar-logs-client": {"idle_mb": 20.0, "rss_mb": 45.0, "peak_rss_mb": 45.0}}
    derived = reporting.derive(doc)
    targets = {t["name"]: t for t in derived["targets"]}
    plain = targets["CPU per request at saturation vs HAProxy, plaintext"]
    assert (plain["before"], plain["met_before"], plain["value"], plain["met"]) == (4.0, False, 2.0, True)
    logs = targets["CPU per request that access logs add"]
    assert logs["before"] == pytest.approx(30.0) and logs["value"] == pytest.approx(8.0) and logs["met"] is True
    rss = targets["resident memory per sidecar (peak)"]
    # The access-log pair's buffer is left out of the memory target.
    assert (rss["before"], rss["value"]) == (40.0, 30.0)
    lines = reporting.targets_lines(derived)
    assert "- CPU per request at saturation vs HAProxy, plaintext: before 4.00x (missed), after 2.00x (target <= 2.5x): met" in lines[0]
    cost = {(c["telemetry"], c["run"]): c for c in reporting.telemetry_cost(derived)}
    assert cost[("access logs (before, abc1234)", "saturation")]["log_lines_per_request"] == 2.0
    assert "meshkit sidecar pair (before, abc1234)" in reporting.markdown_report(derived)


def test_targets_met_and_unmeasured() -> None:
    doc = reporting.derive(made_doc(sidecar_cpu=140.0, haproxy_cpu=100.0, sidecar_peak_mb=30.0))
    met = {t["name"]: t["met"] for t in doc["targets"]}
    assert met["CPU per request at saturation vs HAProxy, plaintext"] is True
    assert met["resident memory per sidecar (peak)"] is True
    no_haproxy = made_doc(140.0, 100.0, 30.0)
    no_haproxy["saturation"] = []
    no_haproxy["open_loop"] = [row for row in no_haproxy["open_loop"] if row["target"] != "haproxy"]
    judged = reporting.derive(no_haproxy)["targets"]
    assert judged[0]["met"] is None and "not judged" in reporting.text_report(reporting.derive(no_haproxy))
