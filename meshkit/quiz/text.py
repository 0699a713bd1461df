"""The quiz as plain text: for headless runs, scripts, the terminal, and the widgets' words.

Pure functions of a question and a verdict, so every front end says the same
thing in the same words.
"""

from __future__ import annotations

import textwrap
from typing import Any

from meshkit.quiz.grading import Verdict, letter
from meshkit.quiz.schema import MultipleChoice, MythOrFact, Numeric, Question, ShortText, SingleChoice, TaskText, WhichYaml

KIND_WORDS = {
    "single": "choose one",
    "multiple": "choose all that apply",
    "myth_or_fact": "myth or fact?",
    "numeric": "a number",
    "text": "a word or short phrase",
    "yaml": "which YAML is right?",
}


def wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(" ".join(text.split()), width=88, initial_indent=indent, subsequent_indent=indent)


def choices(question: Question) -> list[str]:
    """The option lines as shown: 'a) ...'."""
    if isinstance(question, (SingleChoice, MultipleChoice)):
        return [f"{letter(i)}) {o.text}" for i, o in enumerate(question.options)]
    if isinstance(question, WhichYaml):
        return [f"{letter(i)})\n{textwrap.indent(o.yaml.rstrip(), '    ')}" for i, o in enumerate(question.options)]
    if isinstance(question, MythOrFact):
        return ["m) myth", "f) fact"]
    return []


def how_to_answer(question: Question) -> str:
    if isinstance(question, (SingleChoice, WhichYaml)):
        return f"a letter, a to {letter(len(question.options) - 1)}"
    if isinstance(question, MultipleChoice):
        return "letters separated by commas, such as a, c"
    if isinstance(question, MythOrFact):
        return "myth or fact"
    if isinstance(question, Numeric):
        return f"a number{f' (in {question.unit})' if question.unit else ''}"
    return "a word or short phrase"


def question_text(question: Question, number: int | None = None, predict: bool = False) -> str:
    head = f"{'Predict' if predict or question.predict else 'Question'}{f' {number}' if number else ''} [{question.id}] ({KIND_WORDS[question.type]})"
    lines = [head, wrap(question.prompt, "  ")]
    lines += [textwrap.indent(c, "  ") for c in choices(question)]
    if isinstance(question, Numeric) and question.unit:
        lines.append(f"  (answer in {question.unit})")
    return "\n".join(lines)


def explanation(question: Question) -> str:
    return "\n".join(f"  {i}. {step}" for i, step in enumerate(question.explanation, 1))


def outcome(question: Question, result: Any) -> str:
    """The feedback after one answer (a session.Outcome)."""
    verdict: Verdict = result.verdict
    said = verdict.feedback if verdict.correct else f"Not quite: {verdict.feedback}"
    lines = [f"[{question.id}, try {result.tries}] {said}"]
    if result.reveal:
        if result.right:
            lines.append(f"The answer: {result.right}")
        lines.append("Why:")
        lines.append(explanation(question))
    return "\n".join(lines)


def measured_value(measured: Any, unit: str = "") -> str:
    if isinstance(measured, float):
        shown = f"{measured:.3g}" if abs(measured) < 1000 else f"{measured:.0f}"
    else:
        shown = str(measured)
    return f"{shown} {unit}".strip()


def observation(question: Question, verdict: Verdict | None, measured: str) -> str:
    if verdict is None:
        head = f"You made no prediction for {question.id}. The lab measured: {measured}."
    else:
        mark = "right" if verdict.correct else "not what happened"
        head = f"You predicted {verdict.answer}; the lab measured {measured} ({mark})."
    return "\n".join([head, "Why:", explanation(question)])


def task_text(words: TaskText) -> str:
    return "\n".join([f"Live task [{words.id}]: {words.title}", wrap(words.prompt, "  ")])


def solution(words: TaskText) -> str:
    return "\n".join(["Solution:", *(f"  {i}. {s}" for i, s in enumerate(words.explanation, 1))])
