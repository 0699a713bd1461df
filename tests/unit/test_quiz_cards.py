"""The quiz widgets driven from Python as a browser would: choose, click Check, read the feedback."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.lab import Lab
from meshkit.quiz.bank import QuizError, bank
from meshkit.quiz.cards import QuestionCard, TaskCard
from meshkit.quiz.progress import Progress
from meshkit.quiz.schema import MultipleChoice, SingleChoice
from meshkit.quiz.session import REVEAL_AFTER, QuestionState, Quiz


@pytest.fixture
def progress(tmp_path: Path) -> Progress:
    return Progress(tmp_path / "progress.jsonl", learner="ana")


def first(kind: type, key: str = "04") -> object:
    return next(q for q in bank(key).questions if isinstance(q, kind))


def test_a_wrong_choice_shows_its_misconception_and_a_right_one_the_explanation(progress: Progress) -> None:
    question = first(SingleChoice)
    assert isinstance(question, SingleChoice)
    card = QuestionCard(QuestionState("04", question, progress))
    wrong = next(i for i, o in enumerate(question.options) if not o.correct)
    right = next(i for i, o in enumerate(question.options) if o.correct)
    card.control.value = "abcdefgh"[wrong]
    card.check_button.click()
    assert question.options[wrong].misconception in card.feedback and not card.solved
    assert "Why:" not in card.feedback
    card.control.value = "abcdefgh"[right]
    card.check_button.click()
    assert card.solved and card.tries == 2
    assert "Why:" in card.feedback and question.explanation[0] in card.feedback
    assert list(progress.attempts()["correct"]) == [False, True]


def test_after_three_wrong_tries_the_answer_and_explanation_show(progress: Progress) -> None:
    question = first(SingleChoice)
    assert isinstance(question, SingleChoice)
    card = QuestionCard(QuestionState("04", question, progress))
    wrong = next(i for i, o in enumerate(question.options) if not o.correct)
    for _ in range(REVEAL_AFTER):
        card.answer("abcdefgh"[wrong])
    assert "The answer:" in card.feedback and "Why:" in card.feedback and not card.solved


def test_multiple_choice_by_checkboxes_and_a_hint(progress: Progress) -> None:
    question = first(MultipleChoice)
    assert isinstance(question, MultipleChoice)
    card = QuestionCard(QuestionState("04", question, progress))
    card.hint_button.click()
    assert card.feedback == f"Hint: {question.hint}"
    for box, option in zip(card.control.children, question.options, strict=True):
        box.value = option.correct
    card.check_button.click()
    assert card.solved
    assert progress.attempts().iloc[-1]["hints"] == 1


def test_check_with_nothing_chosen_asks_for_an_answer_and_saves_nothing(progress: Progress) -> None:
    card = QuestionCard(QuestionState("04", bank("04").questions[0], progress))
    card.check_button.click()
    assert "answer first" in card.feedback and progress.attempts().empty


def test_a_prediction_is_shown_next_to_the_measurement(progress: Progress, capsys: pytest.CaptureFixture[str]) -> None:
    quiz = Quiz("04", progress=progress, live=False)
    ident = next(q.id for q in quiz.bank.questions if q.predict)
    card = quiz.predict(ident)
    assert ident in capsys.readouterr().out, "headless, the question prints as text"
    card.answer("a")
    message = card.compare(42)
    assert "the lab measured 42" in message and "Why:" in message
    kinds = list(progress.attempts()["kind"])
    assert kinds == ["prediction", "observation"]


def test_answer_from_code_and_unknown_ids_are_clear(progress: Progress) -> None:
    quiz = Quiz("04", progress=progress, live=False)
    with pytest.raises(QuizError, match="no question '04-nope'"):
        quiz.answer("04-nope", "a")
    single = next(q for q in quiz.bank.questions if q.type == "single")
    with pytest.raises(QuizError, match=f"^{single.id}: answer with a letter"):
        quiz.answer(single.id, "z")
    right = "abcdefgh"[next(i for i, o in enumerate(single.options) if o.correct)]
    assert quiz.answer(single.id, right).correct


def test_a_live_task_with_no_lab_up_says_so_in_one_line(progress: Progress, tmp_path: Path) -> None:
    quiz = Quiz("04", Lab(home=tmp_path / "nolab"), progress=progress, live=False)
    card = TaskCard(quiz.task_state(), live=False)
    card.check_button.click()
    assert card.result.startswith("live task '04-shift-25-to-v3': no lab is running here")
    assert not card.passed
    without_lab = TaskCard(Quiz("04", progress=progress, live=False).task_state(), live=False)
    assert without_lab.check() is None and "give the quiz one" in without_lab.result


def test_show_lists_every_question_not_asked_as_a_prediction_and_the_tasks(progress: Progress) -> None:
    quiz = Quiz("04", progress=progress, live=False)
    card = quiz.show()
    assert len(card.questions) == sum(not q.predict for q in quiz.bank.questions)
    assert len(card.tasks) == len(quiz.bank.tasks)
