"""Notebook 09 (mTLS from PERMISSIVE to STRICT) in a real browser: JupyterLab, Chromium, Playwright.

Opens the notebook at a laptop's 1366x768 with the file browser open, runs
every cell from the Run menu and checks that every cell ran without an error
and the notebook's own checks passed; that the bench is live (the MtlsWidget's
mode buttons and the load generator's Start load button: widgets, not the
text a headless run shows), showing the mode the notebook left (PERMISSIVE,
set back for the quiz's live task); that the hop chart drew the notebook's
run (plaintext under DISABLE, mTLS after, the outsider refused under STRICT)
on a readable time axis; and that every chart and widget fits
(tests/browser/layout.py).

Then it does what the notebook's "Your turn" asks: picks a mode in the
control and presses Start load (which also sends the same load from
legacy/curl, outside the mesh), once per mode:

1. STRICT: every hop between sidecars arrives over mTLS, and the outsider's
   lane turns to refused (no plaintext request of it is served); productpage
   builds pages for curl only, so its calls to details match curl's calls;
2. DISABLE: every hop is plaintext, the outsider is served again, and
   productpage calls details for both callers (twice curl's rate);
3. PERMISSIVE: the hops between sidecars are mTLS again while the outsider
   is served in plaintext.

Each step reads the chart's plotly div: each lane (a y axis named by its
text trace) and each value's requests per second, over the points whose
trailing two-second window lies inside the step's run; and the chart must
reach the run's last second once the run is over (the bench redraws once
after a run). Screenshots go to test-artifacts/browser/nb09-*.png, the
measured rates to nb09-timings.txt.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import BrowserContext, Locator, Page

from tests.browser import notebook_page as nb
from tests.browser.conftest import ARTIFACTS
from tests.browser.jupyter import Server
from tests.browser.layout import assert_fits

NOTEBOOK = "09-mtls-permissive-to-strict.ipynb"
BENCH_CELL = "bench = Bench(lab, mtls"
HEADLESS_TEXT = "control MtlsWidget, load on"   # what Bench.show prints when no frontend renders widgets
HOPS = "Requests per second on each hop"
CERTIFICATES = "Workload certificates"
MTLS, PLAINTEXT, REFUSED = "mTLS", "plaintext", "refused (connection closed)"
MODES = ("DISABLE", "PERMISSIVE", "STRICT")

CURL = "curl \N{RIGHTWARDS ARROW} productpage"
OUTSIDER = "outside the mesh \N{RIGHTWARDS ARROW} productpage"
DETAILS = "productpage \N{RIGHTWARDS ARROW} details"
REVIEWS = "productpage \N{RIGHTWARDS ARROW} reviews"

RUN_ALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60
SETTLE_TIMEOUT_S = 30
RATE, SECONDS = 10, 6        # each step's load: 60 requests from curl, and 60 from legacy/curl
WINDOW_S = 2.0               # the chart's trailing window: a point at t counts the calls in (t - 2 s, t]
STILL_S = 6                  # a chart unchanged this long after the runs ended is drawn for good (no more ticks)

Lanes = dict[str, dict[str, list[tuple[pd.Timestamp, float]]]]
"""Per lane (hop), per value (mTLS, plaintext, refused): the chart's (time, requests per second) points."""


SCREENSHOTS = ("nb09-laptop.png", "nb09-bench-after-run-all.png", "nb09-bench-strict.png",
               "nb09-bench-disable.png", "nb09-bench-permissive.png")


@pytest.mark.timeout(600)
def test_mtls_modes_drive_the_hop_chart_in_a_real_browser(server: Server, browser: BrowserContext) -> None:
    for stale in ("nb09-failure.png", "nb09-failure-outputs.txt", "nb09-timings.txt", *SCREENSHOTS):
        (ARTIFACTS / stale).unlink(missing_ok=True)
    page = browser.pages[0] if browser.pages else browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        check_notebook_09(page, server)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "nb09-failure.png"))
        (ARTIFACTS / "nb09-failure-outputs.txt").write_text(
            nb.output_text(page) + "\n\npage errors:\n" + "\n".join(errors))
        raise


def check_notebook_09(page: Page, server: Server) -> None:
    started = time.monotonic()
    nb.run_notebook_as_a_learner(page, server.page_url(NOTEBOOK), RUN_ALL_TIMEOUT_S)
    ran_s = time.monotonic() - started

    bench = nb.cell_with(page, BENCH_CELL).locator(".jp-OutputArea")
    assert HEADLESS_TEXT not in bench.inner_text(), "the bench shows the headless text, not widgets"
    for mode in MODES:
        assert mode_button(bench, mode).count() == 1, f"no {mode} button: is the MtlsWidget live?\n{bench.inner_text()[:2000]}"
    assert bench.get_by_role("button", name="Start load").count() == 1, "the bench has no load generator"
    # The notebook's last cells set the mesh back to PERMISSIVE for the quiz's live task, as a click would.
    assert active_mode(bench) == "PERMISSIVE", f"the control shows {active_mode(bench)!r}"
    assert "PERMISSIVE: set mesh-wide by PeerAuthentication istio-system/default" in bench.inner_text()
    titles = nb.rendered_chart_titles(bench, (HOPS,), timeout_s=60)
    assert any(t.startswith(HOPS) for t in titles), f"no hop chart in the bench: {titles}"
    assert any(p.title.startswith(CERTIFICATES) for p in nb.plots(page.locator(".jp-Notebook"))), "no certificates chart"

    # The chart drew the notebook's run: DISABLE (plaintext), then mTLS, then STRICT refusing the outsider.
    notebook_run = lanes(nb.traces(bench, HOPS))
    assert {CURL, OUTSIDER, DETAILS, REVIEWS} <= set(notebook_run), f"the chart's lanes: {sorted(notebook_run)}"
    assert total(notebook_run[CURL], PLAINTEXT) > 0 and total(notebook_run[CURL], MTLS) > 0, notebook_run[CURL].keys()
    assert total(notebook_run[OUTSIDER], PLAINTEXT) > 0 and total(notebook_run[OUTSIDER], REFUSED) > 0
    # Known, not yet understood: the hop chart (five lanes on anchored y axes) stays at plotly's 700 px
    # in JupyterLab while 07's charts follow their box. It fits (assert_fits), it does not fill; the
    # width is recorded in nb09-timings.txt rather than failed on, until the cause is found.
    narrow = nb.narrow_charts(bench)
    display_problems = [f"after Run All: {p}" for p in nb.time_axis_problems(bench, HOPS)]

    try:
        assert_fits(page)
    finally:  # what the learner sees, whether it fits or not
        bench.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / SCREENSHOTS[0]))
    nb.screenshot_whole(page, bench, str(ARTIFACTS / SCREENSHOTS[1]))

    # 1. STRICT: the outsider is refused, every hop between sidecars is mTLS, details serves curl's pages only.
    late: list[str] = []
    strict = pick_mode_and_load(bench, "STRICT", late)
    assert steady(strict[OUTSIDER], REFUSED, RATE), f"under STRICT the outsider's requests are refused: {summary(strict)}"
    assert total(strict[OUTSIDER], PLAINTEXT) == 0 and total(strict[OUTSIDER], MTLS) == 0, (
        f"under STRICT no request of the outsider is served: {summary(strict)}")
    assert steady(strict[CURL], MTLS, RATE), f"curl's requests arrive over mTLS: {summary(strict)}"
    for hop, values in strict.items():
        if hop != OUTSIDER:
            assert total(values, PLAINTEXT) == 0, f"under STRICT {hop} has plaintext: {summary(strict)}"
    ratio = total(strict[DETAILS], MTLS) / total(strict[CURL], MTLS)
    assert 0.6 <= ratio <= 1.4, f"productpage builds pages for curl only: details/curl = {ratio:.2f}: {summary(strict)}"
    assert_fits(page)
    nb.screenshot_whole(page, bench, str(ARTIFACTS / SCREENSHOTS[2]))

    # 2. DISABLE: every hop is plaintext, the outsider is served again, and productpage calls details for both.
    disable = pick_mode_and_load(bench, "DISABLE", late)
    for hop, values in disable.items():
        assert total(values, MTLS) == 0, f"under DISABLE {hop} has mTLS: {summary(disable)}"
        assert total(values, REFUSED) == 0, f"under DISABLE {hop} has refusals: {summary(disable)}"
    assert steady(disable[CURL], PLAINTEXT, RATE) and steady(disable[OUTSIDER], PLAINTEXT, RATE), summary(disable)
    ratio = total(disable[DETAILS], PLAINTEXT) / total(disable[CURL], PLAINTEXT)
    assert 1.5 <= ratio <= 2.5, f"productpage builds pages for both callers: details/curl = {ratio:.2f}: {summary(disable)}"
    nb.screenshot_whole(page, bench, str(ARTIFACTS / SCREENSHOTS[3]))

    # 3. PERMISSIVE: mTLS between sidecars, and the outsider still served, in plaintext.
    permissive = pick_mode_and_load(bench, "PERMISSIVE", late)
    assert steady(permissive[OUTSIDER], PLAINTEXT, RATE) and total(permissive[OUTSIDER], REFUSED) == 0, summary(permissive)
    for hop, values in permissive.items():
        if hop != OUTSIDER:
            assert total(values, PLAINTEXT) == 0, f"under PERMISSIVE {hop} has plaintext: {summary(permissive)}"
            assert total(values, MTLS) > 0, f"under PERMISSIVE {hop} has no mTLS: {summary(permissive)}"
    assert_fits(page)
    nb.screenshot_whole(page, bench, str(ARTIFACTS / SCREENSHOTS[4]))
    display_problems += [f"after the learner's steps: {p}"
                         for p in nb.time_axis_problems(bench, HOPS)]
    (ARTIFACTS / "nb09-timings.txt").write_text(
        f"run all cells: {ran_s:.1f} s\nwhole test in the browser: {time.monotonic() - started:.1f} s\n"
        f"STRICT: {summary(strict)}\nDISABLE: {summary(disable)}\nPERMISSIVE: {summary(permissive)}\n"
        f"widget labels drawn cut off: {nb.cut_labels(bench)}\n"
        f"charts drawn narrower than their box (known, see above): {narrow}\n")
    assert not display_problems, (
        "the hop chart is not drawn as the learner should see it (see nb09-*.png):\n" + "\n".join(display_problems))
    assert not late, (
        "after a run started with Start load, the hop chart misses the run's last second(s): the bench's last "
        "redraw after a run does not read the lab again (Bench._tick reads a chart's source on every "
        "SLOW_SOURCE_EVERY-th tick only):\n" + "\n".join(late))


# -- steps --------------------------------------------------------------------------------------


def mode_button(bench: Locator, mode: str) -> Locator:
    return bench.locator(".widget-toggle-buttons").get_by_role("button", name=mode, exact=True)


def active_mode(bench: Locator) -> str:
    active = bench.locator(".widget-toggle-buttons button.mod-active")
    return active.first.inner_text().strip() if active.count() else ""


def pick_mode_and_load(bench: Locator, mode: str, problems: list[str]) -> Lanes:
    """Click `mode` in the control (it applies at once), press Start load, wait for both runs (curl's and
    legacy/curl's) and the chart; return each lane's values over the points inside the run.

    The chart must reach the run's last second: when it stays short of it,
    that goes into `problems` and the points it has are returned."""
    applied = re.compile(r"applied PeerAuthentication istio-system/default as config version (\d+)")
    old = [int(v) for v in applied.findall(bench.inner_text())]
    mode_button(bench, mode).click()
    nb.wait_for_text(bench, applied, 20, accept=lambda m: int(m.group(1)) > max(old, default=0))
    nb.wait_for_text(bench, rf"{mode}: set mesh-wide by PeerAuthentication istio-system/default", 10)
    assert active_mode(bench) == mode, f"the control shows {active_mode(bench)!r} after a click on {mode}"

    nb.set_field(bench, "rate /s", str(RATE))
    nb.set_field(bench, "duration s", str(SECONDS))
    label = re.compile(rf"#(\d+) (productpage|productpage\.default) {RATE}/s, {RATE * SECONDS} requests"
                       r"( from legacy/curl)?(: (\w+).*)?")
    runs = [int(m.group(1)) for m in label.finditer(bench.inner_text())]
    first = max(runs, default=0)
    start = datetime.now()  # the kernel's wall clock too: same machine, same time zone
    bench.get_by_role("button", name="Start load").click()
    mine = nb.wait_for_text(bench, label, RUN_TIMEOUT_S, accept=lambda m: int(m.group(1)) > first
                            and m.group(3) is None and m.group(5) is not None)
    theirs = nb.wait_for_text(bench, label, RUN_TIMEOUT_S, accept=lambda m: int(m.group(1)) > first
                              and m.group(3) is not None and m.group(5) is not None)
    assert mine.group(5) == "done" and theirs.group(5) == "done", f"runs: {mine.group(0)!r}, {theirs.group(0)!r}"
    # The last request of curl's run was sent SECONDS - 1/RATE after the run started, which was after the click:
    # the chart's last point (a whole second) is at least that second.
    edge = pd.Timestamp(start + timedelta(seconds=SECONDS - 1 / RATE)).floor("s")
    inside, newest = settled_lanes(bench, pd.Timestamp(start + timedelta(seconds=WINDOW_S)), edge)
    if newest is None or newest < edge:
        problems.append(
            f"{mode}: the hop chart stopped at {newest} and stayed there, before the run's last second "
            f"{edge:%H:%M:%S} (run started {start:%H:%M:%S.%f}): the requests of the run's end are never drawn")
    return inside


def settled_lanes(bench: Locator, since: pd.Timestamp, edge: pd.Timestamp) -> tuple[Lanes, pd.Timestamp | None]:
    """Each lane's values at the chart's points from `since` on, and the chart's newest point: once the
    chart reaches `edge` and stops changing, or once it has not changed for STILL_S seconds (the bench
    redraws only while load runs, and once after)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last, still = None, 0
    while True:
        every = lanes(nb.traces(bench, HOPS))
        inside = {hop: {value: [(t, y) for t, y in points if t >= since] for value, points in values.items()}
                  for hop, values in every.items()}
        newest = max((t for values in every.values() for points in values.values() for t, _ in points), default=None)
        still = still + 1 if inside == last else 0
        if (still and newest is not None and newest >= edge) or still >= STILL_S:
            return inside, newest
        if time.monotonic() > deadline:
            raise TimeoutError(f"the hop chart did not settle: newest point {newest}, {summary(inside)}")
        last = inside
        time.sleep(1.0)


# -- reading the chart ------------------------------------------------------------------------------


def lanes(traces: list[dict[str, Any]]) -> Lanes:
    """Per lane (hop name), per value (mTLS, plaintext, refused): the (time, requests per second) points.

    A lane is a y axis; its name is the text trace drawn on it (mode "text").
    """
    names = {t["yaxis"]: t["name"] for t in traces if t["mode"] == "text"}
    out: Lanes = {hop: {} for hop in names.values()}
    for trace in traces:
        if trace["mode"] == "text" or trace["yaxis"] not in names:
            continue
        points = [(pd.Timestamp(x), float(y)) for x, y in zip(trace["x"], trace["y"], strict=True) if x is not None]
        out[names[trace["yaxis"]]].setdefault(trace["name"], []).extend(points)
    return out


def total(values: dict[str, list[tuple[pd.Timestamp, float]]], value: str) -> float:
    """The sum of a value's requests per second over the points (about its number of requests, one point a second)."""
    return sum(y for _, y in values.get(value, []))


def steady(values: dict[str, list[tuple[pd.Timestamp, float]]], value: str, rate: float) -> bool:
    """The lane carried `value` at about `rate` or more: on average at least 60% of it over the lane's points."""
    seconds = len({t for points in values.values() for t, _ in points})
    return seconds > 0 and total(values, value) >= 0.6 * rate * seconds


def summary(lanes_: Lanes) -> dict[str, dict[str, float]]:
    return {hop: {value: round(sum(y for _, y in points), 1) for value, points in values.items()}
            for hop, values in lanes_.items()}
