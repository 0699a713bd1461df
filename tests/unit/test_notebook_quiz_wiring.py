"""Every notebook asks its bank's predictions before it measures them and ends with its quiz.

Read from the notebooks' sources (nbformat), so a prediction that a notebook
forgets to observe, or a quiz that is no longer shown, fails here in a second
rather than going unnoticed in an executed notebook's output.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from meshkit.quiz.bank import bank

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def code(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_each_prediction_is_asked_then_observed_and_the_quiz_ends_the_lesson(path: Path) -> None:
    cells = code(path)
    key = path.stem[:2]
    assert any(f'Quiz("{key}"' in c for c in cells), f"{path.name} opens no Quiz({key!r}, lab)"
    for question in bank(key).questions:
        if not question.predict:
            continue
        asked = [i for i, c in enumerate(cells) if f'quiz.predict("{question.id}")' in c]
        observed = [i for i, c in enumerate(cells) if f'quiz.observe("{question.id}"' in c]
        assert asked, f"{path.name} never asks the prediction {question.id}"
        assert observed, f"{path.name} never shows what the lab measured for {question.id}"
        assert asked[0] < observed[0], f"{path.name} observes {question.id} before asking it"
    shown = [i for i, c in enumerate(cells) if "quiz.show()" in c]
    assert shown, f"{path.name} does not end with quiz.show()"
    tail = cells[shown[-1] + 1:]
    assert all("lab.down()" not in c for c in tail), "the lab stays up for the quiz's live task"
