"""What a learner does in JupyterLab, as Playwright steps: open a notebook, run it, drag a slider, read a chart.

Every step works through the page as a person would (menus, mouse, form
fields); reads go through the DOM: cell prompts, widget readouts, and the
`data` of a plotly chart's div, which is what the chart draws.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Locator, Page

from tests.browser.layout import show_file_browser

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


# The text of every output JupyterLab draws as stderr: a cell's error (its traceback) and anything written to
# sys.stderr (warnings too, so a caller filters).
STDERR_JS = """() => [...document.querySelectorAll(
    '.jp-CodeCell .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => {
    const cell = e.closest('.jp-CodeCell');
    const prompt = cell && cell.querySelector('.jp-InputArea-prompt');
    return `${prompt ? prompt.textContent.trim() : '?'} ${e.innerText}`;
})"""

ERROR_TEXT = re.compile(r"Traceback|Error\b|Exception\b")


def error_outputs(page: Page) -> list[str]:
    """The stderr outputs that are errors (a traceback, an exception's name), each led by its cell's prompt."""
    return [text for text in page.evaluate(STDERR_JS) if ERROR_TEXT.search(text)]


def checkbox(root: Locator, label: str) -> Locator:
    """The ipywidgets checkbox under `root` whose description is `label`."""
    return root.get_by_role("checkbox", name=label, exact=True)


def new_points(before: Plot, after: Plot) -> dict[str, list[tuple[Any, Any]]]:
    """Per trace name of `after`, the (x, y) points it has that `before` did not (a multiset difference on x).

    For a chart whose points each have their own x (a dot per request, a bar per
    second), these are what was drawn since `before` was read.
    """
    seen = {name: Counter(x for t in before.traces if t["name"] == name for x in t["x"])
            for name in {t["name"] for t in after.traces}}
    out: dict[str, list[tuple[Any, Any]]] = {}
    for trace in after.traces:
        fresh = out.setdefault(trace["name"], [])
        for x, y in zip(trace["x"], trace["y"]):
            if x is None:
                continue
            if seen[trace["name"]][x]:
                seen[trace["name"]][x] -= 1
            else:
                fresh.append((x, y))
    return out


def screenshot_whole(page: Page, root: Locator, path: str) -> None:
    """A screenshot of `root` (a cell's output) whole: the page made tall enough to show it at once (the
    notebook scrolls inside the page), at the same width; then back to the page's size."""
    box = root.bounding_box()
    size = page.viewport_size
    if size is not None and box is not None and box["height"] + 200 > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": int(box["height"]) + 300})
    root.scroll_into_view_if_needed()
    root.screenshot(path=path)
    if size is not None:
        page.set_viewport_size(size)


def field(root: Locator, label: str) -> Locator:
    """The input of the ipywidgets text or number field under `root` labelled `label`."""
    return root.locator(".widget-inline-hbox").filter(
        has=root.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))).locator("input")


def wait_for_text(root: Locator, pattern: str | re.Pattern[str], timeout_s: float,
                  accept: Callable[[re.Match[str]], bool] | None = None) -> re.Match[str]:
    """Wait until `root`'s text has a match of `pattern` (one `accept(match)` approves, when given); returns it."""
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    deadline = time.monotonic() + timeout_s
    text = ""
    while True:
        text = root.inner_text()
        for match in regex.finditer(text):
            if accept is None or accept(match):
                return match
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {regex.pattern!r} after {timeout_s:.0f} s in:\n{text[:3000]}")
        time.sleep(0.25)


# What the learner sees of a chart's x axis and marks: the axis type plotly drew (after its own defaults), the tick
# labels as drawn, how many bars are wider than a pixel, and how many markers are drawn and how many of them
# inside the plot area (a marker at an x far off the axis' range is drawn outside it, where nobody sees it).
DRAWN_JS = """(root, title) => {
  const gd = [...root.querySelectorAll('.js-plotly-plot')].find(
      g => ((g.layout && g.layout.title && g.layout.title.text) || '').startsWith(title));
  if (!gd) return null;
  const wide = [...gd.querySelectorAll('.barlayer .point path')].filter(p => p.getBoundingClientRect().width >= 1);
  const area = gd.querySelector('.draglayer .nsewdrag');
  const a = area ? area.getBoundingClientRect() : null;
  const inside = [...gd.querySelectorAll('.scatterlayer .point')].filter(p => {
    const r = p.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
    return a && r.width > 0 && x >= a.left - 1 && x <= a.right + 1 && y >= a.top - 1 && y <= a.bottom + 1;
  });
  return {
    xtype: (gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis.type) || '',
    xticks: [...gd.querySelectorAll('.xtick text')].map(t => t.textContent),
    bars: wide.length,
    markers: gd.querySelectorAll('.scatterlayer .point').length,
    markers_inside: inside.length,
  };
}"""


def drawn(root: Locator, title_starts: str) -> dict[str, Any]:
    """How the chart titled `title_starts...` is drawn: {xtype, xticks, bars, markers} (see DRAWN_JS)."""
    found = root.evaluate(DRAWN_JS, title_starts)
    if found is None:
        raise KeyError(f"no chart titled {title_starts!r}: {[p.title for p in plots(root)]}")
    return dict(found)


CLOCK_TICK = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?")


def time_axis_problems(root: Locator, title_starts: str, bars: bool = False, markers: bool = False) -> list[str]:
    """Why the learner would not read the chart's x axis as clock times (or see its marks); [] when fine.

    A time axis must be drawn as a date axis with clock-time tick labels
    (a FigureWidget given numpy datetime64 values sends them as integer
    nanoseconds, and the axis then shows 1796404779000000000); with `bars`,
    at least one bar must be drawn wider than a pixel; with `markers`, every
    marker drawn must lie inside the plot area.
    """
    seen = drawn(root, title_starts)
    problems = []
    if seen["xtype"] != "date":
        problems.append(f"x axis drawn as {seen['xtype']!r}, not as dates")
    if not seen["xticks"] or not all(CLOCK_TICK.match(t) for t in seen["xticks"]):
        problems.append(f"x tick labels are not clock times: {seen['xticks'][:4]}")
    if bars and not seen["bars"]:
        problems.append("no bar is drawn wider than a pixel (the data are there, the bars are not visible)")
    if markers and (not seen["markers"] or seen["markers_inside"] < seen["markers"]):
        problems.append(f"{seen['markers'] - seen['markers_inside']} of {seen['markers']} markers drawn "
                        "outside the plot area (or none drawn)")
    return [f"chart {title_starts!r}: {p}" for p in problems]


# The traces of one chart with the properties a lane chart needs: which y axis (lane) each is drawn on, its mode
# and its text, besides name, x and y.
TRACES_JS = """(root, title) => {
  const gd = [...root.querySelectorAll('.js-plotly-plot')].find(
      g => ((g.layout && g.layout.title && g.layout.title.text) || '').startsWith(title));
  if (!gd) return null;
  return (gd.data || []).map(t => ({
    name: t.name || '', yaxis: t.yaxis || 'y', mode: t.mode || '',
    x: t.x ? Array.from(t.x) : [], y: t.y ? Array.from(t.y) : [], text: t.text ? Array.from(t.text) : [],
  }));
}"""


def traces(root: Locator, title_starts: str) -> list[dict[str, Any]]:
    """The traces of the chart titled `title_starts...`: name, yaxis, mode, x, y and text of each."""
    found = root.evaluate(TRACES_JS, title_starts)
    if found is None:
        raise KeyError(f"no chart titled {title_starts!r}: {[p.title for p in plots(root)]}")
    return list(found)


def cut_labels(root: Locator) -> list[str]:
    """The ipywidgets labels under `root` drawn cut off (ellipsis: their text is wider than their box)."""
    return list(root.evaluate("""root => [...root.querySelectorAll('.widget-label, .widget-label-basic')]
        .filter(l => l.clientWidth > 0 && l.scrollWidth > l.clientWidth + 1).map(l => l.textContent.trim())"""))


def narrow_charts(root: Locator, tolerance_px: float = 2.0, settle_s: float = 5.0) -> list[str]:
    """The plotly charts under `root` drawn narrower than their element (a fixed width, such as plotly's
    700 px default, where the notebook gives more): each as 'title: drawn W px in a E px element'.

    A live chart is redrawn at its element's width shortly after it appears, so this waits up to
    `settle_s` for the list to empty before it answers."""
    deadline = time.monotonic() + settle_s
    while True:
        found = list(root.evaluate("""(root, tol) => [...root.querySelectorAll('.js-plotly-plot')].flatMap(gd => {
            const svg = gd.querySelector('.main-svg');
            if (!svg || gd.clientWidth === 0) return [];
            const drawn = svg.getBoundingClientRect().width;
            const title = (gd.layout && gd.layout.title && gd.layout.title.text) || '(untitled)';
            return drawn < gd.clientWidth - tol ? [`${title}: drawn ${drawn.toFixed(0)} px in a ${gd.clientWidth} px element`] : [];
        })""", tolerance_px))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def run_notebook_as_a_learner(page: Page, url: str, timeout_s: float) -> None:
    """Open the notebook with the file browser shown, Run All from the menu, and check that every
    cell ran, none shows an error, and the notebook's own checks passed."""
    open_notebook(page, url)
    show_file_browser(page)
    run_all_cells(page)
    done = wait_for_run_all(page, timeout_s)
    unnumbered = [i for i, p in enumerate(done) if not re.fullmatch(r"\[\d+\]:", p)]
    assert not unnumbered, f"cells {unnumbered} did not run (an earlier cell failed?):\n{output_text(page)[-4000:]}"
    errors = error_outputs(page)
    assert not errors, "cells with an error output:\n" + "\n".join(e[:1500] for e in errors)
    passed = page.locator(".jp-OutputArea-output", has_text="All checks passed")
    assert passed.count() >= 1, f"notebook's own checks:\n{output_text(page)[-4000:]}"
