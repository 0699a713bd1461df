"""Every live task on a real lab: it fails on its notebook's start state with
a sentence carrying the measured value, and passes after its solve step.

One lab for the module (each task's setup resets it), in its own MESHKIT_HOME.
The failure and success messages are printed, so `pytest -s` shows a learner's
view of every task.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshkit.lab import Lab
from meshkit.quiz.tasks import TASKS

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    home: Path = tmp_path_factory.mktemp("quiz-lab")
    lab = Lab(home=home).up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_task_fails_at_start_and_passes_after_solve(lab: Lab, task_id: str) -> None:
    task = TASKS[task_id]
    task.setup(lab)
    before = task.check(lab)
    print(f"\n{task_id} at the start: {before}")
    assert not before.passed, f"{task_id} passes on its start state: {before.message}"
    assert re.search(r"\d", before.message), f"the failure names no measured value: {before.message}"
    assert before.measured, "the result carries what was measured"
    task.solve(lab)
    after = task.check(lab)
    print(f"{task_id} after solve: {after}")
    assert after.passed, f"{task_id} fails after its own solve step: {after.message}"
