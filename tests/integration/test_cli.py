"""The `meshkit` command as a learner types it: one-line errors, a real tour."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from meshkit.lab import Lab


def meshkit(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshkit.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error line; status lines may come before it, a traceback never."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("meshkit: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def test_commands_on_a_stopped_lab_say_the_lab_is_not_running(tmp_path: Path) -> None:
    result = meshkit(tmp_path, "deploy", "bookinfo")
    assert result.returncode == 1
    assert "no lab is running" in one_line_error(result)
    status = meshkit(tmp_path, "status")
    assert status.returncode == 3
    assert "no lab is running" in status.stdout


def test_a_taken_port_is_named_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = meshkit(tmp_path, "up", "--control-port", str(port))
    try:
        assert result.returncode == 1
        line = one_line_error(result)
        assert f"port {port}" in line and "taken" in line
    finally:
        Lab(home=tmp_path).down()


def test_tour_prints_measured_latency_and_edges_then_status_and_errors(tmp_path: Path) -> None:
    try:
        tour = meshkit(tmp_path, "tour", "--rate", "20", "--duration", "2")
        assert tour.returncode == 0, tour.stderr
        out = tour.stdout
        rows = {
            phase: [float(x) for x in re.findall(r"\d+\.\d+", line)]
            for phase in ("without sidecars", "with sidecars")
            for line in out.splitlines()
            if line.startswith(phase)
        }
        assert len(rows) == 2, out
        for numbers in rows.values():
            success, p50, p90, p99 = numbers[-4:]
            assert success == 1.0 and 0 < p50 <= p90 <= p99
        assert "productpage-v1" in out and "reviews" in out and "mTLS" in out  # sidecars use auto mTLS

        unknown = meshkit(tmp_path, "inject", "reviews-v9")
        assert unknown.returncode == 1
        assert "reviews-v9" in one_line_error(unknown)

        status = meshkit(tmp_path, "status")
        assert status.returncode == 0
        assert "SYNCED" in status.stdout and "productpage-v1" in status.stdout
        urls = dict(re.findall(r"^\s*default\s+(\S+)\s.*?(http://127\.0\.0\.1:\d+/\S*)$", status.stdout, re.MULTILINE))
        assert set(urls) >= {"productpage", "details", "reviews", "ratings"}, status.stdout
        assert httpx.get(urls["productpage"], timeout=5.0, trust_env=False).status_code == 200
        resources = status.stdout.split("\nresources")[1]
        assert re.search(r"control-plane\s+control plane\s+\d+", resources), resources
        for role in ("app", "sidecar"):
            row = re.search(rf"productpage-v1-0\s+{role}\s+\d+\s+\S+\s+\S+\s+([\d.]+)$", resources, re.MULTILINE)
            assert row and float(row.group(1)) > 0, resources  # memory, MiB
        # 7 workloads' sidecars and the ingress gateway's proxy
        assert re.search(r"^\s*sidecar\s+8\s", resources.split("by role:")[1], re.MULTILINE), resources

        call = meshkit(tmp_path, "call", "productpage", "/productpage")
        assert call.returncode == 0 and call.stdout.startswith("200 ")

        certs = meshkit(tmp_path, "certs")
        assert certs.returncode == 0 and "spiffe://cluster.local/ns/default/sa/bookinfo-reviews" in certs.stdout
        before = set(Lab(home=tmp_path).certificates().root)
        rotated = meshkit(tmp_path, "certs", "--rotate-root")
        assert rotated.returncode == 0, rotated.stderr
        after = set(Lab(home=tmp_path).certificates().root)
        assert len(before) == len(after) == 1 and before != after
        assert after.pop() in rotated.stdout and "retired" in rotated.stderr
    finally:
        down = meshkit(tmp_path, "down")
        assert down.returncode == 0
