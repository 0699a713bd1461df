"""A progress bar for a restore or a catch-up, in a notebook someone is looking at.

A catch-up may restart a dozen processes and take half a minute; in
JupyterLab the learner sees an IntProgress filling step by step with the
step's words beside it. Headless (nbclient, a script, the CLI) there is no
bar: the Lab's `progress` callable says the same in text, and the result's
summary line is what remains in the saved output.
"""

from __future__ import annotations

import ipywidgets as widgets

from meshkit.notebook.frontend import is_live, show


class StepsBar(widgets.HBox):
    """`title`, a bar of `total` steps and the current step's words."""

    def __init__(self, title: str, total: int) -> None:
        self.bar = widgets.IntProgress(value=0, min=0, max=max(total, 1), bar_style="info")
        self.label = widgets.Label(f"{title}: {total} step(s)")
        self.title = title
        super().__init__(children=[widgets.Label(title), self.bar, self.label],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center"))

    def step(self, number: int, total: int, doing: str) -> None:
        """Before step `number` of `total` runs."""
        self.bar.max = max(total, 1)
        self.bar.value = number - 1
        self.label.value = f"{number}/{total}: {doing}"

    def finish(self, summary: str, ok: bool = True) -> None:
        self.bar.value = self.bar.max
        self.bar.bar_style = "success" if ok else "danger"
        self.label.value = summary


def steps_bar(title: str, total: int) -> StepsBar | None:
    """A shown StepsBar when a frontend renders widgets, else None (the text progress suffices)."""
    if not is_live():
        return None
    bar = StepsBar(title, total)
    show(bar)
    return bar
