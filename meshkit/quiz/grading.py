"""Is an answer right, and if not, which belief led to it: pure functions.

The widget, the terminal and `Quiz.answer` all grade through `grade`, so a
learner gets the same verdict and the same words wherever they answer.
Choices are named by letter as they are shown ("a", "b", ...); the option's
own text is accepted too.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meshkit.quiz.schema import MultipleChoice, MythOrFact, Numeric, Question, ShortText, SingleChoice, WhichYaml, WrongAnswer

LETTERS = string.ascii_lowercase


class BadAnswer(ValueError):
    """The answer is not of the question's form (a letter for a choice, a number for a numeric one)."""


@dataclass(frozen=True)
class Verdict:
    correct: bool
    answer: str  # the answer as recorded in progress ("b", "a,c", "42", "myth")
    feedback: str  # the misconception behind a wrong answer, or what was right
    explanation: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:  # a cell ending with quiz.answer(...) shows this under the printed feedback
        return f"<{'right' if self.correct else 'wrong'}: {self.answer}>"


def letter(index: int) -> str:
    return LETTERS[index]


def normalise(text: str) -> str:
    """Case, accents, punctuation and runs of spaces do not matter in a short answer."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s%/.-]", " ", text.casefold())
    return re.sub(r"\s+", " ", text).strip(" .")


def _choice_index(question: SingleChoice | MultipleChoice | WhichYaml, answer: Any) -> int:
    count = len(question.options)
    if isinstance(answer, str):
        text = answer.strip()
        if len(text) == 1 and text.lower() in LETTERS[:count]:
            return LETTERS.index(text.lower())
        if isinstance(question, (SingleChoice, MultipleChoice)):
            for i, option in enumerate(question.options):
                if normalise(option.text) == normalise(text):
                    return i
    raise BadAnswer(f"answer with a letter from a to {LETTERS[count - 1]}, got {answer!r}")


def _choices(question: MultipleChoice, answer: Any) -> list[int]:
    items: Sequence[Any]
    if isinstance(answer, str):
        items = [a for a in re.split(r"[\s,;]+", answer.strip()) if a]
    elif isinstance(answer, Sequence):
        items = answer
    else:
        raise BadAnswer(f"answer with letters such as ['a', 'c'] or 'a, c', got {answer!r}")
    if not items:
        raise BadAnswer("choose at least one option")
    return sorted({_choice_index(question, a) for a in items})


def parse_number(answer: Any) -> float:
    """42, "42", "42 ms", "42%" -> 42.0."""
    if isinstance(answer, bool):
        raise BadAnswer(f"answer with a number, got {answer!r}")
    if isinstance(answer, (int, float)):
        return float(answer)
    match = re.fullmatch(r"\s*([-+]?\d+(?:[.,]\d+)?)\s*[a-zA-Zµ%/ ]*\s*", str(answer))
    if not match:
        raise BadAnswer(f"answer with a number, got {answer!r}")
    return float(match.group(1).replace(",", "."))


def _matches_wrong(wrong: WrongAnswer, number: float | None, text: str | None) -> bool:
    if isinstance(wrong.value, str):
        return text is not None and normalise(wrong.value) == text
    if number is None:
        return False
    if wrong.value is not None:
        return abs(number - wrong.value) < 1e-9
    if wrong.min is None and wrong.max is None:
        return False
    low = wrong.min if wrong.min is not None else float("-inf")
    high = wrong.max if wrong.max is not None else float("inf")
    return low <= number <= high


def _wrong_feedback(wrongs: Sequence[WrongAnswer], fallback: str, number: float | None = None, text: str | None = None) -> str:
    for wrong in wrongs:
        if _matches_wrong(wrong, number, text):
            return wrong.misconception
    return fallback


def right_answer(question: Question) -> str:
    """The right answer as a learner would write it, for 'show the answer'."""
    if isinstance(question, (SingleChoice, WhichYaml)):
        return next(letter(i) for i, o in enumerate(question.options) if o.correct)
    if isinstance(question, MultipleChoice):
        return ", ".join(letter(i) for i, o in enumerate(question.options) if o.correct)
    if isinstance(question, MythOrFact):
        return question.answer
    if isinstance(question, Numeric):
        unit = f" {question.unit}" if question.unit else ""
        if question.value is not None:
            tol = f" (± {question.tolerance:g})" if question.tolerance else ""
            return f"{question.value:g}{unit}{tol}"
        return f"{question.min:g} to {question.max:g}{unit}"
    return question.accepted[0]


def grade(question: Question, answer: Any) -> Verdict:
    """The verdict on one answer; BadAnswer when it is not of the question's form."""
    steps = tuple(question.explanation)
    if isinstance(question, (SingleChoice, WhichYaml)):
        index = _choice_index(question, answer)
        option = question.options[index]
        feedback = "Right." if option.correct else str(option.misconception)
        return Verdict(option.correct, letter(index), feedback, steps)
    if isinstance(question, MultipleChoice):
        chosen = _choices(question, answer)
        right = [i for i, o in enumerate(question.options) if o.correct]
        recorded = ",".join(letter(i) for i in chosen)
        if chosen == right:
            return Verdict(True, recorded, "Right: exactly those.", steps)
        extra = [i for i in chosen if i not in right]
        if extra:
            return Verdict(False, recorded, f"{letter(extra[0])}) {question.options[extra[0]].misconception}", steps)
        missing = len([i for i in right if i not in chosen])
        return Verdict(False, recorded, f"All you chose is right, but {missing} more option{'s are' if missing > 1 else ' is'} right too.", steps)
    if isinstance(question, MythOrFact):
        word = _myth_word(answer)
        ok = word == question.answer
        return Verdict(ok, word, f"Right: it is a {question.answer}." if ok else question.misconception, steps)
    if isinstance(question, Numeric):
        number = parse_number(answer)
        if question.value is not None:
            ok = abs(number - question.value) <= question.tolerance + 1e-9
        else:
            assert question.min is not None and question.max is not None
            ok = question.min <= number <= question.max
        feedback = "Right." if ok else _wrong_feedback(question.wrong, question.misconception, number=number)
        return Verdict(ok, f"{number:g}", feedback, steps)
    assert isinstance(question, ShortText)
    if not isinstance(answer, str) or not answer.strip():
        raise BadAnswer("answer with a word or a short phrase")
    text = normalise(answer)
    ok = text in {normalise(a) for a in question.accepted}
    feedback = "Right." if ok else _wrong_feedback(question.wrong, question.misconception, text=text)
    return Verdict(ok, answer.strip(), feedback, steps)


def _myth_word(answer: Any) -> str:
    if answer is True:
        return "fact"
    if answer is False:
        return "myth"
    text = normalise(str(answer))
    if text in ("myth", "m", "false", "no"):
        return "myth"
    if text in ("fact", "f", "true", "yes"):
        return "fact"
    raise BadAnswer(f"answer 'myth' or 'fact', got {answer!r}")
