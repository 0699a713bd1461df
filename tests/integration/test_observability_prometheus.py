"""A real Prometheus scrapes a lab's sidecars and answers the PromQL Istio users
know, with the same numbers the lab gives (docs/observability.md).

Needs the `prometheus` binary (Debian's package; tests/setup_system.py
installs it); skipped, saying so, where it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshkit.demo.apps import Call, Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.observe import bucket_bounds
from meshkit.ports import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (apt-get install prometheus, or run tests/setup_system.py as root)",
)

CHAIN = (
    WorkloadSpec(name="front-v1", service="front", version="v1", service_account="front", latency=Latency(20.0, 40.0),
                 calls=(Call("back", "/back", timeout_s=5.0),), paths=("/front",)),
    WorkloadSpec(name="back-v1", service="back", version="v1", service_account="back", latency=Latency(2.0, 4.0),
                 paths=("/back",)),
)  # fmt: skip
N = 150

CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: meshkit-sidecars
    metrics_path: /stats/prometheus
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: 1s
"""


class Prometheus:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=10)

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/query", params={"query": promql}).json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def value(self, promql: str) -> float:
        result = self.query(promql)
        assert len(result) == 1, result
        return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Prometheus]]:
    home = tmp_path_factory.mktemp("prom")
    lab = Lab(home=home / "lab").up()
    proc = None
    try:
        lab.deploy(CHAIN)
        lab.inject("default")
        targets = home / "targets.json"
        lab.prometheus_targets(targets)
        (home / "prometheus.yml").write_text(CONFIG.format(targets=targets))
        port = free_port()
        log = open(home / "prometheus.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=log,
        )  # fmt: skip
        prom = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                if prom.http.get("/-/ready").status_code == 200 and len(prom.query('up{job="meshkit-sidecars"} == 1')) == 3:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (home / "prometheus.log").read_text()[-2000:]
            time.sleep(0.2)
        lab.load("front", "/front", rate=30, requests=N)
        lab.requests()  # every sidecar has recorded everything
        time.sleep(3.0)  # two scrapes after the last request
        yield lab, prom
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        lab.down()


def test_the_counters_prometheus_stored_are_the_requests_sent(setup: tuple[Lab, Prometheus]) -> None:
    lab, prom = setup
    result = prom.query('sum by (reporter, destination_workload) (meshkit_requests_total{response_code="200"})')
    got = {(r["metric"]["reporter"], r["metric"]["destination_workload"]): float(r["value"][1]) for r in result}
    assert got == {("source", "front-v1"): N, ("destination", "front-v1"): N, ("source", "back-v1"): N, ("destination", "back-v1"): N}


def test_rate_of_requests_total(setup: tuple[Lab, Prometheus]) -> None:
    _, prom = setup
    rps = prom.value('sum(rate(meshkit_requests_total{reporter="destination",destination_workload="front-v1"}[1m]))')
    assert 0 < rps <= N / 5.0 * 1.5  # N requests in about 5 s, averaged over a minute


def test_success_rate_as_istio_dashboards_compute_it(setup: tuple[Lab, Prometheus]) -> None:
    _, prom = setup
    ratio = prom.value(
        'sum(rate(meshkit_requests_total{reporter="destination",destination_service=~"front.*",response_code!~"5.."}[1m]))'
        ' / sum(rate(meshkit_requests_total{reporter="destination",destination_service=~"front.*"}[1m]))'
    )
    assert ratio == pytest.approx(1.0)


def test_histogram_quantile_agrees_with_lab_metrics(setup: tuple[Lab, Prometheus]) -> None:
    """Over the same requests (everything since the sidecars started: the
    counters themselves, not a rate, whose first sample of a new series is
    only a baseline) Prometheus and lab.metrics land in the same bucket."""
    lab, prom = setup
    ours = lab.metrics(window=None, by="destination_workload").set_index("destination_workload").loc["front-v1"]
    selector = '{reporter="destination",destination_workload="front-v1"}'
    for q in (0.5, 0.9, 0.99):
        theirs = prom.value(f"histogram_quantile({q}, sum by (le) (meshkit_request_duration_milliseconds_bucket{selector}))")
        lower, upper = bucket_bounds(float(ours[f"p{round(q * 100)}_ms"]))
        assert lower <= theirs <= upper, (q, theirs, ours[f"p{round(q * 100)}_ms"])
        recent = prom.value(f"histogram_quantile({q}, sum by (le) (rate(meshkit_request_duration_milliseconds_bucket{selector}[1m])))")
        assert 0 < recent <= 1000


def test_tcp_and_byte_families_are_scraped(setup: tuple[Lab, Prometheus]) -> None:
    _, prom = setup
    assert prom.value('sum(meshkit_tcp_connections_opened_total{reporter="destination",destination_workload="back-v1"})') >= 1
    assert prom.value('sum(meshkit_response_bytes_count{reporter="destination",destination_workload="back-v1"})') == N
    assert prom.value('sum(meshkit_response_bytes_sum{reporter="destination",destination_workload="back-v1"})') > 0


def test_targets_file_names_every_sidecar(setup: tuple[Lab, Prometheus], tmp_path: Path) -> None:
    lab, _ = setup
    groups = lab.prometheus_targets(tmp_path / "t.json")
    assert sorted(g["labels"]["workload"] for g in groups) == ["back-v1", "curl", "front-v1"]
