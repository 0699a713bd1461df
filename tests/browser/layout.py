"""Does every chart and widget fit the notebook it is drawn in? Measured in the page.

A learner's JupyterLab is often a laptop screen with the file browser open,
so the notebook is far narrower than the browser window. A chart drawn at a
fixed pixel width then runs off the right edge of its output area (the last
bars of a bar chart are hidden), and the notebook panel grows a horizontal
scroll bar. `layout_problems(page)` measures that as the browser drew it:

- each plotly chart (its div and the SVG plotly drew in it) and each
  ipywidgets view in an output must end at or before that output's right edge;
- no output with a chart or widget, no widget box and no notebook scroller
  may scroll sideways (scrollWidth larger than clientWidth means something
  wider than the notebook is in it; a wide DataFrame may: Jupyter scrolls
  tables by design);
- a chart must not be drawn wider than its own element (it is cut off);
- a chart's title must lie inside its SVG (not cut off), and its legend must
  not sit on the plot area (over the data).

`assert_fits(page)` fails with every problem found (waiting a few seconds
first for live charts to settle at their width), so a test for any notebook
calls it once its outputs are drawn. The `server` and `browser` fixtures
(tests/browser/conftest.py) give JupyterLab and Chromium at LAPTOP size:

    from tests.browser import notebook_page as nb
    from tests.browser.layout import assert_fits, show_file_browser

    def test_notebook_07_fits_a_laptop(server, browser):
        page = browser.pages[0]
        nb.open_notebook(page, server.page_url("07-circuit-breaking-and-outlier-detection.ipynb"))
        show_file_browser(page)                 # JupyterLab's default layout
        nb.run_all_cells(page)
        nb.wait_for_run_all(page, 150)
        assert_fits(page)                       # or assert_fits(page, nb.cell_with(page, "...")) for one cell
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from playwright.sync_api import Locator, Page, ViewportSize

LAPTOP: ViewportSize = {"width": 1366, "height": 768}
"""The most common laptop screen: what the notebooks must fit with the file browser open."""

TOLERANCE_PX = 1.0
"""Sub-pixel rounding: an edge 0.5 px past another is the same edge."""

# Runs in the page. `root` is an element (a cell, an output area) or null for the whole document.
# Each problem is {kind, what, detail}; the numbers in `detail` are CSS pixels.
LAYOUT_JS = """([root, tol]) => {
  const scope = root || document;
  const problems = [];
  const label = (el) => {
    const plot = el.closest('.js-plotly-plot');
    const title = plot && plot.querySelector('.gtitle');
    if (plot) return `chart "${title ? title.textContent : '(untitled)'}"`;
    const cls = [...el.classList].filter(c => c.startsWith('widget') || c.startsWith('jupyter')).slice(0, 2).join('.');
    const text = (el.innerText || '').trim().split('\\n')[0].slice(0, 40);
    return `widget .${cls || el.tagName.toLowerCase()} "${text}"`;
  };
  const cellOf = (el) => {
    const cell = el.closest('.jp-Cell');
    if (!cell) return '';
    const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    return ` in cell ${cells.indexOf(cell)} ${prompt ? prompt.textContent.trim() : ''}`;
  };
  const outputs = [...scope.querySelectorAll('.jp-OutputArea-output')];
  if (root && root.matches && root.matches('.jp-OutputArea-output')) outputs.push(root);
  for (const out of outputs) {
    const box = out.getBoundingClientRect();
    if (box.width === 0) continue;  // collapsed or hidden output
    // Only outputs with charts or widgets: a wide DataFrame scrolling inside its output is Jupyter's normal way.
    const drawn = out.querySelector('.js-plotly-plot, .jupyter-widgets');
    if (drawn && out.scrollWidth > out.clientWidth + tol) {
      problems.push({kind: 'scrolls', what: `output${cellOf(out)}`,
        detail: `scrollWidth ${out.scrollWidth} > clientWidth ${out.clientWidth}`});
    }
    const items = out.querySelectorAll(
      '.js-plotly-plot, .js-plotly-plot .main-svg, .jupyter-widgets, .widget-box, .widget-inline-hbox');
    for (const el of items) {
      const r = el.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.right > box.right + tol) {
        problems.push({kind: 'overflows', what: `${label(el)}${cellOf(out)}`,
          detail: `right edge ${r.right.toFixed(0)} > output's ${box.right.toFixed(0)} (by ${(r.right - box.right).toFixed(0)} px)`});
      }
    }
    for (const box of out.querySelectorAll('.jupyter-widget-box, .widget-box')) {
      if (box.clientWidth > 0 && box.scrollWidth > box.clientWidth + tol) {
        problems.push({kind: 'scrolls', what: `${label(box)}${cellOf(out)}`,
          detail: `scrollWidth ${box.scrollWidth} > clientWidth ${box.clientWidth}`});
      }
    }
    for (const plot of out.querySelectorAll('.js-plotly-plot')) {
      const svg = plot.querySelector('.main-svg');
      if (!svg) continue;
      const frame = svg.getBoundingClientRect();
      if (plot.clientWidth > 0 && frame.width > plot.clientWidth + tol) {
        problems.push({kind: 'overflows', what: `${label(plot)}${cellOf(out)}`,
          detail: `drawn ${frame.width.toFixed(0)} px wide in a ${plot.clientWidth} px box (cut off)`});
      }
      const title = plot.querySelector('.gtitle');
      if (title) {
        const t = title.getBoundingClientRect();
        if (t.width > 0 && (t.left < frame.left - tol || t.right > frame.right + tol || t.top < frame.top - tol)) {
          problems.push({kind: 'title cut off', what: `${label(plot)}${cellOf(out)}`,
            detail: `title ${t.left.toFixed(0)}..${t.right.toFixed(0)} outside the chart ${frame.left.toFixed(0)}..${frame.right.toFixed(0)}`});
        }
      }
      const legend = plot.querySelector('.legend');
      const area = plot.querySelector('.draglayer .nsewdrag');
      if (legend && area) {
        const l = legend.getBoundingClientRect(), a = area.getBoundingClientRect();
        const w = Math.min(l.right, a.right) - Math.max(l.left, a.left);
        const h = Math.min(l.bottom, a.bottom) - Math.max(l.top, a.top);
        if (l.width > 0 && w > tol && h > tol) {
          problems.push({kind: 'legend over the data', what: `${label(plot)}${cellOf(out)}`,
            detail: `legend and plot area overlap by ${w.toFixed(0)} x ${h.toFixed(0)} px`});
        }
      }
    }
  }
  if (!root) {
    for (const el of document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer, .jp-NotebookPanel .jp-Notebook')) {
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + tol) {
        problems.push({kind: 'scrolls', what: 'notebook panel',
          detail: `scrollWidth ${el.scrollWidth} > clientWidth ${el.clientWidth}`});
      }
    }
  }
  return problems;
}"""


@dataclass(frozen=True)
class LayoutProblem:
    kind: str    # "overflows", "scrolls", "title cut off", "legend over the data"
    what: str    # the chart or widget, and its cell
    detail: str  # the measurement

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}: {self.detail}"


def layout_problems(page: Page, root: Locator | None = None, tolerance_px: float = TOLERANCE_PX) -> list[LayoutProblem]:
    """Every chart or widget that does not fit, under `root` (a cell or output) or in the whole notebook.

    With no `root`, the notebook panel's own horizontal scroll is checked too.
    One chart that is too wide is also a too-wide box around it: each
    (kind, what) is reported once, with its first measurement.
    """
    handle = root.element_handle() if root is not None else None
    found = page.evaluate(LAYOUT_JS, [handle, tolerance_px])
    unique: dict[tuple[str, str], LayoutProblem] = {}
    for p in found:
        unique.setdefault((p["kind"], p["what"]), LayoutProblem(p["kind"], p["what"], p["detail"]))
    return list(unique.values())


def assert_fits(page: Page, root: Locator | None = None, settle_s: float = 5.0,
                tolerance_px: float = TOLERANCE_PX) -> None:
    """Fail, naming each chart or widget and by how much, when anything is wider than its output.

    Live charts are redrawn at their box's width shortly after they appear
    (plotly waits 100 ms after a resize), so this waits up to `settle_s`
    for the layout to settle before it fails.
    """
    deadline = time.monotonic() + settle_s
    problems = layout_problems(page, root, tolerance_px)
    while problems and time.monotonic() < deadline:
        time.sleep(0.25)
        problems = layout_problems(page, root, tolerance_px)
    size = page.viewport_size or {}
    assert not problems, (f"{len(problems)} layout problem(s) at {size.get('width')}x{size.get('height')}:\n"
                          + "\n".join(f"  {p}" for p in problems))


def show_file_browser(page: Page) -> None:
    """Open the left sidebar's file browser if it is closed (JupyterLab's default layout has it open)."""
    panel = page.locator("#filebrowser")
    if panel.count() and panel.is_visible():
        return
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").first.click()
    panel.wait_for(state="visible", timeout=10_000)
