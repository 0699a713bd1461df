"""Grading, as a table of answers and verdicts for each question type."""

from __future__ import annotations

import pytest

from meshkit.quiz.grading import BadAnswer, grade, normalise, parse_number, right_answer
from meshkit.quiz.schema import MultipleChoice, MythOrFact, Numeric, ShortText, SingleChoice, WhichYaml

COMMON = {"concept": "traffic-split", "prompt": "p", "hint": "h", "explanation": ["one", "two"]}

SINGLE = SingleChoice.model_validate({**COMMON, "id": "04-s", "type": "single", "options": [
    {"text": "The caller's sidecar", "correct": True},
    {"text": "The control plane", "misconception": "thinks the control plane forwards requests"},
]})
MULTI = MultipleChoice.model_validate({**COMMON, "id": "04-m", "type": "multiple", "options": [
    {"text": "retries", "correct": True},
    {"text": "timeouts", "correct": True},
    {"text": "compiling the app", "misconception": "thinks the mesh changes code"},
]})
MYTH = MythOrFact.model_validate({**COMMON, "id": "04-f", "type": "myth_or_fact", "answer": "myth", "misconception": "believes a mesh is free"})
NUMBER = Numeric.model_validate({**COMMON, "id": "04-n", "type": "numeric", "value": 160, "tolerance": 10, "unit": "requests",
                                 "misconception": "mixed up the weights",
                                 "wrong": [{"value": 40, "misconception": "read the weights backwards"}, {"min": 190, "max": 200, "misconception": "thinks weights are ignored"}]})
RANGE = Numeric.model_validate({**COMMON, "id": "04-r", "type": "numeric", "min": 0.2, "max": 0.3, "misconception": "m"})
WORD = ShortText.model_validate({**COMMON, "id": "04-t", "type": "text", "accepted": ["UO", "upstream overflow"], "misconception": "m",
                                 "wrong": [{"value": "UF", "misconception": "UF is a failed connection, not an overflow"}]})
WHICH = WhichYaml.model_validate({**COMMON, "id": "04-y", "type": "yaml", "options": [
    {"yaml": "a: 1", "misconception": "m1"}, {"yaml": "a: 2", "correct": True},
]})


@pytest.mark.parametrize(
    ("question", "answer", "correct", "feedback"),
    [
        (SINGLE, "a", True, "Right."),
        (SINGLE, "A", True, "Right."),
        (SINGLE, "the caller's sidecar", True, "Right."),
        (SINGLE, "b", False, "thinks the control plane forwards requests"),
        (MULTI, ["a", "b"], True, "Right: exactly those."),
        (MULTI, "b, a", True, "Right: exactly those."),
        (MULTI, "a,c", False, "c) thinks the mesh changes code"),
        (MULTI, "a", False, "All you chose is right, but 1 more option is right too."),
        (MYTH, "myth", True, "Right: it is a myth."),
        (MYTH, False, True, "Right: it is a myth."),
        (MYTH, "fact", False, "believes a mesh is free"),
        (NUMBER, 160, True, "Right."),
        (NUMBER, "165 requests", True, "Right."),
        (NUMBER, 171, False, "mixed up the weights"),
        (NUMBER, "40", False, "read the weights backwards"),
        (NUMBER, 195, False, "thinks weights are ignored"),
        (RANGE, "0.25", True, "Right."),
        (RANGE, 0.31, False, "m"),
        (WORD, " upstream  Overflow. ", True, "Right."),
        (WORD, "uf", False, "UF is a failed connection, not an overflow"),
        (WHICH, "b", True, "Right."),
        (WHICH, "a", False, "m1"),
    ],
)
def test_verdicts(question: object, answer: object, correct: bool, feedback: str) -> None:
    verdict = grade(question, answer)  # type: ignore[arg-type]
    assert (verdict.correct, verdict.feedback) == (correct, feedback)
    assert verdict.explanation == ("one", "two")


@pytest.mark.parametrize(
    ("question", "answer"),
    [(SINGLE, "z"), (SINGLE, 3), (MULTI, []), (MYTH, "maybe"), (NUMBER, "lots"), (NUMBER, True), (WORD, "  "), (WHICH, "c")],
)
def test_answers_not_of_the_questions_form_are_refused_with_a_reason(question: object, answer: object) -> None:
    with pytest.raises(BadAnswer):
        grade(question, answer)  # type: ignore[arg-type]


def test_right_answers_as_a_learner_would_write_them() -> None:
    assert [right_answer(q) for q in (SINGLE, MULTI, MYTH, NUMBER, RANGE, WORD, WHICH)] == [
        "a", "a, b", "myth", "160 requests (± 10)", "0.2 to 0.3", "UO", "b",
    ]


def test_normalise_and_parse_number() -> None:
    assert normalise("  Cluster.Local!! ") == "cluster.local"
    assert parse_number("2,5 s") == 2.5 and parse_number("-3") == -3.0 and parse_number("40%") == 40.0
