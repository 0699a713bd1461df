"""A learner's progress: every attempt, kept outside any lab.

Progress belongs to the learner, not to a lab: `lab.reset()`, `meshkit down`
or a new MESHKIT_HOME must not lose it. So it lives in its own file,
MESHKIT_PROGRESS if set, else $XDG_DATA_HOME/meshkit/progress.jsonl (by
default ~/.local/share/meshkit/progress.jsonl): JSON lines, one per attempt,
appended and never rewritten, so an instructor can read the raw log and a
crash loses at most the line being written. Several learners may share a file
(a workshop machine): each line carries the learner's name (MESHKIT_LEARNER,
else the login name).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from meshkit.quiz.bank import QuizError
from meshkit.quiz.schema import BankFile

COLUMNS = ["time", "learner", "notebook", "item", "kind", "answer", "correct", "attempt", "hints", "measured"]


def progress_path() -> Path:
    env = os.environ.get("MESHKIT_PROGRESS")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "meshkit" / "progress.jsonl"


def learner_name() -> str:
    env = os.environ.get("MESHKIT_LEARNER", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "learner"


@dataclass(frozen=True)
class Attempt:
    """One answer to a question, or one check of a live task."""

    notebook: str
    item: str  # question or task id
    kind: str  # "question", "prediction" or "task"
    answer: str  # the answer as graded; for a task "check" or "solve"
    correct: bool
    attempt: int  # 1 for the first try at this item
    hints: int = 0  # hints shown before this attempt
    measured: str = ""  # a prediction's or a task's measured value
    time: float = 0.0
    learner: str = ""


class Progress:
    """Append attempts; read them back as a DataFrame or a summary per notebook."""

    def __init__(self, path: Path | None = None, learner: str | None = None) -> None:
        self.path = path or progress_path()
        self.learner = learner or learner_name()

    def record(self, attempt: Attempt) -> Attempt:
        stamped = Attempt(**{**asdict(attempt), "time": attempt.time or time.time(), "learner": attempt.learner or self.learner})
        line = json.dumps(asdict(stamped), ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                fcntl.flock(out, fcntl.LOCK_EX)
                out.write(line)
        except OSError as exc:
            raise QuizError(f"cannot save progress to {self.path}: {exc.strerror}") from None
        return stamped

    def attempts(self, learner: str | None = None, all_learners: bool = False) -> pd.DataFrame:
        """Every attempt of this learner (or of everyone), oldest first."""
        rows = list(_read(self.path))
        frame = pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)
        if not all_learners:
            frame = frame[frame["learner"] == (learner or self.learner)]
        frame = frame.reset_index(drop=True)
        frame["time"] = pd.to_datetime(frame["time"].astype(float), unit="s", utc=True)
        return frame

    def tries(self, item: str) -> int:
        """How many times this learner already answered `item`."""
        frame = self.attempts()
        return int((frame["item"] == item).sum())

    def summary(self, banks: Mapping[str, BankFile]) -> pd.DataFrame:
        """One row per notebook: answered, right at first try, live tasks passed."""
        return summarise(self.attempts(), banks)


def _read(path: Path) -> Iterable[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise QuizError(f"cannot read progress from {path}: {exc.strerror}") from None
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash: the rest still counts
        if isinstance(row, dict):
            yield {c: row.get(c) for c in COLUMNS}


def summarise(attempts: pd.DataFrame, banks: Mapping[str, BankFile]) -> pd.DataFrame:
    """The progress table from attempts (pure): a row per notebook, in order."""
    rows = []
    for key, bank in sorted(banks.items()):
        questions = {q.id for q in bank.questions}
        tasks = {t.id for t in bank.tasks}
        mine = attempts[attempts["notebook"] == key]
        answers = mine[mine["item"].isin(questions) & (mine["kind"] != "task")]
        first = answers.sort_values("time").groupby("item").head(1)
        runs = mine[mine["item"].isin(tasks) & (mine["kind"] == "task")]
        solved_at = runs[runs["answer"] == "solve"].groupby("item")["time"].min()
        passed = {
            row.item
            for row in runs[(runs["answer"] == "check") & runs["correct"].astype(bool)].itertuples()
            if row.item not in solved_at or row.time < solved_at[row.item]
        }
        rows.append(
            {
                "notebook": key,
                "title": bank.title,
                "questions": len(questions),
                "answered": int(answers["item"].nunique()),
                "right": int(answers[answers["correct"].astype(bool)]["item"].nunique()),
                "right_first_try": int(first["correct"].astype(bool).sum()),
                "tasks": len(tasks),
                "tasks_passed": len(passed),  # by the learner: a "solve it for me" before the check does not count
            }
        )
    return pd.DataFrame(rows, columns=["notebook", "title", "questions", "answered", "right", "right_first_try", "tasks", "tasks_passed"])
