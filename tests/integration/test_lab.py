"""The whole local lab, as a learner drives it: real processes, real traffic.

One bookinfo lab is shared by the tests of this module that only read it or
change config reversibly; tests that break the lab on purpose (killing the
control plane, simulating a kernel restart) get their own.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from meshkit.backends import processes
from meshkit.errors import LabNotRunning, UnknownWorkload
from meshkit.lab import Lab


def lab_processes(home: Path) -> list[psutil.Process]:
    """Every live process whose command line points into this lab's home."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if any(str(home) in arg for arg in cmdline[1:]) and "-m" in cmdline:
            found.append(proc)
    return found


def control_pid(home: Path) -> int:
    import json

    return int(json.loads((home / "lab.json").read_text())["control"]["proc"]["pid"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("lab")
    lab = Lab(home=home).up()
    try:
        lab.deploy("bookinfo")
        lab.inject("default")
        yield lab
    finally:
        lab.down()


def test_bookinfo_answers_through_the_sidecars(lab: Lab) -> None:
    result = lab.call("productpage", "/productpage")
    assert result.status == 200, result
    assert result.via_sidecar
    page = result.json()
    assert page["service"] == "productpage"
    assert page["reviews"]["version"] in {"v1", "v2", "v3"}


def test_every_workload_has_a_synced_sidecar(lab: Lab) -> None:
    workloads = lab.workloads()
    assert set(workloads.workload) >= {"productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1", "curl"}
    assert workloads.sidecar.all()
    assert (workloads.ready == "1/1").all()
    assert (workloads.config == "SYNCED").all(), workloads


def test_round_robin_spreads_requests_evenly_across_versions(lab: Lab) -> None:
    """With ROUND_ROBIN (Istio's default is LEAST_REQUEST since 1.14, so it is
    asked for), the client's sidecar rotates over reviews' three endpoints:
    30 calls from one sidecar land exactly 10 on each."""
    lab.apply({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
               "spec": {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}}})
    try:
        versions = collections.Counter(lab.call("reviews", "/reviews/0").version for _ in range(30))
    finally:
        lab.delete("DestinationRule", "reviews")
    assert versions == {"v1": 10, "v2": 10, "v3": 10}


def test_a_call_to_an_unknown_service_names_the_services_there_are(lab: Lab) -> None:
    with pytest.raises(UnknownWorkload, match="nosuchservice.*productpage"):
        lab.call("nosuchservice", "/")


def test_config_change_reaches_every_sidecar_without_failing_requests_in_flight(lab: Lab) -> None:
    """Ten config versions pushed while traffic flows: every sidecar ACKs the
    last one and not one request fails."""
    control = lab._control()
    results: list = []

    def traffic() -> None:
        results.append(lab.load("productpage", "/productpage", rate=50, duration=3))

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(0.5)
    version = 0
    for i in range(10):
        answer = control.put_resource(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "details", "namespace": "default"},
                "spec": {"hosts": ["details"], "http": [{"route": [{"destination": {"host": "details"}}], "timeout": f"{10 + i}s"}]},
            }
        )
        version = answer["version"]
        time.sleep(0.15)
    worker.join()
    acks = control.wait_acked(version, timeout=10)
    nodes = set(lab.proxy_status().node)
    assert set(acks) == nodes and len(nodes) == 8  # 7 workloads and Bookinfo's ingress gateway
    frame = results[0]
    assert len(frame) >= 140
    assert (frame.code == 200).all(), frame[frame.code != 200]
    control.delete_resource("VirtualService", "default", "details")


def test_sidecars_keep_routing_when_the_control_plane_is_killed_and_reconnect_when_it_returns(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    lab = Lab(home=home).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.inject("default")
        version = lab.health()["version"]
        os.kill(control_pid(home), signal.SIGKILL)
        # Traffic keeps flowing on the last good config, including to
        # destinations that had no traffic since (details, ratings).
        frame = lab.load("productpage", "/productpage", rate=30, duration=2)
        assert (frame.code == 200).all()
        assert lab.call("ratings", "/ratings/0").status == 200
        assert not lab.running()
        lab.up()  # restarts the control plane on its old port, from its store
        assert lab.health()["version"] == version
        acks = lab._control().wait_acked(version, timeout=15)
        assert len(acks) == 8  # 7 workloads and Bookinfo's ingress gateway
        status = lab.proxy_status()
        assert status.connected.all() and (status.status == "SYNCED").all()
        assert lab.call("productpage", "/productpage").status == 200
    finally:
        lab.down()


def test_a_new_lab_after_a_kernel_restart_reattaches_without_orphans(tmp_path: Path) -> None:
    """A 'kernel' (a child Python) starts a lab and dies with SIGKILL; a new
    Lab on the same home reattaches: same processes, one control plane, and
    down() leaves nothing behind."""
    home = tmp_path / "lab"
    script = f"from meshkit.lab import Lab\nlab = Lab(home={str(home)!r}).up()\nlab.deploy('bookinfo', inject=True)\nprint('ready', flush=True)\nimport time\ntime.sleep(60)\n"
    kernel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert kernel.stdout is not None
        assert kernel.stdout.readline().strip() == "ready"
        before = {p.pid for p in lab_processes(home)}
        kernel.kill()
        kernel.wait()
        lab = Lab(home=home).up()
        after = {p.pid for p in lab_processes(home)}
        assert after == before, "reattaching must neither start nor lose processes"
        controls = [p for p in lab_processes(home) if "meshkit.control" in p.cmdline()]
        assert len(controls) == 1
        assert lab.call("productpage", "/productpage").status == 200
        lab.down()
        assert processes.wait_until(lambda: not lab_processes(home), 5.0)
    finally:
        if kernel.poll() is None:
            kernel.kill()
        Lab(home=home).down()


def test_calls_on_a_lab_that_is_not_running_say_so(tmp_path: Path) -> None:
    lab = Lab(home=tmp_path / "nothing-here")
    assert not lab.running()
    with pytest.raises(LabNotRunning, match="Lab\\(\\).up\\(\\)"):
        lab.deploy("bookinfo")


def test_unknown_app_and_workload_name_what_exists(lab: Lab) -> None:
    with pytest.raises(UnknownWorkload, match="bookinfo"):
        lab.deploy("bookinf")
    with pytest.raises(UnknownWorkload, match="reviews-v2"):
        lab.inject("reviews-v9")


def test_the_lab_works_from_inside_a_running_event_loop_as_in_a_notebook(lab: Lab) -> None:
    """A kernel runs its own loop; the Lab must neither need nor disturb it."""
    import asyncio

    async def cell() -> tuple[int, int]:
        result = lab.call("productpage", "/productpage")
        frame = lab.load("productpage", "/productpage", rate=20, requests=10)
        return result.status, int((frame.code == 200).sum())

    assert asyncio.run(cell()) == (200, 10)


def test_a_lab_used_as_a_context_manager_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    with Lab(home=home) as lab:
        lab.deploy("bookinfo")
        assert lab.call("productpage", "/productpage").status == 200
        assert lab_processes(home)
    assert processes.wait_until(lambda: not lab_processes(home), 5.0)
    assert not (home / "lab.json").exists()


def test_an_instance_whose_port_was_taken_before_it_bound_starts_again_on_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program can take a free port between allocation and bind; the
    sidecar then exits with its port-in-use status and the lab starts the
    instance again on fresh ports instead of failing the deploy."""
    import socket

    from meshkit.backends import local
    from meshkit.demo.apps import Latency, WorkloadSpec

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real_free_port = local.free_port
    calls = {"n": 0}

    def allocate(host: str = "127.0.0.1") -> int:
        calls["n"] += 1
        return taken.getsockname()[1] if calls["n"] == 3 else real_free_port(host)

    lab = Lab(home=tmp_path / "lab").up()
    try:
        monkeypatch.setattr(local, "free_port", allocate)
        spec = WorkloadSpec(name="solo-v1", service="solo", version="v1", service_account="solo", latency=Latency(1.0, 2.0))
        lab.deploy(spec, inject=True)
        assert calls["n"] > 4, "the instance was given new ports"
        assert lab.workloads().set_index("workload").loc["solo-v1", "ready"] == "1/1"
        assert lab.call("solo", "/").status == 200
    finally:
        taken.close()
        lab.down()


def test_every_service_url_answers_a_client_on_this_machine(lab: Lab) -> None:
    """services() gives each service an address a browser or curl opens:
    the endpoint the sidecar owns, answering a plain GET from outside the mesh."""
    import shutil

    import httpx

    services = lab.services().set_index("service")
    assert set(services.index) >= {"productpage", "details", "reviews", "ratings"}
    for service, row in services.iterrows():
        assert row.url == f"http://{row.address}" + ("/productpage" if service == "productpage" else
                                                     "/" if service == "curl" else f"/{service}/0")
        response = httpx.get(row.url, timeout=5.0, trust_env=False)
        assert response.status_code == 200, (service, row.url, response.text)
    if shutil.which("curl"):
        curl = subprocess.run(["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", services.loc["productpage", "url"]],
                              capture_output=True, text=True, timeout=10)
        assert curl.stdout == "200"


def test_resources_measure_apps_sidecars_and_the_control_plane_in_one_window(lab: Lab) -> None:
    """One row per process with its role; under load the sidecars' CPU shows,
    and the whole lab is sampled in one window, not one per process."""
    worker = threading.Thread(target=lambda: lab.load("productpage", "/productpage", rate=40, duration=2.5))
    worker.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        frame = lab.resources(sample=0.5)
        took = time.monotonic() - started
    finally:
        worker.join()
    assert took < 2.0, f"{took:.1f} s for {len(frame)} processes: one window, not one per process"
    assert frame.attrs["sample_s"] == 0.5
    assert (frame.role == "control plane").sum() == 1
    # every workload is injected (an app and a sidecar each), and the ingress gateway is one proxy
    assert len(frame) == 1 + 2 * len(lab.workloads()) + 1
    page = frame[frame.workload == "productpage-v1"].set_index("role")
    assert set(page.index) == {"app", "sidecar"}
    assert (frame.cpu_seconds > 0).all() and (frame.memory_mb > 0).all()
    assert page.loc["sidecar", "cpu_percent"] > 0 and page.loc["app", "cpu_percent"] > 0
    assert page.loc["app", "pid"] != page.loc["sidecar", "pid"]
    assert all(psutil.pid_exists(int(pid)) for pid in frame.pid)


def test_service_links_are_links_live_and_text_headless(lab: Lab) -> None:
    import ipywidgets
    from IPython.display import Pretty

    from meshkit.notebook import service_links

    url = lab.services().set_index("service").loc["productpage", "url"]
    live = service_links(lab, live=True)
    assert isinstance(live, ipywidgets.HTML) and f'href="{url}"' in live.value
    headless = service_links(lab, live=False)
    assert isinstance(headless, Pretty) and url in headless.data


def test_endpoints_are_the_callers_view_of_each_service(lab: Lab) -> None:
    lab.call("productpage", "/productpage")
    endpoints = lab.endpoints("productpage-v1")
    reviews = endpoints[(endpoints.service == "reviews") & endpoints.subset.isna()]
    assert sorted(reviews.version) == ["v1", "v2", "v3"]
    assert not reviews.ejected.any() and reviews.mtls.all()
    assert reviews.host.eq("reviews.default.svc.cluster.local").all()
    with pytest.raises(UnknownWorkload, match="no workload or namespace 'nosuch'"):
        lab.endpoints("nosuch")
