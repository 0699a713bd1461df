"""Two learners, one machine: two labs in two homes run side by side.

What a shared JupyterHub server needs: each learner's lab has its own home,
ports and processes; each sees only its own config and traffic; and stopping
one lab (from Python or with `meshkit down`) never touches the other. Both
labs start at the same moment, so their port choices and process starts race
as two learners' would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from meshkit.lab import Lab
from meshkit.quiz.tasks.base import shares
from meshkit.quiz.tasks.mesh import REVIEWS_SUBSETS

REVIEWS_REQUESTS = 60


def pin_reviews(version: str) -> list[dict[str, Any]]:
    """Every reviews request to one version: the subsets and the route."""
    route = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": version}, "weight": 100}]}]},
    }
    return [REVIEWS_SUBSETS, route]


def owned_processes(home: Path) -> list[tuple[int, float]]:
    """(pid, create time) of every process the lab in `home` recorded."""
    state = json.loads((home / "lab.json").read_text())
    records = [state["control"]["proc"]]
    for rec in state["instances"].values():
        records += [rec[key] for key in ("app_proc", "sidecar_proc") if rec.get(key)]
    return [(int(r["pid"]), float(r["create_time"])) for r in records]


def still_running(records: list[tuple[int, float]]) -> list[int]:
    """The pids of `records` that still run as the same process."""
    alive = []
    for pid, created in records:
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) <= 0.5 and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def lab_ports(home: Path) -> set[int]:
    """Every loopback port the lab in `home` owns: control plane, endpoints, sidecars' ports."""
    state = json.loads((home / "lab.json").read_text())
    ports = {int(state["control"]["port"])}
    for rec in state["instances"].values():
        ports |= {int(rec[key]) for key in ("port", "app_port", "outbound", "admin") if rec.get(key)}
    return ports


def start_bookinfo(home: Path, failures: list[BaseException]) -> None:
    try:
        lab = Lab(home=home).up()
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
    except BaseException as exc:  # handed to the test thread, which fails with it
        failures.append(exc)


@pytest.fixture
def two_labs(tmp_path: Path) -> Iterator[tuple[Lab, Lab]]:
    """Two Bookinfo labs with sidecars, started at once. The second home's
    name starts with the first's ("lab", "lab-2"): a prefix match of paths
    would take one lab's processes for the other's."""
    homes = (tmp_path / "lab", tmp_path / "lab-2")
    failures: list[BaseException] = []
    threads = [threading.Thread(target=start_bookinfo, args=(home, failures)) for home in homes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        yield Lab(home=homes[0]), Lab(home=homes[1])
    finally:
        for home in homes:
            Lab(home=home).down()


def meshkit_cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m meshkit ...` as a learner's terminal runs it: the lab chosen by MESHKIT_HOME."""
    env = {**os.environ, "MESHKIT_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "meshkit", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def assert_serving(lab: Lab, version: str, processes: list[tuple[int, float]]) -> None:
    """The lab still runs every process it had, answers, and routes reviews as it was told."""
    assert still_running(processes) == [pid for pid, _ in processes], "a process of the other lab was stopped"
    page = lab.call("productpage", "/productpage")
    assert page.status == 200, page
    assert page.json()["reviews"]["version"] == version
    assert shares(lab.load("reviews", "/reviews/0", rate=50, requests=20)) == {version: 1.0}
    workloads = lab.workloads()
    assert (workloads.config == "SYNCED").all(), workloads


def test_each_lab_sees_only_its_own_split(two_labs: tuple[Lab, Lab]) -> None:
    first, second = two_labs
    assert not lab_ports(first.state_dir) & lab_ports(second.state_dir)
    first.apply(pin_reviews("v1"))
    second.apply(pin_reviews("v3"))
    assert shares(first.load("reviews", "/reviews/0", rate=50, requests=REVIEWS_REQUESTS)) == {"v1": 1.0}
    assert shares(second.load("reviews", "/reviews/0", rate=50, requests=REVIEWS_REQUESTS)) == {"v3": 1.0}
    # Each control plane holds its own config only, and its telemetry its own traffic.
    assert first.get("vs", "reviews")["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v1"
    assert second.get("vs", "reviews")["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v3"
    for lab, workload in ((first, "reviews-v1"), (second, "reviews-v3")):
        served = set(lab.requests(reporter="destination")["destination_workload"])
        assert {w for w in served if w.startswith("reviews")} == {workload}


def test_meshkit_down_of_one_lab_leaves_the_other_serving(two_labs: tuple[Lab, Lab]) -> None:
    first, second = two_labs
    first.apply(pin_reviews("v1"))
    second.apply(pin_reviews("v3"))
    first_processes = owned_processes(first.state_dir)
    second_processes = owned_processes(second.state_dir)

    done = meshkit_cli(first.state_dir, "down")
    assert done.returncode == 0, done.stderr
    assert still_running(first_processes) == []
    assert not first.running()
    assert_serving(second, "v3", second_processes)


def test_down_from_python_and_a_reattaching_up_leave_the_other_lab_serving(two_labs: tuple[Lab, Lab]) -> None:
    first, second = two_labs
    first.apply(pin_reviews("v1"))
    second.apply(pin_reviews("v3"))
    first_processes = owned_processes(first.state_dir)
    second_processes = owned_processes(second.state_dir)

    # A restarted kernel's Lab reattaches: `up` looks for stray processes of its own home.
    Lab(home=second.state_dir).up()
    assert_serving(first, "v1", first_processes)

    Lab(home=second.state_dir).down()
    assert still_running(second_processes) == []
    assert_serving(first, "v1", first_processes)


def test_the_same_relative_home_in_two_directories_is_two_labs(tmp_path: Path) -> None:
    """MESHKIT_HOME=.meshkit set for every user of a hub names a different
    directory in each user's working directory. It used to be one string in
    every lab's process command lines, so one learner's `meshkit up` took the
    other's processes for its own strays and stopped them."""
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    alice.mkdir()
    bob.mkdir()
    try:
        assert meshkit_cli(Path(".meshkit"), "up", cwd=alice).returncode == 0
        alice_processes = owned_processes(alice / ".meshkit")
        assert meshkit_cli(Path(".meshkit"), "up", cwd=bob).returncode == 0
        assert still_running(alice_processes) == [pid for pid, _ in alice_processes]
        assert meshkit_cli(Path(".meshkit"), "down", cwd=bob).returncode == 0
        assert still_running(alice_processes) == [pid for pid, _ in alice_processes]
        assert Lab(home=alice / ".meshkit").health()["ok"]
    finally:
        for home in (alice / ".meshkit", bob / ".meshkit"):
            Lab(home=home).down()
