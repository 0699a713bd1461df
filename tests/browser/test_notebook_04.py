"""Notebook 04 in a real browser: JupyterLab, Debian's Chromium, Playwright.

The test starts JupyterLab on a copy of notebooks/ (its own port, token,
lab home and Jupyter folders), opens notebook 04 in headless Chromium at a
laptop's 1366x768 with the file browser open (JupyterLab's default layout,
so the notebook gets about 930 px), runs every cell from the Run menu, and
checks that the notebook passed its own checks, that the dashboard is live
(widgets, not the static figures a headless run shows), and that every
chart and widget fits its output (tests/browser/layout.py). Then it does
what the notebook asks a learner to do: drags the v1 slider of the
dashboard's split with the mouse, sets the load generator to 100 requests a
second and presses Start load, and reads the split chart's bars from the
plotly div: the observed share of each version must be a plausible binomial
draw at its new weight. Last, it closes and reopens the file browser: the
charts must follow the notebook's width both ways.

Screenshots are saved in test-artifacts/browser/ with the server's log: the
page as the learner sees it, the dashboard's whole output before and after
the slider, and the page with the file browser closed; on failure, one of
the whole page too. JupyterLab, its kernel and the lab the notebook started
are stopped whatever happens.
"""

from __future__ import annotations

import math
import re
import time

import pytest
from playwright.sync_api import BrowserContext, Locator, Page

from tests.browser import notebook_page as nb
from tests.browser.conftest import ARTIFACTS
from tests.browser.jupyter import Server
from tests.browser.layout import LAPTOP, assert_fits, show_file_browser

NOTEBOOK = "04-traffic-shifting-and-canary-releases.ipynb"
DASHBOARD_CELL = "board = dashboard(lab"
CHARTS = ("Latency", "Configured vs observed", "Request rate", "Topology")

RUN_ALL_TIMEOUT_S = 150
NEW_V1 = 60          # where the v1 slider is dragged to (from 10): v3 takes the rest, v2 keeps 0
LOAD_RATE = 100      # requests per second of the run started from the dashboard
LOAD_SECONDS = 4     # longer than the split chart's 3 s window, so the window holds only this run


def within_binomial(hits: int, n: int, p: float, z: float = 3.29) -> bool:
    """`hits` of `n` is a plausible draw at probability `p` (99.9% two-sided, +1 for rounding)."""
    return abs(hits - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


SCREENSHOTS = ("laptop-split-chart.png", "dashboard-after-run-all.png", "dashboard-after-slider.png",
               "laptop-file-browser-closed.png")


@pytest.mark.timeout(300)
def test_dashboard_split_follows_the_slider_in_a_real_browser(server: Server, browser: BrowserContext) -> None:
    for stale in ("failure.png", "failure-outputs.txt", *SCREENSHOTS):
        (ARTIFACTS / stale).unlink(missing_ok=True)
    page = browser.pages[0] if browser.pages else browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        check_notebook_04(page, server)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "failure.png"))
        (ARTIFACTS / "failure-outputs.txt").write_text(nb.output_text(page) + "\n\npage errors:\n" + "\n".join(errors))
        raise


def check_notebook_04(page: Page, server: Server) -> None:
    started = time.monotonic()
    nb.run_notebook_as_a_learner(page, server.page_url(NOTEBOOK), RUN_ALL_TIMEOUT_S)
    ran_s = time.monotonic() - started

    # Live, not headless: the kernel was started by the server (JPY_SESSION_NAME), so the
    # dashboard is widgets (sliders, a Start button) over live plotly charts.
    board = nb.cell_with(page, DASHBOARD_CELL).locator(".jp-OutputArea")
    v1, v2, v3 = (nb.slider(board, name) for name in ("v1", "v2", "v3"))
    assert v1.count() == 1, f"the dashboard has no v1 slider: is it live?\n{board.inner_text()[:2000]}"
    start = board.get_by_role("button", name="Start load")
    assert start.count() == 1
    titles = nb.rendered_chart_titles(board, CHARTS, timeout_s=60)
    for chart in CHARTS:
        assert any(t.startswith(chart) for t in titles), f"no {chart} chart in the dashboard: {titles}"
    assert [nb.readout(s) for s in (v1, v2, v3)] == [10, 0, 90], "the dashboard starts from the notebook's 10/0/90"

    # On a laptop with the file browser open, every chart and widget of the notebook fits its output.
    split_chart = board.locator(".js-plotly-plot").filter(has_text="Configured vs observed")
    try:
        assert_fits(page)
    finally:  # what the learner sees, whether it fits or not
        split_chart.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / SCREENSHOTS[0]))
    screenshot(page, board, SCREENSHOTS[1])

    # Drag v1 to 60 with the mouse: on release the widget rebalances (v3 takes the rest) and applies.
    nb.drag_slider(page, v1, NEW_V1)
    board.get_by_text(re.compile(r"applied VirtualService \S+/reviews as config version \d+")).wait_for(timeout=15_000)
    weights = {name: nb.readout(s) for name, s in (("v1", v1), ("v2", v2), ("v3", v3))}
    assert sum(weights.values()) == 100, weights
    assert abs(weights["v1"] - NEW_V1) <= 3, f"the drag should land near {NEW_V1}: {weights}"
    assert weights["v3"] == 100 - weights["v1"] and weights["v2"] == 0, weights

    # Load from the dashboard's own generator, then wait for the run to end and the charts to settle.
    nb.set_field(board, "rate /s", str(LOAD_RATE))
    nb.set_field(board, "duration s", str(LOAD_SECONDS))
    start.click()
    board.get_by_text(re.compile(r"^#\d+ reviews 100/s, 400 requests: done")).wait_for(timeout=30_000)
    split = settled_split(board, weights, timeout_s=20)

    configured = dict(zip(split.trace("configured")["x"], split.trace("configured")["y"], strict=True))
    assert {v: round(w) for v, w in configured.items()} == weights, f"chart's configured split {configured} != sliders {weights}"
    observed = split.trace("observed")
    counts = dict(zip(observed["x"], (int(c) for c in observed["customdata"]), strict=True))
    total = sum(counts.values())
    assert total >= LOAD_RATE * 2, f"the 3 s window should hold a few hundred requests: {counts}"
    for version, weight in weights.items():
        hits = counts.get(version, 0)
        assert within_binomial(hits, total, weight / 100), (
            f"{version}: observed {hits} of {total}, configured {weight}% (observed split {counts})")

    latency = nb.plot(board, "Latency")
    assert any(t["name"].startswith("v1") for t in latency.traces) and any(t["y"] for t in latency.traces)
    topology = nb.plot(board, "Topology")
    assert topology.trace("nodes")["x"], "the topology graph has no nodes"
    assert_fits(page)
    screenshot(page, board, SCREENSHOTS[2])

    # The learner closes the file browser (latency and split then share a row) and opens it again.
    nb.hide_left_sidebar(page)
    try:
        assert_fits(page)
    finally:
        split_chart.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / SCREENSHOTS[3]))
    show_file_browser(page)
    assert_fits(page)
    (ARTIFACTS / "timings.txt").write_text(f"run all cells: {ran_s:.1f} s\nwhole test in the browser: "
                                           f"{time.monotonic() - started:.1f} s\nsplit: {weights}\nobserved: {counts}\n")


def settled_split(board: Locator, weights: dict[str, int], timeout_s: float) -> nb.Plot:
    """The split chart once it shows the new configured weights and stops changing (the last redraw came)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        split = nb.plot(board, "Configured vs observed")
        try:
            configured = [round(y) for y in split.trace("configured")["y"]]
            x = split.trace("configured")["x"]
            state = (x, configured, split.trace("observed")["customdata"])
        except KeyError:
            state = None
        if state is not None and dict(zip(x, configured, strict=True)) == weights and state == last:
            return split
        last = state
        time.sleep(1.0)
    raise TimeoutError(f"the split chart did not settle on {weights}: last {last}")


def screenshot(page: Page, board: Locator, name: str) -> None:
    """The dashboard's whole output, the page made tall enough to show it at once (the notebook
    scrolls inside the page), at the same width; then back to the laptop's size."""
    box = board.bounding_box()
    size = page.viewport_size or LAPTOP
    if box is not None and box["height"] + 200 > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": int(box["height"]) + 300})
    board.scroll_into_view_if_needed()
    board.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size(size)
