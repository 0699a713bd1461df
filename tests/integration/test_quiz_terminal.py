"""`meshkit quiz` through a real pseudo-terminal: a question answered wrong, then
right; `meshkit progress` shows it; bad input is one line, no traceback."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshkit.quiz.bank import bank
from meshkit.quiz.grading import letter

ROOT = Path(__file__).resolve().parents[2]


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MESHKIT_HOME": str(tmp_path / "lab"), "MESHKIT_PROGRESS": str(tmp_path / "progress.jsonl"),
            "MESHKIT_LEARNER": "ana", "PYTHONUNBUFFERED": "1"}


class Terminal:
    """A child process on a pty: read until a text shows, then type."""

    def __init__(self, argv: list[str], environ: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=environ, cwd=ROOT, close_fds=True)
        os.close(slave)
        self.screen = ""

    def expect(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen[-2000:]}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    chunk = ""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"the process ended before {text!r}; the screen:\n{self.screen[-2000:]}")
                self.screen += chunk
        return self.screen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        finally:
            os.close(self.master)


def meshkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshkit.cli", *args]


def test_a_question_answered_wrong_then_right_then_progress_shows_it(tmp_path: Path) -> None:
    first = bank("04").questions[0]
    options = getattr(first, "options", None)
    term = Terminal(meshkit("quiz", "04", "--no-tasks"), env(tmp_path))
    try:
        term.expect(f"[{first.id}]")
        term.expect("answer (")
        if options is not None:
            wrong = next(i for i, o in enumerate(options) if not o.correct)
            right = next(i for i, o in enumerate(options) if o.correct)
            term.type(str(wrong + 1))  # by number, as the terminal allows
            term.expect("Not quite: ")
            term.expect("answer (")
            term.type("h")
            term.expect(f"Hint: {first.hint[:30]}")
            term.type(letter(right))
        else:
            term.type("h")
            term.expect("Hint:")
            term.type("q")
        term.expect("try 2]" if options is not None else "Stopped.")
        term.type("q")
        term.expect("Stopped. Your answers so far are saved.")
        term.expect("Notebook 04: 1 of")
        assert term.close() == 0
    finally:
        term.proc.kill()
    shown = subprocess.run(meshkit("progress"), env=env(tmp_path), capture_output=True, text=True, cwd=ROOT, timeout=60)
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("04"))
    answered, right, first_try = (int(n) for n in row.split()[-5:-2])
    assert (answered, right, first_try) == ((1, 1, 0) if options is not None else (0, 0, 0)), row
    out = tmp_path / "attempts.csv"
    exported = subprocess.run(meshkit("progress", "--export", str(out)), env=env(tmp_path), capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert exported.returncode == 0 and out.read_text().count(first.id) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quiz", "42"], "unknown notebook '42'"),
        (["quiz", "intro"], "unknown notebook 'intro'"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(meshkit(*args), env=env(tmp_path), capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr + done.stdout


def test_a_live_task_with_no_lab_up_is_one_clear_line(tmp_path: Path) -> None:
    words = bank("04").tasks[0]
    term = Terminal(meshkit("quiz", "04"), env(tmp_path))
    try:
        for _ in bank("04").questions:
            term.expect("answer (")
            term.type("s")
        term.expect(f"Live task [{words.id}]")
        term.type("c")
        term.expect("no lab is running here")
        term.type("q")
        assert term.close() == 0
        assert "Traceback" not in term.screen
    finally:
        term.proc.kill()
