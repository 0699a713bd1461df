"""What a learner does in JupyterLab, as Playwright steps: open a notebook, run it, drag a slider, read a chart.

Every step works through the page as a person would (menus, mouse, form
fields); reads go through the DOM: cell prompts, widget readouts, and the
`data` of a plotly chart's div, which is what the chart draws.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Locator, Page

PROMPTS_JS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent.trim())"

# The traces of every plotly chart under `root`: name, x, y and customdata as plain arrays
# (plotly keeps numbers as typed arrays, which JSON would turn into objects).
PLOTS_JS = """(root) => [...root.querySelectorAll('.js-plotly-plot')].map(gd => ({
    title: (gd.layout && gd.layout.title && gd.layout.title.text) || '',
    traces: (gd.data || []).map(t => ({
        name: t.name || '',
        x: t.x ? Array.from(t.x) : [],
        y: t.y ? Array.from(t.y) : [],
        customdata: t.customdata ? Array.from(t.customdata) : [],
    })),
}))"""


@dataclass
class Plot:
    title: str
    traces: list[dict[str, Any]]

    def trace(self, name: str) -> dict[str, Any]:
        for trace in self.traces:
            if trace["name"] == name:
                return trace
        raise KeyError(f"no trace {name!r} in chart {self.title!r} (traces: {[t['name'] for t in self.traces]})")


def open_notebook(page: Page, url: str, timeout_s: float = 90.0) -> None:
    """Open the notebook and wait until its cells are drawn and its kernel is idle."""
    page.goto(url)
    page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=timeout_s * 1000)
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=timeout_s * 1000)


def hide_left_sidebar(page: Page) -> None:
    """Close the file browser (click its open tab), so the notebook gets the page's width."""
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, from the menu bar."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()


def prompts(page: Page) -> list[str]:
    return list(page.evaluate(PROMPTS_JS))


def wait_for_run_all(page: Page, timeout_s: float) -> list[str]:
    """Wait until no cell is queued or running ([*]) any more; returns the prompts.

    After an error the kernel drops the queued cells, which go back to `[ ]`:
    the caller checks that every prompt has a number.
    """
    deadline = time.monotonic() + timeout_s
    started = False
    current: list[str] = []
    while time.monotonic() < deadline:
        current = prompts(page)
        busy = any("*" in p for p in current)
        started = started or busy or any(re.search(r"\d", p) for p in current)
        if started and not busy:
            return current
        time.sleep(0.5)
    raise TimeoutError(f"cells still running after {timeout_s:.0f} s: {current}")


def cell_with(page: Page, source: str) -> Locator:
    """The code cell whose input contains `source`."""
    return page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text=source))


def slider(root: Locator, label: str) -> Locator:
    """The ipywidgets slider under `root` whose description is `label`."""
    return root.locator(".widget-slider").filter(has=root.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$")))


def readout(slider_: Locator) -> int:
    return int(slider_.locator(".widget-readout").inner_text().strip())


def drag_slider(page: Page, slider_: Locator, value: float, low: float = 0.0, high: float = 100.0) -> None:
    """Drag the slider's handle with the mouse to where `value` sits on its track, and let go."""
    slider_.scroll_into_view_if_needed()
    track = slider_.locator(".noUi-base").bounding_box()
    handle = slider_.locator(".noUi-handle").bounding_box()
    assert track is not None and handle is not None, "slider not visible"
    start_x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    target_x = track["x"] + track["width"] * (value - low) / (high - low)
    page.mouse.move(start_x, y)
    page.mouse.down()
    page.mouse.move(target_x, y, steps=12)
    page.mouse.up()


def set_field(root: Locator, label: str, value: str) -> None:
    """Type into the text field labelled `label` and press Enter (ipywidgets syncs on Enter)."""
    field = root.locator(".widget-inline-hbox").filter(
        has=root.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))).locator("input")
    field.fill(value)
    field.press("Enter")


def plots(root: Locator) -> list[Plot]:
    return [Plot(p["title"], p["traces"]) for p in root.evaluate(PLOTS_JS)]


def plot(root: Locator, title_starts: str) -> Plot:
    found = [p for p in plots(root) if p.title.startswith(title_starts)]
    if not found:
        raise KeyError(f"no chart titled {title_starts!r}: {[p.title for p in plots(root)]}")
    return found[0]


def rendered_chart_titles(root: Locator, charts: Sequence[str], timeout_s: float) -> list[str]:
    """The titles of the charts under `root` once one starting with each of `charts` has drawn
    (or the titles at the deadline).

    A live chart draws only after the browser has loaded plotly's widget code,
    which on a cold start (a fresh virtualenv, an empty browser cache) can come
    well after the cell has finished."""
    deadline = time.monotonic() + timeout_s
    while True:
        titles = [p.title for p in plots(root)]
        if all(any(t.startswith(chart) for t in titles) for chart in charts) or time.monotonic() > deadline:
            return titles
        time.sleep(0.5)


def output_text(page: Page) -> str:
    """Every cell's output as text (for a failure's message)."""
    return str(page.evaluate(
        "() => [...document.querySelectorAll('.jp-CodeCell')].map((c, i) => "
        "`--- cell ${i} ${c.querySelector('.jp-InputArea-prompt')?.textContent}\\n` + "
        "(c.querySelector('.jp-OutputArea')?.innerText || '')).join('\\n')"))
