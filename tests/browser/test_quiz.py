"""A quiz question in a real browser: JupyterLab, Debian's Chromium, Playwright.

A learner answers a question card of notebook 04's quiz: a wrong choice
first (the card names the misconception behind it, and no explanation yet),
then the right one (the card shows the explanation); both attempts land in
the progress file the kernel writes. The notebook is a small one written
into the server's copy of notebooks/, so the test needs no lab and runs in
seconds once JupyterLab is up.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser import notebook_page as nb
from tests.browser.conftest import ARTIFACTS
from tests.browser.jupyter import Server, progress_file
from tests.browser.layout import assert_fits, show_file_browser

from meshkit.quiz.bank import bank
from meshkit.quiz.grading import letter
from meshkit.quiz.schema import SingleChoice

NOTEBOOK = "quiz-in-the-browser.ipynb"


def question() -> SingleChoice:
    return next(q for q in bank("04").questions if isinstance(q, SingleChoice) and not q.predict)


def write_notebook(server: Server, ident: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(f'from meshkit.quiz import Quiz\nquiz = Quiz("04")\ncard = quiz.ask("{ident}")')]
    nbformat.write(notebook, server.root / NOTEBOOK)


@pytest.mark.timeout(240)
def test_a_wrong_answer_shows_its_misconception_and_a_right_one_the_explanation(server: Server, browser: BrowserContext) -> None:
    q = question()
    write_notebook(server, q.id)
    page = browser.pages[0] if browser.pages else browser.new_page()
    try:
        answer_in_the_browser(page, server, q)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "quiz-failure.png"))
        raise
    attempts = [json.loads(line) for line in progress_file(server.home).read_text().splitlines()]
    assert [(a["item"], a["correct"], a["learner"]) for a in attempts] == [(q.id, False, "browser-test"), (q.id, True, "browser-test")]


def answer_in_the_browser(page: Page, server: Server, q: SingleChoice) -> None:
    nb.open_notebook(page, server.page_url(NOTEBOOK))
    show_file_browser(page)
    nb.run_all_cells(page)
    nb.wait_for_run_all(page, 60)
    card = nb.cell_with(page, "quiz.ask").locator(".jp-OutputArea")
    card.get_by_text(q.prompt[:40]).wait_for(timeout=30_000)
    wrong = next(i for i, o in enumerate(q.options) if not o.correct)
    right = next(i for i, o in enumerate(q.options) if o.correct)
    check = card.get_by_role("button", name="Check")

    card.locator("label", has_text=f"{letter(wrong)}) ").first.click()
    check.click()
    misconception = q.options[wrong].misconception or ""
    card.get_by_text(misconception[:40]).wait_for(timeout=15_000)
    assert "Why:" not in card.inner_text(), "the explanation waits for a right answer (or three tries)"

    card.locator("label", has_text=f"{letter(right)}) ").first.click()
    check.click()
    card.get_by_text("Why:").wait_for(timeout=15_000)
    assert q.explanation[0][:40] in card.inner_text()
    assert_fits(page)
    card.screenshot(path=str(ARTIFACTS / "quiz-card.png"))
