"""Loading the question bank: one YAML file per notebook, beside this module.

A bad entry is refused with one sentence naming the file, the question id and
the field ("bank/04.yaml: question '04-split-count', field
'options[2].misconception': a wrong option needs ..."), so an author finds the
line without reading a traceback. Concepts are checked against
concepts.yaml, the vendored ids of CONCEPTS.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from meshkit.errors import MeshkitError
from meshkit.quiz.schema import BankFile, Question, TaskText

BANK_DIR = Path(__file__).with_name("bank")
CONCEPTS_FILE = Path(__file__).with_name("concepts.yaml")


class QuizError(MeshkitError):
    """A bank file is malformed, a notebook or question is unknown, or a live task cannot run."""


@functools.cache
def concepts() -> dict[str, dict[str, str]]:
    """Concept, myth and pitfall ids with their text (CONCEPTS.md, vendored)."""
    data = yaml.safe_load(CONCEPTS_FILE.read_text())
    return {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.items()}


def _where(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> tuple[str, str]:
    """(what, field) for a pydantic error location: which question or task, and the path inside it."""
    if len(loc) >= 2 and loc[0] in ("questions", "tasks") and isinstance(loc[1], int):
        items = data.get(str(loc[0])) or []
        item = items[loc[1]] if loc[1] < len(items) else {}
        ident = item.get("id") if isinstance(item, Mapping) else None
        what = f"{'question' if loc[0] == 'questions' else 'task'} {ident!r}" if ident else f"{loc[0]}[{loc[1]}]"
        rest = [p for p in loc[2:] if p not in ("single", "multiple", "myth_or_fact", "numeric", "text", "yaml")]
        return what, _dotted(rest)
    return "the file", _dotted(list(loc)) or "(top level)"


def _dotted(parts: list[int | str]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_bank(text: str, source: str) -> BankFile:
    """A bank from YAML text; `source` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QuizError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise QuizError(f"{source}: a bank file is a mapping with 'notebook', 'title', 'questions' and 'tasks'")
    try:
        bank = BankFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"]) + (("type",) if first["type"] in ("union_tag_invalid", "union_tag_not_found") else ())
        what, field = _where(data, loc)
        message = re.sub(r"^(Value|Assertion) error, ", "", first["msg"])
        where = f"{what}, field {field!r}" if field else what
        raise QuizError(f"{source}: {where}: {message}") from None
    known = concepts()
    for item in [*bank.questions, *bank.tasks]:
        if item.concept not in known:
            kind = "question" if not isinstance(item, TaskText) else "task"
            raise QuizError(f"{source}: {kind} {item.id!r}, field 'concept': {item.concept!r} is not an id of CONCEPTS.md")
    prefix = bank.notebook[:2]
    ids = [item.id for item in [*bank.questions, *bank.tasks]]
    for ident in ids:
        if not ident.startswith(prefix + "-"):
            raise QuizError(f"{source}: id {ident!r} does not start with the notebook's number {prefix!r}")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise QuizError(f"{source}: id {duplicates[0]!r} is used twice; ids never repeat")
    return bank


@functools.cache
def load_bank(path: Path) -> BankFile:
    try:
        text = path.read_text()
    except OSError as exc:
        raise QuizError(f"{path.name}: cannot read the bank file: {exc.strerror}") from None
    return parse_bank(text, f"bank/{path.name}")


def bank_files() -> list[Path]:
    return sorted(BANK_DIR.glob("[0-9][0-9].yaml"))


def notebook_key(name: str | int) -> str:
    """'04', '4', 4, '04-traffic-shifting...' or a notebook path -> '04'."""
    text = Path(str(name)).name
    match = re.match(r"^(\d{1,2})(?:$|-)", text)
    if not match:
        raise QuizError(f"unknown notebook {name!r}: give its number, such as 04 ({available()})")
    key = f"{int(match.group(1)):02d}"
    if not (BANK_DIR / f"{key}.yaml").exists():
        raise QuizError(f"unknown notebook {name!r}: there is no quiz for it ({available()})")
    return key


def available() -> str:
    keys = [p.stem for p in bank_files()]
    return f"quizzes: {keys[0]} to {keys[-1]}" if keys else "no quizzes installed"


def bank(notebook: str | int) -> BankFile:
    """The bank of one notebook."""
    return load_bank(BANK_DIR / f"{notebook_key(notebook)}.yaml")


def all_banks() -> dict[str, BankFile]:
    return {p.stem: load_bank(p) for p in bank_files()}


def question(ident: str) -> Question:
    """A question by its id, from its notebook's bank."""
    for item in bank(ident[:2]).questions:
        if item.id == ident:
            return item
    raise QuizError(f"no question {ident!r} in notebook {ident[:2]}'s quiz")


def task_text(ident: str) -> TaskText:
    for item in bank(ident[:2]).tasks:
        if item.id == ident:
            return item
    raise QuizError(f"no live task {ident!r} in notebook {ident[:2]}'s quiz")
