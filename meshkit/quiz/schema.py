"""The question bank's schema: what one bank file may hold, checked by pydantic.

A bank file (meshkit/quiz/bank/NN.yaml) is data a teacher edits without
reading Python, so every rule a question must follow is written here once and
checked at load time, and a broken entry is refused with the file, the
question id and the field (meshkit.quiz.bank turns pydantic's errors into
that sentence). docs/quiz.md documents the same schema for authors.

    notebook: "04-traffic-shifting-and-canary-releases"
    title: "Traffic shifting and canary releases"
    questions:                       # at least 10
      - id: 04-split-count           # never changes: progress refers to it
        type: single | multiple | myth_or_fact | numeric | text | yaml
        concept: traffic-split       # an id of CONCEPTS.md (concepts.yaml)
        prompt: "..."
        hint: "..."
        explanation: ["step one", "step two"]
        predict: true                # asked before an experiment, shown next to what the lab measured
        ...                          # the fields of its type, below
    tasks:                           # live tasks: text here, check and solve in meshkit/quiz/tasks
      - id: 04-shift-25
        concept: traffic-split
        title: "Send 25% of reviews traffic to v3"
        prompt: "..."
        hint: "..."
        explanation: ["..."]
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Id = Annotated[str, Field(pattern=r"^\d\d-[a-z0-9][a-z0-9-]*$", description="NN-words: the notebook's number, then a slug")]
Text = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a bank file must not vanish silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(Strict):
    """What every option shares: right or wrong, and for a wrong one the belief that leads to it."""

    correct: bool = False
    misconception: str | None = None

    @model_validator(mode="after")
    def _wrong_needs_misconception(self) -> Choice:
        if not self.correct and not (self.misconception or "").strip():
            raise ValueError("a wrong option needs a 'misconception': the belief that leads a learner to choose it")
        if self.correct and self.misconception:
            raise ValueError("the right option has no 'misconception'")
        return self


class Option(Choice):
    """One choice of a single- or multiple-choice question."""

    text: Text


class YamlOption(Choice):
    """One candidate snippet of a "which YAML is right" question."""

    yaml: Text

    @field_validator("yaml")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            list(yaml.safe_load_all(value))
        except yaml.YAMLError as exc:
            raise ValueError(f"the snippet is not YAML: {exc}") from None
        return value


class WrongAnswer(Strict):
    """A typical wrong numeric or text answer and the belief behind it."""

    value: float | str | None = None
    min: float | None = None
    max: float | None = None
    misconception: Text


class QuestionBase(Strict):
    id: Id
    concept: Text
    prompt: Text
    hint: Text
    explanation: list[Text] = Field(min_length=1)
    predict: bool = False


def exactly_one_right(options: list[Choice], what: str) -> None:
    right = sum(o.correct for o in options)
    if right != 1:
        raise ValueError(f"a {what} question has exactly one right {'option' if what != 'which-YAML' else 'snippet'}, this one has {right}")


class SingleChoice(QuestionBase):
    type: Literal["single"]
    options: list[Option] = Field(min_length=2)

    @model_validator(mode="after")
    def _one_right(self) -> SingleChoice:
        exactly_one_right(list(self.options), "single-choice")
        return self


class MultipleChoice(QuestionBase):
    type: Literal["multiple"]
    options: list[Option] = Field(min_length=3)

    @model_validator(mode="after")
    def _some_right(self) -> MultipleChoice:
        right = sum(o.correct for o in self.options)
        if not 1 <= right < len(self.options):
            raise ValueError(f"a multiple-choice question has between one and all-but-one right options, this one has {right}")
        return self


class MythOrFact(QuestionBase):
    """A statement to judge. `misconception` is what believing the wrong verdict means."""

    type: Literal["myth_or_fact"]
    answer: Literal["myth", "fact"]
    misconception: Text


class Numeric(QuestionBase):
    """A number: exact (`value`), within `tolerance` of it, or in [min, max]."""

    type: Literal["numeric"]
    value: float | None = None
    tolerance: float = 0.0
    min: float | None = None
    max: float | None = None
    unit: str = ""
    misconception: Text
    wrong: list[WrongAnswer] = []

    @model_validator(mode="after")
    def _one_way_to_be_right(self) -> Numeric:
        has_value = self.value is not None
        has_range = self.min is not None or self.max is not None
        if has_value == has_range:
            raise ValueError("a numeric question has either 'value' (with an optional 'tolerance') or 'min' and 'max'")
        if has_range and (self.min is None or self.max is None or self.min > self.max):
            raise ValueError("'min' and 'max' both, with min <= max")
        if self.tolerance < 0 or not math.isfinite(self.tolerance):
            raise ValueError("'tolerance' is a finite number >= 0")
        return self


class ShortText(QuestionBase):
    """A word or short phrase; answers are compared after normalising (case, spaces, punctuation)."""

    type: Literal["text"]
    accepted: list[Text] = Field(min_length=1)
    misconception: Text
    wrong: list[WrongAnswer] = []


class WhichYaml(QuestionBase):
    type: Literal["yaml"]
    options: list[YamlOption] = Field(min_length=2, max_length=3)

    @model_validator(mode="after")
    def _one_right(self) -> WhichYaml:
        exactly_one_right(list(self.options), "which-YAML")
        return self


Question = Annotated[
    SingleChoice | MultipleChoice | MythOrFact | Numeric | ShortText | WhichYaml,
    Field(discriminator="type"),
]


class TaskText(Strict):
    """A live task's words; its check and solve steps are code (meshkit.quiz.tasks) under the same id."""

    id: Id
    concept: Text
    title: Text
    prompt: Text
    hint: Text
    explanation: list[Text] = Field(min_length=1)


class BankFile(Strict):
    notebook: Annotated[str, Field(pattern=r"^\d\d-[a-z0-9-]+$")]
    title: Text
    questions: list[Question] = Field(min_length=10)
    tasks: list[TaskText] = Field(min_length=1)
