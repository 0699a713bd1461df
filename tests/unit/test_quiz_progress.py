"""Progress: every attempt appended outside the lab, summarised per notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.quiz.bank import QuizError, all_banks
from meshkit.quiz.progress import Attempt, Progress, progress_path, summarise


def attempt(item: str, correct: bool, kind: str = "question", answer: str = "a", at: float = 1.0) -> Attempt:
    return Attempt(notebook=item[:2], item=item, kind=kind, answer=answer, correct=correct, attempt=1, time=at)


def test_the_file_is_outside_the_lab_and_can_be_moved(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MESHKIT_PROGRESS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("MESHKIT_HOME", str(tmp_path / "lab"))
    assert progress_path() == tmp_path / "data" / "meshkit" / "progress.jsonl"
    monkeypatch.setenv("MESHKIT_PROGRESS", str(tmp_path / "mine.jsonl"))
    assert progress_path() == tmp_path / "mine.jsonl"


def test_attempts_are_appended_with_time_and_learner(tmp_path: Path) -> None:
    log = Progress(tmp_path / "p.jsonl", learner="ana")
    log.record(attempt("04-a", False))
    log.record(attempt("04-a", True, at=0.0))
    Progress(tmp_path / "p.jsonl", learner="li").record(attempt("04-a", True))
    mine = log.attempts()
    assert list(mine["correct"]) == [False, True]
    assert set(mine["learner"]) == {"ana"} and mine["time"].notna().all()
    assert len(log.attempts(all_learners=True)) == 3
    assert log.tries("04-a") == 2


def test_a_torn_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    log = Progress(path, learner="ana")
    log.record(attempt("04-a", True))
    with open(path, "a") as out:
        out.write('{"item": "04-b", "corr')
    assert len(log.attempts()) == 1


def test_an_unwritable_progress_file_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QuizError, match="cannot save progress to"):
        Progress(blocker / "p.jsonl", learner="ana").record(attempt("04-a", True))


def test_summary_counts_answered_right_first_try_and_tasks_passed_by_the_learner(tmp_path: Path) -> None:
    banks = all_banks()
    b4 = banks["04"]
    q1, q2 = b4.questions[0].id, b4.questions[1].id
    task = b4.tasks[0].id
    other = banks["05"].tasks[0].id
    log = Progress(tmp_path / "p.jsonl", learner="ana")
    for item in [
        attempt(q1, False, at=1), attempt(q1, True, at=2), attempt(q2, True, at=3),
        attempt(task, False, kind="task", answer="check", at=4), attempt(task, True, kind="task", answer="check", at=5),
        attempt(other, False, kind="task", answer="solve", at=6), attempt(other, True, kind="task", answer="check", at=7),
    ]:
        log.record(item)
    table = summarise(log.attempts(), banks).set_index("notebook")
    assert table.loc["04", ["answered", "right", "right_first_try", "tasks_passed"]].tolist() == [2, 2, 1, 1]
    assert table.loc["05", "tasks_passed"] == 0, "a check after 'solve it for me' is not the learner's pass"
    assert table.loc["00", "answered"] == 0
