"""Catch-up on real labs: every notebook's declared start state is reached from another
notebook's state, and some from a fresh lab, from a broken one and from no lab at all.

To keep the run short one lab walks 00 -> 01 -> ... -> 13 (every notebook
reached from the one before it, which covers deploying, undeploying, your own
workloads changing, injecting and uninjecting), and a few labs start fresh
or broken.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from meshkit import checkpoints, restore, state
from meshkit.lab import Lab
from tests.integration.test_checkpoints import SUBSETS, split, workloads

NOTEBOOKS = checkpoints.notebooks()


def assert_in_start_state(lab: Lab, notebook: str) -> None:
    declared = checkpoints.start_state(notebook)
    assert state.diff(restore.read_lab(lab), declared, there=f"in notebook {notebook}'s start state") == []
    assert lab.get().empty == (not declared["resources"])
    assert workloads(lab) == state.expected_workloads(declared)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(home=tmp_path / "lab")
    try:
        yield lab
    finally:
        lab.down()


def test_one_lab_walks_every_notebook_in_order(lab: Lab) -> None:
    took: dict[str, float] = {}
    for notebook in NOTEBOOKS:
        started = time.monotonic()
        changes = lab.catch_up(notebook)
        took[notebook] = time.monotonic() - started
        assert_in_start_state(lab, notebook)
        assert changes or notebook in ("04", "05", "08", "09", "10", "11")  # the same state as the notebook before
    print("catch-up seconds per notebook:", {k: round(v, 1) for k, v in took.items()})
    entries = lab.journal()
    assert list(entries[entries["action"] == "catch_up"]["what"]) == [f"notebook {n}" for n in NOTEBOOKS]


def test_from_a_fresh_lab_and_from_no_lab_at_all(lab: Lab) -> None:
    changes = lab.catch_up(13)  # no lab was ever up in this home
    assert changes.lines[0] == "started the lab"
    assert_in_start_state(lab, "13")
    lab.reset()
    assert str(lab.catch_up("07")) == "catch-up 07: deployed pick-v1, pick-v2, slow-v1 with sidecars; injected curl"
    assert_in_start_state(lab, "07")
    lab.down()
    assert lab.catch_up("02").lines == ["started the lab", "deployed bookinfo", "injected curl", "injected productpage-v1"]
    assert_in_start_state(lab, "02")


def test_from_a_broken_lab(lab: Lab) -> None:
    """A crashed sidecar and a crashed app, config a notebook never had, a sidecar removed:
    catch-up restarts what died, deletes the config and injects again."""
    lab.catch_up(4)
    lab.apply(SUBSETS + "---" + split(0, 100))
    lab.uninject("ratings-v1")
    processes = lab.resources(sample=0.1)
    sidecar = processes[(processes["workload"] == "reviews-v2") & (processes["role"] == "sidecar")]["pid"].iloc[0]
    app = processes[(processes["workload"] == "details-v1") & (processes["role"] == "app")]["pid"].iloc[0]
    for pid in (sidecar, app):
        process = psutil.Process(int(pid))
        process.kill()
        process.wait(5)
    lines = list(state.diff(restore.read_lab(lab), checkpoints.start_state(4), there="in notebook 04"))
    assert lines[:2] == ["default/details-v1-0 is not running here (its app or sidecar exited)",
                         "default/reviews-v2-0 is not running here (its app or sidecar exited)"]
    changes = lab.catch_up(4)
    assert changes.lines == ["restarted default/details-v1-0, default/reviews-v2-0",
                             "deleted VirtualService reviews, DestinationRule reviews", "injected ratings-v1"]
    assert_in_start_state(lab, "04")
    assert lab.call("productpage", "/productpage").status == 200


def test_a_lab_whose_control_plane_died_is_started_again(lab: Lab) -> None:
    lab.catch_up(1)
    control = lab.resources(sample=0.1)
    pid = int(control[control["role"] == "control plane"]["pid"].iloc[0])
    process = psutil.Process(pid)
    process.kill()
    process.wait(5)
    assert not lab.running()
    changes = lab.catch_up(3)
    assert changes.lines[:2] == ["started the lab's control plane and stopped processes again", "injected 7 workloads"]
    assert_in_start_state(lab, "03")


def test_the_cli_catches_up_and_an_unknown_notebook_lists_the_valid_ones(lab: Lab) -> None:
    def meshkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meshkit.cli", "--home", str(lab.state_dir), *args],
                              capture_output=True, text=True, timeout=120)

    done = meshkit("catch-up", "00")
    assert done.returncode == 0 and done.stdout.strip() == "catch-up 00: started the lab"
    assert "catch-up 00: step 1/1: starting the lab" in done.stderr  # the status line, one per step off a terminal
    assert_in_start_state(lab, "00")
    wrong = meshkit("catch-up", "14")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "meshkit: error: no notebook '14' to catch up to: notebooks are " + ", ".join(NOTEBOOKS)

