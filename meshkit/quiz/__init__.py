"""Self-paced quizzes that check the live lab (docs/quiz.md).

    from meshkit.quiz import Quiz
    quiz = Quiz("04", lab)
    quiz.predict("04-...")          # before an experiment; quiz.observe("04-...", measured) after
    quiz.show()                     # the notebook's questions, then its live task(s)

    schema.py    what a bank file may hold (pydantic)
    bank.py      loading the bank, errors naming file, question and field
    grading.py   is an answer right, and which misconception led to a wrong one (pure)
    session.py   one learner's tries, hints and progress for a notebook's quiz
    tasks/       live tasks: setup, check on config and behaviour, solve
    progress.py  every attempt, in a file outside any lab
    text.py      the quiz as plain text (headless, terminal)
    cards.py     the quiz as ipywidgets
    terminal.py  `meshkit quiz` and `meshkit progress`
"""

from __future__ import annotations

from meshkit.quiz.bank import QuizError
from meshkit.quiz.session import Quiz

__all__ = ["Quiz", "QuizError"]
