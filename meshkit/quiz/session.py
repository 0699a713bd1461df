"""One learner working through one notebook's quiz: the state every front end shares.

The widget (meshkit.quiz.cards), the terminal (meshkit.quiz.terminal) and
code (`quiz.answer(...)`) all go through `QuestionState.submit`,
`TaskState.check` and `TaskState.solve`, so tries, hints, when the
explanation shows and what is saved to progress are decided once.

    quiz = Quiz("04", lab)
    quiz.predict("04-split-count")        # before the experiment
    ...                                   # the notebook measures
    quiz.observe("04-split-count", 41)    # the prediction next to the measurement
    quiz.show()                           # the rest of the bank, then the live task
    quiz.answer("04-weights-sum", "b")    # from code (unattended runs, tests)
    quiz.task("04-shift-25-to-v3").check()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshkit import journal
from meshkit.errors import LabError, MeshkitError
from meshkit.lab import Lab
from meshkit.quiz import text
from meshkit.quiz.bank import QuizError, bank, notebook_key
from meshkit.quiz.grading import BadAnswer, Verdict, grade, right_answer
from meshkit.quiz.progress import Attempt, Progress
from meshkit.quiz.schema import BankFile, Question, TaskText
from meshkit.quiz.tasks import TASKS, LiveTask, TaskResult

REVEAL_AFTER = 3
"""Wrong tries after which the explanation and the right answer are shown, right or not."""


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    tries: int
    reveal: bool  # show the explanation (after a right answer, or after REVEAL_AFTER tries)
    right: str  # the right answer, shown once revealed after wrong tries


class QuestionState:
    def __init__(self, notebook: str, question: Question, progress: Progress, prediction: bool = False) -> None:
        self.notebook = notebook
        self.question = question
        self.progress = progress
        self.prediction = prediction or question.predict
        self.tries = 0
        self.hints = 0
        self.solved = False
        self.last: Outcome | None = None

    def hint(self) -> str:
        self.hints += 1
        return self.question.hint

    def submit(self, answer: Any) -> Outcome:
        """Grade and save one answer; BadAnswer (nothing saved) when it is not of the question's form."""
        verdict = grade(self.question, answer)
        self.tries += 1
        self.solved = self.solved or verdict.correct
        self.progress.record(
            Attempt(
                notebook=self.notebook,
                item=self.question.id,
                kind="prediction" if self.prediction else "question",
                answer=verdict.answer,
                correct=verdict.correct,
                attempt=self.progress.tries(self.question.id) + 1,
                hints=self.hints,
            )
        )
        reveal = verdict.correct or self.tries >= REVEAL_AFTER
        self.last = Outcome(verdict, self.tries, reveal, right_answer(self.question) if reveal and not verdict.correct else "")
        return self.last

    def observe(self, measured: Any, unit: str = "") -> str:
        """The prediction next to what the lab measured, and the explanation."""
        shown = text.measured_value(measured, unit or getattr(self.question, "unit", ""))
        self.progress.record(
            Attempt(
                notebook=self.notebook, item=self.question.id, kind="observation",
                answer=self.last.verdict.answer if self.last else "", correct=bool(self.last and self.last.verdict.correct),
                attempt=0, measured=shown,
            )
        )
        return text.observation(self.question, self.last.verdict if self.last else None, shown)


class TaskState:
    def __init__(self, notebook: str, words: TaskText, task: LiveTask, progress: Progress, lab: Lab | None) -> None:
        self.notebook = notebook
        self.words = words
        self.task = task
        self.progress = progress
        self.lab = lab
        self.hints = 0
        self.last: TaskResult | None = None

    def _lab(self) -> Lab:
        if self.lab is None:
            raise QuizError(f"live task {self.words.id!r} checks a running lab: give the quiz one, Quiz({self.notebook!r}, lab)")
        if not self.lab.running():
            raise LabError(f"live task {self.words.id!r}: no lab is running here; start it (Lab().up() or `meshkit up`) and run the notebook's first cells")
        return self.lab

    def hint(self) -> str:
        self.hints += 1
        return self.words.hint

    def check(self) -> TaskResult:
        """Check the running lab: its config and its behaviour. The result says what was measured."""
        lab = self._lab()
        try:
            with journal.acting_widget(f"live task {self.words.id} (check)"):
                result = self.task.check(lab)
        except MeshkitError:
            raise
        except Exception as exc:  # a check must never show a learner a traceback
            raise QuizError(f"live task {self.words.id!r} could not check the lab: {type(exc).__name__}: {exc}") from exc
        self.last = result
        self._record("check", result.passed, str(dict(result.measured)))
        return result

    def solve(self) -> TaskResult:
        """Apply the solution through the Lab API ("solve it for me"), then check."""
        lab = self._lab()
        self._record("solve", False, "")
        with journal.acting_widget(f"live task {self.words.id} (solve it for me)"):
            self.task.solve(lab)
        return self.check()

    def setup(self) -> None:
        """Put the lab in the notebook's start state for this task (a fresh lab: what was running is reset)."""
        self.task.setup(self._lab())

    def _record(self, action: str, correct: bool, measured: str) -> None:
        self.progress.record(
            Attempt(notebook=self.notebook, item=self.words.id, kind="task", answer=action, correct=correct,
                    attempt=self.progress.tries(self.words.id) + 1, hints=self.hints, measured=measured)
        )


class Quiz:
    """A notebook's quiz for the current learner; `lab` is needed for live tasks only."""

    def __init__(self, notebook: str | int, lab: Lab | None = None, progress: Progress | None = None, live: bool | None = None) -> None:
        self.key = notebook_key(notebook)
        self.bank: BankFile = bank(self.key)
        self.lab = lab
        self.progress_log = progress or Progress()
        self._live = live
        self._questions: dict[str, QuestionState] = {}
        self._tasks: dict[str, TaskState] = {}
        self._cards: dict[str, Any] = {}

    @property
    def live(self) -> bool:
        if self._live is None:
            from meshkit.notebook.frontend import is_live

            self._live = is_live()
        return self._live

    # -- state ---------------------------------------------------------------

    def question_state(self, ident: str) -> QuestionState:
        if ident not in self._questions:
            found = [q for q in self.bank.questions if q.id == ident]
            if not found:
                raise QuizError(f"no question {ident!r} in notebook {self.key}'s quiz (its ids start with '{self.key}-')")
            self._questions[ident] = QuestionState(self.key, found[0], self.progress_log)
        return self._questions[ident]

    def task_state(self, ident: str | None = None) -> TaskState:
        words = [t for t in self.bank.tasks if ident is None or t.id == ident]
        if not words:
            raise QuizError(f"no live task {ident!r} in notebook {self.key}'s quiz")
        key = words[0].id
        if key not in self._tasks:
            self._tasks[key] = TaskState(self.key, words[0], TASKS[key], self.progress_log, self.lab)
        return self._tasks[key]

    # -- from code -------------------------------------------------------------

    def answer(self, ident: str, answer: Any) -> Verdict:
        """Answer a question from code; the verdict is shown as the widget would show it."""
        state = self.question_state(ident)
        try:
            outcome = state.submit(answer)
        except BadAnswer as exc:
            raise QuizError(f"{ident}: {exc}") from None
        self._emit(text.outcome(state.question, outcome))
        return outcome.verdict

    def observe(self, ident: str, measured: Any, unit: str = "") -> None:
        """After the experiment: the learner's prediction next to what the lab measured
        (in the prediction's card when it was shown live, printed otherwise). Returns
        nothing, so a cell ending with it does not show the words twice."""
        card = self._cards.get(ident)
        if card is not None and self.live:
            card.compare(measured, unit)
            return
        self._emit(self.question_state(ident).observe(measured, unit))

    def progress(self) -> Any:
        """This learner's progress over every notebook (a DataFrame)."""
        from meshkit.quiz.bank import all_banks

        return self.progress_log.summary(all_banks())

    # -- display ----------------------------------------------------------------

    def ask(self, ident: str) -> Any:
        """Show one question (a widget live, text headless) and return its view."""
        from meshkit.quiz.cards import QuestionCard

        card = QuestionCard(self.question_state(ident), self.live)
        self._cards[ident] = card
        return self._show(card)

    def predict(self, ident: str) -> Any:
        """Ask a question before the experiment that will answer it; `observe` after."""
        state = self.question_state(ident)
        state.prediction = True
        return self.ask(ident)

    def task(self, ident: str | None = None) -> Any:
        """Show a live task with Check, Hint and "solve it for me"; returns its view (`.check()`, `.solve()`)."""
        from meshkit.quiz.cards import TaskCard

        return self._show(TaskCard(self.task_state(ident), self.live))

    def show(self) -> Any:
        """The notebook's quiz: every question not asked as a prediction, then the live tasks."""
        from meshkit.quiz.cards import QuizCard

        questions = [self.question_state(q.id) for q in self.bank.questions if not q.predict]
        tasks = [self.task_state(t.id) for t in self.bank.tasks]
        return self._show(QuizCard(self.bank.title, questions, tasks, self.live))

    def _show(self, card: Any) -> Any:
        card.display()
        return card

    def _emit(self, message: str) -> None:
        print(message)

    def __repr__(self) -> str:
        return f"<Quiz {self.key}: {len(self.bank.questions)} questions, {len(self.bank.tasks)} live task(s)>"

