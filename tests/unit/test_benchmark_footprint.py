"""The learners-per-machine arithmetic of benchmarks/lab_footprint.py, on numbers worked by hand."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
try:
    import lab_footprint
finally:
    sys.path.remove(str(BENCH))

LEARNER = {"memory_mb": 700.0, "pss_mb": 400.0, "cpu_idle_percent": 2.0, "cpu_busy_percent": 42.0}


def test_memory_bound_keeps_the_reserve_for_the_system() -> None:
    # (8 GiB - 1 GiB reserved) = 7168 MiB; 7168 / 700 = 10.2 -> 10 learners.
    assert lab_footprint.capacity(16, 8, LEARNER, 0.25)["by_memory"] == 10


def test_cpu_bound_counts_idle_learners_and_the_busy_share() -> None:
    # average 2 + 0.25 * 40 = 12% of a core; 4 cores * 100 * 0.7 = 280 -> 23 learners.
    assert lab_footprint.capacity(4, 64, LEARNER, 0.25)["by_cpu"] == 23
    # half the room busy: 2 + 0.5 * 40 = 22% -> 280 / 22 = 12.7 -> 12.
    assert lab_footprint.capacity(4, 64, LEARNER, 0.5)["by_cpu"] == 12


def test_a_machine_holds_the_smaller_of_the_two() -> None:
    found = lab_footprint.capacity(4, 8, LEARNER, 0.5)
    assert found == {"by_memory": 10, "by_cpu": 12, "learners": 10}


def test_a_machine_smaller_than_the_reserve_holds_nobody() -> None:
    assert lab_footprint.capacity(2, 1, LEARNER, 0.25)["learners"] == 0


def test_per_learner_sums_every_role_and_takes_the_larger_memory() -> None:
    measured = {
        "idle": {"sidecar": {"cpu_percent": 1.0, "memory_mb": 300.0, "pss_mb": 200.0},
                 "app": {"cpu_percent": 0.5, "memory_mb": 200.0, "pss_mb": 100.0}},
        "busy": {"sidecar": {"cpu_percent": 30.0, "memory_mb": 320.0, "pss_mb": 210.0},
                 "app": {"cpu_percent": 10.0, "memory_mb": 205.0, "pss_mb": 101.0}},
    }
    assert lab_footprint.per_learner(measured) == {
        "memory_mb": 525.0, "pss_mb": 311.0, "cpu_idle_percent": 1.5, "cpu_busy_percent": 40.0,
    }
