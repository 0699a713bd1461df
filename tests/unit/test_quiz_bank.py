"""The question bank: every file valid, every concept asked, every task backed by code,
and a broken entry refused with its file, question id and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from meshkit.config.loading import load
from meshkit.quiz.bank import QuizError, all_banks, bank, concepts, notebook_key, parse_bank
from meshkit.quiz.grading import grade, right_answer
from meshkit.quiz.schema import MultipleChoice, SingleChoice, WhichYaml
from meshkit.quiz.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
CONCEPTS_MD = ROOT.parent / "shared" / "CONCEPTS.md"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_one_bank_per_notebook_and_it_names_its_notebook() -> None:
    banks = all_banks()
    assert sorted(banks) == [n[:2] for n in NOTEBOOKS]
    for key, found in banks.items():
        assert f"{found.notebook}" in NOTEBOOKS, f"bank {key} names notebook {found.notebook!r}, which does not exist"


@pytest.mark.parametrize("key", [n[:2] for n in NOTEBOOKS])
def test_each_bank_has_ten_questions_two_predictions_and_a_live_task(key: str) -> None:
    found = bank(key)
    assert len(found.questions) >= 10
    assert sum(q.predict for q in found.questions) >= 2
    assert found.tasks


def test_every_right_answer_grades_right_and_every_wrong_option_names_a_misconception() -> None:
    for found in all_banks().values():
        for question in found.questions:
            assert grade(question, right_answer(question).split(" (±")[0].split(" to ")[0]).correct, question.id
            if isinstance(question, (SingleChoice, MultipleChoice, WhichYaml)):
                for option in question.options:
                    assert option.correct or (option.misconception or "").strip(), question.id


def test_the_right_snippet_of_every_which_yaml_question_is_accepted_by_meshkit() -> None:
    for found in all_banks().values():
        for question in found.questions:
            if isinstance(question, WhichYaml):
                right = next(o for o in question.options if o.correct)
                assert load(right.yaml), question.id


def test_every_concept_myth_and_pitfall_is_asked_by_a_question() -> None:
    asked = {q.concept for b in all_banks().values() for q in b.questions}
    missing = sorted(set(concepts()) - asked)
    assert not missing, f"no question asks {missing}"


def test_every_task_in_a_bank_has_code_and_every_coded_task_is_in_a_bank() -> None:
    words = {t.id for b in all_banks().values() for t in b.tasks}
    assert words == set(TASKS)


@pytest.mark.skipif(not CONCEPTS_MD.exists(), reason="shared/CONCEPTS.md is not beside this checkout")
def test_the_vendored_concept_ids_are_those_of_concepts_md() -> None:
    ids = set(re.findall(r"^\| ([a-z0-9]+(?:-[a-z0-9]+)*) \|", CONCEPTS_MD.read_text(), re.M)) - {"id"}
    assert ids == set(concepts())


GOOD = {
    "notebook": "04-traffic-shifting-and-canary-releases",
    "title": "T",
    "questions": [
        {"id": f"04-q{i}", "type": "single", "concept": "traffic-split", "prompt": "p", "hint": "h", "explanation": ["e"],
         "options": [{"text": "a", "correct": True}, {"text": "b", "misconception": "m"}]}
        for i in range(10)
    ],
    "tasks": [{"id": "04-t", "concept": "traffic-split", "title": "t", "prompt": "p", "hint": "h", "explanation": ["e"]}],
}


def broken(path: str, value: object) -> str:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is None:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return yaml.safe_dump(data)


def test_a_good_bank_parses() -> None:
    assert len(parse_bank(yaml.safe_dump(GOOD), "bank/04.yaml").questions) == 10


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("questions.3.options.1.misconception", None, "bank/04.yaml: question '04-q3', field 'options[1]': a wrong option needs a 'misconception'"),
        ("questions.2.concept", "retry-storms", "bank/04.yaml: question '04-q2', field 'concept': 'retry-storms' is not an id of CONCEPTS.md"),
        ("questions.5.options", [{"text": "a", "correct": True}, {"text": "c", "correct": True}],
         "bank/04.yaml: question '04-q5': a single-choice question has exactly one right option, this one has 2"),
        ("questions.5.options.1.correct", True, "question '04-q5', field 'options[1]': the right option has no 'misconception'"),
        ("questions.1.hint", None, "question '04-q1', field 'hint': Field required"),
        ("questions.4.colour", "red", "question '04-q4', field 'colour': Extra inputs are not permitted"),
        ("questions.6.type", "essay", "question '04-q6', field 'type': Input tag 'essay'"),
        ("questions.7.id", "05-q7", "id '05-q7' does not start with the notebook's number '04'"),
        ("questions.8.id", "04-q0", "id '04-q0' is used twice"),
        ("tasks", [], "the file, field 'tasks'"),
    ],
)
def test_a_broken_entry_is_refused_naming_file_question_and_field(path: str, value: object, expected: str) -> None:
    with pytest.raises(QuizError) as error:
        parse_bank(broken(path, value), "bank/04.yaml")
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_a_bank_that_is_not_yaml_is_one_clear_line() -> None:
    with pytest.raises(QuizError, match=r"^bank/04.yaml: not valid YAML"):
        parse_bank("questions: [", "bank/04.yaml")


@pytest.mark.parametrize("name", ["99", "intro", "notebooks/42-nothing.ipynb"])
def test_an_unknown_notebook_is_one_clear_line(name: str) -> None:
    with pytest.raises(QuizError, match="unknown notebook"):
        notebook_key(name)


def test_a_notebook_is_found_by_number_name_or_path() -> None:
    assert notebook_key(4) == notebook_key("4") == notebook_key("04") == notebook_key("notebooks/04-traffic-shifting-and-canary-releases.ipynb") == "04"
