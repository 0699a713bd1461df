"""`meshkit stat` after `meshkit tour` shows every workload's golden signals;
`top`, `logs --sidecar` and `trace` work from a terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshkit.lab import Lab

from .test_cli import meshkit

BOOKINFO = ["details-v1", "productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"]


@pytest.fixture(scope="module")
def toured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("tour")
    try:
        tour = meshkit(home, "tour", "--rate", "20", "--duration", "2")
        assert tour.returncode == 0, tour.stderr
        assert "meshkit stat" in tour.stdout
        yield home
    finally:
        Lab(home=home).down()


def test_stat_after_the_tour_shows_the_golden_signals_of_every_workload(toured: Path) -> None:
    result = meshkit(toured, "stat")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.strip().startswith("NAME"))
    assert header.split() == ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 1 :] if line.strip()}
    for workload in BOOKINFO:
        name, meshed, success, rps, p50, p95, p99 = rows[workload]
        assert meshed == "1/1"
        assert success == "100.00%", rows[workload]
        assert re.fullmatch(r"\d+\.\drps", rps) and float(rps[:-3]) > 0
        for value in (p50, p95, p99):
            assert re.fullmatch(r"\d+\.\dms", value), rows[workload]
    one = meshkit(toured, "stat", "reviews-v2")
    assert one.returncode == 0 and "reviews-v2" in one.stdout and "ratings-v1" not in one.stdout


def test_top_refreshes_and_exits_after_its_seconds(toured: Path) -> None:
    Lab(home=toured).load("productpage", "/productpage", rate=20, requests=20)
    result = meshkit(toured, "top", "--seconds", "1.5", "--interval", "0.5", "--window", "60")
    assert result.returncode == 0, result.stderr
    frames = result.stdout.count("meshkit top")
    assert frames >= 2
    found = re.search(r"curl\s+productpage-v1\s+GET\s+/productpage\s+(\d+)\b", result.stdout)
    assert found and int(found.group(1)) >= 20, result.stdout


def test_logs_show_the_app_and_the_sidecars_access_log(toured: Path) -> None:
    access = meshkit(toured, "logs", "ratings-v1", "--sidecar", "--tail", "5")
    assert access.returncode == 0, access.stderr
    lines = [json.loads(line) for line in access.stdout.splitlines()]
    assert len(lines) == 5 and all(line["destination_workload"] == "ratings-v1" for line in lines)
    app = meshkit(toured, "logs", "ratings-v1")
    assert app.returncode == 0
    proxy = meshkit(toured, "logs", "ratings-v1", "--proxy")
    assert proxy.returncode == 0 and "listening" in proxy.stdout


def test_trace_lists_recent_traces_and_shows_one_as_a_tree(toured: Path) -> None:
    listing = meshkit(toured, "trace", "--limit", "5")
    assert listing.returncode == 0, listing.stderr
    trace_id = re.search(r"\b([0-9a-f]{32})\b", listing.stdout)
    assert trace_id, listing.stdout
    tree = meshkit(toured, "trace", trace_id.group(1))
    assert tree.returncode == 0, tree.stderr
    assert "curl client -> productpage-v1" in tree.stdout and "productpage-v1 server" in tree.stdout
    missing = meshkit(toured, "trace", "0" * 32)
    assert missing.returncode == 1 and "no spans recorded" in missing.stderr
