"""Live tasks: checked on the running lab, with a solve step; one module per group of notebooks.

    base.py        LiveTask, TaskResult, the shared measurements
    mesh.py        00-03  sidecars, injection, pushed config, load balancing
    traffic.py     04, 05, 13  splits, header routes, rollback
    resilience.py  06-08  retry storm, circuit breaker, injected delay
    security.py    09, 10  STRICT for one workload, GET only
    observe.py     11, 12  a failing edge found from telemetry, a service left out of the mesh

A task's words (title, prompt, hint, explanation) are in the notebook's bank
file under the same id; tests/unit/test_quiz_tasks.py keeps the two in step.
"""

from __future__ import annotations

from meshkit.quiz.tasks import mesh, observe, resilience, security, traffic
from meshkit.quiz.tasks.base import LiveTask, TaskResult

TASKS: dict[str, LiveTask] = {t.id: t for group in (mesh, traffic, resilience, security, observe) for t in group.TASKS}

__all__ = ["TASKS", "LiveTask", "TaskResult"]
