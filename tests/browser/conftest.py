"""Fixtures every browser test shares: a JupyterLab server and Chromium at a laptop's size.

`server` is JupyterLab on a copy of notebooks/ (its own port, token, lab
home and Jupyter folders), stopped with everything it started. `browser` is
Debian's Chromium driven by Playwright, at 1366x768 (LAPTOP): the screen
the notebooks must fit with JupyterLab's file browser open. A test asks
for both and opens a notebook; see tests/browser/layout.py for the check
that its charts and widgets fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.browser.chromium import FLAGS, require_chromium, starts_by_itself
from tests.browser.jupyter import Server, jupyter_lab
from tests.browser.layout import LAPTOP

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with jupyter_lab(ROOT / "notebooks", tmp_path, ARTIFACTS) as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    path = require_chromium()
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=path, headless=True, args=FLAGS,
                viewport=dict(LAPTOP), timeout=60_000,
            )
        except PlaywrightError as exc:
            alone, detail = starts_by_itself(path, tmp_path / "chromium-alone")
            if not alone:
                pytest.skip(f"Chromium at {path} does not start on this machine, even without Playwright: {detail}")
            raise AssertionError(f"Chromium starts alone but Playwright could not launch it: {exc}") from exc
        try:
            yield context
        finally:
            context.close()
