"""The quiz in a notebook: a card per question or live task, as ipywidgets.

A card is a thin view over a session.QuestionState / TaskState: Check grades
through the state (so tries, hints and progress are the same as from code or
the terminal) and shows its words (meshkit.quiz.text). Executed headless, a
card prints its text instead and is answered from code (`card.answer(...)`,
`quiz.answer(...)`). Widget state is traitlets, so tests drive a card by
setting `.value` on its control and calling `.click()` on Check, as a
learner's browser would.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Int, Unicode

from meshkit.errors import MeshkitError
from meshkit.notebook import frontend
from meshkit.quiz import text
from meshkit.quiz.grading import BadAnswer, letter
from meshkit.quiz.schema import MultipleChoice, MythOrFact, SingleChoice, WhichYaml
from meshkit.quiz.session import QuestionState, TaskState
from meshkit.quiz.tasks import TaskResult

RIGHT_STYLE = "color: #2ca02c"
WRONG_STYLE = "color: #d62728"
NOTE_STYLE = "color: #555"
WIDE = widgets.Layout(width="auto")  # not 100%: a widget's own margin would push it past its card


def _html(body: str, style: str = "") -> str:
    return f'<div style="{style}; white-space: pre-wrap; line-height: 1.4">{body}</div>'


def _execution_count() -> int | None:
    if not frontend.in_kernel():
        return None
    from IPython import get_ipython

    return getattr(get_ipython(), "execution_count", None)


class ShownOnce:
    """Display a card once per cell: `quiz.ask(...)` shows it, and the same card as the
    cell's value does not show it again. Live it is the widget; headless, its text."""

    live: bool
    _shown_at: int | None = None
    text: Callable[[], str]  # each card's words, printed headless

    def display(self) -> None:
        self._shown_at = _execution_count()
        if not self.live:
            print(self.text())
        elif frontend.in_kernel():
            from IPython.display import display

            display(self._repr_mimebundle_(), raw=True)  # type: ignore[attr-defined]

    def _ipython_display_(self) -> None:
        if self._shown_at is None or self._shown_at != _execution_count():
            self.display()


def _steps(steps: Sequence[str]) -> str:
    return "<ol>" + "".join(f"<li>{html.escape(s)}</li>" for s in steps) + "</ol>"


class QuestionCard(ShownOnce, widgets.VBox):
    """One question: its control, Check, Hint, and the feedback under them.

    Traits: `feedback` (the last words shown), `tries`, `solved`."""

    feedback = Unicode("")
    tries = Int(0)
    solved = Bool(False)

    def __init__(self, state: QuestionState, live: bool = True) -> None:
        self.state = state
        self.live = live
        q = state.question
        kind = "Predict, then observe" if state.prediction else "Check yourself"
        head = widgets.HTML(
            f"<b>{kind}</b> <span style='{NOTE_STYLE}'>[{q.id} · {text.KIND_WORDS[q.type]}]</span>"
            + _html(html.escape(q.prompt)),
            layout=WIDE,
        )
        self.control = self._control()
        self.check_button = widgets.Button(description="Check", button_style="primary", layout=widgets.Layout(width="auto"))
        self.hint_button = widgets.Button(description="Hint", layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML(layout=WIDE)
        self.check_button.on_click(lambda _b: self.check())
        self.hint_button.on_click(lambda _b: self.hint())
        parts: list[widgets.Widget] = [head]
        if isinstance(q, WhichYaml):
            parts += [
                widgets.HTML(f"<b>{letter(i)})</b><pre style='margin: 0 0 0.5em 1em'>{html.escape(o.yaml.rstrip())}</pre>", layout=WIDE)
                for i, o in enumerate(q.options)
            ]
        parts += [self.control, widgets.HBox([self.check_button, self.hint_button]), self.output]
        super().__init__(children=parts, layout=widgets.Layout(border="1px solid #ddd", padding="0.5em", margin="0.5em 0"))

    def _control(self) -> widgets.Widget:
        q = self.state.question
        if isinstance(q, SingleChoice):
            return widgets.RadioButtons(options=[(f"{letter(i)}) {o.text}", letter(i)) for i, o in enumerate(q.options)], value=None, layout=WIDE)
        if isinstance(q, WhichYaml):
            return widgets.RadioButtons(options=[(f"{letter(i)})", letter(i)) for i in range(len(q.options))], value=None)
        if isinstance(q, MultipleChoice):
            return widgets.VBox([widgets.Checkbox(description=f"{letter(i)}) {o.text}", value=False, indent=False, layout=WIDE) for i, o in enumerate(q.options)])
        if isinstance(q, MythOrFact):
            return widgets.ToggleButtons(options=[("Myth", "myth"), ("Fact", "fact")], value=None)
        unit = getattr(q, "unit", "")
        return widgets.Text(placeholder=text.how_to_answer(q) if not unit else f"a number, in {unit}", layout=widgets.Layout(width="20em"))

    def _answer_from_control(self) -> Any:
        control = self.control
        if isinstance(self.state.question, MultipleChoice):
            assert isinstance(control, widgets.VBox)
            return [letter(i) for i, box in enumerate(control.children) if box.value]  # type: ignore[attr-defined]
        return control.value  # type: ignore[attr-defined]

    def set_answer(self, answer: Any) -> None:
        """Put an answer into the control, as a learner would choose or type it."""
        control = self.control
        if isinstance(self.state.question, MultipleChoice):
            chosen = {a.strip().lower() for a in (answer.split(",") if isinstance(answer, str) else answer)}
            for i, box in enumerate(control.children):  # type: ignore[attr-defined]
                box.value = letter(i) in chosen
        elif isinstance(control, widgets.Text):
            control.value = str(answer)
        else:
            control.value = answer  # type: ignore[attr-defined]

    def answer(self, answer: Any) -> Any:
        """Answer from code: set the control and press Check. Returns the verdict (None if unusable)."""
        self.set_answer(answer)
        return self.check()

    def check(self) -> Any:
        value = self._answer_from_control()
        if value is None or value == "" or value == []:
            self._say("Choose or type an answer first.", NOTE_STYLE)
            return None
        try:
            outcome = self.state.submit(value)
        except BadAnswer as exc:
            self._say(str(exc), WRONG_STYLE)
            return None
        except MeshkitError as exc:
            self._say(str(exc), WRONG_STYLE)
            return None
        self.tries = outcome.tries
        self.solved = self.state.solved
        verdict = outcome.verdict
        body = html.escape(verdict.feedback if verdict.correct else f"Not quite: {verdict.feedback}")
        if outcome.reveal:
            if outcome.right:
                body += f"<br><b>The answer:</b> {html.escape(outcome.right)}"
            body += "<br><b>Why:</b>" + _steps(self.state.question.explanation)
        self._say(body, RIGHT_STYLE if verdict.correct else WRONG_STYLE, text.outcome(self.state.question, outcome), escaped=True)
        return verdict

    def hint(self) -> str:
        words = self.state.hint()
        self._say("Hint: " + html.escape(words), NOTE_STYLE, f"Hint: {words}", escaped=True)
        return words

    def compare(self, measured: Any, unit: str = "") -> str:
        """After the experiment: the prediction next to the measurement, with the explanation.
        (Not `observe`: that name is traitlets' own.)"""
        message = self.state.observe(measured, unit)
        head, _, _rest = message.partition("\nWhy:")
        self._say(html.escape(head) + "<br><b>Why:</b>" + _steps(self.state.question.explanation), NOTE_STYLE, message, escaped=True)
        return message

    def _say(self, body: str, style: str, plain: str | None = None, escaped: bool = False) -> None:
        self.feedback = plain if plain is not None else body
        self.output.value = _html(body if escaped else html.escape(body), style)
        if not self.live:
            print(self.feedback)

    def text(self) -> str:
        q = self.state.question
        return text.question_text(q, predict=self.state.prediction) + f'\n  answer in code: quiz.answer("{q.id}", ...) with {text.how_to_answer(q)}; or open the notebook in JupyterLab'



class TaskCard(ShownOnce, widgets.VBox):
    """A live task: Check (on the running lab), Hint, Show solution, Solve it for me.

    Traits: `result` (the last check's sentence) and `passed`."""

    result = Unicode("")
    passed = Bool(False)

    def __init__(self, state: TaskState, live: bool = True) -> None:
        self.state = state
        self.live = live
        words = state.words
        head = widgets.HTML(
            f"<b>Live task: {html.escape(words.title)}</b> <span style='{NOTE_STYLE}'>[{words.id}]</span>" + _html(html.escape(words.prompt)),
            layout=WIDE,
        )
        self.check_button = widgets.Button(description="Check my lab", button_style="primary", layout=widgets.Layout(width="auto"))
        self.hint_button = widgets.Button(description="Hint", layout=widgets.Layout(width="auto"))
        self.solution_button = widgets.Button(description="Show solution", layout=widgets.Layout(width="auto"))
        self.solve_button = widgets.Button(description="Solve it for me", button_style="warning", layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML(layout=WIDE)
        self.check_button.on_click(lambda _b: self.check())
        self.hint_button.on_click(lambda _b: self.hint())
        self.solution_button.on_click(lambda _b: self.show_solution())
        self.solve_button.on_click(lambda _b: self.solve())
        buttons = widgets.HBox([self.check_button, self.hint_button, self.solution_button, self.solve_button], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__(children=[head, buttons, self.output], layout=widgets.Layout(border="1px solid #9ac", padding="0.5em", margin="0.5em 0"))

    def check(self) -> TaskResult | None:
        self._say("Checking the lab (config, then fresh traffic)...", NOTE_STYLE, quiet=True)
        try:
            result = self.state.check()
        except MeshkitError as exc:
            self._say(str(exc), WRONG_STYLE)
            return None
        self._show_result(result)
        return result

    def solve(self) -> TaskResult | None:
        self._say("Applying the solution, then checking...", NOTE_STYLE, quiet=True)
        try:
            result = self.state.solve()
        except MeshkitError as exc:
            self._say(str(exc), WRONG_STYLE)
            return None
        self._show_result(result, solved=True)
        return result

    def hint(self) -> str:
        words = self.state.hint()
        self._say("Hint: " + words, NOTE_STYLE)
        return words

    def show_solution(self) -> str:
        words = text.solution(self.state.words)
        self.output.value = "<b>Solution:</b>" + _steps(self.state.words.explanation)
        if not self.live:
            print(words)
        return words

    def _show_result(self, result: TaskResult, solved: bool = False) -> None:
        self.passed = result.passed
        prefix = "Solved for you. " if solved else ""
        self._say(prefix + str(result), RIGHT_STYLE if result.passed else WRONG_STYLE)

    def _say(self, words: str, style: str, quiet: bool = False) -> None:
        self.result = words if not quiet else self.result
        self.output.value = _html(html.escape(words), style)
        if not self.live and not quiet:
            print(words)

    def text(self) -> str:
        return text.task_text(self.state.words) + f'\n  check it in code: quiz.task("{self.state.words.id}").check()'



class QuizCard(ShownOnce, widgets.VBox):
    """The end of a notebook: its questions, then its live tasks."""

    def __init__(self, title: str, questions: Sequence[QuestionState], tasks: Sequence[TaskState], live: bool = True) -> None:
        self.live = live
        self.questions = [QuestionCard(q, live) for q in questions]
        self.tasks = [TaskCard(t, live) for t in tasks]
        head = widgets.HTML(f"<h3>Check yourself: {html.escape(title)}</h3><span style='{NOTE_STYLE}'>{len(self.questions)} questions and {len(self.tasks)} live task(s); your answers are saved to your progress (`meshkit progress`).</span>")
        super().__init__(children=[head, *self.questions, *self.tasks], layout=widgets.Layout(width="100%"))

    def text(self) -> str:
        return "\n\n".join([*(c.text() for c in self.questions), *(c.text() for c in self.tasks)])
