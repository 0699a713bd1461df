"""Telemetry across restarts: a sidecar restarted and a control plane restarted
during load lose nothing (the counts reconcile request for request), and when
a sidecar's bounded buffer must drop, the loss is reported with its size."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
import httpx
import pandas as pd
import psutil
import pytest

from meshkit.demo.apps import Call, Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.observe import drops

from .control_fixtures import start as start_control
from .sidecar_fixtures import Client, admin_headers, bootstrap, running_sidecar, wait_for

SVC = "{}.default.svc.cluster.local"
CHAIN = (
    WorkloadSpec(name="front-v1", service="front", version="v1", service_account="front", latency=Latency(3.0, 6.0),
                 calls=(Call("middle", "/middle", timeout_s=5.0),), paths=("/front",)),
    WorkloadSpec(name="middle-v1", service="middle", version="v1", service_account="middle", latency=Latency(2.0, 4.0),
                 paths=("/middle",)),
)  # fmt: skip
N = 300
RATE = 50.0


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(home=tmp_path / "lab").up()
    try:
        lab.deploy(CHAIN)
        lab.inject("default")
        yield lab
    finally:
        lab.down()


def load_in_background(lab: Lab) -> tuple[threading.Thread, dict[str, pd.DataFrame]]:
    out: dict[str, pd.DataFrame] = {}

    def run() -> None:
        out["rows"] = lab.load("front", "/front", rate=RATE, requests=N, concurrency=64, timeout=10.0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def proc_pid(lab: Lab, key: str, which: str) -> int:
    state = json.loads((lab.state_dir / "lab.json").read_text())
    if which == "control":
        return int(state["control"]["proc"]["pid"])
    return int(state["instances"][key][which]["pid"])


def terminate(pid: int) -> None:
    """SIGTERM (a graceful stop, as Kubernetes sends) and wait for the exit."""
    os.kill(pid, signal.SIGTERM)
    try:
        psutil.Process(pid).wait(15)
    except psutil.NoSuchProcess:
        pass


def reconcile(records: pd.DataFrame, source: str, service: str) -> None:
    """Every request the caller's sidecar got an upstream answer for was recorded
    by the callee's sidecar, under the caller's span; and nothing the callee
    recorded lacks its caller's record."""
    calls = records[(records["reporter"] == "source") & (records["source_workload"] == source) & (records["destination_service"] == service)]
    served = records[(records["reporter"] == "destination") & (records["source_workload"] == source) & (records["destination_service"] == service)]
    answered = set(calls.loc[calls["flags"] == "-", "span_id"])
    parents = set(served["parent_span_id"])
    assert answered <= parents, f"{len(answered - parents)} answered calls have no server record"
    assert parents <= set(calls["span_id"]), f"{len(parents - set(calls['span_id']))} server records have no caller record"
    assert not served["span_id"].duplicated().any() and not calls["span_id"].duplicated().any()


def assert_nothing_lost(lab: Lab) -> pd.DataFrame:
    table = lab.telemetry_drops()
    assert (table["lost"] == 0).all(), table
    assert (table["duplicates"] >= 0).all()
    assert (table["received"] == table["recorded"]).all(), table
    return table


def test_a_sidecar_restarted_during_load_loses_no_record(lab: Lab) -> None:
    thread, out = load_in_background(lab)
    time.sleep(N / RATE / 3)
    terminate(proc_pid(lab, "default/middle-v1-0", "sidecar_proc"))
    lab.up()  # restarts what is not running, as a Deployment would
    thread.join(60)
    rows = out["rows"]
    records = lab.requests()
    entry = records[(records["reporter"] == "source") & (records["source_workload"] == "curl")]
    assert len(entry) == N and sorted(entry["code"]) == sorted(rows["code"])
    reconcile(records, "curl", SVC.format("front"))
    reconcile(records, "front-v1", SVC.format("middle"))
    table = assert_nothing_lost(lab)
    middle = table[table["node"] == "default/middle-v1-0"]
    assert len(middle) == 2 and (middle["received"] > 0).all(), "both sidecar processes of middle delivered"


def test_a_control_plane_restarted_during_load_loses_no_record(lab: Lab) -> None:
    before = len(lab.requests())
    thread, out = load_in_background(lab)
    time.sleep(N / RATE / 3)
    stopped_at = time.time()
    terminate(proc_pid(lab, "", "control"))
    time.sleep(2.0)  # sidecars keep serving, and keep their records
    lab.up()
    thread.join(60)
    rows = out["rows"]
    assert (rows["code"] == 200).all(), rows["code"].value_counts()
    records = lab.requests()
    assert len(records) == before + 4 * N  # curl->front and front->middle, at both reporters
    assert (records["start"] < stopped_at).any() and (records["start"] > stopped_at + 1.0).any()
    for source, service in (("curl", "front"), ("front-v1", "middle")):
        reconcile(records, source, SVC.format(service))
    assert_nothing_lost(lab)


def test_an_overflowing_buffer_reports_the_size_of_the_drop(tmp_path: Path) -> None:
    """A sidecar that keeps at most 20 records while its control plane is away."""
    home = tmp_path / "cp"
    control = start_control(home)
    port = control.port
    try:
        client = control.client()
        record = {"instance": "client-0", "workload": "client", "namespace": "default", "service": None,
                  "service_port": None, "version": "v1", "service_account": "sa-client", "labels": {},
                  "address": None, "port": None, "sidecar": True}  # fmt: skip
        token = client.put_instance(record)["node_token"]
        boot = bootstrap(control_plane={"url": control.url, "token": token})
        boot["telemetry"] = {"buffer_size": 20, "flush_interval_s": 0.2}
        with running_sidecar(boot, tmp_path) as sidecar:
            admin = f"http://127.0.0.1:{sidecar.admin}"
            assert wait_for(lambda: httpx.get(f"{admin}/ready", trust_env=False).status_code == 200, 10)
            with Client(sidecar.outbound) as http:
                for _ in range(10):
                    http.request("GET", "http://nowhere/x", {"host": "nowhere"})
            assert httpx.post(f"{admin}/telemetry/flush", headers=admin_headers(), trust_env=False, timeout=10).json()["pushed"] == 10
            control.stop()
            with Client(sidecar.outbound) as http:
                for _ in range(100):
                    http.request("GET", "http://nowhere/x", {"host": "nowhere"})
            status = httpx.post(f"{admin}/telemetry/flush", headers=admin_headers(), trust_env=False, timeout=10).json()
            assert (status["recorded"], status["dropped"], status["waiting"]) == (110, 80, 20)
            control = start_control(home, "--port", str(port))
            status = httpx.post(f"{admin}/telemetry/flush", headers=admin_headers(), trust_env=False, timeout=10).json()
            assert status["pushed"] == 30 and status["waiting"] == 0
            table = drops(control.client().telemetry_status())
            row = table.iloc[0]
            assert (row["received"], row["gaps"], row["dropped"], row["lost"], row["recorded"]) == (30, 80, 80, 80, 110)
            seqs = [r[-1] for r in control.client().telemetry_records()["rows"]]
            assert seqs == list(range(10)) + list(range(90, 110))
            assert "meshkit_sidecar_telemetry_dropped_total 80" in httpx.get(f"{admin}/stats/prometheus", trust_env=False).text
    finally:
        control.stop()
