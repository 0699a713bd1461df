"""`meshkit quiz` and `meshkit progress`: the same bank and progress, in a terminal.

Questions are answered by letter or number (1 is a), with h for a hint, s to
skip and q to stop; live tasks run against the lab in MESHKIT_HOME. Input
comes from `ask` (input() by default), so a test drives it through a real
pseudo-terminal and a script could drive it through a pipe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshkit.errors import MeshkitError
from meshkit.lab import Lab
from meshkit.quiz import text
from meshkit.quiz.bank import all_banks
from meshkit.quiz.grading import BadAnswer, letter
from meshkit.quiz.progress import Progress
from meshkit.quiz.schema import MultipleChoice, SingleChoice, WhichYaml
from meshkit.quiz.session import Quiz

Ask = Callable[[str], str]


class Stop(Exception):
    """The learner typed q (or closed the input)."""


def _read(ask: Ask, prompt: str) -> str:
    try:
        reply = ask(prompt)
    except EOFError:
        raise Stop from None
    if reply.strip().lower() in ("q", "quit"):
        raise Stop
    return reply.strip()


def numbers_to_letters(reply: str, question: object) -> str:
    """'2' -> 'b' and '1,3' -> 'a,c' for choice questions, so either can be typed."""
    if not isinstance(question, (SingleChoice, MultipleChoice, WhichYaml)):
        return reply
    parts = [p for p in reply.replace(",", " ").split() if p]
    if parts and all(p.isdigit() and 1 <= int(p) <= len(question.options) for p in parts):
        return ",".join(letter(int(p) - 1) for p in parts)
    return reply


def run_quiz(notebook: str, lab: Lab | None, ask: Ask = input, say: Callable[[str], None] = print, tasks: bool = True) -> None:
    quiz = Quiz(notebook, lab, live=False)
    bank = quiz.bank
    say(f"Quiz {quiz.key}: {bank.title} -- {len(bank.questions)} questions, {len(bank.tasks)} live task(s).")
    say("Answer with a letter or its number; h for a hint, s to skip, q to stop.\n")
    try:
        for number, question in enumerate(bank.questions, 1):
            _ask_question(quiz, question.id, number, ask, say)
        if tasks:
            for words in bank.tasks:
                _run_task(quiz, words.id, ask, say)
    except Stop:
        say("\nStopped. Your answers so far are saved.")
    say(_summary_line(quiz))


def _ask_question(quiz: Quiz, ident: str, number: int, ask: Ask, say: Callable[[str], None]) -> None:
    state = quiz.question_state(ident)
    say(text.question_text(state.question, number))
    while True:
        reply = _read(ask, f"answer ({text.how_to_answer(state.question)}): ")
        if reply.lower() in ("h", "hint"):
            say(f"Hint: {state.hint()}")
            continue
        if reply.lower() in ("s", "skip"):
            say("Skipped.\n")
            return
        if not reply:
            continue
        try:
            outcome = state.submit(numbers_to_letters(reply, state.question))
        except BadAnswer as exc:
            say(str(exc))
            continue
        say(text.outcome(state.question, outcome))
        if outcome.reveal:
            say("")
            return


def _run_task(quiz: Quiz, ident: str, ask: Ask, say: Callable[[str], None]) -> None:
    state = quiz.task_state(ident)
    say(text.task_text(state.words))
    while True:
        reply = _read(ask, "[c]heck my lab, [h]int, [s]olution, solve it for [m]e, [n]ext: ").lower()
        try:
            if reply in ("c", "check"):
                say("Checking the lab (config, then fresh traffic)...")
                say(str(state.check()))
            elif reply in ("h", "hint"):
                say(f"Hint: {state.hint()}")
            elif reply in ("s", "solution"):
                say(text.solution(state.words))
            elif reply in ("m", "me"):
                say("Applying the solution, then checking...")
                say("Solved for you. " + str(state.solve()))
            elif reply in ("n", "next", ""):
                return
        except MeshkitError as exc:
            say(f"meshkit: {exc}")


def _summary_line(quiz: Quiz) -> str:
    table = quiz.progress()
    row = table[table["notebook"] == quiz.key].iloc[0]
    return (
        f"Notebook {quiz.key}: {row['answered']} of {row['questions']} questions answered, "
        f"{row['right_first_try']} right at the first try, {row['tasks_passed']} of {row['tasks']} live task(s) passed."
    )


def progress_table(progress: Progress | None = None) -> str:
    table = (progress or Progress()).summary(all_banks())
    return table.to_string(index=False)


def export_progress(path: Path, progress: Progress | None = None, all_learners: bool = False) -> int:
    """Every attempt as CSV (for an instructor); returns the number of rows."""
    frame = (progress or Progress()).attempts(all_learners=all_learners)
    frame.to_csv(path, index=False)
    return len(frame)
